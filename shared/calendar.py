"""Chinese working days (RULES "Calendar"): weekends off, statutory holidays off, 调休 make-up days on.

Where a year's calendar comes from, in order of precedence:
1. a table the bureau loaded from the State Council's notice (`WorkingCalendar.load_year`);
2. the maintained `chinese_calendar` library (it knows 2004 up to its last release's year);
3. otherwise a provisional fallback: weekends plus the fixed-date statutory holidays.
Every answer that used a fallback year lists it in `CalendarAnswer.provisional_years`, so callers
can show `calendar: provisional`; an unknown year never raises.

Conventions (all dates are `datetime.date`; `datetime.datetime` is refused, as its time of day and
time zone would silently decide the day):
- `add_working_days(d, n)`, n > 0: the n-th working day strictly after d (d itself never counts);
  n < 0: the |n|-th working day strictly before d; n == 0: d if d is a working day, else the first
  working day after d (a deadline falling on a day off moves to the next working day).
- `working_days_between(start, end)`: the working days passed on the way from start to end,
  start excluded and end included, signed by direction: if end > start, the count of working
  days in (start, end]; if end < start, minus the count in [end, start); 0 if end == start.
  Hence `working_days_between(d, add_working_days(d, n).value).value == n` for every n != 0,
  and for n == 0 when d is a working day.
- Lead time (R10.1, "notify ≥ 5 working days before the activity"):
  `working_days_between(request_date, activity_date).value >= 5` holds exactly when
  `activity_date >= add_working_days(request_date, 5).value`, i.e. at least five working days
  follow the request day up to and including the activity day (the request day is not counted,
  as in Chinese statutory time limits: 期间开始的日不计算在内).

The core is pure; the persistence helpers at the end store bureau-loaded years in PostgreSQL.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Generic, Literal, TypeVar

import chinese_calendar
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, func, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")
YearStatus = Literal["loaded", "library", "provisional"]

PROVISIONAL_NOTE = "calendar: provisional"
LIBRARY_SOURCE = f"chinese-calendar {chinese_calendar.__version__}"
FALLBACK_SOURCE = "provisional: weekends + fixed-date holidays (全国年节及纪念日放假办法, 2024 revision)"

# Fixed-date statutory days off (2024 revision of 全国年节及纪念日放假办法): 元旦 Jan 1,
# 劳动节 May 1–2, 国庆节 Oct 1–3. The lunar and solar-term holidays (春节, 清明, 端午, 中秋)
# and the 调休 arrangements are only known from each year's notice, hence "provisional".
FIXED_DATE_HOLIDAYS: tuple[tuple[int, int], ...] = ((1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3))


@dataclass(frozen=True)
class CalendarAnswer(Generic[T]):
    """A calendar result plus the years (sorted) that were answered by the provisional fallback."""

    value: T
    provisional_years: tuple[int, ...] = ()

    @property
    def provisional(self) -> bool:
        """True when any fallback year contributed to this answer."""
        return bool(self.provisional_years)

    @property
    def note(self) -> str | None:
        """`calendar: provisional` for answers that used a fallback year, else None."""
        return PROVISIONAL_NOTE if self.provisional_years else None


@dataclass(frozen=True)
class YearTable:
    """One year's official arrangement; `holidays` are all days off the notice lists (weekends allowed).

    `holidays` may include the weekend days inside a holiday period (as the notice's "放假调休，共N天"
    ranges do); they change nothing but keep the table a faithful copy of the notice.
    `makeup_workdays` are the Saturdays/Sundays that become working days (调休上班).
    Any iterable of dates is accepted and stored as a frozenset.
    """

    year: int
    holidays: frozenset[date]
    makeup_workdays: frozenset[date]
    source: str

    def __post_init__(self) -> None:
        # Normalise so tables built from lists (e.g. loaded from JSON) compare and hash equal.
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "makeup_workdays", frozenset(self.makeup_workdays))
        if not isinstance(self.year, int) or not 1 <= self.year <= 9999:
            raise ValueError(f"year must be an int between 1 and 9999, got {self.year!r}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValueError(f"year {self.year}: source must name the notice or library it came from")
        for kind, days in (("holiday", self.holidays), ("make-up workday", self.makeup_workdays)):
            for d in sorted(days, key=repr):
                if isinstance(d, datetime) or not isinstance(d, date):
                    raise ValueError(f"year {self.year}: {kind} {d!r} is not a datetime.date")
                if d.year != self.year:
                    raise ValueError(f"year {self.year}: {kind} {d.isoformat()} is in year {d.year}")
        for d in sorted(self.makeup_workdays):
            if d.weekday() < 5:
                raise ValueError(
                    f"year {self.year}: make-up workday {d.isoformat()} is a {d:%A}, not a Saturday or Sunday"
                )
        both = sorted(self.holidays & self.makeup_workdays)
        if both:
            listed = ", ".join(d.isoformat() for d in both)
            raise ValueError(f"year {self.year}: dates both holiday and make-up workday: {listed}")


@dataclass(frozen=True)
class _Year:
    """Working days of one year as sorted ordinals, ready for bisect."""

    working: tuple[int, ...]
    provisional: bool


def _check_date(d: object) -> date:
    """Refuse datetimes and non-dates: a datetime never equals the date it falls on."""
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"expected datetime.date, got {type(d).__name__}")
    return d


def _library_knows(year: int) -> bool:
    """Whether chinese_calendar has the official arrangement for `year`."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


