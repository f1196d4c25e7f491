"""`python -m services.finance.demo`: default subsidy rates (N-RATE) and 2026/2027 activity plans (R41.1).

Everything goes through the service functions (audit records included). Idempotent: a rate of a type
already effective on 2024-12-01 and a plan already submitted for (year, office) are left alone, so a
second run adds nothing. Needs only the migrated finance schema; an otherwise empty database is fine.
"""

import asyncio
from datetime import date

from sqlalchemy import select

from services.finance import service as svc
from services.finance.config import FinanceSettings
from services.finance.models import plan, rate
from shared.activity_types import ACTIVITY_TYPES, CASE_QUALITY_REVIEW, PUBLIC_HEARING
from shared.db import Database

ACTOR = "demo"
REVIEWER = "demo-reviewer"  # the demo's second finance user (N-RATE approval of back-dated rates)
IN_FORCE = date(2024, 12, 1)  # R44.1: the measures apply from this date
DEFAULT_RATES_FEN = {t: 40_000 if t in (PUBLIC_HEARING, CASE_QUALITY_REVIEW) else 15_000 for t in ACTIVITY_TYPES}
OFFICES = {  # office -> district (None: the city procuratorate)
    "威海市人民检察院": None,
    "环翠区人民检察院": "环翠区",
    "文登区人民检察院": "文登区",
    "荣成市人民检察院": "荣成市",
    "乳山市人民检察院": "乳山市",
}
YEARS = (2026, 2027)
# planned activities per month of each type (city office; districts plan about half)
MONTHLY = {"public_hearing": 3, "court_support": 1, "circuit_inspection": 1, "case_quality_review": 1,
           "public_delivery": 2, "work_briefing": 1}
# R41.1: supervisors per activity of each type (subsidy is paid per supervisor)
SEATS = {"public_hearing": 3, "court_support": 2, "circuit_inspection": 2, "case_quality_review": 3,
         "public_delivery": 1, "work_briefing": 2}


def plan_rows(office_index: int, year: int) -> list[dict]:
    rows = []
    for month in range(1, 13):
        for activity_type, count in MONTHLY.items():
            planned = count if office_index == 0 else (count + month + office_index) // 2
            if month in (1, 2) and activity_type == "circuit_inspection":
                planned = 0  # no circuit inspections around the Spring Festival
            rows.append({"month": month, "activity_type": activity_type, "count": planned,
                         "seats": SEATS[activity_type]})
    return rows


async def seed(settings: FinanceSettings) -> dict[str, int]:
    counts = {"rates_created": 0, "plans_created": 0, "skipped": 0}
    db = Database(settings.database_url, pool_size=2)
    try:
        async with db.transaction() as session:
            for activity_type, amount in DEFAULT_RATES_FEN.items():
                exists = await session.scalar(select(rate.c.id).where(
                    rate.c.activity_type == activity_type, rate.c.effective_from == IN_FORCE).limit(1))
                if exists:
                    counts["skipped"] += 1
                    continue
                created = await svc.add_rate(session, actor=ACTOR, activity_type=activity_type, amount_fen=amount,
                                             effective_from=IN_FORCE)
                if created.status == "pending":  # N-RATE: a past date needs a second finance user
                    await svc.approve_rate(session, actor=REVIEWER, rate_id=created.id)
                counts["rates_created"] += 1
            for year in YEARS:
                for index, (office, district) in enumerate(OFFICES.items()):
                    exists = await session.scalar(select(plan.c.id).where(plan.c.year == year, plan.c.office == office))
                    if exists:
                        counts["skipped"] += 1
                        continue
                    await svc.put_plan(session, actor=ACTOR, year=year, office=office, district=district,
                                       rows=plan_rows(index, year))
                    counts["plans_created"] += 1
    finally:
        await db.dispose()
    return counts


def main() -> None:
    counts = asyncio.run(seed(FinanceSettings()))
    print(f"finance demo: {counts['rates_created']} rates and {counts['plans_created']} plans created, "
          f"{counts['skipped']} already present")


if __name__ == "__main__":
    main()
