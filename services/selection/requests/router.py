"""HTTP: supervision requests (R10), the protocol's bureau steps, draws, receipts and their verification (R11)."""

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from services.selection.requests import service
from services.selection.requests.schemas import BeaconIn, CancelIn, RequestCreate, ShortNoticeDecisionIn
from shared import pagination as paging
from shared.app import CipherDep, OutboxDep, SessionDep
from shared.auth import DISTRICT_SCOPED_ROLES, Principal, Role, ensure_district, require
from shared.errors import Conflict, ProblemError

router = APIRouter(tags=["requests"])
READERS = (Role.BUREAU_ADMIN, Role.AUDITOR, Role.PROCURATORATE, Role.DISTRICT_BUREAU, Role.SERVICE)
BUREAU = require(Role.BUREAU_ADMIN)


def ensure_can_read(principal: Principal, district: str) -> None:
    """City-wide roles read every request; procuratorate / district bureau only their district's."""
    if not principal.can_see_district(district):
        raise ProblemError(403, "R2.1", "无权查看其他区市的抽选申请", "只能查看本区市的抽选申请。")


def scoped_district(principal: Principal, district: str | None) -> str | None:
    """The district a list is limited to: any (or none) for city-wide roles; a district bureau's or
    procuratorate's own, and asking for another is a 403 `R2.1`."""
    if principal.is_citywide or not principal.has(*DISTRICT_SCOPED_ROLES):
        return district
    ensure_district(principal, district or principal.district)
    return principal.district


RequestStatus = Literal["awaiting_consent", "accepted", "drawn", "staffed", "refused", "cancelled"]
RequestSort = Literal["starts_at", "-starts_at", "requested_at", "-requested_at"]
KEY_TYPES = (datetime, uuid.UUID)


@router.get("/requests", summary="抽选申请工作清单：按状态、活动日期、区市筛选（区市仅见本辖区，R2.1），游标分页")
async def list_requests(
    session: SessionDep, cipher: CipherDep, principal: Principal = Depends(require(*READERS)),
    status: Annotated[list[RequestStatus] | None, Query(description="状态，可重复")] = None,
    short_staffed: Annotated[bool | None, Query(description="true：已抽选但有缺额（R14.1）")] = None,
    since: Annotated[date | None, Query(alias="from", description="活动日期起（含）")] = None,
    until: Annotated[date | None, Query(alias="to", description="活动日期止（含）")] = None,
    district: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
    sort: Annotated[RequestSort, Query(description="排序：活动时间或收到时间，“-”为倒序")] = "starts_at",
    limit: paging.Limit = 50, cursor: paging.CursorParam = None,
) -> paging.CursorPage[dict]:
    """The bureau's list of requests by state (incoming ones are decided on arrival: accepted, awaiting
    consent or refused); `waiting_for` says the next step (consent, beacon, reveal, contact, redraw)."""
    paging.check_date_range(since, until)
    district = scoped_district(principal, district)
    statuses = sorted(set(status or []))
    filters = {"status": statuses, "short_staffed": short_staffed, "from": since, "to": until,
               "district": district, "sort": sort}
    sign = paging.signer(cipher)
    after = paging.decode(sign, cursor, scope="selection.requests", filters=filters, types=KEY_TYPES)
    items, total, next_key = await service.list_requests(
        session, statuses=statuses, short_staffed=short_staffed, since=since, until=until, district=district,
        sort=sort, limit=limit, after=after)
    return paging.CursorPage(items=items, total=total, limit=limit, next_cursor=None if next_key is None else
                             paging.encode(sign, scope="selection.requests", filters=filters, key=next_key))


@router.post("/requests", status_code=201, summary="市司法局录入纸质或电话通知的申请（R10.1/R10.2）")
async def create_request(body: RequestCreate, request: Request, response: Response,
                         principal: Principal = Depends(BUREAU)) -> dict:
    """The bureau's door for a request that arrived on paper or by phone; the procuratorate's is casework.

    Accepted requests name a beacon (one party alone never supplies the draw's entropy): the draw runs
    once a bureau user enters its value (`PUT /requests/{id}/beacon`). 200 for a replay.
    """
    app = request.app
    async with app.state.db.transaction() as session:
        row, created = await service.submit(
            session, outbox=app.state.outbox, calendar=app.state.calendar, settings=app.state.settings,
            data=body.model_dump(), via="http", actor=principal.subject, received_at=body.received_at)
        answer = await service.view(session, row)
    if row.status == "refused" and created:
        raise ProblemError(422, row.refusal_code, "抽选申请不予受理", row.refusal_detail,
                           earliest_allowed_date=row.earliest_allowed_date.isoformat()
                           if row.earliest_allowed_date else None, request_id=str(row.id),
                           calendar_provisional=row.calendar_provisional)
    if not created:
        response.status_code = 200
    return answer