def _library_table(year: int) -> YearTable:
    """The library's data for a year it knows, as a YearTable."""
    return YearTable(
        year=year,
        holidays=frozenset(d for d in chinese_calendar.holidays if d.year == year),
        makeup_workdays=frozenset(d for d in chinese_calendar.workdays if d.year == year),
        source=LIBRARY_SOURCE,
    )


def _fallback_table(year: int) -> YearTable:
    """Weekends plus fixed-date holidays, for years no notice or library covers yet."""
    return YearTable(
        year=year,
        holidays=frozenset(date(year, m, d) for m, d in FIXED_DATE_HOLIDAYS),
        makeup_workdays=frozenset(),
        source=FALLBACK_SOURCE,
    )


def _working_ordinals(table: YearTable) -> tuple[int, ...]:
    """Sorted ordinals of the year's working days."""
    off = {d.toordinal() for d in table.holidays}
    on = {d.toordinal() for d in table.makeup_workdays}
    first, last = date(table.year, 1, 1).toordinal(), date(table.year, 12, 31).toordinal()
    # date.fromordinal(1) is a Monday, so (ordinal - 1) % 7 is the weekday (0 = Monday).
    return tuple(o for o in range(first, last + 1) if o in on or ((o - 1) % 7 < 5 and o not in off))


class WorkingCalendar:
    """Chinese working days: bureau-loaded years first, then chinese_calendar, then a fallback."""

    def __init__(self) -> None:
        self._loaded: dict[int, YearTable] = {}
        self._years: dict[int, _Year] = {}

    def load_year(self, table: YearTable) -> None:
        """Use `table` for its year from now on, replacing any earlier table or library data."""
        self._loaded[table.year] = table
        self._years.pop(table.year, None)

    def year_status(self, year: int) -> YearStatus:
        """Where `year`'s calendar comes from: "loaded", "library" or "provisional"."""
        if year in self._loaded:
            return "loaded"
        return "library" if _library_knows(year) else "provisional"

    def is_working_day(self, d: date) -> CalendarAnswer[bool]:
        """Whether `d` is a working day."""
        d = _check_date(d)
        y = self._year(d.year)
        o = d.toordinal()
        i = bisect_left(y.working, o)
        is_working = i < len(y.working) and y.working[i] == o
        return CalendarAnswer(is_working, (d.year,) if y.provisional else ())

    def add_working_days(self, d: date, n: int) -> CalendarAnswer[date]:
        """The n-th working day after d (n > 0), before d (n < 0), or d rolled forward (n == 0)."""
        d = _check_date(d)
        o = d.toordinal()
        year = d.year
        if n >= 0:
            working = self._year(year).working
            # n == 0 counts d itself; n > 0 starts strictly after d.
            i = bisect_left(working, o) if n == 0 else bisect_right(working, o)
            k = max(n, 1)  # 1-based rank of the wanted day among working days from index i on
            while i + k > len(working):
                k -= len(working) - i
                year += 1
                working = self._year(year).working
                i = 0
            found = working[i + k - 1]
            first = o if n == 0 else o + 1
            return self._answer(date.fromordinal(found), first, found)
        working = self._year(year).working
        i = bisect_left(working, o)  # working days strictly before d in this year
        k = -n
        while i < k:
            k -= i
            year -= 1
            working = self._year(year).working
            i = len(working)
        found = working[i - k]
        return self._answer(date.fromordinal(found), found, o - 1)

    def working_days_between(self, start: date, end: date) -> CalendarAnswer[int]:
        """Working days in (start, end] if end > start, minus those in [end, start) if end < start.

        For lead times: `working_days_between(request_date, activity_date).value >= 5` means the
        activity is on or after the fifth working day following the request day.
        """
        start, end = _check_date(start), _check_date(end)
        s, e = start.toordinal(), end.toordinal()
        if e > s:
            return self._answer(self._count(s + 1, e), s + 1, e)
        if e < s:
            return self._answer(-self._count(e, s - 1), e, s - 1)
        return CalendarAnswer(0)

    def _count(self, lo: int, hi: int) -> int:
        """Number of working days with ordinals in [lo, hi] (lo <= hi); loops over years, not days."""
        lo_year, hi_year = date.fromordinal(lo).year, date.fromordinal(hi).year
        first = self._year(lo_year).working
        if lo_year == hi_year:
            return bisect_right(first, hi) - bisect_left(first, lo)
        total = len(first) - bisect_left(first, lo)
        for year in range(lo_year + 1, hi_year):
            total += len(self._year(year).working)
        return total + bisect_right(self._year(hi_year).working, hi)

    def _answer(self, value: T, lo: int, hi: int) -> CalendarAnswer[T]:
        """Wrap `value`, marking the fallback years among the days in [lo, hi] it depended on."""
        years = range(date.fromordinal(lo).year, date.fromordinal(hi).year + 1)
        return CalendarAnswer(value, tuple(y for y in years if self._year(y).provisional))

    def _year(self, year: int) -> _Year:
        """The cached working days of `year`, built on first use."""
        cached = self._years.get(year)
        if cached is not None:
            return cached
        if year in self._loaded:
            table, provisional = self._loaded[year], False
        elif _library_knows(year):
            table, provisional = _library_table(year), False
        else:
            table, provisional = _fallback_table(year), True
        built = _Year(_working_ordinals(table), provisional)
        self._years[year] = built
        return built


