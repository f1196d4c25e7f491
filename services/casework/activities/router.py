"""HTTP of activities (N-ACT, N-MUST; cancel, reschedule), their materials (R15.1, R3.1) and observers (R19.1)."""

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from services.casework import access
from services.casework.activities import service as svc
from services.casework.edge import (
    ANYONE,
    LEAD_TIME_RESPONSES,
    MATERIAL_RESPONSES,
    PROC,
    STAFF,
    IdemKey,
    SettingsDep,
    b64,
    idempotency,
)
from services.casework.schemas import (
    ActivityCreate,
    ActivityRead,
    CancelIn,
    MaterialCreate,
    MaterialRead,
    ObserverCreate,
    ObserverRead,
    RescheduleIn,
    RescheduleRead,
    SummaryIn,
)
from shared import pagination as paging
from shared.activity_types import ACTIVITY_TYPES, LABELS
from shared.app import CalendarDep, CipherDep, OutboxDep, SessionDep
from shared.auth import Principal, Role, require
from shared.db.read import ReadConnDep
from shared.errors import ProblemError, Unprocessable

router = APIRouter()


# --- activities -----------------------------------------------------------------------------------

@router.get("/activity-types", summary="办案活动类型（N-ACT）", tags=["activities"])
async def activity_types() -> list[dict[str, str]]:
    return [{"code": code, "label": label} for code, label in LABELS.items()]


@router.post("/activities", status_code=201, response_model=ActivityRead, summary="登记办案活动（N-ACT、N-MUST）",
             tags=["activities"])
async def create_activity(body: ActivityCreate, request: Request, session: SessionDep, principal: PROC,
                          key: IdemKey = None) -> JSONResponse:
    if (replay := await idempotency.claim(session, key, principal, request, body.model_dump(mode="json"))) is not None:
        return replay
    result = await svc.create_activity(session, data=body.model_dump(), principal=principal)
    return await idempotency.respond(session, key, principal, 201, result)


ActivityStatus = Literal["open", "held", "cancelled"]
ActivityType = Literal[ACTIVITY_TYPES]  # N-ACT: an unknown type is a 422, never an empty list
ActivitySort = Literal["starts_at", "-starts_at"]
KEY_TYPES = (datetime, uuid.UUID)
SCOPE = "casework.activities"


class ActivityQuery(BaseModel):
    """Filters of the activities work list (one model: validated in a single pydantic-core call, as the roster's)."""

    status: list[ActivityStatus] | None = Field(None, description="状态 open、held、cancelled，可重复")
    activity_type: list[ActivityType] | None = Field(None, description="N-ACT 活动类型，可重复")
    case_ref: str | None = Field(None, min_length=1, max_length=100, description="案号（完全一致）")
    since: date | None = Field(None, alias="from", description="活动日期起（含，上海时间）")
    until: date | None = Field(None, alias="to", description="活动日期止（含，上海时间）")
    district: str | None = Field(None, min_length=1, max_length=50)
    sort: ActivitySort = Field("-starts_at", description="按活动开始时间排序，“-”为倒序（默认）")
    limit: paging.Limit = 50
    cursor: paging.CursorParam = None


@router.get("/activities", response_model=paging.CursorPage[ActivityRead],
            summary="办案活动工作清单：按状态、活动日期、类型、案号、区市筛选（区市仅见本辖区，R2.1），游标分页",
            tags=["activities"])
async def list_activities(conn: ReadConnDep, cipher: CipherDep, principal: STAFF,
                          q: Annotated[ActivityQuery, Query()]) -> Response:
    """The procuratorate's and the bureau's list of activities; a procuratorate with an office sees its office's.
    The items are rendered as JSON by PostgreSQL (the roster list's way: `shared.db.read.json_page_sql`)."""
    paging.check_date_range(q.since, q.until)
    district = access.scoped_district(principal, q.district)
    office = principal.office if principal.has(Role.PROCURATORATE) and not principal.is_citywide else None
    statuses, types = sorted(set(q.status or [])), sorted(set(q.activity_type or []))
    filters = {"status": statuses, "activity_type": types, "case_ref": q.case_ref, "from": q.since, "to": q.until,
               "district": district, "office": office, "sort": q.sort}
    sign = paging.signer(cipher)
    after = paging.decode(sign, q.cursor, scope=SCOPE, filters=filters, types=KEY_TYPES)
    items, total, next_key = await svc.list_activities(
        conn, statuses=statuses, activity_types=types, case_ref=q.case_ref, since=q.since, until=q.until,
        district=district, office=office, descending=q.sort.startswith("-"), limit=q.limit, after=after)
    return paging.json_cursor_page(items, total, q.limit, None if next_key is None else
                                   paging.encode(sign, scope=SCOPE, filters=filters, key=next_key))


@router.get("/activities/{activity_id}", response_model=ActivityRead, summary="办案活动详情", tags=["activities"])
async def get_activity(activity_id: uuid.UUID, session: SessionDep, principal: ANYONE) -> dict:
    act = await access.require_activity(session, activity_id)
    await access.ensure_reader(session, principal, act)
    return svc.activity_dict(act)


@router.put("/activities/{activity_id}/summary", response_model=ActivityRead,
            summary="办案活动简要情况（签字后不得修改，R17.1）", tags=["activities"])
async def put_summary(activity_id: uuid.UUID, body: SummaryIn, session: SessionDep, principal: PROC) -> dict:
    act = await access.require_activity(session, activity_id, lock=True)
    access.ensure_procuratorate(principal, act)
    return await svc.update_summary(session, act=act, summary=body.summary)


@router.post("/activities/{activity_id}/hold", response_model=ActivityRead,
             summary="活动已举行/办结（N-MUST）", tags=["activities"])
