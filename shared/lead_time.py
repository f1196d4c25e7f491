"""The one implementation of the lead-time rules R10.1, R10.2 and R44.1, for casework and selection alike."""

# Counting (RULES R10.1, as the 2026-11-30 review decided): the activity day is not counted; the
# working days in the half-open range [notification date, activity date) must be >= 5, the
# notification date counting when it is a working day. Notified on a Sunday for the Friday after:
# Mon-Thu = 4, refused; on a Monday for the Saturday after: Mon-Fri = 5, accepted. Short notice
# (R10.2): 3 <= days < 5 only with a bureau user's consent; < 3 is always refused.
# Pure code: every function takes the WorkingCalendar to count with; check_lead_time never raises for
# valid dates (an answer past 9999-12-31 is a clean refusal, not an OverflowError).

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

from shared.calendar import CalendarAnswer, WorkingCalendar

IN_FORCE = date(2024, 12, 1)  # R44.1
NORMAL_LEAD = 5  # R10.1
SHORT_NOTICE_LEAD = 3  # R10.2
DEFAULT_MAX_DAYS_AHEAD = 730  # bureau setting: an activity absurdly far ahead is refused

EARLIEST_MOMENT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(2100, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def _check_moment(moment: datetime) -> datetime:
    """Keep activity moments in 2000-01-01..2100-12-31 UTC, so no date arithmetic downstream can overflow."""
    # aware datetimes compare by their UTC instants without converting (no overflow near date.max)
    if not EARLIEST_MOMENT <= moment <= LATEST_MOMENT:
        raise ValueError("活动时间应在2000-01-01至2100-12-31（UTC）之间。")
    return moment


ActivityMoment = Annotated[AwareDatetime, AfterValidator(_check_moment)]
"""An activity time a client gives (R10.1, R44.1): aware, between 2000-01-01 and 2100-12-31 in UTC."""


def lead_days(calendar: WorkingCalendar, notified_on: date, activity_on: date) -> CalendarAnswer[int]:
    """R10.1: the working days in [notified_on, activity_on) (0 when activity_on <= notified_on)."""
    _check_date(notified_on)
    _check_date(activity_on)
    if activity_on <= notified_on:
        return CalendarAnswer(0)
    # [n, a) = {n} ∪ (n, a - 1]; a - 1 >= n, so nothing here leaves date's range
    first = calendar.is_working_day(notified_on)
    rest = calendar.working_days_between(notified_on, activity_on - timedelta(days=1))
    return CalendarAnswer(int(first.value) + rest.value, _union(first.provisional_years, rest.provisional_years))


def earliest_activity_date(calendar: WorkingCalendar, notified_on: date, lead: int) -> CalendarAnswer[date]:
    """R10.1/R10.2: the earliest A with lead_days(notified_on, A) >= lead; ValueError if past 9999-12-31."""
    _check_date(notified_on)
    if isinstance(lead, bool) or not isinstance(lead, int) or lead < 1:
        raise ValueError(f"lead must be a positive number of working days, got {lead!r}")
    try:
        first = calendar.add_working_days(notified_on, 0)  # the 1st working day from notified_on inclusive
        last = calendar.add_working_days(first.value, lead - 1)  # the lead-th (first itself when lead == 1)
        return CalendarAnswer(last.value + timedelta(days=1), _union(first.provisional_years, last.provisional_years))
    except (OverflowError, ValueError) as exc:  # the calendar ran past year 9999
        why = f"{notified_on.isoformat()}起{lead}个工作日后的日期超出可表示的范围（至9999-12-31）。"
        raise ValueError(why) from exc


@dataclass(frozen=True)
class LeadTimeDecision:
    """The lead-time answer for one request (R44.1, R10.1, R10.2), with the counts it rests on."""

    ok: bool  # may go on (with needs_consent: on to the bureau's decision)
    needs_consent: bool  # 3 <= days < 5 and short notice was asked: waits for a bureau user (R10.2)
    code: str | None  # None, "R44.1", "R10.1", "R10.2", "activity_too_far"
    working_days: int | None
    earliest_allowed_date: date | None  # for a refusal: the earliest activity date the applicable lead allows
    provisional: bool  # an unpublished calendar year was used
    detail: str  # Chinese, for problem+json and events


def check_lead_time(calendar: WorkingCalendar, *, notified_on: date, activity_on: date, short_notice: bool,
                    max_days_ahead: int = DEFAULT_MAX_DAYS_AHEAD) -> LeadTimeDecision:
    """R44.1, then R10.1 (≥ 5 working days in [notified_on, activity_on)), or R10.2 (≥ 3 with consent)."""
    _check_date(notified_on)
    _check_date(activity_on)
    lead = SHORT_NOTICE_LEAD if short_notice else NORMAL_LEAD
    span = activity_on.toordinal() - notified_on.toordinal()  # calendar days, no date arithmetic to overflow

    def earliest(at_least: int) -> tuple[date | None, tuple[int, ...], str]:
        """The earliest date `at_least` working days allow, on or after IN_FORCE and not too far ahead."""
        try:
            answer = earliest_activity_date(calendar, notified_on, at_least)
        except ValueError:
            return None, (), "在可表示的日期范围内（至9999-12-31）没有满足提前期的活动日期。"
        found = max(answer.value, IN_FORCE)
        if found.toordinal() - notified_on.toordinal() > max_days_ahead:
            return None, answer.provisional_years, f"通知日后{max_days_ahead}日内没有满足提前期的活动日期。"
        return found, answer.provisional_years, f"最早可安排的活动日期为{found.isoformat()}。"

    def refuse(code: str, days: int | None, why: str, at_least: int | None,
               years: tuple[int, ...] = ()) -> LeadTimeDecision:
        """A refusal naming the earliest allowed date (if any) and whether the calendar was provisional."""
        allowed = None
        if at_least:
            allowed, earliest_years, says = earliest(at_least)
            years, why = _union(years, earliest_years), why + says
        return LeadTimeDecision(False, False, code, days, allowed, bool(years), why + _note(years))

    activity = activity_on.isoformat()
    if activity_on < IN_FORCE:
        return refuse("R44.1", None, f"活动日期{activity}早于本办法施行日期{IN_FORCE.isoformat()}，不予受理（R44.1）。",
                      lead)
    if span <= 0:
        when = "为今日" if span == 0 else "已过"
        return refuse("R10.1", 0, f"活动日期{activity}{when}，应至少提前{lead}个工作日通知（R10.1）。", lead)
    if span > max_days_ahead:
        return refuse("activity_too_far", None,
                      f"活动日期{activity}距通知日{notified_on.isoformat()}超过{max_days_ahead}日，不予受理。", None)
    counted = lead_days(calendar, notified_on, activity_on)
    days, years = counted.value, counted.provisional_years
    if days >= NORMAL_LEAD:
        return LeadTimeDecision(True, False, None, days, None, counted.provisional,
                                f"提前{days}个工作日通知（R10.1）。" + _note(years))
    if short_notice and days >= SHORT_NOTICE_LEAD:
        return LeadTimeDecision(True, True, None, days, None, counted.provisional,
                                f"提前{days}个工作日通知，不足五个工作日，须经市司法局同意（R10.2）。" + _note(years))
    if short_notice:
        why = f"即使经市司法局同意，也应至少提前三个工作日通知；本次仅提前{days}个工作日（R10.2）。"
        return refuse("R10.2", days, why, SHORT_NOTICE_LEAD, years)
    why = f"应在监督活动五个工作日前通知市司法局；本次仅提前{days}个工作日（R10.1）。"
    if days >= SHORT_NOTICE_LEAD:
        why += "特殊情形经市司法局同意，可至少提前三个工作日通知（R10.2）。"
    return refuse("R10.1", days, why, NORMAL_LEAD, years)


def _check_date(d: object) -> None:
    """Refuse datetimes and non-dates (as shared.calendar does): R10.1 counts calendar dates only."""
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"expected datetime.date, got {type(d).__name__}")


def _union(*years: tuple[int, ...]) -> tuple[int, ...]:
    """The sorted union of several answers' provisional years."""
    return tuple(sorted({y for group in years for y in group}))


def _note(years: tuple[int, ...]) -> str:
    """The Chinese note that a provisional calendar was used (RULES "Calendar"), or ""."""
    if not years:
        return ""
    listed = "、".join(f"{y}年" for y in years)
    return f"（工作日历为临时推算：{listed}放假安排尚未公布，以国务院通知为准；calendar: provisional）"