default_calendar = WorkingCalendar()


def is_working_day(d: date) -> CalendarAnswer[bool]:
    """`default_calendar.is_working_day`."""
    return default_calendar.is_working_day(d)


def add_working_days(d: date, n: int) -> CalendarAnswer[date]:
    """`default_calendar.add_working_days`."""
    return default_calendar.add_working_days(d, n)


def working_days_between(start: date, end: date) -> CalendarAnswer[int]:
    """`default_calendar.working_days_between`; see the module docstring for the convention."""
    return default_calendar.working_days_between(start, end)


# --- Persistence: years the bureau loaded from official notices ---------------------------------


def define_calendar_table(metadata: MetaData) -> Table:
    """The `calendar_year` table (one row per bureau-loaded year) in `metadata`."""
    return Table(
        "calendar_year",
        metadata,
        Column("year", Integer, primary_key=True, autoincrement=False),
        Column("holidays", JSONB, nullable=False),  # sorted ISO dates
        Column("makeup_workdays", JSONB, nullable=False),  # sorted ISO dates
        Column("source", Text, nullable=False),
        Column("loaded_by", Text, nullable=False),
        Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


async def save_year(session: AsyncSession, table: Table, year_table: YearTable, *, loaded_by: str) -> None:
    """Insert or replace the stored table of `year_table.year`; the caller commits."""
    values = {
        "year": year_table.year,
        "holidays": [d.isoformat() for d in sorted(year_table.holidays)],
        "makeup_workdays": [d.isoformat() for d in sorted(year_table.makeup_workdays)],
        "source": year_table.source,
        "loaded_by": loaded_by,
    }
    stmt = insert(table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.year],
        set_={
            "holidays": stmt.excluded.holidays,
            "makeup_workdays": stmt.excluded.makeup_workdays,
            "source": stmt.excluded.source,
            "loaded_by": stmt.excluded.loaded_by,
            # The column default only fires on insert; a replacement is a new load.
            "loaded_at": func.now(),
        },
    )
    await session.execute(stmt)


async def load_saved_years(session: AsyncSession, table: Table, calendar: WorkingCalendar) -> int:
    """Load every stored year into `calendar`; returns how many years were loaded."""
    rows = await session.execute(
        select(table.c.year, table.c.holidays, table.c.makeup_workdays, table.c.source).order_by(table.c.year)
    )
    count = 0
    for year, holidays, makeup_workdays, source in rows:
        calendar.load_year(
            YearTable(
                year=year,
                holidays=_parse_dates(holidays),
                makeup_workdays=_parse_dates(makeup_workdays),
                source=source,
            )
        )
        count += 1
    return count


def _parse_dates(values: Iterable[str]) -> frozenset[date]:
    """ISO date strings (as stored in JSONB) to dates."""
    return frozenset(date.fromisoformat(v) for v in values)