async def hold(activity_id: uuid.UUID, session: SessionDep, principal: PROC) -> dict:
    act = await access.require_activity(session, activity_id, lock=True)
    access.ensure_procuratorate(principal, act)
    return await svc.hold(session, act=act, principal=principal)


@router.post("/activities/{activity_id}/cancel", response_model=ActivityRead,
             summary="取消办案活动（未举行；进行中的申请一并撤回）", tags=["activities"],
             responses={409: {"description": "activity_held / activity_cancelled / R17.1（已有签字）"}})
async def cancel_activity(activity_id: uuid.UUID, body: CancelIn, request: Request, session: SessionDep,
                          outbox: OutboxDep, principal: PROC, key: IdemKey = None) -> JSONResponse:
    if (replay := await idempotency.claim(session, key, principal, request, body.model_dump(mode="json"))) is not None:
        return replay
    act = await access.require_activity(session, activity_id, lock=True)
    access.ensure_procuratorate(principal, act)
    result = await svc.cancel_activity(session, outbox=outbox, act=act, reason=body.reason, principal=principal)
    return await idempotency.respond(session, key, principal, 200, result)


@router.post("/activities/{activity_id}/reschedule", response_model=RescheduleRead,
             summary="办案活动改期（原申请撤回，按新时间重新申请并关联原申请，R10.1、R10.2）", tags=["activities"],
             responses={**LEAD_TIME_RESPONSES,
                        409: {"description": "activity_held / activity_cancelled / R17.1（已有签字）"}})
async def reschedule(activity_id: uuid.UUID, body: RescheduleIn, request: Request, session: SessionDep,
                     outbox: OutboxDep, cipher: CipherDep, calendar: CalendarDep, principal: PROC,
                     key: IdemKey = None) -> JSONResponse:
    if (replay := await idempotency.claim(session, key, principal, request, body.model_dump(mode="json"))) is not None:
        return replay
    act = await access.require_activity(session, activity_id, lock=True)
    access.ensure_procuratorate(principal, act)
    result = await svc.reschedule(session, outbox=outbox, cipher=cipher, calendar=calendar, act=act,
                                  data=body.model_dump(), principal=principal)
    return await idempotency.respond(session, key, principal, 200, result)


# --- materials (R15.1, R3.1) ----------------------------------------------------------------------

@router.post("/activities/{activity_id}/materials", status_code=201, response_model=MaterialRead,
             summary="提供案件材料（R15.1）", tags=["materials"])
async def add_material(activity_id: uuid.UUID, body: MaterialCreate, request: Request, session: SessionDep,
                       settings: SettingsDep, outbox: OutboxDep, principal: PROC, key: IdemKey = None) -> JSONResponse:
    if (body.text is None) == (body.content_base64 is None):
        raise Unprocessable("invalid_material", "请提供材料内容", "text 与 content_base64 须且只能提供一个。")
    if (replay := await idempotency.claim(session, key, principal, request, body.model_dump(mode="json"))) is not None:
        return replay
    act = await access.require_activity(session, activity_id)
    access.ensure_procuratorate(principal, act)
    content = body.text.encode() if body.text is not None else b64(body.content_base64 or "", "材料")
    if len(content) > settings.material_max_bytes:
        raise ProblemError(413, "payload_too_large", "材料过大", f"单个材料不超过 {settings.material_max_bytes} 字节。")
    result = await svc.add_material(session, outbox=outbox, act=act, title=body.title,
                                    content_type=body.content_type, content=content, principal=principal)
    return await idempotency.respond(session, key, principal, 201, result)


@router.get("/activities/{activity_id}/materials", response_model=list[MaterialRead], responses=MATERIAL_RESPONSES,
            summary="案件材料目录（R15.1）", tags=["materials"])
async def list_materials(activity_id: uuid.UUID, session: SessionDep, principal: ANYONE) -> list:
    act = await access.require_activity(session, activity_id)
    return await svc.list_materials(session, act=act, principal=principal)


@router.get("/activities/{activity_id}/materials/{material_id}", responses=MATERIAL_RESPONSES,
            summary="查阅案件材料（记入审计，R3.1）", tags=["materials"], response_class=Response)
async def read_material(activity_id: uuid.UUID, material_id: uuid.UUID, session: SessionDep,
                        principal: ANYONE) -> Response:
    act = await access.require_activity(session, activity_id)
    row = await svc.read_material(session, act=act, material_id=material_id, principal=principal)
    media_type = row.content_type if row.content_type.isascii() else "application/octet-stream"
    return Response(row.content, media_type=media_type,
                    headers={"X-Content-SHA256": row.sha256, "Cache-Control": "no-store"})


# --- observers (R19.1) ----------------------------------------------------------------------------

@router.post("/activities/{activity_id}/observers", status_code=201, response_model=ObserverRead,
             summary="登记现场了解的司法行政人员或跟案观摩的人民监督员（R19.1）", tags=["observers"])
async def add_observer(activity_id: uuid.UUID, body: ObserverCreate, session: SessionDep,
                       principal: Annotated[Principal, Depends(require(Role.PROCURATORATE,
                                                                       Role.BUREAU_ADMIN))]) -> dict:
    act = await access.require_activity(session, activity_id)
    access.ensure_office(principal, act)
    return await svc.add_observer(session, act=act, data=body.model_dump(), principal=principal)


@router.get("/activities/{activity_id}/observers", response_model=list[ObserverRead], summary="观摩人员",
            tags=["observers"])
async def list_observers(activity_id: uuid.UUID, session: SessionDep, principal: STAFF) -> list:
    act = await access.require_activity(session, activity_id)
    access.ensure_office(principal, act)
    return await svc.list_observers(session, activity_id)
