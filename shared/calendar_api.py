"""Calendar endpoints every service has: working-day answers, and the bureau loading a new year's notice.

The bureau loads a year once, on any service: that service stores it, audits it and publishes
`CalendarYearPublished` (outbox, same transaction); every service that consumes events applies it
(`year_published_handler`), so the five services count working days alike. A service also reloads
its stored years every few minutes (shared.app), which is how its other replicas catch up.
"""

from datetime import date, datetime
from enum import IntEnum
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from pydantic import BaseModel, Field

from shared import audit
from shared.auth import CurrentPrincipal, Principal, Role, require
from shared.calendar import YearStatus, YearTable, save_year
from shared.clock import SHANGHAI
from shared.errors import Unprocessable
from shared.events.contracts import CalendarYearPublished
from shared.lead_time import NORMAL_LEAD, SHORT_NOTICE_LEAD, earliest_activity_date

router = APIRouter(prefix="/calendar", tags=["calendar 工作日历"])


class YearIn(BaseModel):
    """A year as published by the State Council's notice (国务院办公厅关于…部分节假日安排的通知)."""

    holidays: list[date] = Field(description="放假的日期（含周末中的假日亦可）")
    makeup_workdays: list[date] = Field(default=[], description="调休上班的周六、周日")
    source: str = Field(min_length=1, max_length=200, description="通知文号")


class YearOut(BaseModel):
    year: int
    status: YearStatus


class WorkingDaysOut(BaseModel):
    value: int | date | bool
    provisional: bool
    provisional_years: list[int]
    note: str | None


def _answer(result) -> WorkingDaysOut:
    return WorkingDaysOut(value=result.value, provisional=result.provisional,
                          provisional_years=list(result.provisional_years), note=result.note)


YearPath = Annotated[int, Path(ge=2000, le=2100)]


@router.get("/years/{year}", summary="某年日历来源（已载入 / 内置 / 临时）")
async def year_status(year: YearPath, request: Request, _: CurrentPrincipal) -> YearOut:
    return YearOut(year=year, status=request.app.state.calendar.year_status(year))


@router.put("/years/{year}", summary="载入国务院公布的某年节假日安排")
async def load_year(
    year: YearPath, body: YearIn, request: Request,
    principal: Annotated[Principal, Depends(require(Role.BUREAU_ADMIN))],
) -> YearOut:
    try:
        table = YearTable(year=year, holidays=frozenset(body.holidays),
                          makeup_workdays=frozenset(body.makeup_workdays), source=body.source)
    except ValueError as exc:
        raise Unprocessable("calendar_invalid", "节假日安排不合法", str(exc)) from exc
    platform = request.app.state.platform
    async with request.app.state.db.transaction() as session:
        await save_year(session, platform.calendar, table, loaded_by=principal.subject)
        await audit.append(session, platform.audit, actor=principal.subject, action="calendar.year_loaded",
                           subject=str(year), details={"source": body.source})
        await request.app.state.outbox.add(session, CalendarYearPublished(
            year=year, holidays=sorted(table.holidays), makeup_workdays=sorted(table.makeup_workdays),
            source=table.source, loaded_by=principal.subject))
    request.app.state.calendar.load_year(table)
    return YearOut(year=year, status="loaded")


def year_published_handler(app: FastAPI):
    """The consumer's handler of CalendarYearPublished: store, audit and use the year (any service's load).

    Idempotent: the inbox applies an event once, and storing a year replaces it. Events of one year
    share a Kafka key, so every service applies a year's loads in the same order and ends with the
    same table, the origin included (it applies its own event again).
    """

    async def on_year_published(session, event: CalendarYearPublished, envelope=None) -> None:
        table = YearTable(year=event.year, holidays=frozenset(event.holidays),
                          makeup_workdays=frozenset(event.makeup_workdays), source=event.source)
        platform = app.state.platform
        await save_year(session, platform.calendar, table, loaded_by=event.loaded_by)
        await audit.append(session, platform.audit, actor=event.loaded_by, action="calendar.year_applied",
                           subject=str(event.year),
                           details={"source": event.source, "from": envelope.source if envelope else None})
        # in use at once; if this transaction failed, the event is delivered again and stored then
        app.state.calendar.load_year(table)

    return on_year_published


@router.get("/working-days-between", summary="两日之间的工作日数（起日不计，止日计）")
async def between(
    request: Request, _: CurrentPrincipal,
    start: Annotated[date, Query(alias="from")], end: Annotated[date, Query(alias="to")],
) -> WorkingDaysOut:
    return _answer(request.app.state.calendar.working_days_between(start, end))


@router.get("/add-working-days", summary="某日之后第 n 个工作日")
async def add(
    request: Request, _: CurrentPrincipal,
    start: Annotated[date, Query(alias="date")], days: Annotated[int, Query(ge=-400, le=400)],
) -> WorkingDaysOut:
    try:
        return _answer(request.app.state.calendar.add_working_days(start, days))
    except (OverflowError, ValueError) as exc:  # e.g. 9999-12-31 plus working days: past date.max
        raise Unprocessable("date_out_of_range", "日期超出范围",
                            "计算结果超出可表示的日期范围（公元1年至9999年）。") from exc


class LeadDays(IntEnum):
    """The lead times a request may use: 5 working days (R10.1), or 3 with the bureau's consent (R10.2)."""

    NORMAL = NORMAL_LEAD
    SHORT_NOTICE = SHORT_NOTICE_LEAD


class EarliestActivityOut(BaseModel):
    notified: date
    lead: int
    earliest_activity_date: date
    calendar_provisional: bool
    provisional_years: list[int]
    note: str | None


@router.get("/earliest-activity-date", summary="最早可安排的监督活动日期（R10.1 五个工作日 / R10.2 三个工作日）")
async def earliest_activity(
    request: Request, _: CurrentPrincipal,
    lead: Annotated[LeadDays, Query(description="提前的工作日数：5（R10.1）或经同意的 3（R10.2）")],
    notified: Annotated[date | None, Query(description="通知日期，默认为今日（上海时间）")] = None,
) -> EarliestActivityOut:
    """R10.1/R10.2: the earliest activity date `lead` working days in [notified, activity) allow."""
    if notified is None:
        notified = datetime.now(SHANGHAI).date()
    try:
        answer = earliest_activity_date(request.app.state.calendar, notified, int(lead))
    except ValueError as exc:  # past 9999-12-31
        raise Unprocessable("date_out_of_range", "日期超出范围",
                            "计算结果超出可表示的日期范围（公元1年至9999年）。") from exc
    return EarliestActivityOut(notified=notified, lead=int(lead), earliest_activity_date=answer.value,
                               calendar_provisional=answer.provisional,
                               provisional_years=list(answer.provisional_years), note=answer.note)
