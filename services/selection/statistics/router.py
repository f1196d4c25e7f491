"""HTTP of the statistics the bureau reports upward (issue 14): contact outcomes and rates, supervisors' counts."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from services.selection.requests.router import scoped_district
from services.selection.statistics import service
from shared.app import SessionDep
from shared.auth import Principal, Role, require
from shared.pagination import Page, PageDep

router = APIRouter(tags=["statistics"])
READERS = Annotated[Principal, Depends(require(Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU, Role.AUDITOR))]
Year = Annotated[int, Query(ge=2024, le=2100, description="年度（活动日期，上海时间）；办法自2024-12-01施行")]
Month = Annotated[int | None, Query(ge=1, le=12, description="月份；不填为全年")]
District = Annotated[str | None, Query(min_length=1, max_length=50, description="区市（区市司法局仅本辖区）")]
GroupBy = Literal["district", "month"]


@router.get("/statistics/contacts", summary="联络统计：各结果人数、拒绝率与跳过率（按月份、区市；区级仅本辖区，R2.1）")
async def contact_statistics(
    session: SessionDep, principal: READERS, year: Year, month: Month = None, district: District = None,
    group_by: Annotated[list[GroupBy] | None, Query(description="分组：district、month，可重复")] = None,
) -> dict:
    """People whose turn came in draw order per outcome (R12.1, R14.2) for activities of the period, by the
    activity's district and month, with `decline_rate` and `skip_rate` (statistics/rules.py)."""
    district = scoped_district(principal, district)
    return await service.contacts(session, year=year, month=month, district=district,
                                  group_by=list(group_by or ["district", "month"]))


@router.get("/statistics/supervisors", response_model=Page[dict],
            summary="人民监督员履职统计：抽中、确认、实际参加次数（区级仅本辖区人员，R2.1；记入审计）")
async def supervisor_statistics(session: SessionDep, principal: READERS, page: PageDep, year: Year,
                                month: Month = None, district: District = None) -> Page:
    """Each supervisor (of `district`: their own district) with a turn in the period, most served first."""
    district = scoped_district(principal, district)
    items, total = await service.supervisors(session, year=year, month=month, district=district, limit=page.limit,
                                             offset=page.offset, actor=principal.subject)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
