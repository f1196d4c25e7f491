"""HTTP of notify: the in-app inbox (a supervisor's own; staff by role and district) and delivery records."""

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from services.notify import rules
from services.notify import service as svc
from shared import pagination as paging
from shared.app import CipherDep, SessionDep
from shared.auth import DISTRICT_SCOPED_ROLES, Principal, Role, ensure_district, require

router = APIRouter(tags=["inbox"])

READERS = (Role.SUPERVISOR, *svc.STAFF_ROLES)
OPERATORS = require(Role.BUREAU_ADMIN, Role.AUDITOR)
INBOX_KEY_TYPES = (datetime, uuid.UUID)
DeliveryStatus = Literal["queued", "held", "retrying", "sent", "failed"]


def scoped_district(principal: Principal, district: str | None) -> str | None:
    """R2.1: district-scoped staff see their own district only (asking for another is a 403 `R2.1`)."""
    if principal.is_citywide or not principal.has(*DISTRICT_SCOPED_ROLES):
        return district
    ensure_district(principal, district or principal.district)
    return principal.district


@router.get("/inbox", summary="站内信：人民监督员本人的消息；工作人员按角色和区市（R2.1），游标分页")
async def inbox(
    session: SessionDep, cipher: CipherDep, principal: Principal = Depends(require(*READERS)),
    unread: Annotated[bool | None, Query(description="true：只看未读；false：只看已读")] = None,
    kind: Annotated[list[rules.Kind] | None, Query(description="消息类别，可重复")] = None,
    since: Annotated[date | None, Query(alias="from", description="发出日期起（含，上海日期）")] = None,
    until: Annotated[date | None, Query(alias="to", description="发出日期止（含）")] = None,
    district: Annotated[str | None, Query(min_length=1, max_length=50, description="区市（市级角色可选）")] = None,
    limit: paging.Limit = 50, cursor: paging.CursorParam = None,
) -> dict:
    """Newest first. A supervisor sees only their own messages; staff the messages to their roles (district
    staff: their district's and the city-wide ones). `unread` counts the caller's unread messages."""
    paging.check_date_range(since, until)
    audience = svc.audience_of(principal, scoped_district(principal, district))
    kinds = sorted(set(kind or []))
    filters = {"unread": unread, "kind": kinds, "from": since, "to": until, **audience.cursor_filters()}
    sign = paging.signer(cipher)
    after = paging.decode(sign, cursor, scope="notify.inbox", filters=filters, types=INBOX_KEY_TYPES)
    items, total, unread_count, next_key = await svc.list_inbox(
        session, audience, unread=unread, kinds=kinds, since=since, until=until, limit=limit, after=after)
    page = paging.CursorPage(items=items, total=total, limit=limit, next_cursor=None if next_key is None else
                             paging.encode(sign, scope="notify.inbox", filters=filters, key=next_key))
    return {**page.model_dump(), "unread": unread_count}


@router.post("/inbox/{message_id}/read", summary="标记为已读（仅限本人可见的消息）")
async def mark_read(message_id: uuid.UUID, session: SessionDep,
                    principal: Principal = Depends(require(*READERS))) -> dict:
    audience = svc.audience_of(principal, scoped_district(principal, None))
    return await svc.mark_read(session, audience, message_id)


@router.get("/messages/{message_id}/deliveries", summary="一条消息的投递记录（站内信、短信：状态、次数、错误）")
async def deliveries(message_id: uuid.UUID, session: SessionDep, principal: Principal = Depends(OPERATORS)) -> list:
    return await svc.deliveries_of(session, message_id)


@router.get("/deliveries", summary="投递记录工作清单（按状态、渠道），游标分页")
async def list_deliveries(
    session: SessionDep, cipher: CipherDep, principal: Principal = Depends(OPERATORS),
    status: Annotated[list[DeliveryStatus] | None, Query(description="状态，可重复")] = None,
    channel: Annotated[Literal["inbox", "sms"] | None, Query()] = None,
    limit: paging.Limit = 50, cursor: paging.CursorParam = None,
) -> paging.CursorPage[dict]:
    statuses = sorted(set(status or []))
    filters = {"status": statuses, "channel": channel}
    sign = paging.signer(cipher)
    after = paging.decode(sign, cursor, scope="notify.deliveries", filters=filters, types=(int,))
    items, total, next_key = await svc.list_deliveries(session, statuses=statuses, channel=channel, limit=limit,
                                                       after=after)
    return paging.CursorPage(items=items, total=total, limit=limit, next_cursor=None if next_key is None else
                             paging.encode(sign, scope="notify.deliveries", filters=filters, key=next_key))
