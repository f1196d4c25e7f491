"""`python -m services.casework.demo`: one hearing of the city procuratorate with a supervision request.

Everything goes through the service functions (outbox + audit included), so the request (8 working days
ahead, so R10.1 passes) flows on to selection through the broker with its nonce commitment. Idempotent: an
activity with the demo case reference is left alone. Needs only the migrated casework schema; an otherwise
empty database is fine.
"""

import asyncio
from datetime import datetime, time, timedelta

from sqlalchemy import select

from services.casework import service as svc
from services.casework.config import CaseworkSettings
from services.casework.models import activity, platform
from shared import clock
from shared.auth import Principal, Role
from shared.calendar import WorkingCalendar
from shared.crypto import FieldCipher
from shared.db import Database
from shared.events.outbox import Outbox

CASE_REF = "威检刑不诉〔2026〕示例1号"
DISTRICT = "环翠区"
OFFICE = "威海市人民检察院"
DEMO = Principal(subject="demo", name="演示", roles=frozenset({Role.PROCURATORATE}), district=DISTRICT, office=OFFICE)


async def seed(settings: CaseworkSettings, *, calendar: WorkingCalendar | None = None) -> dict[str, int]:
    calendar = calendar or WorkingCalendar()
    cipher = FieldCipher.from_settings(settings.field_encryption_key.get_secret_value(),
                                       settings.field_hash_key.get_secret_value())
    counts = {"activities_created": 0, "requests_created": 0, "skipped": 0}
    db = Database(settings.database_url, pool_size=2)
    try:
        async with db.transaction() as session:
            if await session.scalar(select(activity.c.id).where(activity.c.case_ref == CASE_REF).limit(1)):
                counts["skipped"] += 1
                return counts
            today = clock.today()
            day = calendar.add_working_days(today, 8).value
            starts = datetime.combine(day, time(9, 30), tzinfo=clock.SHANGHAI)
            act = await svc.create_activity(session, principal=DEMO, data={
                "case_ref": CASE_REF, "activity_type": "public_hearing", "other_description": None,
                "hearing_matter": "intended_non_prosecution",
                "mandatory_invitation": None, "office": OFFICE, "district": DISTRICT, "starts_at": starts,
                "ends_at": starts + timedelta(hours=2), "place": "威海市人民检察院听证室",
                "summary": "拟不起诉案件公开听证：听取人民监督员、当事人及辩护人意见。"})
            counts["activities_created"] += 1
            row = await svc.require_activity(session, act["id"])
            await svc.request_supervision(session, outbox=Outbox(platform.outbox, source="casework"),
                                          cipher=cipher, calendar=calendar, act=row, principal=DEMO,
                                          data={"seats": 3, "specialty": None, "conflict_parties": [],
                                                "short_notice": None})
            counts["requests_created"] += 1
    finally:
        await db.dispose()
    return counts


def main() -> None:
    counts = asyncio.run(seed(CaseworkSettings()))
    print(f"casework demo: {counts['activities_created']} activity and {counts['requests_created']} request "
          f"created, {counts['skipped']} already present")


if __name__ == "__main__":
    main()
