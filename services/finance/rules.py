"""Pure rules of the finance service (RULES.md R41.1, R42.1, R43.1, N-RATE). No I/O here."""

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from shared.activity_types import OTHER, is_known
from shared.documents.words import yuan


class RuleViolation(Exception):
    """A rule refused: HTTP status, stable code (the rule id), Chinese title and detail; mapped at the edge."""

    def __init__(self, status: int, code: str, title: str, detail: str) -> None:
        super().__init__(f"{code}: {title}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail


def require_reason(reason: str | None, what: str) -> str:
    """A decision that needs a reason (rejections, partial approval, budget excess) gets a non-blank one."""
    text = (reason or "").strip()
    if not text:
        raise RuleViolation(422, "reason_required", "须说明理由", f"{what}须填写理由。")
    return text

# --- N-RATE: versioned rates ---------------------------------------------------------------------


class NoRateError(LookupError):
    """No rate of the type is in force on the date (the date is before its first rate)."""


@dataclass(frozen=True)
class Rate:
    id: int
    activity_type: str
    amount_fen: int
    effective_from: date
    approved: bool = True


def rate_in_force(rates: Iterable[Rate], activity_type: str, on: date) -> Rate:
    """N-RATE: the approved rate of `activity_type` with the greatest effective_from ≤ `on` (ties: newest id).

    The one selection of a rate: the service loads the candidate rows and calls this (no SQL twin).
    """
    best: Rate | None = None
    for rate in rates:
        if not rate.approved or rate.activity_type != activity_type or rate.effective_from > on:
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


def rate_needs_second_approval(effective_from: date, today: date) -> bool:
    """N-RATE: a rate effective on a past date changes what is already due: a second finance user approves it."""
    return effective_from < today


def ensure_second_user(actor: str, first: str | None) -> None:
    """N-RATE/R41.1: the second approval is by another user than the first."""
    if first is not None and actor == first:
        raise SelfApproval("the second approval needs another user")


# --- R41.1: budget estimate ----------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRow:
    month: int
    activity_type: str
    count: int
    seats: int = 1  # supervisors per activity: subsidy is paid per supervisor

    @property
    def supervisor_activities(self) -> int:
        return self.count * self.seats


def budget_estimate(rows: Iterable[PlanRow], year: int, price: Callable[[str, date], int],
                    travel_allowance_fen: int) -> dict[int, int]:
    """R41.1: per month, Σ activities × seats × (rate in force on the 1st + travel allowance), in fen.

    The plan is in supervisor-activities (subsidy and travel are per supervisor). `price(activity_type, day)`
    returns the rate amount (raises NoRateError if none). Every month 1–12 is in the answer.
    """
    months = dict.fromkeys(range(1, 13), 0)
    for row in rows:
        if not 1 <= row.month <= 12 or row.count < 0 or row.seats < 1:
            raise ValueError(f"invalid plan row {row}")
        if row.count:
            unit = price(row.activity_type, date(year, row.month, 1)) + travel_allowance_fen
            months[row.month] += row.supervisor_activities * unit
    return months


def check_budget(*, budget_fen: int, spent_fen: int, amount_fen: int, approver: str,
                 excess_approved_by: str | None) -> int:
    """R41.1: the budget left after approving `amount_fen`.

    Going over the year's budget is refused unless another finance user approved the excess (with a reason).
    """
    remaining = budget_fen - spent_fen - amount_fen
    if remaining >= 0:
        return remaining
    if excess_approved_by is None:
        raise RuleViolation(409, "R41.1", "超出年度预算",
                            f"批准本笔{yuan(amount_fen)}元将超出预算{yuan(-remaining)}元（预算{yuan(budget_fen)}元，"
                            f"已批准{yuan(spent_fen)}元，剩余{yuan(budget_fen - spent_fen)}元）；"
                            "须由另一名财务人员批准超支并说明理由。")
    ensure_second_user(approver, excess_approved_by)
    return remaining


# --- R42.1 / R43.1: the approval flow ------------------------------------------------------------

DRAFT, CHECKED, APPROVED, PAID, REJECTED = "draft", "checked", "approved", "paid", "rejected"
STATES = (DRAFT, CHECKED, APPROVED, PAID, REJECTED)
TRANSITIONS: Mapping[str, tuple[tuple[str, ...], str]] = {
    # action: (from, to)
    "check": ((DRAFT,), CHECKED),
    "approve": ((CHECKED,), APPROVED),
    "pay": ((APPROVED,), PAID),
    "reject": ((DRAFT, CHECKED, APPROVED), REJECTED),  # an approved item only while in no issued table
}


class InvalidTransition(ValueError):
    def __init__(self, state: str, action: str) -> None:
        super().__init__(f"cannot {action} from {state}")
        self.state = state
        self.action = action


class SelfApproval(ValueError):
    """Approval by the checker, the creator or the claimant (HMCTS: no self-approval)."""


def next_state(state: str, action: str) -> str:
    """R42.1/R43.1: draft → checked → approved → paid, or rejected before payment; nothing else."""
    move = TRANSITIONS.get(action)
    if move is None or state not in move[0]:
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


def canonical(value: Any) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8): the bytes casework hashes (same as its rules.canonical)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str).encode()


def expected_signature_hash(*, form_id: str, supervisor_id: str, content_hash: str, signed_at: datetime,
                            method: str, image_sha256: str | None) -> str:
    """R42.1: the signature hash casework computes (R17.1) from what FeedbackSigned carries beside it
    (content_hash, method, image_sha256; optional fields: an event without content_hash is from an
    older producer and only gets check_signature's checks)."""
    return hashlib.sha256(canonical({
        "form_id": form_id, "supervisor_id": supervisor_id, "content_hash": content_hash,
        "signed_at": signed_at.isoformat(), "method": method, "image_sha256": image_sha256,
    })).hexdigest()


