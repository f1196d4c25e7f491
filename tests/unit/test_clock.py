"""shared.clock: the server's clock, frozen in tests instead of moving dates to far years."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from shared import clock


def test_now_is_aware_utc_and_today_is_the_shanghai_date() -> None:
    moment = clock.now()
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 5
    assert clock.today() == moment.astimezone(clock.SHANGHAI).date()


def test_a_frozen_clock_answers_its_moment_and_thaws_after_the_block() -> None:
    # 23:30 UTC on 30 September is already 1 October (National Day) in Shanghai
    with clock.frozen(datetime(2026, 9, 30, 23, 30, tzinfo=UTC)) as frozen:
        assert clock.now() == frozen == datetime(2026, 9, 30, 23, 30, tzinfo=UTC)
        assert clock.today() == date(2026, 10, 1)
        with clock.frozen(datetime(2026, 10, 9, 9, 0, tzinfo=clock.SHANGHAI)):
            assert clock.today() == date(2026, 10, 9)
        assert clock.today() == date(2026, 10, 1)
    assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 5  # thawed


def test_local_date_refuses_naive_and_out_of_range_moments() -> None:
    with pytest.raises(ValueError):
        clock.local_date(datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        clock.local_date(datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-12))))
    with pytest.raises(ValueError):
        with clock.frozen(datetime(2026, 1, 1)):
            pass


def test_local_period_of_a_year_and_of_a_month_in_shanghai_time():
    start, end = clock.local_period(2026)
    assert (start.isoformat(), end.isoformat()) == ("2026-01-01T00:00:00+08:00", "2027-01-01T00:00:00+08:00")
    start, end = clock.local_period(2026, 12)  # December ends at the next year's first midnight
    assert (start.isoformat(), end.isoformat()) == ("2026-12-01T00:00:00+08:00", "2027-01-01T00:00:00+08:00")
    assert clock.local_period(2026, 2)[1] == clock.local_midnight(date(2026, 3, 1))
