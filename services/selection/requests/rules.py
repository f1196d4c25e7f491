"""Pure rules of a supervision request: lead time (R10.1, R10.2), in force date (R44.1), seat split (R11.1)."""

import math
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from shared.calendar import WorkingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
IN_FORCE = date(2024, 12, 1)
NORMAL_LEAD = 5
CONSENTED_LEAD = 3


def local_date(moment: datetime) -> date:
    """The Asia/Shanghai calendar date of an aware datetime."""
    return moment.astimezone(SHANGHAI).date()


@dataclass(frozen=True)
class LeadTimeDecision:
    ok: bool
    code: str | None
    earliest_allowed_date: date | None
    working_days: int | None
    provisional: bool
    detail: str


def check_lead_time(calendar: WorkingCalendar, *, requested_at: datetime, starts_at: datetime,
                    consent: bool) -> LeadTimeDecision:
    """R44.1 then R10.1 (≥ 5 working days) or R10.2 (≥ 3 with the bureau's recorded consent).

    The request day is not counted; the activity day is (shared.calendar conventions).
    """
    request_day, activity_day = local_date(requested_at), local_date(starts_at)
    if activity_day < IN_FORCE:
        return LeadTimeDecision(False, "R44.1", None, None, False,
                                f"活动日期{activity_day.isoformat()}早于本办法施行日期2024-12-01，不予受理。")
    between = calendar.working_days_between(request_day, activity_day)
    earliest = calendar.add_working_days(request_day, NORMAL_LEAD)
    provisional = between.provisional or earliest.provisional
    note = "（工作日历为临时推算，以国务院放假通知为准）" if provisional else ""
    days = between.value
    if days >= NORMAL_LEAD:
        return LeadTimeDecision(True, None, None, days, provisional, f"提前{days}个工作日通知。{note}")
    if consent and days >= CONSENTED_LEAD:
        return LeadTimeDecision(True, None, None, days, provisional,
                                f"经市司法局同意，提前{days}个工作日通知（R10.2）。{note}")
    if consent:
        earliest_consented = calendar.add_working_days(request_day, CONSENTED_LEAD).value
        return LeadTimeDecision(
            False, "R10.2", earliest_consented, days, provisional,
            f"即使经市司法局同意，也应至少提前3个工作日通知；本次仅提前{days}个工作日。"
            f"最早可安排的活动日期为{earliest_consented.isoformat()}。{note}",
        )
    return LeadTimeDecision(
        False, "R10.1", earliest.value, days, provisional,
        f"应在监督活动五个工作日前通知市司法局；本次仅提前{days}个工作日。"
        f"最早可安排的活动日期为{earliest.value.isoformat()}。{note}",
    )


def split_seats(seats: int, seats_local: int | None, local_share: float) -> tuple[int, int]:
    """(local, cross) seats (R11.1): the request's split, else ceil(seats × local_share)."""
    if seats_local is None:
        seats_local = math.ceil(seats * local_share)
    seats_local = max(0, min(seats, seats_local))
    return seats_local, seats - seats_local