class SignatureRefused(ValueError):
    """R42.1: the signed form fails a check finance can make (a ValueError: the inbox dead-letters it)."""


def check_signature(signature_hash: str | None, signed_at: datetime | None, *, activity_date: date,
                    signed_on: date | None, now: datetime, skew: timedelta) -> str:
    """R42.1: what finance can verify of a signature from FeedbackSigned v1; returns the normalised hash.

    A 64-hex hash and an aware signing time, not in the future (beyond `skew`), not before the activity's
    day (`signed_on` is the Shanghai date of `signed_at`). That the hash belongs to the content is checked
    by recomputing it (expected_signature_hash) only when the event carries the form's content hash.
    """
    if not signature_verified(signature_hash, signed_at) or signed_at is None or signed_on is None:
        raise SignatureRefused("R42.1: no verified signature (hash or signing time missing)")
    if signed_at > now + skew:
        raise SignatureRefused("R42.1: signed in the future")
    if signed_on < activity_date:
        raise SignatureRefused("R42.1: signed before the activity took place")
    return str(signature_hash).lower()


# --- R42.1: the issued monthly table -------------------------------------------------------------


def check_issue_period(year: int, month: int, *, today: date, last_issued: tuple[int, int] | None) -> None:
    """R42.1: a month's table is issued once, in order, and not before the month has begun.

    Lines approved after their month's table was issued go to the next table (a later month).
    """
    if (year, month) > (today.year, today.month):
        raise RuleViolation(422, "R42.1", "发放月份尚未开始", f"{year}年{month}月尚未开始，不能制作该月发放表。")
    if last_issued is not None and (year, month) <= last_issued:
        raise RuleViolation(409, "R42.1", "发放表已制作",
                            f"本范围已制作至{last_issued[0]}年{last_issued[1]}月的发放表：已制作的发放表不再变动，"
                            "逾期批准的明细列入下一期发放表；更正请制作新版本。")


def batch_number(year: int, month: int, sequence: int) -> str:
    """R42.1: the batch number of a month's table: YYYYMM-NNN (NNN counts the month's tables)."""
    return f"{year}{month:02d}-{sequence:03d}"


def payment_status(total_fen: int, paid_fen: int) -> str:
    """R42.1: a row's payment state as the table shows it."""
    if total_fen > 0 and paid_fen >= total_fen:
        return "已支付"
    if paid_fen <= 0:
        return "未支付"
    return f"部分支付（已付{yuan(paid_fen)}元）"


# --- R43.1: travel claims ------------------------------------------------------------------------


def check_claim_window(travel_date: date, *, today: date, deadline_days: int) -> None:
    """R43.1/N-RATE: a claim is filed after the travel and within the set period (`TRAVEL_CLAIM_DEADLINE_DAYS`)."""
    if travel_date > today:
        raise RuleViolation(422, "R43.1", "差旅日期晚于今天", "差旅费须在差旅发生后申报。")
    if (today - travel_date).days > deadline_days:
        raise RuleViolation(422, "R43.1", "超过报销期限",
                            f"差旅费须在差旅发生后{deadline_days}日内申报；该差旅日期为{travel_date.isoformat()}。")


def check_claim_activity(travel_date: date, activity_date: date, *, window_days: int) -> None:
    """R43.1: the travel of an activity claim lies within `window_days` of the attended activity's day."""
    if abs((travel_date - activity_date).days) > window_days:
        raise RuleViolation(422, "R43.1", "差旅日期与活动不符",
                            f"差旅日期{travel_date.isoformat()}与所参加活动的日期{activity_date.isoformat()}"
                            f"相差超过{window_days}日。")


def approved_amount(total_fen: int, approved_fen: int | None, reason: str | None) -> tuple[int, str | None]:
    """R43.1: (the approved amount, its note): the whole claim, or part of it with a reason."""
    if approved_fen is None or approved_fen == total_fen:
        return total_fen, (reason or "").strip() or None
    if approved_fen > total_fen:
        raise RuleViolation(422, "R43.1", "核定金额超过申报金额",
                            f"核定金额{yuan(approved_fen)}元超过申报金额{yuan(total_fen)}元。")
    if approved_fen <= 0:
        raise RuleViolation(422, "R43.1", "核定金额为零", "全部不予报销请使用驳回并说明理由。")
    return approved_fen, require_reason(reason, "部分核定差旅费")


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


# --- work lists and deadlines (R42.1, R43.1): what an item waits for, who may act, by when --------

WAITING_FOR = {DRAFT: "check", CHECKED: "approve"}  # approved: "issue" (into a table) or "pay" (by its table)


def waiting_for(status: str, *, in_issued_table: bool) -> str | None:
    """R42.1/R43.1: the next step of a line or claim: check, approve, issue (into a table), pay; None when done."""
    if status == APPROVED:
        return "pay" if in_issued_table else "issue"
    return WAITING_FOR.get(status)


def may_act(step: str | None, *, actor: str, checked_by: str | None, can_act: bool) -> bool:
    """R42.1/R43.1 (four eyes): a finance user may take the next step, but never approve what they checked."""
    if step is None or not can_act:
        return False
    return not (step == "approve" and actor == checked_by)


def table_due_on(year: int, month: int, due_day: int) -> date:
    """R42.1: the month's disbursement table is due on `due_day` of the next month (the last day if shorter); the
    measures set no day, so it is configuration (`DISBURSEMENT_DUE_DAY`). Its items are due to be checked and
    approved by then."""
    _, next_month = month_bounds(year, month)
    _, after = month_bounds(next_month.year, next_month.month)
    return min(next_month.replace(day=1) + timedelta(days=due_day - 1), after - timedelta(days=1))
