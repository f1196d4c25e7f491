"""Pure rules of the finance service (RULES.md R41.1, R42.1, R43.1, N-RATE). No I/O here."""

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from shared.activity_types import OTHER, is_known

# --- money: integer fen everywhere ---------------------------------------------------------------


def yuan(fen: int) -> str:
    """12345 -> '123.45', -5 -> '-0.05': fen formatted as yuan with 2 decimals, no float involved."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError("amounts are integer fen")
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


# --- N-RATE: versioned rates ---------------------------------------------------------------------


class NoRateError(LookupError):
    """No rate of the type is in force on the date (the date is before its first rate)."""


@dataclass(frozen=True)
class Rate:
    id: int
    activity_type: str
    amount_fen: int
    effective_from: date


def rate_in_force(rates: Iterable[Rate], activity_type: str, on: date) -> Rate:
    """N-RATE: the rate of `activity_type` with the greatest effective_from ≤ `on` (ties: newest id)."""
    best: Rate | None = None
    for rate in rates:
        if rate.activity_type != activity_type or rate.effective_from > on:
            continue
        if best is None or (rate.effective_from, rate.id) > (best.effective_from, best.id):
            best = rate
    if best is None:
        raise NoRateError(f"no {activity_type} rate in force on {on.isoformat()}")
    return best


def price_line(rates: Iterable[Rate], activity_type: str, activity_date: date) -> tuple[Rate, bool]:
    """N-RATE/R42.1: (rate pricing the line, known type?). An unknown type is priced by `other`."""
    known = is_known(activity_type)
    return rate_in_force(rates, activity_type if known else OTHER, activity_date), known


# --- R41.1: budget estimate ----------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRow:
    month: int
    activity_type: str
    count: int


def budget_estimate(rows: Iterable[PlanRow], year: int, price: Callable[[str, date], int],
                    travel_allowance_fen: int) -> dict[int, int]:
    """R41.1: per month, Σ count × (rate in force on the 1st of the month + travel allowance), in fen.

    `price(activity_type, day)` returns the rate amount (raises NoRateError if none). Every month 1–12
    is in the answer (0 when nothing is planned).
    """
    months = dict.fromkeys(range(1, 13), 0)
    for row in rows:
        if not 1 <= row.month <= 12 or row.count < 0:
            raise ValueError(f"invalid plan row {row}")
        if row.count:
            unit = price(row.activity_type, date(year, row.month, 1)) + travel_allowance_fen
            months[row.month] += row.count * unit
    return months


# --- R42.1 / R43.1: the approval flow ------------------------------------------------------------

DRAFT, CHECKED, APPROVED, PAID = "draft", "checked", "approved", "paid"
STATES = (DRAFT, CHECKED, APPROVED, PAID)
TRANSITIONS: Mapping[str, tuple[str, str]] = {
    # action: (from, to)
    "check": (DRAFT, CHECKED),
    "approve": (CHECKED, APPROVED),
    "pay": (APPROVED, PAID),
}


class InvalidTransition(ValueError):
    def __init__(self, state: str, action: str) -> None:
        super().__init__(f"cannot {action} from {state}")
        self.state = state
        self.action = action


class SelfApproval(ValueError):
    """Approval by the checker, the creator or the claimant (HMCTS: no self-approval)."""


def next_state(state: str, action: str) -> str:
    """R42.1/R43.1: draft → checked → approved → paid, nothing else."""
    move = TRANSITIONS.get(action)
    if move is None or move[0] != state:
        raise InvalidTransition(state, action)
    return move[1]


def ensure_not_self_approval(approver: str, *, checked_by: str | None, parties: Iterable[str | None] = (),
                             approver_supervisor_id: str | None = None,
                             claimant_supervisor_id: str | None = None) -> None:
    """R42.1/R43.1: the approver is neither the user who checked, nor the creator, nor the claimant."""
    if approver == checked_by:
        raise SelfApproval("the approver checked this item")
    if approver in {p for p in parties if p}:
        raise SelfApproval("the approver created this claim")
    ensure_not_claimant(approver_supervisor_id, claimant_supervisor_id)


def ensure_not_claimant(actor_supervisor_id: str | None, claimant_supervisor_id: str | None) -> None:
    """Nobody checks or approves money paid to themselves."""
    if actor_supervisor_id and claimant_supervisor_id and actor_supervisor_id == claimant_supervisor_id:
        raise SelfApproval("the actor is the claimant")


# --- R42.1: verified signature -------------------------------------------------------------------

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def signature_verified(signature_hash: str | None, signed_at: object) -> bool:
    """R42.1: a signed form carries a 64-hex signature hash and a signing time."""
    return bool(signed_at) and isinstance(signature_hash, str) and bool(_SHA256_HEX.fullmatch(signature_hash.lower()))


# --- R43.1: travel caps --------------------------------------------------------------------------

TRAVEL_CATEGORIES = ("transport", "accommodation", "meal", "other")


@dataclass(frozen=True)
class TravelItem:
    category: str
    amount_fen: int
    nights: int = 1


def travel_warnings(items: Iterable[TravelItem], caps_fen: Mapping[str, int]) -> list[dict]:
    """R43.1: one warning per item above its category cap (accommodation: cap × nights); never a refusal."""
    warnings = []
    for index, item in enumerate(items):
        cap = caps_fen.get(item.category)
        if cap is None:
            continue
        limit = cap * max(item.nights, 1) if item.category == "accommodation" else cap
        if item.amount_fen > limit:
            warnings.append({
                "item": index, "category": item.category, "amount_fen": item.amount_fen, "cap_fen": limit,
                "message": f"第{index + 1}项{CATEGORY_LABELS[item.category]}{yuan(item.amount_fen)}元"
                           f"超过标准{yuan(limit)}元，请核实。",
            })
    return warnings


CATEGORY_LABELS = {"transport": "交通费", "accommodation": "住宿费", "meal": "伙食费", "other": "其他费用"}


# --- masking -------------------------------------------------------------------------------------


def mask_account(account: str | None) -> str:
    """'6222021234567890123' -> '***************0123': keep the last 4 digits only."""
    text = (account or "").replace(" ", "")
    if len(text) <= 4:
        return "*" * len(text)
    return "*" * (len(text) - 4) + text[-4:]


def month_bounds(year: int, month: int) -> tuple[date, date]:
    """[first day, first day of next month)."""
    if not 1 <= month <= 12:
        raise ValueError("month must be 1..12")
    start = date(year, month, 1)
    end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return start, end


def pricing_type(activity_type: str) -> str:
    """N-RATE: the type whose rate prices an activity: itself if known (N-ACT), else `other` (the line is flagged)."""
    return activity_type if is_known(activity_type) else OTHER
