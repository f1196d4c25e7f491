"""Chinese working days: library years, bureau-loaded years, the provisional fallback, conventions."""

from datetime import date, datetime, timedelta

import chinese_calendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.calendar import (
    PROVISIONAL_NOTE,
    CalendarAnswer,
    WorkingCalendar,
    YearTable,
    add_working_days,
    default_calendar,
    is_working_day,
    working_days_between,
)


def days(first: date, last: date) -> list[date]:
    """Every date from first to last inclusive."""
    return [first + timedelta(i) for i in range((last - first).days + 1)]


# A made-up 2027 notice (not the real one, which is not published yet): 春节 Feb 6–12 off,
# Saturday Feb 13 worked; 元旦 Jan 1 off.
NOTICE_2027 = YearTable(
    year=2027,
    holidays=frozenset([date(2027, 1, 1), *days(date(2027, 2, 6), date(2027, 2, 12))]),
    makeup_workdays=frozenset([date(2027, 2, 13)]),
    source="国务院办公厅通知 国办发明电〔2026〕X号",
)


# --- Known years (chinese_calendar) -------------------------------------------------------------


@pytest.mark.parametrize("d", days(date(2025, 1, 28), date(2025, 2, 4)))
def test_2025_spring_festival_is_off(d: date) -> None:
    assert is_working_day(d) == CalendarAnswer(False)


@pytest.mark.parametrize("d", days(date(2025, 10, 1), date(2025, 10, 8)))
def test_2025_national_day_and_mid_autumn_are_off(d: date) -> None:
    assert is_working_day(d) == CalendarAnswer(False)


@pytest.mark.parametrize("d", [date(2025, 1, 26), date(2025, 2, 8), date(2025, 9, 28), date(2025, 10, 11)])
def test_2025_makeup_weekend_days_are_working(d: date) -> None:
    assert d.weekday() >= 5
    assert is_working_day(d) == CalendarAnswer(True)


def test_2025_ordinary_days() -> None:
    assert is_working_day(date(2025, 1, 27)).value is True  # Monday before 春节
    assert is_working_day(date(2025, 2, 5)).value is True  # first day back
    assert is_working_day(date(2025, 10, 9)).value is True  # Thursday after 国庆
    assert is_working_day(date(2025, 3, 8)).value is False  # ordinary Saturday


# 2026 facts as chinese_calendar 1.11.0 has them (matching 国办发明电〔2025〕7号):
# 元旦 Jan 1–3 off, Sun Jan 4 worked; 春节 Feb 15–23 off, Sat Feb 14 and Sat Feb 28 worked;
# 劳动节 May 1–5 off, Sat May 9 worked; 国庆 Oct 1–7 off, Sun Sep 20 and Sat Oct 10 worked.
@pytest.mark.parametrize(
    "d",
    [
        *days(date(2026, 1, 1), date(2026, 1, 3)),
        *days(date(2026, 2, 15), date(2026, 2, 23)),
        *days(date(2026, 5, 1), date(2026, 5, 5)),
        *days(date(2026, 10, 1), date(2026, 10, 7)),
    ],
)
def test_2026_holidays_are_off(d: date) -> None:
    assert is_working_day(d) == CalendarAnswer(False)


@pytest.mark.parametrize(
    "d",
    [
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ],
)
def test_2026_makeup_weekend_days_are_working(d: date) -> None:
    assert d.weekday() >= 5
    assert is_working_day(d) == CalendarAnswer(True)


def test_2026_facts_agree_with_the_library() -> None:
    assert chinese_calendar.get_holiday_detail(date(2026, 2, 17)) == (True, "Spring Festival")
    assert chinese_calendar.get_holiday_detail(date(2026, 10, 10)) == (False, "National Day")
    assert chinese_calendar.is_workday(date(2026, 2, 28)) is True


def test_every_library_year_matches_the_library_day_by_day() -> None:
    calendar = WorkingCalendar()
    for d in days(date(2004, 1, 1), date(2026, 12, 31)):
        assert calendar.is_working_day(d) == CalendarAnswer(chinese_calendar.is_workday(d)), d


# --- Unknown years: provisional fallback ---------------------------------------------------------


