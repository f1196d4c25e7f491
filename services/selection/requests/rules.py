"""Pure rules of a supervision request owned by selection: the seat split (R11.1), work-list date ranges.

The lead time (R10.1, R10.2, R44.1) is one rule for casework and selection: `shared.lead_time`.
"""

import math
from datetime import date


def split_seats(seats: int, local_share: float) -> tuple[int, int]:
    """(local, cross) seats (R11.1 nearby combined with cross-district): ceil(seats × the bureau's local share)."""
    seats_local = max(0, min(seats, math.ceil(seats * local_share)))
    return seats_local, seats - seats_local


# Bounds of a date a work list filters on: beyond them a day's midnight in Shanghai is not representable
# (date.max + 1 day overflows), and nothing of the programme lies outside (R44.1: in force from 2024-12-01).
FIRST_LIST_DATE = date(2000, 1, 1)
LAST_LIST_DATE = date(2999, 12, 31)


def date_range_problem(since: date | None, until: date | None) -> tuple[str, str] | None:
    """(code, Chinese detail) when a list's date range cannot be used: reversed, or out of bounds."""
    for day in (since, until):
        if day is not None and not FIRST_LIST_DATE <= day <= LAST_LIST_DATE:
            return "date_out_of_range", f"日期应在{FIRST_LIST_DATE.isoformat()}至{LAST_LIST_DATE.isoformat()}之间。"
    if since is not None and until is not None and since > until:
        return "invalid_range", "起始日期（from）不能晚于结束日期（to）。"
    return None
