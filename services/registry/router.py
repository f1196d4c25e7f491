"""HTTP of the registry: parse, authorize, call the service, shape the answer (no SQL here)."""

import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Literal

import pydantic_core
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.registry import rules
from services.registry import service as svc
from services.registry.config import RegistrySettings
from services.registry.schemas import (
    AppointmentCreate,
    AppointmentRead,
    CaseDecision,
    ChangeReportCreate,
    ChangeReportRead,
    Contact,
    DismissalCreate,
    DismissalRead,
    EligibleSupervisor,
    ExclusionCreate,
    ResignationCreate,
    ResignationDecision,
    ResignationRead,
    SpecialtyCreate,
    SpecialtyRead,
    SupervisorCreate,
    SupervisorListItem,
    SupervisorRead,
    SupervisorUpdate,
    TrainingDue,
    TrainingRecordRead,
    TrainingResults,
    TrainingSessionCreate,
    TrainingSessionRead,
)
from shared.app import CipherDep, OutboxDep, SessionDep
from shared.auth import CurrentPrincipal, Principal, Role, ensure_district, forbidden, require
from shared.errors import ProblemError
from shared.pagination import Page, PageDep, PageParams

router = APIRouter(tags=["registry"])

ADMIN = Depends(require(Role.BUREAU_ADMIN))
STAFF_READ = (Role.BUREAU_ADMIN, Role.AUDITOR, Role.SERVICE, Role.DISTRICT_BUREAU)
StaffReader = Annotated[Principal, Depends(require(*STAFF_READ))]
Status = Literal["candidate", "active", "resigned", "dismissed", "term_ended"]
TrainingState = Literal["trained", "pending", "overdue"]


def settings_of(request: Request) -> RegistrySettings:
    return request.app.state.settings


SettingsDep = Annotated[RegistrySettings, Depends(settings_of)]


def authorize_record(principal: Principal, row: RowMapping) -> None:
    """Citywide roles see all; a district bureau only its district (R2.1); a supervisor only their own record."""
    if principal.has(Role.BUREAU_ADMIN, Role.AUDITOR, Role.SERVICE):
        return
    if principal.has(Role.DISTRICT_BUREAU):
        ensure_district(principal, row["district"])
        return
    if principal.is_self(row["id"]):
        return
    raise forbidden("仅本人或具有相应权限的用户可以访问该人民监督员的记录。")


def scoped_district(principal: Principal, district: str | None) -> str | None:
    """A district bureau's lists are limited to its own district (asking for another is refused: R2.1)."""
    if principal.has(Role.BUREAU_ADMIN, Role.AUDITOR, Role.SERVICE):
        return district
    ensure_district(principal, district or principal.district)
    return principal.district


def to_read(row: RowMapping, *, id_number: str | None = None, phone: str | None = None) -> SupervisorRead:
    state = rules.training_state(initial_passed=row["initial_passed_on"] is not None, status=row["status"],
                                 due=row["initial_training_due"], today=svc.today())
    return SupervisorRead(
        **{k: row[k] for k in SupervisorRead.model_fields if k in row and k not in ("id_number", "phone")},
        id_number=id_number or row["id_number_masked"], phone=phone or row["phone_masked"], training_state=state,
    )


# --- supervisors ---------------------------------------------------------------------------------

@router.post("/supervisors", status_code=201, response_model=SupervisorRead, summary="登记人民监督员（候选）")
async def create_supervisor(
    body: SupervisorCreate, session: SessionDep, cipher: CipherDep, settings: SettingsDep,
    principal: Principal = Depends(require(Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU)),
) -> SupervisorRead:
    """Bureau registers a candidate; a district bureau proposes one within its own district."""
    if not principal.has(Role.BUREAU_ADMIN):
        ensure_district(principal, body.district)
    row = await svc.create(session, cipher=cipher, settings=settings, data=body, actor=principal.subject)
    return to_read(row)


async def read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """Connection of the read-only engine (autocommit, no pre-ping) for the hot roster lists."""
    async with request.app.state.read_engine.connect() as conn:
        yield conn