def test_2027_is_answered_provisionally_without_raising() -> None:
    new_year = is_working_day(date(2027, 1, 1))
    assert new_year.value is False
    assert new_year.provisional_years == (2027,)
    assert new_year.provisional
    assert new_year.note == PROVISIONAL_NOTE

    monday = is_working_day(date(2027, 1, 4))
    assert monday.value is True
    assert monday.provisional_years == (2027,)


def test_fallback_has_only_weekends_and_fixed_date_holidays() -> None:
    off = {d for d in days(date(2027, 1, 1), date(2027, 12, 31)) if not is_working_day(d).value}
    weekday_off = sorted(d for d in off if d.weekday() < 5)
    fixed = [(1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3)]
    assert weekday_off == sorted(date(2027, m, d) for m, d in fixed if date(2027, m, d).weekday() < 5)
    assert {d for d in off if d.weekday() >= 5} == {
        d for d in days(date(2027, 1, 1), date(2027, 12, 31)) if d.weekday() >= 5
    }


def test_known_year_answers_are_not_provisional() -> None:
    answer = is_working_day(date(2026, 12, 31))
    assert not answer.provisional
    assert answer.note is None


def test_span_crossing_into_2027_is_provisional() -> None:
    span = working_days_between(date(2026, 12, 25), date(2027, 1, 8))
    # Dec 28–31 (Mon–Thu) in 2026, then Jan 4–8 in 2027 (Jan 1 off by fallback).
    assert span == CalendarAnswer(9, (2027,))
    later = add_working_days(date(2026, 12, 30), 3)
    assert later == CalendarAnswer(date(2027, 1, 5), (2027,))


def test_span_within_2026_is_not_provisional() -> None:
    assert not working_days_between(date(2026, 1, 1), date(2026, 12, 31)).provisional
    assert not add_working_days(date(2026, 12, 29), 2).provisional  # Dec 30, Dec 31


def test_multi_year_span_lists_each_fallback_year_once() -> None:
    answer = working_days_between(date(2025, 6, 1), date(2029, 6, 1))
    assert answer.provisional_years == (2027, 2028, 2029)
    back = working_days_between(date(2029, 6, 1), date(2025, 6, 1))
    assert back.provisional_years == (2027, 2028, 2029)


# --- Bureau-loaded years -------------------------------------------------------------------------


def test_loaded_2027_table_makes_answers_official() -> None:
    calendar = WorkingCalendar()
    assert calendar.year_status(2027) == "provisional"
    calendar.load_year(NOTICE_2027)
    assert calendar.year_status(2027) == "loaded"

    assert calendar.is_working_day(date(2027, 2, 8)) == CalendarAnswer(False)  # Monday, 春节
    assert calendar.is_working_day(date(2027, 2, 13)) == CalendarAnswer(True)  # make-up Saturday
    assert calendar.is_working_day(date(2027, 2, 14)) == CalendarAnswer(False)  # plain Sunday
    span = calendar.working_days_between(date(2026, 12, 25), date(2027, 1, 8))
    assert span == CalendarAnswer(9)
    # Fri Feb 5 + 1 skips the 春节 week and lands on the make-up Saturday.
    assert calendar.add_working_days(date(2027, 2, 5), 1) == CalendarAnswer(date(2027, 2, 13))


def test_loaded_table_replaces_the_library_and_earlier_loads() -> None:
    calendar = WorkingCalendar()
    assert calendar.year_status(2026) == "library"
    ordinary_monday = date(2026, 3, 2)
    assert calendar.is_working_day(ordinary_monday).value is True  # cached from the library
    calendar.load_year(YearTable(2026, frozenset([ordinary_monday]), frozenset(), "test notice"))
    assert calendar.year_status(2026) == "loaded"
    assert calendar.is_working_day(ordinary_monday) == CalendarAnswer(False)
    assert calendar.is_working_day(date(2026, 2, 17)).value is True  # library data is gone
    calendar.load_year(YearTable(2026, frozenset(), frozenset(), "corrected notice"))
    assert calendar.is_working_day(ordinary_monday).value is True


def test_loading_into_another_calendar_leaves_the_default_alone() -> None:
    WorkingCalendar().load_year(NOTICE_2027)
    assert default_calendar.year_status(2027) == "provisional"


