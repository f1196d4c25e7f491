"""HTTP: supervision requests (R10), draws, receipts and their verification (R11)."""

import uuid

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from services.selection.requests import service
from services.selection.requests.schemas import RequestCreate
from shared.app import SessionDep
from shared.auth import Principal, Role, ensure_district, require
from shared.errors import ProblemError

router = APIRouter(tags=["requests"])
READERS = (Role.BUREAU_ADMIN, Role.AUDITOR, Role.PROCURATORATE, Role.DISTRICT_BUREAU, Role.SERVICE)


def ensure_can_read(principal: Principal, district: str) -> None:
    """City-wide roles read every request; procuratorate / district bureau only their district's."""
    if not principal.can_see_district(district):
        raise ProblemError(403, "R2.1", "无权查看其他区市的抽选申请", "只能查看本区市的抽选申请。")


@router.post("/requests", status_code=201, summary="受理抽选申请并立即抽选（R10.1/R10.2/R11.1）")
async def create_request(body: RequestCreate, request: Request, response: Response,
                         principal: Principal = Depends(require(Role.BUREAU_ADMIN, Role.PROCURATORATE))) -> dict:
    """Accept (commitment committed first), then draw in a second transaction; replays return the same."""
    if principal.has(Role.PROCURATORATE) and not principal.has(Role.BUREAU_ADMIN):
        ensure_district(principal, body.district)
    app = request.app
    async with app.state.db.transaction() as session:
        row, created = await service.submit(
            session, outbox=app.state.outbox, calendar=app.state.calendar, settings=app.state.settings,
            data=body.model_dump(), via="http")
    if row.status == "refused":
        raise ProblemError(422, row.refusal_code, "抽选申请不予受理", row.refusal_detail,
                           earliest_allowed_date=row.earliest_allowed_date.isoformat()
                           if row.earliest_allowed_date else None, request_id=str(row.id))
    async with app.state.db.transaction() as session:
        await service.draw_request(session, settings=app.state.settings, request_id=row.id)
        answer = await service.view(session, await service.require(session, row.id))
    if not created:
        response.status_code = 200
    return answer


@router.post("/requests/{request_id}/redraw", summary="缺额时按原则重新抽选（R14.1）")
async def redraw(request_id: uuid.UUID, request: Request, session: SessionDep,
                 principal: Principal = Depends(require(Role.BUREAU_ADMIN))) -> dict:
    """Retry the open seats, e.g. after the registry appointed more people; draws only where needed."""
    return await service.redraw(session, settings=request.app.state.settings, request_id=request_id)


@router.get("/requests/{request_id}", summary="抽选申请、抽选轮次、联络状态与缺额")
async def get_request(request_id: uuid.UUID, session: SessionDep,
                      principal: Principal = Depends(require(*READERS))) -> dict:
    row = await service.require(session, request_id)
    ensure_can_read(principal, row.district)
    return await service.view(session, row)


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