ReadConnDep = Annotated[AsyncConnection, Depends(read_connection, scope="function")]
def json_items_page(items: list[str], total: int, page: PageParams) -> Response:
    """A page whose items PostgreSQL already rendered as JSON objects (`svc.roster_query`): joined, not re-encoded."""
    body = f'{{"items":[{",".join(items)}],"total":{total},"limit":{page.limit},"offset":{page.offset}}}'
    return Response(body.encode(), media_type="application/json")


def json_page(rows: list[dict], total: int, page: PageParams) -> Response:
    """Serialize a page straight from the rows in pydantic-core (the rows come from our own SQL with the
    columns of the response model, so re-validating them would only cost time on the hot path)."""
    body = {"items": rows, "total": total, "limit": page.limit, "offset": page.offset}
    return Response(pydantic_core.to_json(body), media_type="application/json")


class RosterQuery(BaseModel):
    """Filters of the roster list (one model: validated in a single pydantic-core call)."""

    district: str | None = Field(None, max_length=50)
    specialty: str | None = Field(None, max_length=30)
    status: Status | None = None
    term_active_on: date | None = None
    term_year: int | None = Field(None, ge=2000, le=2100)
    training_state: TrainingState | None = None
    name: str | None = Field(None, min_length=1, max_length=50, description="姓名前缀")
    eligible: bool | None = None


@router.get("/supervisors", response_model=Page[SupervisorListItem], summary="人民监督员名册（检索、筛选、分页）")
async def list_supervisors(conn: ReadConnDep, page: PageDep, principal: StaffReader,
                           q: Annotated[RosterQuery, Query()]) -> Response:
    sql, args = svc.roster_query(
        fields=svc.ROSTER_FIELDS, on=svc.today(), limit=page.limit, offset=page.offset,
        district=scoped_district(principal, q.district), specialty_name=q.specialty, status=q.status,
        term_active_on=q.term_active_on, term_year=q.term_year, training_state=q.training_state, name=q.name,
        eligible=q.eligible)
    items, total = await svc.roster_page(conn, sql, args)
    return json_items_page(items, total, page)


@router.get("/supervisors/eligible", response_model=Page[EligibleSupervisor],
            summary="可参加抽选的人民监督员（检察院）")
async def list_eligible(
    conn: ReadConnDep, page: PageDep,
    principal: Principal = Depends(require(Role.PROCURATORATE, Role.BUREAU_ADMIN, Role.AUDITOR, Role.SERVICE)),
    district: str | None = Query(None, max_length=50), specialty: str | None = Query(None, max_length=30),
) -> Response:
    """The procuratorate sees only names, specialties and district of eligible supervisors."""
    sql, args = svc.roster_query(fields=svc.ELIGIBLE_FIELDS, on=svc.today(), limit=page.limit,
                                 offset=page.offset, district=district, specialty_name=specialty, eligible=True)
    items, total = await svc.roster_page(conn, sql, args)
    return json_items_page(items, total, page)


@router.post("/supervisors/term-end-sweep", summary="任期届满处理（每日运行）")
async def end_terms(session: SessionDep, outbox: OutboxDep,
                    principal: Principal = Depends(require(Role.BUREAU_ADMIN, Role.SERVICE))) -> dict[str, int]:
    """Active supervisors whose 5-year term has ended become `term_ended` and ineligible (a daily job calls it)."""
    return {"ended": await svc.end_terms(session, outbox=outbox, actor=principal.subject)}


@router.get("/supervisors/{supervisor_id}", response_model=SupervisorRead, summary="人民监督员详情")
async def read_supervisor(
    supervisor_id: uuid.UUID, session: SessionDep, cipher: CipherDep, principal: CurrentPrincipal,
    unmasked: bool = Query(False, description="仅 bureau_admin：显示完整身份号码与手机号（记入审计）"),
) -> SupervisorRead:
    row = await svc.get(session, supervisor_id)
    authorize_record(principal, row)
    if not unmasked:
        return to_read(row)
    if not principal.has(Role.BUREAU_ADMIN):
        raise forbidden("仅市司法局管理员可以查看完整的身份号码和手机号码。")
    id_number, phone = svc.decrypt_contact(cipher, row)
    await svc.audit_read(session, actor=principal.subject, action="supervisor.read_unmasked",
                         supervisor_id=supervisor_id, fields=["id_number", "phone"])
    return to_read(row, id_number=id_number, phone=phone)


