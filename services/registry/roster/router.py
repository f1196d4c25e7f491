"""HTTP of the roster: records, masked and audited reads (R3.1), the hot lists, specialties."""

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from services.registry import rules
from services.registry.config import RegistrySettings
from services.registry.roster import service as svc
from services.registry.schemas import (
    Contact,
    ContactsQuery,
    EligibleSupervisor,
    MaskedContact,
    MaskedContacts,
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
from shared import pagination as paging
from shared.app import CipherDep, OutboxDep, SessionDep
from shared.auth import CurrentPrincipal, Principal, Role, ensure_district, forbidden, require
from shared.crypto import FieldCipher
from shared.db.read import ReadConnDep
from shared.errors import ProblemError, Unprocessable

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


RosterSort = Literal["name", "term_end"]


class RosterQuery(BaseModel):
    """Filters of the roster list (one model: validated in a single pydantic-core call)."""

    district: str | None = Field(None, min_length=1, max_length=50, description="辖区（区级用户只能看本辖区，R2.1）")
    specialty: str | None = Field(None, min_length=1, max_length=30, description="专业领域（须在目录中）")
    status: list[Status] | None = Field(None, description="状态，可重复")
    term_active_on: date | None = Field(None, description="该日在任")
    term_year: int | None = Field(None, ge=2000, le=2100, description="该年内在任")
    term_ends_from: date | None = Field(None, description="任期届满日起（含）")
    term_ends_to: date | None = Field(None, description="任期届满日止（含）")
    ending_within_months: int | None = Field(
        None, ge=1, le=24, description="R4.1：今后 N 个月内任期届满的在任人员（自今日起，含首尾）")
    training_state: TrainingState | None = None
    name: str | None = Field(None, min_length=1, max_length=50, description="姓名前缀")
    number: str | None = Field(None, min_length=1, max_length=50, description="证书编号或工作证编号前缀")
    eligible: bool | None = None
    sort: RosterSort = Field("name", description="排序：name（姓名）或 term_end（任期届满日，未任命者在后）；同值按 id")
    limit: paging.Limit = 50
    cursor: paging.CursorParam = None


def roster_filters(q: RosterQuery, principal: Principal, settings: RegistrySettings) -> dict[str, Any]:
    """The filters a roster list runs with (and its cursor is signed over): district scoped (R2.1), unknown
    values and reversed or conflicting ranges refused (422), "terms ending in N months" (R4.1) made a range."""
    district = scoped_district(principal, q.district)
    if district is not None:
        svc.check_district(settings, district)
    paging.check_date_range(q.term_ends_from, q.term_ends_to)
    statuses = sorted(set(q.status or []))
    ends_from, ends_to = q.term_ends_from, q.term_ends_to
    if q.ending_within_months is not None:
        if ends_from is not None or ends_to is not None:
            raise Unprocessable("conflicting_filters", "筛选条件冲突",
                                "ending_within_months 与 term_ends_from/term_ends_to 不能同时使用。")
        # R4.1: the active terms whose 5-year term ends between today and N calendar months from today
        today = svc.today()
        ends_from, ends_to = today, rules.add_months(today, q.ending_within_months)
        if statuses and statuses != [rules.Status.ACTIVE.value]:
            raise Unprocessable("conflicting_filters", "筛选条件冲突",
                                "ending_within_months 只列在任人员（status=active），不能与其他状态同时使用。")
        statuses = [rules.Status.ACTIVE.value]
    return {"district": district, "specialty": q.specialty, "status": statuses, "term_active_on": q.term_active_on,
            "term_year": q.term_year, "term_ends_from": ends_from, "term_ends_to": ends_to,
            "training_state": q.training_state, "name": q.name, "number": q.number, "eligible": q.eligible,
            "sort": q.sort}


async def roster_list(conn: AsyncConnection, cipher: FieldCipher, *, scope: str, fields: dict[str, str],
                      filters: dict[str, Any], limit: int, cursor: str | None) -> Response:
    """One keyset page of a roster list (shared.pagination: cursor signed over `scope` and `filters`)."""
    sign = paging.signer(cipher)
    key_type = svc.ROSTER_SORTS[filters["sort"]][1]
    after = paging.decode(sign, cursor, scope=scope, filters=filters, types=(key_type, uuid.UUID))
    sql, args = svc.roster_query(
        fields=fields, on=svc.today(), limit=limit, after=after, sort=filters["sort"],
        district=filters["district"], specialty_name=filters["specialty"], statuses=filters["status"],
        term_active_on=filters["term_active_on"], term_year=filters["term_year"],
        term_ends_from=filters["term_ends_from"], term_ends_to=filters["term_ends_to"],
        training_state=filters["training_state"], name=filters["name"], number=filters["number"],
        eligible=filters["eligible"])
    items, total, next_key = await svc.roster_page(conn, sql, args, limit=limit)
    next_cursor = None if next_key is None else paging.encode(sign, scope=scope, filters=filters, key=next_key)
    return paging.json_cursor_page(items, total, limit, next_cursor)


@router.get("/supervisors", response_model=paging.CursorPage[SupervisorListItem],
            summary="人民监督员名册工作清单：按状态、辖区、专业、任期届满日、姓名或证号筛选，游标分页（R2.1、R4.1）")
async def list_supervisors(conn: ReadConnDep, cipher: CipherDep, settings: SettingsDep, principal: StaffReader,
                           q: Annotated[RosterQuery, Query()]) -> Response:
    """Masked fields only (R3.1); stable order (name or term end, then id); `total` counts every match."""
    return await roster_list(conn, cipher, scope="registry.supervisors", fields=svc.ROSTER_FIELDS,
                             filters=roster_filters(q, principal, settings), limit=q.limit, cursor=q.cursor)


class EligibleQuery(BaseModel):
    district: str | None = Field(None, min_length=1, max_length=50)
    specialty: str | None = Field(None, min_length=1, max_length=30)
    limit: paging.Limit = 50
    cursor: paging.CursorParam = None


@router.get("/supervisors/eligible", response_model=paging.CursorPage[EligibleSupervisor],
            summary="可参加抽选的人民监督员（检察院）：id、姓名、专业、辖区，游标分页")
async def list_eligible(
    conn: ReadConnDep, cipher: CipherDep, settings: SettingsDep, q: Annotated[EligibleQuery, Query()],
    principal: Principal = Depends(require(Role.PROCURATORATE, Role.BUREAU_ADMIN, Role.AUDITOR, Role.SERVICE)),
) -> Response:
    """The procuratorate sees only ids, names, specialties and district of eligible supervisors (R22.3)."""
    if q.district is not None:
        svc.check_district(settings, q.district)
    filters = {"district": q.district, "specialty": q.specialty, "status": [], "term_active_on": None,
               "term_year": None, "term_ends_from": None, "term_ends_to": None, "training_state": None, "name": None,
               "number": None, "eligible": True, "sort": "name"}
    return await roster_list(conn, cipher, scope="registry.eligible", fields=svc.ELIGIBLE_FIELDS, filters=filters,
                             limit=q.limit, cursor=q.cursor)


@router.post("/supervisors/contacts", response_model=MaskedContacts,
             summary="批量查询隐去部分号码的联系方式（联络名单用，一次至多200人，记入审计；R12.1、R3.1）")
async def masked_contacts(body: ContactsQuery, session: SessionDep,
                          principal: Principal = Depends(require(Role.SERVICE, Role.BUREAU_ADMIN))) -> MaskedContacts:
    """One request for the call list instead of one lookup per person; the full phone stays behind
    `GET /supervisors/{id}/contact`."""
    wanted = list(dict.fromkeys(body.ids))
    rows = await svc.masked_contacts(session, actor=principal.subject, ids=wanted)
    found = {r["id"] for r in rows}
    return MaskedContacts(items=[MaskedContact(**r) for r in rows], missing=[i for i in wanted if i not in found])


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
