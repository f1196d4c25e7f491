"""The server's clock: the one source of every legal timestamp (notified, reported, sent, signed).

A client may state an earlier time only where a rule allows it, as a recorded claim by a named
role; what the server records as "when" comes from here. `now()` is aware UTC, `today()` the
Asia/Shanghai date (the measures count Shanghai days), `local_date(moment)` the Shanghai date of
a moment.

Tests that need a particular day freeze the clock instead of moving every date to a far year:

    with clock.frozen(datetime(2026, 10, 9, 9, 0, tzinfo=clock.SHANGHAI)):
        ...  # every now()/today() in this process answers that moment

The freeze is process-wide and meant for tests only (nothing in the services calls `frozen`);
services read the time of day only through this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

_frozen: datetime | None = None


def now() -> datetime:
    """The current moment, aware, in UTC (or the frozen one)."""
    return _frozen if _frozen is not None else datetime.now(UTC)


def local_date(moment: datetime) -> date:
    """The Asia/Shanghai date of an aware datetime; ValueError (never OverflowError) when it has no
    zone or lies outside the representable range."""
    if not isinstance(moment, datetime):
        raise TypeError(f"expected an aware datetime.datetime, got {type(moment).__name__}")
    if moment.utcoffset() is None:
        raise ValueError("时间缺少时区，无法确定上海日期。")
    try:
        return moment.astimezone(SHANGHAI).date()
    except (OverflowError, ValueError) as exc:
        raise ValueError("时间超出可表示的日期范围（公元1年至9999年）。") from exc


def local_midnight(day: date) -> datetime:
    """The start of a calendar day in Shanghai, as an aware datetime."""
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def local_period(year: int, month: int | None = None) -> tuple[datetime, datetime]:
    """[start, end) of a year, or of one of its months, in Shanghai time (what statistics count by)."""
    if month is None:
        return local_midnight(date(year, 1, 1)), local_midnight(date(year + 1, 1, 1))
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return local_midnight(date(year, month, 1)), local_midnight(following)


def today() -> date:
    """Today's date in Asia/Shanghai (or the frozen moment's)."""
    return local_date(now())


@contextlib.contextmanager
def frozen(moment: datetime) -> Iterator[datetime]:
    """Every now()/today() of this process answers `moment` (aware) until the block ends."""
    global _frozen
    if moment.utcoffset() is None:
        raise ValueError("a frozen moment needs a time zone")
    previous, _frozen = _frozen, moment.astimezone(UTC)
    try:
        yield _frozen
    finally:
        _frozen = previous
