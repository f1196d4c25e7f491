"""HTTP of the roster: records, masked and audited reads (R3.1), the hot lists, specialties."""

import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from services.registry.roster import service as svc
from services.registry.schemas import (
    Contact,
    EligibleSupervisor,
    SpecialtyCreate,
    SpecialtyRead,
    SupervisorCreate,
    SupervisorListItem,
    SupervisorRead,
    SupervisorUpdate,
)
from services.registry.web import (
    ADMIN,
    MASKED_FIELDS,
    SettingsDep,
    StaffReader,
    Status,
    TrainingState,
    audit_personal_read,
    authorize_record,
    scoped_district,
    to_read,
)
from shared.app import CipherDep, OutboxDep, SessionDep
from shared.auth import CurrentPrincipal, Principal, Role, ensure_district, forbidden, require
from shared.errors import ProblemError
from shared.pagination import Page, PageDep, PageParams

router = APIRouter(tags=["registry"])


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



@router.get("/supervisors/{supervisor_id}", response_model=SupervisorRead, summary="人民监督员详情")
async def read_supervisor(
    supervisor_id: uuid.UUID, session: SessionDep, cipher: CipherDep, principal: CurrentPrincipal,
    unmasked: bool = Query(False, description="仅 bureau_admin：显示完整身份号码与手机号（记入审计）"),
) -> SupervisorRead:
    row = await svc.get(session, supervisor_id)
    authorize_record(principal, row)
    if not unmasked:
        await audit_personal_read(session, principal, supervisor_id, "read", MASKED_FIELDS)
        return to_read(row)
    if not principal.has(Role.BUREAU_ADMIN):
        raise forbidden("仅市司法局管理员可以查看完整的身份号码和手机号码。")
    id_number, phone = svc.decrypt_contact(cipher, row)
    await svc.audit_read(session, actor=principal.subject, action="supervisor.read_unmasked",
                         supervisor_id=supervisor_id, fields=["id_number", "phone", "birth_date"])
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