@router.get("/supervisors/{supervisor_id}/contact", response_model=Contact, summary="联系方式（R12.1，记入审计）")
async def read_contact(
    supervisor_id: uuid.UUID, session: SessionDep, cipher: CipherDep,
    principal: Principal = Depends(require(Role.SERVICE, Role.BUREAU_ADMIN)),
) -> Contact:
    row = await svc.get(session, supervisor_id)
    _, phone = svc.decrypt_contact(cipher, row)
    await svc.audit_read(session, actor=principal.subject, action="supervisor.read_contact",
                         supervisor_id=supervisor_id, fields=["phone"])
    return Contact(id=row["id"], name=row["name"], phone=phone)


@router.patch("/supervisors/{supervisor_id}", response_model=SupervisorRead, summary="修改人民监督员信息")
async def update_supervisor(
    supervisor_id: uuid.UUID, body: SupervisorUpdate, session: SessionDep, outbox: OutboxDep, cipher: CipherDep,
    settings: SettingsDep, principal: Principal = ADMIN,
) -> SupervisorRead:
    row = await svc.update_supervisor(session, outbox=outbox, cipher=cipher, settings=settings,
                                      supervisor_id=supervisor_id, data=body, actor=principal.subject)
    return to_read(row)


@router.post("/supervisors/{supervisor_id}/appointments", status_code=201, response_model=SupervisorRead,
             summary="任命（R4.1、R5.1、N-TERM、N-BAN）")
async def appoint(
    supervisor_id: uuid.UUID, body: AppointmentCreate, session: SessionDep, outbox: OutboxDep,
    settings: SettingsDep, principal: Principal = ADMIN,
) -> SupervisorRead:
    row = await svc.appoint(session, outbox=outbox, settings=settings, supervisor_id=supervisor_id, data=body,
                            actor=principal.subject)
    return to_read(row)


@router.get("/supervisors/{supervisor_id}/appointments", response_model=list[AppointmentRead], summary="任命记录")
async def list_appointments(supervisor_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal,
                            ) -> list[AppointmentRead]:
    authorize_record(principal, await svc.get(session, supervisor_id))
    return [AppointmentRead(**r) for r in await svc.appointments_of(session, supervisor_id)]


@router.post("/supervisors/{supervisor_id}/exclusions", response_model=SupervisorRead,
             summary="记录不得担任情形（N-EXCL）")
async def record_exclusion(
    supervisor_id: uuid.UUID, body: ExclusionCreate, session: SessionDep, outbox: OutboxDep,
    principal: Principal = ADMIN,
) -> SupervisorRead:
    row = await svc.record_exclusion(session, outbox=outbox, supervisor_id=supervisor_id, ground=body.ground,
                                     actor=principal.subject)
    return to_read(row)


# --- change reports (R6.1) -----------------------------------------------------------------------

@router.post("/supervisors/{supervisor_id}/change-reports", status_code=201, response_model=ChangeReportRead,
             summary="个人信息变更报告（R6.1）")
async def file_change_report(
    supervisor_id: uuid.UUID, body: ChangeReportCreate, session: SessionDep, outbox: OutboxDep,
    settings: SettingsDep, principal: CurrentPrincipal,
) -> ChangeReportRead:
    """The bureau's reports apply at once; a supervisor's own or a district bureau's wait for confirmation."""
    row = await svc.get(session, supervisor_id)
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
    authorize_record(principal, await svc.get(session, supervisor_id))
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


# --- resignation (R7.1) and dismissal (R8.1, R9.1, R37.1) ----------------------------------------

@router.post("/supervisors/{supervisor_id}/resignations", status_code=201, response_model=ResignationRead,
             summary="辞职申请（R7.1）")
