"""HTTP: contact outcomes (R12.1, R14.2), supervisors' own assignments, recusal (R13.1, R13.2)."""

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select

from services.selection.contact import service
from services.selection.models import candidate
from services.selection.models import request as request_table
from services.selection.pool import service as pool
from services.selection.requests import service as requests
from services.selection.requests.router import ensure_can_read, scoped_district
from services.selection.requests.schemas import (
    AbsenceIn,
    ContactIn,
    DecisionIn,
    ReasonIn,
    RecusalCreate,
    RelationsIn,
    SelfRecusalIn,
)
from shared import audit
from shared import pagination as paging
from shared.app import CipherDep, OutboxDep, SessionDep
from shared.auth import Principal, Role, ensure_district, ensure_self_or, require
from shared.errors import ProblemError

router = APIRouter(tags=["contact"])
BUREAU = require(Role.BUREAU_ADMIN)
SUPERVISOR = require(Role.SUPERVISOR)
# who contacts the drawn (R12.1): the bureau, and a district bureau within its district (R2.1)
CALLERS = require(Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU)


def _own_id(principal: Principal) -> uuid.UUID:
    try:
        return uuid.UUID(principal.supervisor_id or "")
    except ValueError as exc:
        raise ProblemError(403, "forbidden", "无权执行此操作", "令牌中的人民监督员标识无效。") from exc


def _deps(request: Request) -> dict:
    app = request.app
    return {"settings": app.state.settings, "platform": app.state.platform}


@router.post("/draws/{draw_id}/contacts", summary="按抽选顺序记录联络结果（R12.1、R14.2）")
async def record_contact(draw_id: uuid.UUID, body: ContactIn, request: Request, session: SessionDep,
                         outbox: OutboxDep, principal: Principal = Depends(BUREAU)) -> dict:
    row, _ = await requests.load_receipt(session, draw_id)
    return await service.record_outcome(
        session, outbox=outbox, **_deps(request), request_id=row.request_id, supervisor_id=body.supervisor_id,
        outcome=body.outcome, reason=body.reason, actor=principal.subject, recorded_by="bureau",
        contact_lookup=request.app.state.contact_lookup,
        attempts=[{"at": a.at.astimezone(UTC).isoformat(), "channel": a.channel} for a in body.attempts])


@router.post("/requests/{request_id}/absences", status_code=201, summary="活动开始后登记确认人员缺席（计入台账）")
async def record_absence(request_id: uuid.UUID, body: AbsenceIn, session: SessionDep, outbox: OutboxDep,
                         request: Request, principal: Principal = Depends(BUREAU)) -> dict:
    return await service.record_absence(session, outbox=outbox, platform=request.app.state.platform,
                                        request_id=request_id, supervisor_id=body.supervisor_id,
                                        reason=body.reason, actor=principal.subject)


@router.get("/notices", summary="本人的通知（他人为本人记录的联络结果等）")
async def my_notices(session: SessionDep, principal: Principal = Depends(SUPERVISOR)) -> list[dict]:
    return await service.notices(session, supervisor_id=_own_id(principal))


@router.get("/reports/contact-outcomes", summary="审计：各工作人员记录的联络结果（谁跳过了谁、为何）")
async def contact_outcomes(session: SessionDep,
                           principal: Principal = Depends(require(Role.AUDITOR, Role.BUREAU_ADMIN)),
                           since: Annotated[date | None, Query(alias="from")] = None,
                           until: Annotated[date | None, Query(alias="to")] = None) -> list[dict]:
    """DRAW.md: per clerk, how often people were recorded as declined, unreachable, recused, confirmed."""
    return await service.outcomes_by_clerk(session, since=since, until=until)


@router.get("/assignments", summary="本人的抽选与参加情况")
async def my_assignments(session: SessionDep, principal: Principal = Depends(SUPERVISOR)) -> list[dict]:
    rows = (await session.execute(
        select(candidate.c.request_id, request_table.c.activity_id, candidate.c.group, candidate.c.position,
               candidate.c.status,
               request_table.c.starts_at, request_table.c.ends_at, request_table.c.place,
               request_table.c.activity_type, request_table.c.district)
        .join(request_table, request_table.c.id == candidate.c.request_id)
        .where(candidate.c.supervisor_id == _own_id(principal))
        .order_by(request_table.c.starts_at.desc()).limit(200)
    )).all()
    return [{"request_id": str(r.request_id), "activity_id": str(r.activity_id), "group": r.group,
             "draw_order": r.position, "status": r.status,
             "starts_at": r.starts_at.isoformat(), "ends_at": r.ends_at.isoformat(), "place": r.place,
             "activity_type": r.activity_type, "district": r.district} for r in rows]


