"""HTTP of training (R21.1–R24.1)."""

import uuid
from datetime import date

from fastapi import APIRouter, Query, Response

from services.registry.models import supervisor
from services.registry.roster import service as roster
from services.registry.schemas import (
    SessionRecordRead,
    TrainingDue,
    TrainingRecordRead,
    TrainingResults,
    TrainingSessionCreate,
    TrainingSessionDetail,
    TrainingSessionRead,
)
from services.registry.training import service as svc
from services.registry.web import ADMIN, StaffReader, audit_personal_read, authorize_record, json_page, scoped_district
from shared.app import OutboxDep, SessionDep
from shared.auth import CurrentPrincipal, Principal
from shared.pagination import Page, PageDep

router = APIRouter(tags=["registry"])


@router.post("/training/sessions", status_code=201, response_model=TrainingSessionRead, summary="新建培训班次")
async def create_session(body: TrainingSessionCreate, session: SessionDep,
                         principal: Principal = ADMIN) -> TrainingSessionRead:
    return TrainingSessionRead(**await svc.create_session(session, data=body, actor=principal.subject))


@router.get("/training/sessions", response_model=Page[TrainingSessionRead], summary="培训班次")
async def list_sessions(session: SessionDep, page: PageDep, principal: StaffReader,
                        year: int | None = Query(None, ge=2000, le=2100)) -> Page[TrainingSessionRead]:
    rows, total = await svc.sessions(session, year=year, limit=page.limit, offset=page.offset)
    return Page(items=[TrainingSessionRead(**r) for r in rows], total=total, limit=page.limit, offset=page.offset)


@router.get("/training/sessions/{session_id}", response_model=TrainingSessionDetail,
            summary="培训班次及已记录的出勤与考试结果")
async def get_session(session_id: uuid.UUID, session: SessionDep, principal: StaffReader) -> TrainingSessionDetail:
    course = await svc.get_session_row(session, session_id)
    records = await svc.session_records(session, session_id, district=scoped_district(principal, None))
    return TrainingSessionDetail(**course, results=[SessionRecordRead(**r) for r in records])


@router.post("/training/sessions/{session_id}/results", summary="记录出勤与考试结果")
async def record_results(session_id: uuid.UUID, body: TrainingResults, session: SessionDep, outbox: OutboxDep,
                         principal: Principal = ADMIN) -> dict[str, int]:
    count = await svc.record_results(session, outbox=outbox, session_id=session_id, results=body.results,
                                     actor=principal.subject)
    return {"recorded": count}


@router.get("/supervisors/{supervisor_id}/training", response_model=list[TrainingRecordRead], summary="个人培训记录")
async def training_of(supervisor_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal,
                      ) -> list[TrainingRecordRead]:
    authorize_record(principal, await roster.get(session, supervisor_id))
    await audit_personal_read(session, principal, supervisor_id, "read_training", ["training"])
    return [TrainingRecordRead(**r) for r in await svc.training_of(session, supervisor_id)]


async def _due_page(session, page, principal: Principal, district: str | None, where: list) -> Response:
    district = scoped_district(principal, district)
    if district:
        where = [*where, supervisor.c.district == district]
    rows, total = await roster.list_page(session, svc.DUE_COLUMNS, where, limit=page.limit, offset=page.offset)
    return json_page(rows, total, page)


@router.get("/training/overdue", response_model=Page[TrainingDue], summary="初任培训逾期名单（R22.1）")
async def overdue(session: SessionDep, page: PageDep, principal: StaffReader,
                  district: str | None = Query(None, max_length=50), on: date | None = None) -> Response:
    return await _due_page(session, page, principal, district, svc.overdue_conditions(on or roster.today()))


@router.get("/training/makeup-needed", response_model=Page[TrainingDue], summary="需补训补考名单（R22.2）")
async def makeup_needed(session: SessionDep, page: PageDep, principal: StaffReader,
                        district: str | None = Query(None, max_length=50)) -> Response:
    return await _due_page(session, page, principal, district, svc.makeup_conditions())


@router.get("/training/term-pending", response_model=Page[TrainingDue], summary="本届任期尚未参加任期培训名单（R21.1）")
async def term_training_pending(session: SessionDep, page: PageDep, principal: StaffReader,
                                district: str | None = Query(None, max_length=50)) -> Response:
    return await _due_page(session, page, principal, district, svc.term_training_pending_conditions())


@router.get("/training/annual-check", response_model=Page[TrainingDue], summary="年度集中培训缺训名单（R23.1）")
async def annual_check(session: SessionDep, page: PageDep, principal: StaffReader,
                       year: int = Query(ge=2000, le=2100), district: str | None = Query(None, max_length=50),
                       ) -> Response:
    return await _due_page(session, page, principal, district, svc.annual_absentee_conditions(year))
