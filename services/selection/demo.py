"""`python -m services.selection.demo`: two requests the bureau recorded, drawn, if the pool has people.

Each is recorded as the bureau records a paper request (no procuratorate nonce), so its acceptance
names a beacon; the demo enters a stand-in value for it, and the draw runs (DRAW.md protocol).

The pool itself arrives from the registry's events; this waits a little for them (the registry's
demo runs just before), and skips quietly when the pool is still empty. Idempotent: the request
ids are fixed (uuid5), so a re-run finds them and adds nothing.
"""

import asyncio
import uuid
from datetime import datetime, time, timedelta

from sqlalchemy import select

from services.selection.config import SelectionSettings
from services.selection.models import platform, supervisor
from services.selection.pool import service as pool
from services.selection.requests import service as requests
from shared.activity_types import CASE_QUALITY_REVIEW, PUBLIC_HEARING
from shared.calendar import WorkingCalendar
from shared.clock import SHANGHAI
from shared.db import Database
from shared.events.outbox import Outbox

NAMESPACE = uuid.UUID("5e1ec7a0-0000-4000-8000-000000000001")
DEMO = [("demo-request-1", PUBLIC_HEARING, 3), ("demo-request-2", CASE_QUALITY_REVIEW, 2)]  # N-ACT codes


async def load(settings: SelectionSettings, *, wait_seconds: float = 15.0) -> int:
    """Create the demo requests; returns how many were new."""
    db = Database(settings.database_url, pool_size=2)
    calendar = WorkingCalendar()
    outbox = Outbox(platform.outbox, source="selection")
    created = 0
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while True:
            async with db.transaction() as session:
                size = await pool.pool_size(session)
                district = await session.scalar(select(supervisor.c.district).where(
                    supervisor.c.eligible, supervisor.c.dismissed.is_(False)).order_by(supervisor.c.id).limit(1))
            if size or loop.time() > deadline:
                break
            await asyncio.sleep(1)
        if not size:
            print("selection demo: the pool is empty (no registry events yet); nothing to do")
            return 0
        today = datetime.now(SHANGHAI).date()
        for key, activity_type, seats in DEMO:
            day = calendar.add_working_days(today, 7).value
            starts = datetime.combine(day, time(9), tzinfo=SHANGHAI)
            data = {
                "request_id": uuid.uuid5(NAMESPACE, key), "activity_id": uuid.uuid5(NAMESPACE, key + "-activity"),
                "case_ref": f"威检{key}", "activity_type": activity_type, "office": "威海市人民检察院",
                "district": district, "starts_at": starts, "ends_at": starts + timedelta(hours=3),
                "place": "威海市人民检察院听证室", "seats": seats,
            }
            async with db.transaction() as session:
                row, new = await requests.submit(session, outbox=outbox, calendar=calendar, settings=settings,
                                                 data=data, via="http", actor="demo")
                if row.status == "accepted" and row.beacon and row.beacon.get("value") is None:
                    await requests.enter_beacon(session, outbox=outbox, settings=settings, request_id=row.id,
                                                value=f"演示用开奖号码 {key}", actor="demo")
            created += int(new)
        print(f"selection demo: {created} request(s) drawn over a pool of {size}")
        return created
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(load(SelectionSettings()))
