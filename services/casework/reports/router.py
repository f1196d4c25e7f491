"""HTTP of the reports to the bureau (R20.1, R20.2)."""

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.casework import access, rules
from services.casework.edge import (
    PROC,
    REPORT_READERS,
    SettingsDep,
    as_of_or_today,
)
from services.casework.models import documents
from services.casework.reports import service as svc
from services.casework.schemas import (
    OverdueReport,
    OverdueTransmittal,
    ParticipationReportIn,
    ParticipationReportRead,
    TransmittalCreate,
    TransmittalRead,
)
from shared import clock
from shared.app import CalendarDep, SessionDep
from shared.auth import Role, ensure_district, forbidden
from shared.documents import archive, official
from shared.errors import Unprocessable
from shared.pagination import Page, PageDep

router = APIRouter()


# --- reports to the bureau (R20.1, R20.2) ---------------------------------------------------------

@router.post("/activities/{activity_id}/participation-report", status_code=201,
             response_model=ParticipationReportRead, summary="通报履职情况（R20.1，三个工作日内）", tags=["reports"])
async def report_participation(activity_id: uuid.UUID, body: ParticipationReportIn, session: SessionDep,
                               calendar: CalendarDep, principal: PROC) -> dict:
    act = await access.require_activity(session, activity_id)
    access.ensure_procuratorate(principal, act)
    return await svc.report_participation(session, act=act, calendar=calendar, note=body.note, principal=principal)


@router.get("/reports/participation/overdue", response_model=Page[OverdueReport],
            summary="逾期未通报履职情况的活动（R20.1，按结束时间由早到晚分页）", tags=["reports"])
async def participation_overdue(session: SessionDep, calendar: CalendarDep, principal: REPORT_READERS,
                                page: PageDep, as_of: date | None = None,
                                office: Annotated[str | None, Query(max_length=100)] = None) -> Page:
    items, total = await svc.overdue_participation(session, calendar=calendar, as_of=as_of_or_today(as_of),
                                                   principal=principal, office=office, limit=page.limit,
                                                   offset=page.offset)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("/transmittals", status_code=201, response_model=TransmittalRead,
             summary="每月五日（遇休息日顺延）前汇总转送上月反馈表（R20.2）", tags=["reports"])
async def send_transmittal(body: TransmittalCreate, session: SessionDep, calendar: CalendarDep,
                           principal: PROC) -> dict:
    office = body.office or principal.office
    if not office:
        raise Unprocessable("office_required", "请填写承办检察院", "令牌未载明单位时须填写 office。")
    if principal.office and office != principal.office:
        raise forbidden("只能转送本院的反馈表。")
    today = clock.today()
    month = date(int(body.month[:4]), int(body.month[5:7]), 1) if body.month else rules.previous_month(today)
    return await svc.send_transmittal(session, office=office, month=month, calendar=calendar, principal=principal,
                                      today=today)


@router.get("/reports/transmittals/overdue", response_model=list[OverdueTransmittal],
            summary="逾期未转送的月度反馈表（R20.2）", tags=["reports"])
async def transmittals_overdue(session: SessionDep, calendar: CalendarDep, principal: REPORT_READERS,
                               as_of: date | None = None) -> list:
    return await svc.overdue_transmittals(session, calendar=calendar, as_of=as_of_or_today(as_of),
                                          principal=principal)


@router.get("/transmittals/{transmittal_id}.pdf", response_class=Response, tags=["reports"],
            summary="月度反馈表转送函 PDF（R20.2；公文格式，文号）",
            responses={200: {"content": {"application/pdf": {}}}})
async def transmittal_pdf(transmittal_id: uuid.UUID, session: SessionDep, settings: SettingsDep,
                          principal: REPORT_READERS) -> Response:
    """R20.2: the cover letter of a transmittal: its office, the bureau, the bureau's district of the office, and
    auditors may read it; issued once (文号 威检监函〔年〕n号) and served again byte-identical."""
    row, district, signatures = await svc.transmittal_of(session, transmittal_id)
    if principal.has(Role.PROCURATORATE) and principal.office and principal.office != row.office:
        raise forbidden("只能查看本院的转送函。")
    if principal.has(Role.DISTRICT_BUREAU) and not principal.is_citywide:
        ensure_district(principal, district)
    data = svc.transmittal_letter(row, signatures=signatures, bureau=settings.bureau_name)
    doc = await archive.issue(session, documents, kind=svc.TRANSMITTAL_KIND, subject=str(transmittal_id), data=data,
                              render=official.render, actor=principal.subject,
                              numbered=(svc.TRANSMITTAL_CODE, clock.local_date(row.sent_at).year))
    return Response(doc.pdf, media_type="application/pdf",
                    headers=archive.headers(doc, f"transmittal-{transmittal_id}.pdf"))