@router.post("/requests/{request_id}/short-notice-decision", summary="市司法局决定是否同意缩短通知期限（R10.2）")
async def short_notice_decision(request_id: uuid.UUID, body: ShortNoticeDecisionIn, request: Request,
                                session: SessionDep, outbox: OutboxDep,
                                principal: Principal = Depends(BUREAU)) -> dict:
    row = await service.decide_short_notice(session, outbox=outbox, settings=request.app.state.settings,
                                            request_id=request_id, granted=body.granted, reason=body.reason,
                                            actor=principal.subject)
    return await service.view(session, row)


@router.put("/requests/{request_id}/beacon", summary="录入受理时指定的公开随机源的值，随即抽选")
async def enter_beacon(request_id: uuid.UUID, body: BeaconIn, request: Request, session: SessionDep,
                       outbox: OutboxDep, principal: Principal = Depends(BUREAU)) -> dict:
    row = await service.enter_beacon(session, outbox=outbox, settings=request.app.state.settings,
                                     request_id=request_id, value=body.value, actor=principal.subject)
    return await service.view(session, row)


@router.post("/requests/{request_id}/cancel", summary="撤回市司法局录入的申请（抽选记录保留在链中）")
async def cancel(request_id: uuid.UUID, body: CancelIn, session: SessionDep,
                 principal: Principal = Depends(BUREAU)) -> dict:
    """Only a request the bureau recorded itself; the procuratorate withdraws its own in casework."""
    row = await service.require(session, request_id, lock=True)
    if row.via != "http":
        raise Conflict("one_door", "应由检察院撤回", "检察院的申请只能由检察院在办案系统中撤回。")
    if not await service.cancel(session, request_id=request_id, reason=body.reason, by=principal.subject):
        raise Conflict("request_closed", "该申请已结束", f"该申请的状态为{row.status}。")
    return await service.view(session, await service.require(session, request_id))


@router.post("/requests/{request_id}/redraw", summary="缺额时按原则重新抽选（R14.1）")
async def redraw(request_id: uuid.UUID, request: Request, session: SessionDep, outbox: OutboxDep,
                 principal: Principal = Depends(BUREAU)) -> dict:
    """Retry the open seats, e.g. after the registry appointed more people; draws only where needed."""
    return await service.redraw(session, outbox=outbox, settings=request.app.state.settings, request_id=request_id)


@router.get("/requests/{request_id}", summary="抽选申请、承诺与受理、抽选轮次、联络状态与缺额")
async def get_request(request_id: uuid.UUID, session: SessionDep,
                      principal: Principal = Depends(require(*READERS))) -> dict:
    row = await service.require(session, request_id)
    ensure_can_read(principal, row.district)
    return await service.view(session, row)


@router.get("/chain", summary="受理、抽选与撤回的哈希链（供审计逐条复核）")
async def get_chain(session: SessionDep, principal: Principal = Depends(require(Role.BUREAU_ADMIN, Role.AUDITOR)),
                    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict]:
    return await service.chain(session, after=after, limit=limit)


@router.get("/draws/{draw_id}/receipt", summary="抽选凭证（含联络记录，可独立复核）")
async def get_receipt(draw_id: uuid.UUID, session: SessionDep,
                      principal: Principal = Depends(require(*READERS))) -> JSONResponse:
    row, receipt = await service.receipt_with_log(session, draw_id)
    req = await service.require(session, row.request_id)
    ensure_can_read(principal, req.district)
    return JSONResponse(receipt)


@router.get("/draws/{draw_id}/verify", summary="重新计算并核验抽选凭证")
async def verify(draw_id: uuid.UUID, session: SessionDep,
                 principal: Principal = Depends(require(*READERS))) -> dict:
    row, _ = await service.load_receipt(session, draw_id)
    req = await service.require(session, row.request_id)
    ensure_can_read(principal, req.district)
    return await service.verify_draw(session, draw_id)