async def apply_resignation(supervisor_id: uuid.UUID, body: ResignationCreate, session: SessionDep,
                            principal: CurrentPrincipal) -> ResignationRead:
    row = await svc.get(session, supervisor_id)
    if not principal.has(Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU) and not principal.is_self(supervisor_id):
        raise forbidden("仅本人或司法行政机关可以提交辞职申请。")
    authorize_record(principal, row)
    return ResignationRead(**await svc.apply_resignation(session, supervisor_id=supervisor_id, data=body,
                                                         actor=principal.subject))


@router.post("/resignations/{resignation_id}/decision", response_model=ResignationRead, summary="辞职申请决定")
async def decide_resignation(resignation_id: uuid.UUID, body: ResignationDecision, session: SessionDep,
                             outbox: OutboxDep, settings: SettingsDep, principal: Principal = ADMIN,
                             ) -> ResignationRead:
    return ResignationRead(**await svc.decide_resignation(
        session, outbox=outbox, settings=settings, resignation_id=resignation_id, approve=body.approve,
        note=body.note, actor=principal.subject))


def dismissal_read(row: RowMapping) -> DismissalRead:
    return DismissalRead(**row, ground_label=rules.GROUND_LABELS[rules.DismissalGround(row["ground"])])


@router.post("/supervisors/{supervisor_id}/dismissals", status_code=201, response_model=DismissalRead,
             summary="免除资格（R8.1、R9.1）")
async def dismiss(supervisor_id: uuid.UUID, body: DismissalCreate, session: SessionDep, outbox: OutboxDep,
                  settings: SettingsDep, principal: Principal = ADMIN) -> DismissalRead:
    return dismissal_read(await svc.dismiss(session, outbox=outbox, settings=settings, supervisor_id=supervisor_id,
                                            data=body, actor=principal.subject))