async def _self_outcome(request_id, outcome, reason, request, session, outbox, principal) -> dict:
    view = await service.record_outcome(
        session, outbox=outbox, **_deps(request), request_id=request_id, supervisor_id=_own_id(principal),
        outcome=outcome, reason=reason, actor=principal.subject, recorded_by="supervisor",
        contact_lookup=request.app.state.contact_lookup)
    return _own_view(view, principal)


def _own_view(view: dict, principal: Principal) -> dict:
    """A supervisor sees their own line, not the other candidates."""
    mine = [c for c in view["candidates"] if c["supervisor_id"] == principal.supervisor_id]
    return {"request_id": view["request_id"], "status": mine[0]["status"] if mine else None,
            "group": mine[0]["group"] if mine else None, "draw_order": mine[0]["position"] if mine else None}


@router.post("/assignments/{request_id}/confirm", summary="人民监督员确认参加")
async def confirm(request_id: uuid.UUID, request: Request, session: SessionDep, outbox: OutboxDep,
                  principal: Principal = Depends(SUPERVISOR)) -> dict:
    return await _self_outcome(request_id, "confirmed", None, request, session, outbox, principal)


@router.post("/assignments/{request_id}/decline", summary="人民监督员因正当理由不能参加（R14.2）")
async def decline(request_id: uuid.UUID, body: ReasonIn, request: Request, session: SessionDep,
                  outbox: OutboxDep, principal: Principal = Depends(SUPERVISOR)) -> dict:
    return await _self_outcome(request_id, "declined", body.reason, request, session, outbox, principal)


@router.post("/assignments/{request_id}/recusal", summary="人民监督员自行回避并告知市司法局（R13.1）")
async def self_recusal(request_id: uuid.UUID, body: SelfRecusalIn, request: Request, session: SessionDep,
                       outbox: OutboxDep, principal: Principal = Depends(SUPERVISOR)) -> dict:
    view = await service.self_recusal(session, outbox=outbox, **_deps(request), request_id=request_id,
                                      supervisor_id=_own_id(principal), ground=body.ground,
                                      actor=principal.subject)
    return _own_view(view, principal)


@router.post("/recusals", status_code=201, summary="登记检察院发现或当事人申请的回避（R13.2）")
async def create_recusal(body: RecusalCreate, session: SessionDep,
                         principal: Principal = Depends(BUREAU)) -> dict:
    recusal_id = await service.request_recusal(
        session, request_id=body.request_id, supervisor_id=body.supervisor_id, source=body.source,
        ground=body.ground, requested_at=requests.utcnow())
    return {"recusal_id": str(recusal_id), "status": "pending"}


@router.post("/recusals/{recusal_id}/decision", summary="市司法局决定回避（R13.2）")
async def decide(recusal_id: uuid.UUID, body: DecisionIn, request: Request, session: SessionDep,
                 outbox: OutboxDep, principal: Principal = Depends(BUREAU)) -> dict:
    return await service.decide_recusal(session, outbox=outbox, **_deps(request), recusal_id=recusal_id,
                                        granted=body.granted, reason=body.reason, actor=principal.subject)


@router.get("/requests/{request_id}/recusals", summary="某申请的回避记录")
async def list_recusals(request_id: uuid.UUID, session: SessionDep,
                        principal: Principal = Depends(require(Role.BUREAU_ADMIN, Role.AUDITOR,
                                                               Role.PROCURATORATE))) -> list[dict]:
    req = await requests.require(session, request_id)
    ensure_can_read(principal, req.district)
    return await service.list_recusals(session, request_id=request_id)


