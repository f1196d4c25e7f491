"""`python -m services.registry.demo`: about 120 supervisors with terms and training history, one dismissed.

Everything goes through the service functions, so the outbox rows are written and the running
service's relay publishes the events. Idempotent: id numbers and session ids are deterministic
(seeded RNG, uuid5), and a supervisor whose id number is already registered is skipped.
"""

import asyncio
import random
import uuid
from datetime import date, timedelta

from sqlalchemy import exists, select

from services.registry import rules
from services.registry.appointments import service as appointments
from services.registry.config import RegistrySettings
from services.registry.dismissals import service as dismissals
from services.registry.models import platform, supervisor, training_session
from services.registry.roster import service as roster
from services.registry.schemas import (
    AppointmentCreate,
    DismissalCreate,
    SupervisorCreate,
    TrainingResult,
    TrainingSessionCreate,
)
from services.registry.training import service as training
from shared.crypto import FieldCipher
from shared.db import Database
from shared.events.outbox import Outbox

ACTOR = "demo"
COUNT = 120
UNTRAINED = 10
NAMESPACE = uuid.UUID("7d1c8f0e-4a8b-4e7e-9a53-2f0f3c0b1e01")
SURNAMES = ("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋"
            "蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭")
GIVEN = "建国志强秀英丽华明辉海燕晓东文静国庆淑珍卫东玉兰振华红梅立新春生桂芳永刚晓明雪梅德胜美玲宏伟"
REGION_CODES = {"环翠区": "371002", "文登区": "371003", "荣成市": "371082", "乳山市": "371083",
                "高区": "371071", "经区": "371072", "临港区": "371073"}
EMPLOYERS = ["威海市立医院", "山东大学（威海）", "威海市第一中学", "某会计师事务所", "某律师事务所", "某建筑设计院",
             "某银行威海分行", "某社区居委会", "某科技有限公司", "某环保科技公司"]
COHORTS = [date(2023, 3, 1), date(2024, 6, 3), date(2025, 9, 1)]


def person(rng: random.Random, index: int, districts: list[str], specialties: list[str]) -> SupervisorCreate:
    """A deterministic candidate: valid id number (GB 11643), mobile, district, specialties."""
    district = districts[index % len(districts)]
    born = date(1965, 1, 1) + timedelta(days=rng.randint(0, 365 * 30))
    first17 = f"{REGION_CODES.get(district, '371000')}{born:%Y%m%d}{index:03d}"
    given = "".join(rng.sample(GIVEN, rng.choice((1, 2))))
    return SupervisorCreate(
        name=rng.choice(SURNAMES) + given, id_number=first17 + rules.id_check_digit(first17),
        phone=f"13{rng.randint(5, 9)}{rng.randint(0, 99_999_999):08d}", district=district,
        employer=rng.choice(EMPLOYERS), recommending_body=f"{district}司法局",
        specialties=rng.sample(specialties, rng.choice((1, 1, 2))),
    )


async def ensure_session(db: Database, kind: str, fmt: str, held_on: date, title: str) -> uuid.UUID:
    session_id = uuid.uuid5(NAMESPACE, f"{kind}:{held_on}:{title}")
    async with db.transaction() as session:
        if not await session.scalar(select(exists().where(training_session.c.id == session_id))):
            await training.create_session(session, data=TrainingSessionCreate(
                kind=kind, format=fmt, title=title, held_on=held_on, hours=16 if kind == "initial" else 6),
                actor=ACTOR, session_id=session_id)
    return session_id


async def seed(settings: RegistrySettings) -> dict[str, int]:
    db = Database(settings.database_url, pool_size=2)
    cipher = FieldCipher.from_settings(settings.field_encryption_key.get_secret_value(),
                                       settings.field_hash_key.get_secret_value())
    outbox = Outbox(platform.outbox, source="registry", cipher=cipher)  # appointments carry names
    rng = random.Random(20241201)
    counts = {"created": 0, "skipped": 0}
    try:
        async with db.transaction() as session:
            specialties = [r["name"] for r in await roster.specialties(session, include_inactive=False)]
        initial = {c: await ensure_session(db, "initial", "lecture", c + timedelta(days=30), f"{c.year}年度初任培训")
                   for c in COHORTS}
        annual = {y: await ensure_session(db, "annual", fmt, date(y, 11, 15), f"{y}年度集中培训")
                  for y, fmt in ((2024, "seminar"), (2025, "case_teaching"))}
        dismissed_index = 7
        for index in range(COUNT):
            data = person(rng, index, list(settings.districts), specialties or list(settings.default_specialties))
            cohort = COHORTS[index % len(COHORTS)]
            async with db.transaction() as session:
                if await session.scalar(select(exists().where(
                        supervisor.c.id_number_hash == roster.id_hash(cipher, data.id_number)))):
                    counts["skipped"] += 1
                    continue
                row = await roster.create(session, cipher=cipher, settings=settings, data=data, actor=ACTOR)
                await appointments.appoint(
                    session, outbox=outbox, settings=settings, supervisor_id=row["id"], actor=ACTOR,
                    data=AppointmentCreate(decision_no=f"威司任〔{cohort.year}〕{index + 1}号", decision_date=cohort))
                untrained = cohort == COHORTS[-1] and index >= COUNT - 3 * UNTRAINED
                if not untrained:
                    await training.record_results(session, outbox=outbox, session_id=initial[cohort], actor=ACTOR,
                                                  results=[TrainingResult(supervisor_id=row["id"], attended=True,
                                                                          exam_passed=True)])
                    for year, session_id in annual.items():
                        if year > cohort.year and index % 3 == 0:
                            await training.record_results(
                                session, outbox=outbox, session_id=session_id, actor=ACTOR,
                                results=[TrainingResult(supervisor_id=row["id"], attended=True)])
                if index == dismissed_index:
                    await dismissals.dismiss(
                        session, outbox=outbox, settings=settings, supervisor_id=row["id"], actor=ACTOR,
                        data=DismissalCreate(ground=rules.DismissalGround.LOST_NATIONALITY,
                                             evidence_note="公安机关出具的国籍变更证明"))
                counts["created"] += 1
    finally:
        await db.dispose()
    return counts


def main() -> None:
    counts = asyncio.run(seed(RegistrySettings()))
    print(f"registry demo: {counts['created']} supervisors created, {counts['skipped']} already present")


if __name__ == "__main__":
    main()