@router.get("/dismissals", response_model=Page[DismissalRead], summary="免除资格案件")
async def list_dismissals(
    session: SessionDep, page: PageDep,
    principal: Principal = Depends(require(Role.BUREAU_ADMIN, Role.AUDITOR)),
    status: Literal["pending", "confirmed", "rejected"] | None = None, supervisor_id: uuid.UUID | None = None,
) -> Page[DismissalRead]:
    rows, total = await svc.dismissals(session, status=status, supervisor_id=supervisor_id, limit=page.limit,
                                       offset=page.offset)
    return Page(items=[dismissal_read(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


@router.get("/dismissals/{dismissal_id}", response_model=DismissalRead,
            summary="免除资格详情（通知书、公告、收回记录）")
async def read_dismissal(dismissal_id: uuid.UUID, session: SessionDep,
                         principal: Principal = Depends(require(Role.BUREAU_ADMIN, Role.AUDITOR))) -> DismissalRead:
    return dismissal_read(await svc.get_dismissal(session, dismissal_id))


@router.post("/dismissals/{dismissal_id}/confirm", response_model=DismissalRead, summary="确认免除资格案件（R37.1）")
async def confirm_case(dismissal_id: uuid.UUID, session: SessionDep, outbox: OutboxDep, settings: SettingsDep,
                       body: CaseDecision | None = None, principal: Principal = ADMIN) -> DismissalRead:
    return dismissal_read(await svc.decide_case(
        session, outbox=outbox, settings=settings, dismissal_id=dismissal_id, confirm=True,
        evidence_note=body.evidence_note if body else None, actor=principal.subject))


@router.post("/dismissals/{dismissal_id}/reject", response_model=DismissalRead, summary="驳回免除资格案件")
async def reject_case(dismissal_id: uuid.UUID, session: SessionDep, outbox: OutboxDep, settings: SettingsDep,
                      principal: Principal = ADMIN) -> DismissalRead:
    return dismissal_read(await svc.decide_case(
        session, outbox=outbox, settings=settings, dismissal_id=dismissal_id, confirm=False, evidence_note=None,
        actor=principal.subject))


# --- specialties (managed list) ------------------------------------------------------------------

@router.get("/specialties", response_model=list[SpecialtyRead], summary="专业领域目录")
async def list_specialties(session: SessionDep, principal: CurrentPrincipal,
                           include_inactive: bool = False) -> list[SpecialtyRead]:
    return [SpecialtyRead(**r) for r in await svc.specialties(session, include_inactive=include_inactive)]


@router.post("/specialties", status_code=201, response_model=SpecialtyRead, summary="新增专业领域")
async def add_specialty(body: SpecialtyCreate, session: SessionDep, principal: Principal = ADMIN) -> SpecialtyRead:
    return SpecialtyRead(**await svc.add_specialty(session, body.name))


@router.post("/specialties/{name}/deactivate", response_model=SpecialtyRead, summary="停用专业领域")
async def deactivate_specialty(name: str, session: SessionDep, principal: Principal = ADMIN) -> SpecialtyRead:
    if len(name) > 30:
        raise ProblemError(404, "not_found", "专业领域不存在", "未找到该专业领域。")
    return SpecialtyRead(**await svc.deactivate_specialty(session, name))


# --- training (R22.1–R24.1) ----------------------------------------------------------------------

@router.post("/training/sessions", status_code=201, response_model=TrainingSessionRead, summary="新建培训班次")
async def create_session(body: TrainingSessionCreate, session: SessionDep,
                         principal: Principal = ADMIN) -> TrainingSessionRead:
    return TrainingSessionRead(**await svc.create_session(session, data=body, actor=principal.subject))


@router.get("/training/sessions", response_model=Page[TrainingSessionRead], summary="培训班次")
async def list_sessions(session: SessionDep, page: PageDep, principal: StaffReader,
                        year: int | None = Query(None, ge=2000, le=2100)) -> Page[TrainingSessionRead]:
    rows, total = await svc.sessions(session, year=year, limit=page.limit, offset=page.offset)
    return Page(items=[TrainingSessionRead(**r) for r in rows], total=total, limit=page.limit, offset=page.offset)


@router.post("/training/sessions/{session_id}/results", summary="记录出勤与考试结果")
async def record_results(session_id: uuid.UUID, body: TrainingResults, session: SessionDep, outbox: OutboxDep,
                         principal: Principal = ADMIN) -> dict[str, int]:
    count = await svc.record_results(session, outbox=outbox, session_id=session_id, results=body.results,
                                     actor=principal.subject)
    return {"recorded": count}


@router.get("/supervisors/{supervisor_id}/training", response_model=list[TrainingRecordRead], summary="个人培训记录")
async def training_of(supervisor_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal,
                      ) -> list[TrainingRecordRead]:
    authorize_record(principal, await svc.get(session, supervisor_id))
    return [TrainingRecordRead(**r) for r in await svc.training_of(session, supervisor_id)]


async def _due_page(session, page, principal: Principal, district: str | None, where: list) -> Response:
    district = scoped_district(principal, district)
    if district:
        where = [*where, svc.supervisor.c.district == district]
    rows, total = await svc.list_page(session, svc.DUE_COLUMNS, where, limit=page.limit, offset=page.offset)
    return json_page(rows, total, page)


@router.get("/training/overdue", response_model=Page[TrainingDue], summary="初任培训逾期名单（R22.1）")
async def overdue(session: SessionDep, page: PageDep, principal: StaffReader,
                  district: str | None = Query(None, max_length=50), on: date | None = None) -> Response:
    return await _due_page(session, page, principal, district, svc.overdue_conditions(on or svc.today()))


@router.get("/training/makeup-needed", response_model=Page[TrainingDue], summary="需补训补考名单（R22.2）")
async def makeup_needed(session: SessionDep, page: PageDep, principal: StaffReader,
                        district: str | None = Query(None, max_length=50)) -> Response:
    return await _due_page(session, page, principal, district, svc.makeup_conditions())


@router.get("/training/annual-check", response_model=Page[TrainingDue], summary="年度集中培训缺训名单（R23.1）")
async def annual_check(session: SessionDep, page: PageDep, principal: StaffReader,
                       year: int = Query(ge=2000, le=2100), district: str | None = Query(None, max_length=50),
                       ) -> Response:
    return await _due_page(session, page, principal, district, svc.annual_absentee_conditions(year))
