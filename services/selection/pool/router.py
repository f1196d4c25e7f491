"""HTTP: the draw pool as the bureau sees it: its freshness and counts, and who is free on a day (R11, R2.1)."""

import uuid
from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from services.selection.pool import service
from services.selection.requests.router import scoped_district
from shared import audit, clock
from shared import pagination as paging
from shared.app import CipherDep, SessionDep
from shared.auth import Principal, Role, require
from shared.events.topics import REGISTRY_SUPERVISORS

router = APIRouter(tags=["pool"])
POOL_READERS = require(Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU, Role.AUDITOR)
District = Annotated[str | None, Query(min_length=1, max_length=50, description="区市（区市司法局仅本辖区）")]


@router.get("/pool/status", summary="抽选库状态：最近一次应用名册事件的时间，各区市、各专业可抽选人数")
async def pool_status(session: SessionDep, principal: Principal = Depends(POOL_READERS),
                      on: Annotated[date | None, Query(alias="date", description="按该日判断，缺省为今天")] = None,
                      district: District = None) -> dict:
    """The pool is a projection of registry events: how fresh it is, and how many are eligible on `date`."""
    on = on or clock.today()
    paging.check_date_range(on, on)
    district = scoped_district(principal, district)
    answer = await service.status(session, on=on, district=district, topic=REGISTRY_SUPERVISORS)
    last = answer["last_registry_event_at"]
    age = None if last is None else max(0, int((clock.now() - datetime.fromisoformat(last)).total_seconds()))
    return {"as_of": on.isoformat(), "district": district, "checked_at": clock.now().isoformat(),
            "last_registry_event_age_seconds": age, **answer}


@router.get("/pool", summary="某日可抽选且未被预订的人民监督员（按专业、区市筛选，游标分页，记入审计）")
async def pool_members(request: Request, session: SessionDep, cipher: CipherDep,
                       on: Annotated[date, Query(alias="date", description="活动日期")],
                       specialty: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
                       district: District = None, principal: Principal = Depends(POOL_READERS),
                       limit: paging.Limit = 50, cursor: paging.CursorParam = None) -> paging.CursorPage[dict]:
    """Eligible on that day (term, training, not dismissed) and with no confirmed booking touching it;
    `at_yearly_cap` marks who the draw would pass over (R11.1 balanced opportunity)."""
    paging.check_date_range(on, on)
    district = scoped_district(principal, district)
    filters = {"date": on, "specialty": specialty, "district": district}
    sign = paging.signer(cipher)
    after = paging.decode(sign, cursor, scope="selection.pool", filters=filters, types=(str, uuid.UUID))
    start = datetime.combine(on, datetime.min.time(), tzinfo=clock.SHANGHAI)
    items, total, next_key = await service.members(
        session, on=on, day_start=start, day_end=start + timedelta(days=1), specialty=specialty, district=district,
        yearly_cap=request.app.state.settings.yearly_cap, limit=limit, after=after)
    # names of the people on a list are personal data: the read is in the audit log (R3.1), values never
    await audit.append(session, request.app.state.platform.audit, actor=principal.subject, action="pool.read",
                       subject=f"pool:{on.isoformat()}", details={"specialty": specialty, "district": district,
                                                                  "count": len(items)})
    return paging.CursorPage(items=items, total=total, limit=limit, next_cursor=None if next_key is None else
                             paging.encode(sign, scope="selection.pool", filters=filters, key=next_key))
