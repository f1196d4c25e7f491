"""HTTP of the casework service: parse, authorize, call the service, shape the answer."""

import base64
import binascii
import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from services.casework import pdf, rules
from services.casework import service as svc
from services.casework.config import CaseworkSettings
from services.casework.idempotency import HEADER, Idempotency
from services.casework.models import idempotency_key
from services.casework.schemas import (
    ActivityCreate,
    ActivityRead,
    AdoptionIn,
    AdoptionRead,
    CancelIn,
    FormRead,
    MaterialCreate,
    MaterialRead,
    ObserverCreate,
    ObserverRead,
    OpinionIn,
    OpinionRead,
    OverdueReport,
    OverdueTransmittal,
    ParticipationReportIn,
    ParticipationReportRead,
    RecusalCreate,
    RecusalRead,
    SignIn,
    SummaryIn,
    SupervisionRequestCreate,
    SupervisionRequestRead,
    TransmittalCreate,
    TransmittalRead,
)
from shared.activity_types import LABELS
from shared.app import CalendarDep, CipherDep, OutboxDep, SessionDep
from shared.auth import Principal, Role, ensure_self_or, forbidden, require
from shared.errors import ProblemError, Unprocessable
from shared.pagination import Page, PageDep

router = APIRouter()
idempotency = Idempotency(idempotency_key)

PROC = Annotated[Principal, Depends(require(Role.PROCURATORATE))]
STAFF = Annotated[Principal, Depends(require(*svc.STAFF_ROLES))]
ANYONE = Annotated[Principal, Depends(require(*svc.STAFF_ROLES, Role.SUPERVISOR))]
REPORT_READERS = Annotated[Principal, Depends(require(Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU, Role.PROCURATORATE,
                                                      Role.AUDITOR))]
IdemKey = Annotated[str | None, Header(alias=HEADER, max_length=200, description="重试时携带相同的键")]
MATERIAL_RESPONSES = {403: {"description": "R15.1：无权查阅"}}
LEAD_TIME_RESPONSES = {422: {"description": "R10.1/R10.2/R44.1/activity_too_far：提前通知期限不符，当即拒绝；"
                                            "含 earliest_allowed_date 与 calendar_provisional"},
                       409: {"description": "request_exists：该活动已有进行中的申请"}}


def settings_of(request: Request) -> CaseworkSettings:
    return request.app.state.settings


SettingsDep = Annotated[CaseworkSettings, Depends(settings_of)]


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unprocessable("invalid_base64", f"{what}不是有效的 Base64", "请使用标准 Base64 编码。") from exc


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


@router.get("/activities", response_model=Page[ActivityRead], summary="办案活动列表", tags=["activities"])
async def list_activities(session: SessionDep, page: PageDep, principal: STAFF,
                          district: Annotated[str | None, Query(max_length=50)] = None) -> Page:
    items, total = await svc.list_activities(session, principal=principal, limit=page.limit, offset=page.offset,
                                             district=district)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/activities/{activity_id}", response_model=ActivityRead, summary="办案活动详情", tags=["activities"])
async def get_activity(activity_id: uuid.UUID, session: SessionDep, principal: ANYONE) -> dict:
    act = await svc.require_activity(session, activity_id)
    await svc.ensure_reader(session, principal, act)
    return svc.activity_dict(act)


@router.put("/activities/{activity_id}/summary", response_model=ActivityRead,
            summary="办案活动简要情况（签字后不得修改，R17.1）", tags=["activities"])
async def put_summary(activity_id: uuid.UUID, body: SummaryIn, session: SessionDep, principal: PROC) -> dict:
    act = await svc.require_activity(session, activity_id, lock=True)
    svc.ensure_procuratorate(principal, act)
    return await svc.update_summary(session, act=act, summary=body.summary)


@router.post("/activities/{activity_id}/hold", response_model=ActivityRead,
             summary="活动已举行/办结（N-MUST）", tags=["activities"])
async def hold(activity_id: uuid.UUID, session: SessionDep, principal: PROC) -> dict:
    act = await svc.require_activity(session, activity_id, lock=True)
    svc.ensure_procuratorate(principal, act)
    return await svc.hold(session, act=act, principal=principal)


# --- supervision requests and recusal -------------------------------------------------------------

@router.post("/activities/{activity_id}/supervision-requests", status_code=201,
             response_model=SupervisionRequestRead, summary="申请市司法局选派人民监督员（R10.1、R10.2）",
             tags=["requests"], responses=LEAD_TIME_RESPONSES)