def test_year_status_for_library_years() -> None:
    assert default_calendar.year_status(2004) == "library"
    assert default_calendar.year_status(2026) == "library"
    assert default_calendar.year_status(2003) == "provisional"


# --- add_working_days / working_days_between conventions --------------------------------------


def test_add_working_days_across_spring_festival_2025() -> None:
    # Mon Jan 27 2025, the last working day before 春节; Sun Jan 26 was a make-up day.
    assert add_working_days(date(2025, 1, 27), 1) == CalendarAnswer(date(2025, 2, 5))
    assert add_working_days(date(2025, 1, 27), 4) == CalendarAnswer(date(2025, 2, 8))  # make-up Sat
    assert add_working_days(date(2025, 1, 27), 5) == CalendarAnswer(date(2025, 2, 10))
    assert add_working_days(date(2025, 2, 5), -1) == CalendarAnswer(date(2025, 1, 27))
    assert add_working_days(date(2025, 2, 5), -2) == CalendarAnswer(date(2025, 1, 26))  # make-up Sun


def test_add_working_days_across_makeup_saturday_2025_national_day() -> None:
    # Thu Oct 9, Fri Oct 10, then the make-up Saturday Oct 11, then Mon Oct 13.
    assert add_working_days(date(2025, 10, 9), 2) == CalendarAnswer(date(2025, 10, 11))
    assert add_working_days(date(2025, 10, 9), 3) == CalendarAnswer(date(2025, 10, 13))
    # Sat Sep 27 (off) + 1 is the make-up Sunday Sep 28; + 2 is Mon Sep 29.
    assert add_working_days(date(2025, 9, 27), 1) == CalendarAnswer(date(2025, 9, 28))
    assert add_working_days(date(2025, 9, 27), 2) == CalendarAnswer(date(2025, 9, 29))


def test_add_zero_working_days_rolls_a_day_off_forward() -> None:
    assert add_working_days(date(2025, 1, 27), 0) == CalendarAnswer(date(2025, 1, 27))
    assert add_working_days(date(2025, 10, 1), 0) == CalendarAnswer(date(2025, 10, 9))
    assert add_working_days(date(2025, 12, 31), 0) == CalendarAnswer(date(2025, 12, 31))


def test_add_working_days_backward_across_a_year() -> None:
    # Mon Jan 5 2026: back over 元旦 (Jan 1–3 off) and the make-up Sunday Jan 4 (not "before" it).
    assert add_working_days(date(2026, 1, 5), -1) == CalendarAnswer(date(2026, 1, 4))
    assert add_working_days(date(2026, 1, 5), -2) == CalendarAnswer(date(2025, 12, 31))
    # Jan 1–3 2027 were examined (and could be make-up days in the real notice): provisional.
    assert add_working_days(date(2027, 1, 4), -1) == CalendarAnswer(date(2026, 12, 31), (2027,))
    # From Jan 1 2027 only Dec 31 2026 is examined: a known day, so not provisional.
    assert add_working_days(date(2027, 1, 1), -1) == CalendarAnswer(date(2026, 12, 31))


def test_working_days_between_conventions() -> None:
    monday, next_monday = date(2025, 3, 3), date(2025, 3, 10)
    assert working_days_between(monday, next_monday) == CalendarAnswer(5)  # Tue–Fri + Mon
    assert working_days_between(next_monday, monday) == CalendarAnswer(-5)  # Mon + Tue–Fri
    assert working_days_between(monday, monday) == CalendarAnswer(0)
    saturday, sunday = date(2025, 3, 8), date(2025, 3, 9)
    assert working_days_between(saturday, sunday) == CalendarAnswer(0)
    # Not antisymmetric on days off: (Sat, Mon] holds Monday, [Sat, Mon) holds no working day.
    assert working_days_between(saturday, next_monday) == CalendarAnswer(1)
    assert working_days_between(next_monday, saturday) == CalendarAnswer(0)


def test_lead_time_of_five_working_days_over_national_day() -> None:
    # Request on Fri Sep 26 2025: Sun Sep 28 (make-up), Sep 29, Sep 30, Oct 9, Oct 10 are the five.
    request = date(2025, 9, 26)
    assert add_working_days(request, 5).value == date(2025, 10, 10)
    assert working_days_between(request, date(2025, 10, 10)).value == 5
    assert working_days_between(request, date(2025, 10, 9)).value == 4
    assert working_days_between(request, date(2025, 10, 11)).value == 6  # make-up Saturday


