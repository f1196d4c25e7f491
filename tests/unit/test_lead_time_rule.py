"""shared.lead_time: R10.1 counts [notification date, activity date), R10.2 short notice, R44.1 in force date."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from shared.calendar import WorkingCalendar
from shared.clock import local_date
from shared.lead_time import (
    DEFAULT_MAX_DAYS_AHEAD,
    IN_FORCE,
    NORMAL_LEAD,
    SHORT_NOTICE_LEAD,
    ActivityMoment,
    LeadTimeDecision,
    check_lead_time,
    earliest_activity_date,
    lead_days,
)

CAL = WorkingCalendar()
ONE = timedelta(days=1)


def decide(notified: date, activity: date, short_notice: bool = False, **kw) -> LeadTimeDecision:
    return check_lead_time(CAL, notified_on=notified, activity_on=activity, short_notice=short_notice, **kw)


def counted(notified: date, activity: date) -> int:
    """R10.1 by hand: working days in [notified, activity), one day at a time."""
    total, d = 0, notified
    while d < activity:
        total += CAL.is_working_day(d).value
        d += ONE
    return total


# --- R10.1: the notification day counts when it is a working day, the activity day never ----------


def test_r10_1_sunday_for_friday_is_refused():
    sunday, friday = date(2026, 3, 1), date(2026, 3, 6)
    assert sunday.weekday() == 6 and friday.weekday() == 4
    refused = decide(sunday, friday)
    assert not refused.ok and refused.code == "R10.1" and refused.working_days == 4  # Mon–Thu
    assert refused.earliest_allowed_date == date(2026, 3, 7) and "2026-03-07" in refused.detail
    assert not refused.provisional and "provisional" not in refused.detail


def test_r10_1_monday_for_saturday_is_accepted():
    monday, saturday = date(2026, 3, 2), date(2026, 3, 7)
    assert monday.weekday() == 0 and saturday.weekday() == 5
    ok = decide(monday, saturday)
    assert ok.ok and not ok.needs_consent and ok.code is None and ok.working_days == 5  # Mon–Fri
    assert ok.earliest_allowed_date is None and not ok.provisional
    assert lead_days(CAL, monday, saturday).value == 5
    assert earliest_activity_date(CAL, monday, NORMAL_LEAD).value == saturday


def test_r10_1_national_day_2026_with_the_make_up_saturday():
    # Wed 09-30 counts 1; 10-01..10-07 off; 10-08 2, 10-09 3, Sat 10-10 (调休上班) 4, Sun 10-11 off, 10-12 5
    notified = date(2026, 9, 30)
    assert not CAL.is_working_day(date(2026, 10, 5)).value and CAL.is_working_day(date(2026, 10, 10)).value
    refused = decide(notified, date(2026, 10, 12))
    assert refused.code == "R10.1" and refused.working_days == 4
    assert refused.earliest_allowed_date == date(2026, 10, 13) and "2026-10-13" in refused.detail
    assert "R10.2" in refused.detail  # 4 days: the bureau could consent
    assert decide(notified, date(2026, 10, 13)).ok


def test_r10_1_make_up_sunday_before_mid_autumn_2026_counts():
    # Sat 09-19 off; Sun 09-20 (调休上班) 1, 09-21..09-24 2..5; Fri 09-25 is 中秋节
    assert decide(date(2026, 9, 19), date(2026, 9, 25)).working_days == 5
    assert decide(date(2026, 9, 19), date(2026, 9, 25)).ok
    assert earliest_activity_date(CAL, date(2026, 9, 19), NORMAL_LEAD).value == date(2026, 9, 25)


def test_r10_1_activity_in_the_past_is_refused_with_the_earliest_date():
    refused = decide(date(2026, 3, 10), date(2026, 3, 9))
    assert refused.code == "R10.1" and refused.working_days == 0 and "已过" in refused.detail
    # Tue 03-10 1, 03-11 2, 03-12 3, 03-13 4, Mon 03-16 5
    assert refused.earliest_allowed_date == date(2026, 3, 17) and "2026-03-17" in refused.detail


def test_r10_1_activity_today_is_refused_even_with_short_notice():
    refused = decide(date(2026, 3, 10), date(2026, 3, 10), short_notice=True)
    assert not refused.ok and refused.code == "R10.1" and not refused.needs_consent
    assert "今日" in refused.detail and refused.working_days == 0
    assert refused.earliest_allowed_date == date(2026, 3, 13)  # the short-notice lead (3) applies


# --- R10.2: short notice ---------------------------------------------------------------------------


@pytest.mark.parametrize(("activity", "days"), [(date(2026, 10, 10), 3), (date(2026, 10, 12), 4)])
def test_r10_2_three_or_four_days_with_short_notice_wait_for_consent(activity, days):
    decision = decide(date(2026, 9, 30), activity, short_notice=True)
    assert decision.ok and decision.needs_consent and decision.code is None
    assert decision.working_days == days and "R10.2" in decision.detail


def test_r10_2_short_notice_asked_with_five_days_needs_no_consent():
    decision = decide(date(2026, 9, 30), date(2026, 10, 13), short_notice=True)
    assert decision.ok and not decision.needs_consent


def test_r10_2_two_days_with_short_notice_are_refused_with_the_earliest_date():
    refused = decide(date(2026, 9, 30), date(2026, 10, 9), short_notice=True)  # 09-30, 10-08
    assert not refused.ok and refused.code == "R10.2" and refused.working_days == 2
    assert refused.earliest_allowed_date == date(2026, 10, 10) and "2026-10-10" in refused.detail


def test_r10_1_three_days_without_short_notice_are_refused():
    refused = decide(date(2026, 9, 30), date(2026, 10, 10))
    assert refused.code == "R10.1" and refused.working_days == 3 and not refused.needs_consent
    assert refused.earliest_allowed_date == date(2026, 10, 13)


# --- R44.1, too far ahead ----------------------------------------------------------------------------


def test_r44_1_activity_before_the_measures_are_in_force_is_refused():
    refused = decide(date(2024, 11, 1), date(2024, 11, 29))
    assert refused.code == "R44.1" and not refused.ok and refused.working_days is None
    assert refused.earliest_allowed_date == IN_FORCE and "2024-12-01" in refused.detail
    assert decide(date(2024, 11, 1), IN_FORCE).ok


def test_r10_1_activity_absurdly_far_ahead_is_refused():
    notified = date(2026, 3, 2)
    refused = decide(notified, notified + timedelta(days=DEFAULT_MAX_DAYS_AHEAD + 1))
    assert refused.code == "activity_too_far" and refused.earliest_allowed_date is None
    assert decide(notified, notified + timedelta(days=DEFAULT_MAX_DAYS_AHEAD)).ok
    assert decide(notified, date(2026, 4, 2), max_days_ahead=30).code == "activity_too_far"


# --- the calendar: provisional years, the ends of date's range -------------------------------------


def test_r10_1_a_2027_count_is_provisional_and_says_so():
    assert CAL.year_status(2027) == "provisional"
    ok = decide(date(2026, 12, 28), date(2027, 1, 6))
    assert ok.ok and ok.provisional and "临时" in ok.detail
    assert lead_days(CAL, date(2026, 12, 28), date(2027, 1, 6)).provisional_years == (2027,)
    assert not decide(date(2026, 12, 14), date(2026, 12, 31)).provisional


def test_r10_1_a_refusal_whose_earliest_date_is_in_2027_is_provisional():
    # Mon 12-28 1, 12-29 2, 12-30 3, 12-31 4, 2027-01-01 off (provisional: 元旦), Mon 01-04 5
    refused = decide(date(2026, 12, 28), date(2026, 12, 30))
    assert refused.code == "R10.1" and refused.earliest_allowed_date == date(2027, 1, 5)
    assert refused.provisional and "临时" in refused.detail
    assert earliest_activity_date(CAL, date(2026, 12, 28), NORMAL_LEAD).provisional_years == (2027,)


EDGES = [date.min, date.min + ONE, date(1, 1, 9), date(2026, 3, 2), date.max - 10 * ONE, date.max - ONE, date.max]


@pytest.mark.parametrize("short_notice", [False, True])
@pytest.mark.parametrize("notified", EDGES)
@pytest.mark.parametrize("activity", EDGES)
def test_r10_1_dates_at_the_ends_of_the_range_never_raise(notified, activity, short_notice):
    for ahead in (DEFAULT_MAX_DAYS_AHEAD, 400):
        decision = decide(notified, activity, short_notice, max_days_ahead=ahead)
        assert isinstance(decision, LeadTimeDecision) and decision.detail
        if not decision.ok:
            assert decision.code in {"R44.1", "R10.1", "R10.2", "activity_too_far"}


def test_r10_1_no_earliest_date_past_9999_12_31():
    refused = decide(date.max - ONE, date.max)
    assert not refused.ok and refused.earliest_allowed_date is None and "9999-12-31" in refused.detail
    with pytest.raises(ValueError):
        earliest_activity_date(CAL, date.max - ONE, NORMAL_LEAD)
    assert lead_days(CAL, date.max - 10 * ONE, date.max).value == counted(date.max - 10 * ONE, date.max)
    assert lead_days(CAL, date.min, date.min + 10 * ONE).value == counted(date.min, date.min + 10 * ONE)


@settings(max_examples=200, deadline=None)
@given(st.dates(), st.dates(), st.booleans())
def test_r10_1_any_pair_of_dates_gets_an_answer(notified, activity, short_notice):
    decision = decide(notified, activity, short_notice)
    assert decision.ok == (decision.code is None)


def test_r10_1_datetimes_are_refused():
    with pytest.raises(TypeError):
        lead_days(CAL, datetime(2026, 3, 2, 9), date(2026, 3, 9))
    with pytest.raises(TypeError):
        decide(date(2026, 3, 2), datetime(2026, 3, 9, 9))
    with pytest.raises(ValueError):
        earliest_activity_date(CAL, date(2026, 3, 2), 0)


# --- property: everything agrees with counting one day at a time -----------------------------------

dates_2024_2028 = st.dates(min_value=date(2024, 1, 1), max_value=date(2028, 12, 31))


@settings(max_examples=300, deadline=None)
@given(dates_2024_2028, dates_2024_2028)
def test_r10_1_lead_days_counts_working_days_in_the_half_open_range(notified, activity):
    answer = lead_days(CAL, notified, activity)
    assert answer.value == counted(notified, activity)
    last = activity - ONE
    assert answer.provisional == (activity > notified and last.year >= 2027)


@settings(max_examples=300, deadline=None)
@given(dates_2024_2028, st.integers(min_value=1, max_value=30))
def test_r10_1_earliest_activity_date_is_the_first_date_reaching_the_lead(notified, lead):
    earliest = earliest_activity_date(CAL, notified, lead).value
    assert counted(notified, earliest) >= lead
    assert counted(notified, earliest - ONE) < lead


@settings(max_examples=300, deadline=None)
@given(dates_2024_2028, dates_2024_2028, st.booleans(), st.sampled_from([30, 400, DEFAULT_MAX_DAYS_AHEAD, 3000]))
def test_r10_1_r10_2_r44_1_decisions_agree_with_the_counts(notified, activity, short_notice, ahead):
    decision = decide(notified, activity, short_notice, max_days_ahead=ahead)
    lead = SHORT_NOTICE_LEAD if short_notice else NORMAL_LEAD
    days = counted(notified, activity)
    if activity < IN_FORCE:
        assert decision.code == "R44.1"
    elif activity <= notified:
        assert decision.code == "R10.1" and decision.working_days == 0
    elif (activity - notified).days > ahead:
        assert decision.code == "activity_too_far" and decision.earliest_allowed_date is None
    else:
        assert decision.working_days == days
        assert decision.ok == (days >= NORMAL_LEAD or (short_notice and days >= SHORT_NOTICE_LEAD))
        assert decision.needs_consent == (short_notice and SHORT_NOTICE_LEAD <= days < NORMAL_LEAD)
        if not decision.ok:
            assert decision.code == ("R10.2" if short_notice else "R10.1")
    if decision.ok:
        assert decision.code is None and decision.earliest_allowed_date is None
    elif decision.code != "activity_too_far":
        allowed = decision.earliest_allowed_date
        expected = max(earliest_activity_date(CAL, notified, lead).value, IN_FORCE)
        if (expected - notified).days > ahead:
            assert allowed is None
        else:
            assert allowed == expected and allowed.isoformat() in decision.detail
            assert counted(notified, allowed) >= lead and allowed >= IN_FORCE
            assert decide(notified, allowed, short_notice, max_days_ahead=ahead).ok
    if decision.provisional:
        assert "临时" in decision.detail


# --- the Shanghai date and the activity moments clients give ----------------------------------------


def test_r10_1_the_notification_date_is_the_shanghai_date():
    assert local_date(datetime(2026, 3, 1, 17, 30, tzinfo=UTC)) == date(2026, 3, 2)  # 01:30 in Shanghai
    assert local_date(datetime(2026, 3, 2, 9, tzinfo=timezone(timedelta(hours=8)))) == date(2026, 3, 2)
    with pytest.raises(ValueError):
        local_date(datetime(2026, 3, 2, 9))  # naive
    for extreme in (datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=timezone(timedelta(hours=1)))):
        with pytest.raises(ValueError):
            local_date(extreme)


class Activity(BaseModel):
    starts_at: ActivityMoment


def test_r10_1_activity_moment_accepts_2026():
    moment = Activity(starts_at="2026-10-13T09:30:00+08:00").starts_at
    assert local_date(moment) == date(2026, 10, 13)
    assert Activity(starts_at="2000-01-01T00:00:00Z").starts_at.year == 2000
    assert Activity(starts_at="2100-12-31T23:59:59Z").starts_at.year == 2100


@pytest.mark.parametrize("value", [
    "9999-12-31T23:00:00-12:00", "0001-01-01T00:00:00+14:00", "2101-01-01T00:00:00Z",
    "2000-01-01T07:59:59+08:00", "2026-10-13T09:30:00", datetime(2026, 10, 13, 9, 30),
])
def test_r44_1_activity_moment_refuses_naive_and_out_of_range_times(value):
    with pytest.raises(ValidationError):
        Activity(starts_at=value)


def test_r44_1_activity_moment_explains_in_chinese():
    with pytest.raises(ValidationError) as refused:
        Activity(starts_at="9999-12-31T23:00:00-12:00")
    assert "2000-01-01" in str(refused.value) and "活动时间" in str(refused.value)