async def request_supervision(activity_id: uuid.UUID, body: SupervisionRequestCreate, request: Request,
                              session: SessionDep, outbox: OutboxDep, cipher: CipherDep, calendar: CalendarDep,
                              principal: PROC, key: IdemKey = None) -> JSONResponse:
    if (replay := await idempotency.claim(session, key, principal, request, body.model_dump(mode="json"))) is not None:
        return replay
    act = await svc.require_activity(session, activity_id, lock=True)
    svc.ensure_procuratorate(principal, act)
    result = await svc.request_supervision(session, outbox=outbox, cipher=cipher, calendar=calendar, act=act,
                                           data=body.model_dump(), principal=principal)
    return await idempotency.respond(session, key, principal, 201, result)


@router.post("/supervision-requests/{request_id}/cancel", response_model=SupervisionRequestRead,
             summary="撤回监督申请（活动开始前）", tags=["requests"],
             responses={409: {"description": "request_closed：已被拒绝或已撤回；activity_started：活动已开始"}})
async def cancel_request(request_id: uuid.UUID, body: CancelIn, request: Request, session: SessionDep,
                         outbox: OutboxDep, principal: PROC, key: IdemKey = None) -> JSONResponse:
    if (replay := await idempotency.claim(session, key, principal, request, body.model_dump(mode="json"))) is not None:
        return replay
    req = await svc.require_request(session, request_id)
    act = await svc.require_activity(session, req.activity_id, lock=True)
    svc.ensure_procuratorate(principal, act)
    result = await svc.cancel_request(session, outbox=outbox, req=req, act=act, reason=body.reason,
                                      principal=principal)
    return await idempotency.respond(session, key, principal, 200, result)


@router.get("/activities/{activity_id}/supervision-requests", response_model=list[SupervisionRequestRead],
            summary="活动的监督申请（含确认名单）", tags=["requests"])
async def list_requests(activity_id: uuid.UUID, session: SessionDep, cipher: CipherDep, principal: STAFF) -> list:
    act = await svc.require_activity(session, activity_id)
    svc.ensure_office(principal, act)
    return [await svc.request_view(session, r, act=act, principal=principal, cipher=cipher)
            for r in await svc.list_requests(session, activity_id)]


@router.get("/supervision-requests/{request_id}", response_model=SupervisionRequestRead,
            summary="监督申请状态与确认名单（联系电话仅向承办检察院显示，R15.1）", tags=["requests"])
async def get_request(request_id: uuid.UUID, session: SessionDep, cipher: CipherDep, principal: STAFF) -> dict:
    req = await svc.require_request(session, request_id)
    act = await svc.require_activity(session, req.activity_id)
    svc.ensure_office(principal, act)
    return await svc.request_view(session, req, act=act, principal=principal, cipher=cipher)


@router.post("/supervision-requests/{request_id}/recusals", status_code=201, response_model=RecusalRead,
             summary="提出回避（检察院发现或当事人申请，R13.2）", tags=["requests"])
async def request_recusal(request_id: uuid.UUID, body: RecusalCreate, request: Request, session: SessionDep,
                          outbox: OutboxDep, principal: PROC, key: IdemKey = None) -> JSONResponse:
    if (replay := await idempotency.claim(session, key, principal, request, body.model_dump(mode="json"))) is not None:
        return replay
    req = await svc.require_request(session, request_id)
    act = await svc.require_activity(session, req.activity_id)
    svc.ensure_procuratorate(principal, act)
    result = await svc.request_recusal(session, outbox=outbox, req=req, supervisor_id=body.supervisor_id,
                                       source=body.source, ground=body.ground, principal=principal)
    return await idempotency.respond(session, key, principal, 201, result)


# --- materials (R15.1, R3.1) ----------------------------------------------------------------------

@router.post("/activities/{activity_id}/materials", status_code=201, response_model=MaterialRead,
             summary="提供案件材料（R15.1）", tags=["materials"])
async def add_material(activity_id: uuid.UUID, body: MaterialCreate, request: Request, session: SessionDep,
                       settings: SettingsDep, principal: PROC, key: IdemKey = None) -> JSONResponse:
    if (body.text is None) == (body.content_base64 is None):
        raise Unprocessable("invalid_material", "请提供材料内容", "text 与 content_base64 须且只能提供一个。")
    if (replay := await idempotency.claim(session, key, principal, request, body.model_dump(mode="json"))) is not None:
        return replay
    act = await svc.require_activity(session, activity_id)
    svc.ensure_procuratorate(principal, act)
    content = body.text.encode() if body.text is not None else _b64(body.content_base64 or "", "材料")
    if len(content) > settings.material_max_bytes:
        raise ProblemError(413, "payload_too_large", "材料过大", f"单个材料不超过 {settings.material_max_bytes} 字节。")
    result = await svc.add_material(session, act=act, title=body.title, content_type=body.content_type,
                                    content=content, principal=principal)
    return await idempotency.respond(session, key, principal, 201, result)


