"""HTTP of the statistics the bureau reports upward (issue 14): activities by type, district, office, month."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from services.casework import access
from services.casework.statistics import service as svc
from shared.app import SessionDep
from shared.auth import Principal, Role, require

router = APIRouter(tags=["statistics"])
READERS = Annotated[Principal, Depends(require(Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU, Role.AUDITOR))]
GroupBy = Literal["activity_type", "district", "office", "month"]


@router.get("/statistics/activities", summary="办案活动统计：按类型、区市、检察院、月份（区级仅本辖区，R2.1）")
async def activity_statistics(
    session: SessionDep, principal: READERS,
    year: Annotated[int, Query(ge=2024, le=2100, description="年度（活动日期，上海时间）；办法自2024-12-01施行")],
    month: Annotated[int | None, Query(ge=1, le=12, description="月份；不填为全年")] = None,
    group_by: Annotated[list[GroupBy] | None, Query(description="分组：activity_type、district、office、month，可重复；"
                                                                "默认按类型和区市")] = None,
    district: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
) -> dict:
    """Counts per group (activities not cancelled, held, cancelled, mandatory, supervised, participations) and the
    totals; a district bureau sees its own district (another is a 403 `R2.1`)."""
    district = access.scoped_district(principal, district)
    return await svc.activities(session, year=year, month=month, district=district,
                                group_by=list(group_by or ["activity_type", "district"]))
