"""`python -m services.appraisal.demo`: an open annual round of the year now due (R29.1: from its year end).

Goes through the service functions (audit record included). Idempotent: if that annual round exists,
nothing is added. The appraised are the active supervisors the registry's events have projected so far
(none on an empty database, which is fine: the round simply has no participants yet); a re-run adds the
supervisors projected since, while the round is still in its first step.
"""

import asyncio

from sqlalchemy import select

from services.appraisal import rules
from services.appraisal import service as svc
from services.appraisal.config import AppraisalSettings
from services.appraisal.models import appraisal_round
from shared import clock
from shared.db import Database

ACTOR = "demo"


def demo_year(settings: AppraisalSettings) -> int:
    """R29.1: the year whose annual appraisal is due today (this year from its year end, else last year)."""
    return rules.appraisal_year(clock.today(), settings.annual_round_opens())


async def seed(settings: AppraisalSettings) -> dict[str, int]:
    counts = {"rounds_created": 0, "skipped": 0, "participants_added": 0}
    year = demo_year(settings)
    db = Database(settings.database_url, pool_size=2)
    try:
        async with db.transaction() as session:
            exists = await session.scalar(select(appraisal_round.c.id).where(
                appraisal_round.c.kind == "annual", appraisal_round.c.year == year))
            if exists:
                counts["skipped"] += 1
                # supervisors projected since (the registry's demo events may arrive after the first run)
                if (await svc.get_round(session, exists)).state == "opened":
                    counts["participants_added"] += await svc.add_serving(session, actor=ACTOR, round_id=exists)
            else:
                await svc.open_round(session, settings, actor=ACTOR, kind="annual", year=year, term_start=None,
                                     term_end=None, supervisor_ids=None)
                counts["rounds_created"] += 1
    finally:
        await db.dispose()
    return counts


def main() -> None:
    counts = asyncio.run(seed(AppraisalSettings()))
    print(f"appraisal demo: {counts['rounds_created']} round(s) created, {counts['skipped']} already present")


if __name__ == "__main__":
    main()