@router.get("/activities/{activity_id}/materials", response_model=list[MaterialRead], responses=MATERIAL_RESPONSES,
            summary="案件材料目录（R15.1）", tags=["materials"])
async def list_materials(activity_id: uuid.UUID, session: SessionDep, principal: ANYONE) -> list:
    act = await svc.require_activity(session, activity_id)
    return await svc.list_materials(session, act=act, principal=principal)


@router.get("/activities/{activity_id}/materials/{material_id}", responses=MATERIAL_RESPONSES,
            summary="查阅案件材料（记入审计，R3.1）", tags=["materials"], response_class=Response)
async def read_material(activity_id: uuid.UUID, material_id: uuid.UUID, session: SessionDep,
                        principal: ANYONE) -> Response:
    act = await svc.require_activity(session, activity_id)
    row = await svc.read_material(session, act=act, material_id=material_id, principal=principal)
    media_type = row.content_type if row.content_type.isascii() else "application/octet-stream"
    return Response(row.content, media_type=media_type,
                    headers={"X-Content-SHA256": row.sha256, "Cache-Control": "no-store"})


# --- opinions, form, signatures, adoption ---------------------------------------------------------

@router.put("/activities/{activity_id}/opinions/{supervisor_id}", response_model=OpinionRead,
            summary="如实记录监督意见（R16.1）", tags=["opinions"])
async def put_opinion(activity_id: uuid.UUID, supervisor_id: uuid.UUID, body: OpinionIn, session: SessionDep,
                      principal: Annotated[Principal, Depends(require(Role.PROCURATORATE, Role.SUPERVISOR))]) -> dict:
    act = await svc.require_activity(session, activity_id, lock=True)
    return await svc.record_opinion(session, act=act, supervisor_id=supervisor_id, text=body.text,
                                    principal=principal)


@router.get("/activities/{activity_id}/opinions", response_model=list[OpinionRead], summary="监督意见",
            tags=["opinions"])
async def list_opinions(activity_id: uuid.UUID, session: SessionDep, principal: ANYONE) -> list:
    act = await svc.require_activity(session, activity_id)
    await svc.ensure_reader(session, principal, act)
    return await svc.list_opinions(session, activity_id)


@router.get("/activities/{activity_id}/feedback-form", response_model=FormRead,
            summary="《威海市人民监督员履职情况反馈表》内容与签字（R17.1）", tags=["feedback"])
async def get_form(activity_id: uuid.UUID, session: SessionDep, principal: ANYONE) -> dict:
    act = await svc.require_activity(session, activity_id)
    await svc.ensure_reader(session, principal, act)
    return await svc.form_view(session, act)


@router.get("/activities/{activity_id}/feedback-form.pdf", response_class=Response,
            summary="反馈表 PDF（可打印）", tags=["feedback"])
async def form_pdf(activity_id: uuid.UUID, session: SessionDep, settings: SettingsDep, principal: ANYONE) -> Response:
    act = await svc.require_activity(session, activity_id)
    await svc.ensure_reader(session, principal, act)
    view = await svc.form_view(session, act)
    sigs = [{"supervisor_id": str(s["supervisor_id"]), "signed_at": s["signed_at"].astimezone(rules.SHANGHAI)
             .isoformat(), "method": s["method"], "signature_hash": s["signature_hash"],
             "image": await svc.signature_image(session, act=act, supervisor_id=s["supervisor_id"])
             if s["has_image"] else None} for s in view["signatures"]]
    data = pdf.render(view["content"], sigs, procuratorate=act.office or settings.procuratorate_name)
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="feedback-{activity_id}.pdf"'})


@router.post("/activities/{activity_id}/feedback-form/signatures", response_model=FormRead,
             summary="人民监督员现场签字确认（R17.1）", tags=["feedback"])
async def sign(activity_id: uuid.UUID, body: SignIn, session: SessionDep, outbox: OutboxDep, settings: SettingsDep,
               principal: Annotated[Principal, Depends(require(Role.SUPERVISOR))]) -> dict:
    image = None
    if body.signature_image_base64:
        image = _b64(body.signature_image_base64, "签名图片")
        if not image.startswith(b"\x89PNG\r\n\x1a\n") or len(image) > settings.signature_image_max_bytes:
            raise Unprocessable("invalid_signature_image", "签名图片无效", "手写签名须为 PNG 图片且不超过限制大小。")
    act = await svc.require_activity(session, activity_id, lock=True)
    return await svc.sign(session, outbox=outbox, act=act, principal=principal, method=body.method,
                          expected_hash=body.content_hash, image=image)


