"""HTTP of change reports (R6.1)."""

import uuid
from typing import Literal

from fastapi import APIRouter, Query

from services.registry.changes import service as svc
from services.registry.roster import service as roster
from services.registry.schemas import ChangeReportCreate, ChangeReportRead
from services.registry.web import (
    ADMIN,
    SettingsDep,
    StaffReader,
    audit_personal_read,
    authorize_record,
    scoped_district,
)
from shared.app import OutboxDep, SessionDep
from shared.auth import CurrentPrincipal, Principal, Role, forbidden
from shared.pagination import Page, PageDep

router = APIRouter(tags=["registry"])


@router.post("/supervisors/{supervisor_id}/change-reports", status_code=201, response_model=ChangeReportRead,
             summary="个人信息变更报告（R6.1）")
async def file_change_report(
    supervisor_id: uuid.UUID, body: ChangeReportCreate, session: SessionDep, outbox: OutboxDep,
    settings: SettingsDep, principal: CurrentPrincipal,
) -> ChangeReportRead:
    """The bureau's reports apply at once; a supervisor's own or a district bureau's wait for confirmation."""
    row = await roster.get(session, supervisor_id)
    if principal.has(Role.AUDITOR, Role.SERVICE, Role.PROCURATORATE, Role.FINANCE) and not principal.has(
            Role.BUREAU_ADMIN):
        raise forbidden("您的角色不能提交变更报告。")
    authorize_record(principal, row)
    report = await svc.file_change_report(session, outbox=outbox, settings=settings, supervisor_id=supervisor_id,
                                          data=body, actor=principal.subject,
                                          apply_now=principal.has(Role.BUREAU_ADMIN))
    return ChangeReportRead(**report)


@router.get("/supervisors/{supervisor_id}/change-reports", response_model=list[ChangeReportRead],
            summary="某人的变更报告")
async def list_own_change_reports(supervisor_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal,
                                  ) -> list[ChangeReportRead]:
    authorize_record(principal, await roster.get(session, supervisor_id))
    await audit_personal_read(session, principal, supervisor_id, "read_change_reports", ["change_reports"])
    rows = await svc.change_reports(session, supervisor_id=supervisor_id, limit=200, offset=0)
    return [ChangeReportRead(**r) for r in rows[0]]


@router.get("/change-reports", response_model=Page[ChangeReportRead], summary="变更报告（可筛选逾期报告）")
async def list_change_reports(
    session: SessionDep, page: PageDep, principal: StaffReader,
    status: Literal["pending", "applied", "rejected"] | None = None, late: bool | None = None,
    district: str | None = Query(None, max_length=50),
) -> Page[ChangeReportRead]:
    rows, total = await svc.change_reports(session, status=status, late=late,
                                           district=scoped_district(principal, district),
                                           limit=page.limit, offset=page.offset)
    return Page(items=[ChangeReportRead(**r) for r in rows], total=total, limit=page.limit, offset=page.offset)


@router.post("/change-reports/{report_id}/confirm", response_model=ChangeReportRead, summary="确认变更报告")
async def confirm_change_report(report_id: uuid.UUID, session: SessionDep, outbox: OutboxDep,
                                settings: SettingsDep, principal: Principal = ADMIN) -> ChangeReportRead:
    return ChangeReportRead(**await svc.decide_change_report(
        session, outbox=outbox, settings=settings, report_id=report_id, confirm=True, actor=principal.subject))


@router.post("/change-reports/{report_id}/reject", response_model=ChangeReportRead, summary="驳回变更报告")
async def reject_change_report(report_id: uuid.UUID, session: SessionDep, outbox: OutboxDep,
                               settings: SettingsDep, principal: Principal = ADMIN) -> ChangeReportRead:
    return ChangeReportRead(**await svc.decide_change_report(
        session, outbox=outbox, settings=settings, report_id=report_id, confirm=False, actor=principal.subject))
