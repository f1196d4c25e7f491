"""`python -m services.appraisal.demo`: an open 2026 annual round (R29.1).

Goes through the service functions (audit record included). Idempotent: if the 2026 annual round exists,
nothing is added. The appraised are the active supervisors the registry's events have projected so far
(none on an empty database, which is fine: the round simply has no participants yet); a re-run adds the
supervisors projected since, while the round is still in its first step.
"""

import asyncio

from sqlalchemy import select

from services.appraisal import service as svc
from services.appraisal.config import AppraisalSettings
from services.appraisal.models import appraisal_round
from shared.db import Database

ACTOR = "demo"
YEAR = 2026


async def seed(settings: AppraisalSettings) -> dict[str, int]:
    counts = {"rounds_created": 0, "skipped": 0, "participants_added": 0}
    db = Database(settings.database_url, pool_size=2)
    try:
        async with db.transaction() as session:
            exists = await session.scalar(select(appraisal_round.c.id).where(
                appraisal_round.c.kind == "annual", appraisal_round.c.year == YEAR))
            if exists:
                counts["skipped"] += 1
                # supervisors projected since (the registry's demo events may arrive after the first run)
                if (await svc.get_round(session, exists)).state == "opened":
                    counts["participants_added"] += await svc.add_serving(session, actor=ACTOR, round_id=exists)
            else:
                await svc.open_round(session, actor=ACTOR, kind="annual", year=YEAR, term_start=None, term_end=None,
                                     supervisor_ids=None)
                counts["rounds_created"] += 1
    finally:
        await db.dispose()
    return counts


def main() -> None:
    counts = asyncio.run(seed(AppraisalSettings()))
    print(f"appraisal demo: {counts['rounds_created']} round(s) created, {counts['skipped']} already present")


if __name__ == "__main__":
    main()