@router.put("/activities/{activity_id}/adoptions/{supervisor_id}", response_model=AdoptionRead,
            summary="监督意见采纳情况告知（R18.1）", tags=["feedback"])
async def decide_adoption(activity_id: uuid.UUID, supervisor_id: uuid.UUID, body: AdoptionIn, session: SessionDep,
                          outbox: OutboxDep, principal: PROC) -> dict:
    act = await svc.require_activity(session, activity_id, lock=True)
    svc.ensure_procuratorate(principal, act)
    return await svc.decide_adoption(session, outbox=outbox, act=act, supervisor_id=supervisor_id,
                                     adopted=body.adopted, reason=body.reason, principal=principal)


@router.get("/supervisors/{supervisor_id}/adoption-notices", response_model=list[AdoptionRead],
            summary="本人收到的采纳情况告知（R18.1）", tags=["feedback"])
async def notices(supervisor_id: uuid.UUID, session: SessionDep,
                  principal: Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.BUREAU_ADMIN))]) -> list:
    ensure_self_or(principal, supervisor_id, Role.BUREAU_ADMIN)
    return await svc.notices_of(session, supervisor_id)


# --- observers (R19.1) ----------------------------------------------------------------------------

@router.post("/activities/{activity_id}/observers", status_code=201, response_model=ObserverRead,
             summary="登记现场了解的司法行政人员或跟案观摩的人民监督员（R19.1）", tags=["observers"])
async def add_observer(activity_id: uuid.UUID, body: ObserverCreate, session: SessionDep,
                       principal: Annotated[Principal, Depends(require(Role.PROCURATORATE,
                                                                       Role.BUREAU_ADMIN))]) -> dict:
    act = await svc.require_activity(session, activity_id)
    svc.ensure_office(principal, act)
    return await svc.add_observer(session, act=act, data=body.model_dump(), principal=principal)


@router.get("/activities/{activity_id}/observers", response_model=list[ObserverRead], summary="观摩人员",
            tags=["observers"])
async def list_observers(activity_id: uuid.UUID, session: SessionDep, principal: STAFF) -> list:
    act = await svc.require_activity(session, activity_id)
    svc.ensure_office(principal, act)
    return await svc.list_observers(session, activity_id)


# --- reports to the bureau (R20.1, R20.2) ---------------------------------------------------------

@router.post("/activities/{activity_id}/participation-report", status_code=201,
             response_model=ParticipationReportRead, summary="通报履职情况（R20.1，三个工作日内）", tags=["reports"])
async def report_participation(activity_id: uuid.UUID, body: ParticipationReportIn, session: SessionDep,
                               calendar: CalendarDep, principal: PROC) -> dict:
    act = await svc.require_activity(session, activity_id)
    svc.ensure_procuratorate(principal, act)
    return await svc.report_participation(session, act=act, calendar=calendar, note=body.note, principal=principal)


@router.get("/reports/participation/overdue", response_model=list[OverdueReport],
            summary="逾期未通报履职情况的活动（R20.1）", tags=["reports"])
async def participation_overdue(session: SessionDep, calendar: CalendarDep, principal: REPORT_READERS,
                                as_of: date | None = None) -> list:
    return await svc.overdue_participation(session, calendar=calendar, as_of=as_of or svc.rules.local_date(svc.now()),
                                           principal=principal)


@router.post("/transmittals", status_code=201, response_model=TransmittalRead,
             summary="每月五日前汇总转送上月反馈表（R20.2）", tags=["reports"])
async def send_transmittal(body: TransmittalCreate, session: SessionDep, principal: PROC) -> dict:
    office = body.office or principal.office
    if not office:
        raise Unprocessable("office_required", "请填写承办检察院", "令牌未载明单位时须填写 office。")
    if principal.office and office != principal.office:
        raise forbidden("只能转送本院的反馈表。")
    today = rules.local_date(svc.now())
    month = date(int(body.month[:4]), int(body.month[5:7]), 1) if body.month else rules.previous_month(today)
    return await svc.send_transmittal(session, office=office, month=month, principal=principal, today=today)


@router.get("/reports/transmittals/overdue", response_model=list[OverdueTransmittal],
            summary="逾期未转送的月度反馈表（R20.2）", tags=["reports"])
async def transmittals_overdue(session: SessionDep, principal: REPORT_READERS, as_of: date | None = None) -> list:
    return await svc.overdue_transmittals(session, as_of=as_of or rules.local_date(svc.now()), principal=principal)