@router.put("/supervisors/{supervisor_id}/declared-relations", summary="申报与案件当事人的关系（R13.1）")
async def declare(supervisor_id: uuid.UUID, body: RelationsIn, session: SessionDep,
                  principal: Principal = Depends(require(Role.BUREAU_ADMIN, Role.SUPERVISOR))) -> dict:
    ensure_self_or(principal, supervisor_id, Role.BUREAU_ADMIN)
    names = await pool.declare_relations(session, supervisor_id=supervisor_id, party_names=body.party_names)
    return {"supervisor_id": str(supervisor_id), "count": len(names)}


@router.get("/recusals", summary="回避申请收件箱（按状态筛选，如 status=pending；区市仅见本辖区，R13.2、R2.1）")
async def recusal_inbox(
    session: SessionDep, cipher: CipherDep,
    principal: Principal = Depends(require(Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU, Role.AUDITOR,
                                           Role.PROCURATORATE)),
    status: Annotated[Literal["pending", "granted", "rejected"] | None, Query(description="状态")] = None,
    district: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
    limit: paging.Limit = 50, cursor: paging.CursorParam = None,
) -> paging.CursorPage[dict]:
    """Oldest first. The bureau (who decides, R13.2) also sees the person's name and the ground."""
    district = scoped_district(principal, district)
    filters = {"status": status, "district": district}
    sign = paging.signer(cipher)
    after = paging.decode(sign, cursor, scope="selection.recusals", filters=filters, types=(datetime, uuid.UUID))
    items, total, next_key = await service.recusal_inbox(
        session, status=status, district=district, with_ground=principal.has(Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU),
        limit=limit, after=after)
    return paging.CursorPage(items=items, total=total, limit=limit, next_cursor=None if next_key is None else
                             paging.encode(sign, scope="selection.recusals", filters=filters, key=next_key))


@router.get("/requests/{request_id}/call-list", 
            summary="联络名单：按抽选顺序的姓名、隐去部分号码的电话、联络状态、下一位（R12.1）")
async def call_list(request_id: uuid.UUID, request: Request, session: SessionDep,
                    principal: Principal = Depends(CALLERS)) -> dict:
    """One answer for the clerk on the phone: who, in which order, in which state, who is next."""
    req = await requests.require(session, request_id)
    ensure_district(principal, req.district)
    answer = await service.call_list(session, req=req,
                                     masked_lookup=getattr(request.app.state, "masked_contact_lookup", None))
    # names beside a case's activity: the read is in the audit log (R3.1), the names are not
    await audit.append(session, request.app.state.platform.audit, actor=principal.subject, action="call_list.read",
                       subject=str(request_id), details={"count": len(answer["items"])})
    return answer


@router.post("/requests/{request_id}/call-list/{supervisor_id}/phone",
             summary="查看待联络或已确认人员的完整电话（向名册库查询，记入审计；R12.1、R2.1）")
async def reveal_phone(request_id: uuid.UUID, supervisor_id: uuid.UUID, request: Request, response: Response,
                       session: SessionDep, principal: Principal = Depends(CALLERS)) -> dict:
    """POST, not GET: a read with a consequence (the audit entry), and no phone in a URL or a cache."""
    req = await requests.require(session, request_id)
    ensure_district(principal, req.district)
    response.headers["Cache-Control"] = "no-store"
    return await service.reveal_phone(
        session, platform=request.app.state.platform, req=req, supervisor_id=supervisor_id, actor=principal.subject,
        own_district=None if principal.has(Role.BUREAU_ADMIN) else principal.district,
        contact_lookup=request.app.state.contact_lookup)


@router.get("/supervisors/{supervisor_id}/declared-relations", summary="读取申报的与案件当事人的关系（R13.1）")
async def read_declared(supervisor_id: uuid.UUID, request: Request, session: SessionDep,
                        principal: Principal = Depends(require(Role.BUREAU_ADMIN, Role.SUPERVISOR))) -> dict:
    """The person reads back what they declared; the bureau too (that read is audited: names of parties)."""
    ensure_self_or(principal, supervisor_id, Role.BUREAU_ADMIN)
    answer = await pool.declared_relations(session, supervisor_id=supervisor_id)
    if not principal.is_self(supervisor_id):
        await audit.append(session, request.app.state.platform.audit, actor=principal.subject,
                           action="declared_relations.read", subject=f"supervisor:{supervisor_id}",
                           details={"count": answer["count"]})
    return answer
