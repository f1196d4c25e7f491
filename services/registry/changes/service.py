"""Change-report use cases (R6.1): reported on the server's date, late flagged, applied or rejected."""

import uuid
from datetime import date
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import rules
from services.registry.config import RegistrySettings
from services.registry.models import change_report, supervisor
from services.registry.roster.service import apply_changes, get, page_of, problem, today, validated_changes
from services.registry.rules import RuleViolation
from services.registry.schemas import ChangeReportCreate
from shared.errors import Conflict, NotFound, Unprocessable
from shared.events.contracts import ChangeReportRecorded
from shared.events.outbox import Outbox


async def file_change_report(session: AsyncSession, *, outbox: Outbox, settings: RegistrySettings,
                             supervisor_id: uuid.UUID, data: ChangeReportCreate, actor: str, apply_now: bool,
                             on: date | None = None) -> RowMapping:
    """R6.1: record what changed, when, when reported; late (> 1 month) flagged. The bureau's own reports
    apply at once; a supervisor's or district bureau's report waits for the bureau's confirmation."""
    row = await get(session, supervisor_id, for_update=True)
    reported_on = on or today()  # R6.1: the server's date; a report cannot be back-dated
    try:
        rules.check_reported_on(data.reported_on, reported_on)
    except RuleViolation as v:
        raise problem(v) from v
    if reported_on < data.changed_on:
        raise Unprocessable("invalid_dates", "日期有误", "变更发生日期不能晚于今天（报告日期）。")
    if not data.changes and not data.description:
        raise Unprocessable("empty_change_report", "变更内容为空", "请填写变更事项。")
    changes = await validated_changes(session, settings, dict(data.changes))
    report_id = uuid.uuid4()
    await session.execute(insert(change_report).values(
        id=report_id, supervisor_id=supervisor_id, changes=changes, description=data.description,
        changed_on=data.changed_on, reported_on=reported_on,
        late=rules.is_late_report(data.changed_on, reported_on), status="pending", filed_by=actor,
    ))
    # R6.1: the ledger (appraisal) counts late reports; the report's facts travel, not its content
    await outbox.add(session, ChangeReportRecorded(
        supervisor_id=supervisor_id, report_id=report_id, changed_on=data.changed_on, reported_on=reported_on,
        late=rules.is_late_report(data.changed_on, reported_on)))
    if apply_now:
        await _apply_report(session, outbox=outbox, report_id=report_id, row=row, changes=changes, actor=actor)
    return await get_change_report(session, report_id)


async def get_change_report(session: AsyncSession, report_id: uuid.UUID) -> RowMapping:
    row = (await session.execute(select(change_report).where(change_report.c.id == report_id))).mappings().first()
    if row is None:
        raise NotFound("变更报告", report_id)
    return row


async def _apply_report(session: AsyncSession, *, outbox: Outbox, report_id: uuid.UUID, row: RowMapping,
                        changes: dict, actor: str) -> None:
    await apply_changes(session, outbox=outbox, row=row, values=changes)
    await session.execute(update(change_report).where(change_report.c.id == report_id).values(
        status="applied", decided_by=actor, decided_at=func.now()))


async def decide_change_report(session: AsyncSession, *, outbox: Outbox, settings: RegistrySettings,
                               report_id: uuid.UUID, confirm: bool, actor: str) -> RowMapping:
    report = await get_change_report(session, report_id)
    if report["status"] != "pending":
        raise Conflict("invalid_transition", "变更报告已处理", "该变更报告已确认或驳回，不能重复处理。")
    if confirm:
        row = await get(session, report["supervisor_id"], for_update=True)
        changes = await validated_changes(session, settings, dict(report["changes"]))
        await _apply_report(session, outbox=outbox, report_id=report_id, row=row, changes=changes, actor=actor)
    else:
        await session.execute(update(change_report).where(change_report.c.id == report_id).values(
            status="rejected", decided_by=actor, decided_at=func.now()))
    return await get_change_report(session, report_id)



async def change_reports(session: AsyncSession, *, supervisor_id: uuid.UUID | None = None, status: str | None = None,
                         late: bool | None = None, district: str | None = None, limit: int, offset: int,
                         ) -> tuple[list[RowMapping], int]:
    c = change_report.c
    where: list[Any] = []
    if supervisor_id:
        where.append(c.supervisor_id == supervisor_id)
    if status:
        where.append(c.status == status)
    if late is not None:
        where.append(c.late.is_(late))
    if district:
        where.append(c.supervisor_id.in_(select(supervisor.c.id).where(supervisor.c.district == district)))
    return await page_of(session, change_report, where, (c.created_at.desc(), c.id), limit=limit, offset=offset)
