"""Lead time in Chinese working days across holidays and make-up days (R10.1, R10.2), in force date (R44.1)."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from services.selection.requests.rules import check_lead_time, local_date, split_seats
from shared.calendar import WorkingCalendar

CAL = WorkingCalendar()
CST = timezone(timedelta(hours=8))


def at(d: date, hour: int = 9) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=CST)


def decide(request_day: date, activity_day: date, consent: bool = False):
    return check_lead_time(CAL, requested_at=at(request_day), starts_at=at(activity_day), consent=consent)


def test_r10_1_five_working_days_across_national_day_2025_with_makeup_sunday():
    # Fri 2025-09-26: Sun 09-28 (make-up) 1, 09-29 2, 09-30 3, [10-01..08 off], 10-09 4, 10-10 5
    ok = decide(date(2025, 9, 26), date(2025, 10, 10))
    assert ok.ok and ok.working_days == 5 and not ok.provisional
    short = decide(date(2025, 9, 26), date(2025, 10, 9))
    assert not short.ok and short.code == "R10.1" and short.working_days == 4
    assert short.earliest_allowed_date == date(2025, 10, 10)
    assert "2025-10-10" in short.detail


def test_r10_1_make_up_saturday_2025_10_11_counts_as_a_working_day():
    # Tue 2025-09-30: 10-09 1, 10-10 2, Sat 10-11 (make-up) 3, Mon 10-13 4, 10-14 5
    refused = decide(date(2025, 9, 30), date(2025, 10, 13))
    assert refused.code == "R10.1" and refused.earliest_allowed_date == date(2025, 10, 14)
    assert decide(date(2025, 9, 30), date(2025, 10, 14)).ok


def test_r10_2_three_working_days_with_the_bureaus_consent():
    assert decide(date(2025, 9, 30), date(2025, 10, 11), consent=True).ok  # 3 incl. the make-up Saturday
    refused = decide(date(2025, 9, 30), date(2025, 10, 10), consent=True)  # 2 working days
    assert not refused.ok and refused.code == "R10.2"
    assert refused.earliest_allowed_date == date(2025, 10, 11)
    assert not decide(date(2025, 9, 30), date(2025, 10, 10)).ok


def test_r10_1_spring_festival_2026_with_makeup_saturdays():
    # Fri 2026-02-13: Sat 02-14 (make-up) 1, [02-15..23 off], 02-24 2, 02-25 3, 02-26 4, 02-27 5
    assert decide(date(2026, 2, 13), date(2026, 2, 27)).ok
    short = decide(date(2026, 2, 13), date(2026, 2, 26))
    assert short.code == "R10.1" and short.earliest_allowed_date == date(2026, 2, 27)
    # Tue 2026-02-24: 02-25 1, 02-26 2, 02-27 3, Sat 02-28 (make-up) 4, Mon 03-02 5
    assert decide(date(2026, 2, 24), date(2026, 3, 2)).ok
    assert decide(date(2026, 2, 24), date(2026, 2, 28)).earliest_allowed_date == date(2026, 3, 2)
    assert decide(date(2026, 2, 24), date(2026, 2, 27), consent=True).ok


def test_r10_1_request_date_is_the_shanghai_date():
    # 17:30 UTC on 09-25 is already 01:30 on 09-26 in Shanghai
    assert local_date(datetime(2025, 9, 25, 17, 30, tzinfo=UTC)) == date(2025, 9, 26)
    decision = check_lead_time(CAL, requested_at=datetime(2025, 9, 25, 17, 30, tzinfo=UTC),
                               starts_at=at(date(2025, 10, 10)), consent=False)
    assert decision.ok


def test_r44_1_activities_before_2024_12_01_are_refused():
    refused = decide(date(2024, 11, 1), date(2024, 11, 30))
    assert refused.code == "R44.1" and not refused.ok
    assert decide(date(2024, 11, 20), date(2024, 12, 2)).ok


def test_r10_1_provisional_calendar_is_flagged():
    decision = decide(date(2099, 3, 2), date(2099, 3, 20))
    assert decision.provisional and "临时" in decision.detail


@pytest.mark.parametrize(("seats", "local", "expected"), [
    (1, None, (1, 0)), (2, None, (1, 1)), (3, None, (2, 1)), (5, 0, (0, 5)), (3, 9, (3, 0)),
])
def test_r11_1_default_seat_split_is_ceil_half_local(seats, local, expected):
    assert split_seats(seats, local, 0.5) == expected
