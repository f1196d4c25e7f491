"""Pure rules of the contact statistics (no I/O): the rates the bureau reports upward (issue 14).

Of everyone whose turn came in draw order (R12.1) and whose outcome is settled — confirmed, declined, unreachable,
recused, or skipped by the system as dismissed / ineligible — the decline rate is the share who declined, the skip
rate the share passed over for any reason (`contacts.FREEING`, as DRAW.md's skip rates per clerk count them).
People still pending and those of a cancelled request are not counted.
"""

from collections.abc import Mapping

from services.selection.draw.contacts import FREEING

SETTLED = ("confirmed", *sorted(FREEING))


def rate(part: int, whole: int) -> float | None:
    """part / whole rounded to 4 places; None (no rate) when nothing was counted."""
    if whole < 0 or part < 0 or part > whole:
        raise ValueError("a rate needs 0 <= part <= whole")
    return None if whole == 0 else round(part / whole, 4)


def contact_rates(counts: Mapping[str, int]) -> dict[str, int | float | None]:
    """R12.1/R14.2: `settled`, `skipped` and the decline, unreachable and skip rates from the count per outcome."""
    settled = sum(counts.get(outcome, 0) for outcome in SETTLED)
    skipped = sum(counts.get(outcome, 0) for outcome in FREEING)
    return {"settled": settled, "skipped": skipped, "decline_rate": rate(counts.get("declined", 0), settled),
            "unreachable_rate": rate(counts.get("unreachable", 0), settled), "skip_rate": rate(skipped, settled)}