def test_long_span_counts_match_a_day_by_day_count() -> None:
    start, end = date(2023, 7, 15), date(2028, 2, 3)
    expected = sum(is_working_day(d).value for d in days(start + timedelta(1), end))
    assert working_days_between(start, end).value == expected
    assert working_days_between(end, start).value == -sum(
        is_working_day(d).value for d in days(start, end - timedelta(1))
    )


dates_2024_2028 = st.dates(min_value=date(2024, 1, 1), max_value=date(2028, 12, 31))


@given(dates_2024_2028, st.integers(min_value=0, max_value=40))
def test_add_and_between_are_consistent(d: date, n: int) -> None:
    forward = add_working_days(d, n).value
    assert is_working_day(forward).value
    if n == 0:
        assert forward >= d
        assert all(not is_working_day(x).value for x in days(d, forward - timedelta(1)))
        if is_working_day(d).value:
            assert forward == d
    else:
        assert working_days_between(d, forward).value == n
    if n:
        backward = add_working_days(d, -n).value
        assert is_working_day(backward).value
        assert working_days_between(d, backward).value == -n


@given(dates_2024_2028, dates_2024_2028)
def test_between_matches_counting_day_by_day(start: date, end: date) -> None:
    if end >= start:
        expected = sum(is_working_day(x).value for x in days(start, end)[1:])
    else:
        expected = -sum(is_working_day(x).value for x in days(end, start)[:-1])
    assert working_days_between(start, end).value == expected


@given(dates_2024_2028, st.integers(min_value=-40, max_value=40))
def test_provisional_exactly_when_a_fallback_year_is_involved(d: date, n: int) -> None:
    result = add_working_days(d, n)
    lo, hi = sorted((d, result.value))
    assert set(result.provisional_years) <= {y for y in range(lo.year, hi.year + 1) if y >= 2027}
    if result.value.year >= 2027:
        assert result.value.year in result.provisional_years


def test_datetimes_are_refused() -> None:
    with pytest.raises(TypeError):
        is_working_day(datetime(2025, 1, 1, 9, 0))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        add_working_days("2025-01-01", 1)  # type: ignore[arg-type]


# --- YearTable validation -----------------------------------------------------------------------


def test_year_table_accepts_lists_and_normalises_to_frozensets() -> None:
    table = YearTable(2027, [date(2027, 1, 1)], [date(2027, 2, 13)], "notice")  # type: ignore[arg-type]
    assert table.holidays == frozenset([date(2027, 1, 1)])
    assert isinstance(table.makeup_workdays, frozenset)
    assert table == YearTable(2027, frozenset([date(2027, 1, 1)]), frozenset([date(2027, 2, 13)]), "notice")


def test_year_table_rejects_a_date_of_another_year() -> None:
    with pytest.raises(ValueError, match=r"2026-12-31 is in year 2026"):
        YearTable(2027, frozenset([date(2026, 12, 31)]), frozenset(), "notice")
    with pytest.raises(ValueError, match=r"make-up workday 2028-01-01 is in year 2028"):
        YearTable(2027, frozenset(), frozenset([date(2028, 1, 1)]), "notice")


def test_year_table_rejects_a_weekday_makeup_day() -> None:
    with pytest.raises(ValueError, match=r"2027-02-10 is a Wednesday, not a Saturday or Sunday"):
        YearTable(2027, frozenset(), frozenset([date(2027, 2, 10)]), "notice")


def test_year_table_rejects_a_day_both_off_and_on() -> None:
    with pytest.raises(ValueError, match=r"both holiday and make-up workday: 2027-02-13"):
        YearTable(2027, frozenset([date(2027, 2, 13)]), frozenset([date(2027, 2, 13)]), "notice")


def test_year_table_rejects_datetimes_and_empty_source() -> None:
    with pytest.raises(ValueError, match=r"not a datetime\.date"):
        YearTable(2027, frozenset([datetime(2027, 1, 1)]), frozenset(), "notice")
    with pytest.raises(ValueError, match="source"):
        YearTable(2027, frozenset(), frozenset(), " ")
