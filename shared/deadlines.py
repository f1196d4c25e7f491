"""One shape for what is due: every service answers `GET /deadlines` with its due and overdue items.

Each service computes its own items from its own tables (a pure function of its rows and today's
date in Shanghai) and mounts `deadlines_router(compute)`; the notification path and the portal's
to-do board read all five the same way. An item names the rule that sets the deadline, who must act
(roles, and the district where the item is district-scoped), the subject, and the day it is due:

    GET /deadlines?role=bureau_admin&district=环翠区&within_days=14&state=overdue

- `state` is `overdue` after the due day, `due` on it, `upcoming` before it (within `within_days`).
- Items of other districts are not shown to district-scoped callers (R2.1); `role` filters by who acts.
- A list is sorted by (due_on, rule, subject_id): stable, and short enough not to page (at most
  `MAX_ITEMS`, with `truncated` saying when more exist).
"""

from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.app import SessionDep
from shared.auth import DISTRICT_SCOPED_ROLES, Principal, Role, ensure_district, require

State = Literal["upcoming", "due", "overdue"]
MAX_ITEMS = 1000
MAX_WITHIN_DAYS = 366


class Deadline(BaseModel):
    rule: str = Field(description="设定期限的规则编号，如 R20.1")
    kind: str = Field(description="期限类别的稳定代码，如 transmittal_due")
    title: str = Field(description="中文说明")
    subject_type: str = Field(description="对象类型：request、activity、supervisor、round、line …")
    subject_id: str
    district: str | None = Field(default=None, description="所属区市（全市事项为空）")
    roles: list[str] = Field(description="应当办理的角色")
    due_on: date = Field(description="到期日（上海时间）")
    due_at: datetime | None = Field(default=None, description="精确到时刻的到期时间（如有）")
    state: State = "upcoming"


class DeadlineList(BaseModel):
    as_of: date
    items: list[Deadline]
    total: int
    truncated: bool


class DeadlineQuery(BaseModel):
    today: date
    horizon: date  # the last day an upcoming item is listed for
    role: Role | None
    district: str | None  # None: every district the caller may see
    state: State | None


def state_of(due_on: date, today: date) -> State:
    if due_on < today:
        return "overdue"
    return "due" if due_on == today else "upcoming"


def select(items: Sequence[Deadline], query: DeadlineQuery) -> DeadlineList:
    """The items the query asks for, with their state as of `query.today`, in the stable order."""
    chosen = []
    for item in items:
        if item.due_on > query.horizon:
            continue
        if query.role is not None and query.role.value not in item.roles:
            continue
        if query.district is not None and item.district not in (None, query.district):
            continue
        state = state_of(item.due_on, query.today)
        if query.state is not None and state != query.state:
            continue
        chosen.append(item.model_copy(update={"state": state}))
    chosen.sort(key=lambda d: (d.due_on, d.rule, d.subject_id))
    return DeadlineList(as_of=query.today, items=chosen[:MAX_ITEMS], total=len(chosen),
                        truncated=len(chosen) > MAX_ITEMS)


# (session, query) -> every open item of the service due on or before query.horizon
Compute = Callable[[AsyncSession, DeadlineQuery], Awaitable[Sequence[Deadline]]]

READERS = (Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU, Role.PROCURATORATE, Role.FINANCE, Role.AUDITOR, Role.SERVICE)


def deadlines_router(compute: Compute, *, readers: Sequence[Role] = READERS) -> APIRouter:
    """`GET /deadlines` over the service's `compute`; mount it in the service's ServiceSpec.routers."""
    router = APIRouter(tags=["deadlines"])

    @router.get("/deadlines", response_model=DeadlineList, summary="到期与逾期事项（含规则编号），供待办与提醒使用")
    async def list_deadlines(
        session: SessionDep,
        principal: Annotated[Principal, Depends(require(*readers))],
        role: Annotated[Role | None, Query(description="只看该角色应办的事项")] = None,
        district: Annotated[str | None, Query(max_length=20, description="区市；区级角色只能看本辖区")] = None,
        within_days: Annotated[int, Query(ge=0, le=MAX_WITHIN_DAYS, description="列出今后若干天内到期的事项")] = 14,
        state: Annotated[State | None, Query(description="upcoming、due 或 overdue")] = None,
    ) -> DeadlineList:
        if not principal.is_citywide and principal.has(*DISTRICT_SCOPED_ROLES):
            ensure_district(principal, district or principal.district)
            district = principal.district
        today = clock.today()
        query = DeadlineQuery(today=today, horizon=today + timedelta(days=within_days), role=role,
                              district=district, state=state)
        return select(await compute(session, query), query)

    return router
