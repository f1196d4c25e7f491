"""HTTP of supervision requests (R10.1, R10.2, R12.1, R15.1) and recusal (R13.2)."""

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.casework import access
from services.casework.edge import (
    LEAD_TIME_RESPONSES,
    PROC,
    STAFF,
    IdemKey,
    idempotency,
)
from services.casework.requests import service as svc
from services.casework.schemas import (
    CancelIn,
    RecusalCreate,
    RecusalRead,
    SupervisionRequestCreate,
    SupervisionRequestRead,
)
from shared.app import CalendarDep, CipherDep, OutboxDep, SessionDep

router = APIRouter()


# --- supervision requests and recusal -------------------------------------------------------------

@router.post("/activities/{activity_id}/supervision-requests", status_code=201,
             response_model=SupervisionRequestRead, summary="申请市司法局选派人民监督员（R10.1、R10.2）",
             tags=["requests"], responses=LEAD_TIME_RESPONSES)
async def request_supervision(activity_id: uuid.UUID, body: SupervisionRequestCreate, request: Request,
                              session: SessionDep, outbox: OutboxDep, cipher: CipherDep, calendar: CalendarDep,
                              principal: PROC, key: IdemKey = None) -> JSONResponse:
    if (replay := await idempotency.claim(session, key, principal, request, body.model_dump(mode="json"))) is not None:
        return replay
    act = await access.require_activity(session, activity_id, lock=True)
    access.ensure_procuratorate(principal, act)
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
    act = await access.require_activity(session, req.activity_id, lock=True)
    access.ensure_procuratorate(principal, act)
    result = await svc.cancel_request(session, outbox=outbox, req=req, act=act, reason=body.reason,
                                      principal=principal)
    return await idempotency.respond(session, key, principal, 200, result)


@router.get("/activities/{activity_id}/supervision-requests", response_model=list[SupervisionRequestRead],
            summary="活动的监督申请（含确认名单）", tags=["requests"])
async def list_requests(activity_id: uuid.UUID, session: SessionDep, cipher: CipherDep, principal: STAFF) -> list:
    act = await access.require_activity(session, activity_id)
    access.ensure_office(principal, act)
    return [await svc.request_view(session, r, act=act, principal=principal, cipher=cipher)
            for r in await svc.list_requests(session, activity_id)]


@router.get("/supervision-requests/{request_id}", response_model=SupervisionRequestRead,
            summary="监督申请状态与确认名单（联系电话仅向承办检察院显示，R15.1）", tags=["requests"])
async def get_request(request_id: uuid.UUID, session: SessionDep, cipher: CipherDep, principal: STAFF) -> dict:
    req = await svc.require_request(session, request_id)
    act = await access.require_activity(session, req.activity_id)
    access.ensure_office(principal, act)
    return await svc.request_view(session, req, act=act, principal=principal, cipher=cipher)


@router.post("/supervision-requests/{request_id}/recusals", status_code=201, response_model=RecusalRead,
             summary="提出回避（检察院发现或当事人申请，R13.2）", tags=["requests"])
async def request_recusal(request_id: uuid.UUID, body: RecusalCreate, request: Request, session: SessionDep,
                          outbox: OutboxDep, principal: PROC, key: IdemKey = None) -> JSONResponse:
    if (replay := await idempotency.claim(session, key, principal, request, body.model_dump(mode="json"))) is not None:
        return replay
    req = await svc.require_request(session, request_id)
    act = await access.require_activity(session, req.activity_id)
    access.ensure_procuratorate(principal, act)
    result = await svc.request_recusal(session, outbox=outbox, req=req, supervisor_id=body.supervisor_id,
                                       source=body.source, ground=body.ground, principal=principal)
    return await idempotency.respond(session, key, principal, 201, result)
