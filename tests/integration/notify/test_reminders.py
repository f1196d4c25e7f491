"""Reminders from every service's GET /deadlines (shared/deadlines.py), read over HTTP with the service token:
a day before, on the due day, and once overdue, each once (idempotent on rule + subject + due day + kind), to
the roles who act (a district's items to that district's staff; R35.1's defence window to the supervisor
themself). A service without GET /deadlines (404) or unreachable is skipped."""

import uuid
from datetime import date, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from services.notify.app import deadline_fetch, reminder_job
from shared import clock
from shared.deadlines import Deadline, DeadlineQuery, deadlines_router
from shared.errors import install_problem_handlers
from tests.integration.notify.conftest import supervisor_token
from tests.integration.notify.test_inbox import inbox
from tests.support.apps import bearer

TODAY = date(2027, 3, 10)  # a Wednesday; the clock is frozen at 09:00 Shanghai of the day under test


def deadline_source(notify_app: FastAPI, items: list[Deadline]) -> FastAPI:
    """A service's GET /deadlines as every service mounts it (shared.deadlines), over these items."""
    async def compute(session, query: DeadlineQuery):
        return items

    source = FastAPI()
    source.state.token_verifier = notify_app.state.token_verifier
    source.state.db = notify_app.state.db
    install_problem_handlers(source)
    source.include_router(deadlines_router(compute))
    return source


async def messages_about(app, subject_id: str) -> list:
    async with app.state.db.transaction() as session:
        return list((await session.execute(text(
            "SELECT kind, role, district, supervisor_id, rule, urgent FROM notify.message WHERE subject_id = :s "
            "ORDER BY kind, role NULLS FIRST"), {"s": subject_id})).all())


async def test_r20_1_r35_1_reminders_a_day_before_on_the_day_and_once_overdue(notify) -> None:
    app, client = notify
    tag = uuid.uuid4().hex[:8]
    supervisor_id = uuid.uuid4()
    tomorrow = Deadline(rule="R20.1", kind="transmittal_due", title="移送材料", subject_type="activity",
                        subject_id=f"a-{tag}", district="环翠区", roles=["district_bureau", "bureau_admin"],
                        due_on=TODAY + timedelta(days=1))
    today = Deadline(rule="R42.1", kind="lines_to_approve", title="补助待审批", subject_type="line",
                     subject_id=f"l-{tag}", roles=["finance"], due_on=TODAY)
    late = Deadline(rule="R22.1", kind="opinion_reply_due", title="意见答复", subject_type="activity",
                    subject_id=f"o-{tag}", district="文登区", roles=["procuratorate"], due_on=TODAY - timedelta(days=3))
    defence = Deadline(rule="R35.1", kind="defence_window_ends", title="考核拟定不合格告知书的陈述申辩期届满",
                       subject_type="participant", subject_id=f"{uuid.uuid4()}/{supervisor_id}", district="环翠区",
                       roles=["supervisor", "bureau_admin"], due_on=TODAY + timedelta(days=1))
    appraisal = deadline_source(app, [tomorrow, today, late, defence])
    without = FastAPI()  # a service that has no GET /deadlines yet: 404, skipped
    original = app.state.settings
    app.state.settings = original.model_copy(update={"deadline_services": ["registry", "appraisal", "nowhere"]})
    app.state.service_transports = {"appraisal": httpx.ASGITransport(app=appraisal),
                                    "registry": httpx.ASGITransport(app=without)}
    app.state.deadline_fetch = deadline_fetch(app, app.state.settings)
    try:
        with clock.frozen(datetime(2027, 3, 10, 9, 0, tzinfo=clock.SHANGHAI)):
            first = await reminder_job(app)
            again = await reminder_job(app)  # the same day again (another period, another replica): nothing new
        assert first["appraisal"] == 6 and again["appraisal"] == 0
        assert "registry" not in first and "nowhere" not in first  # 404 and unreachable: skipped
        assert [(m.kind, m.role, m.district) for m in await messages_about(app, tomorrow.subject_id)] == [
            ("deadline_day_before", "bureau_admin", None), ("deadline_day_before", "district_bureau", "环翠区")]
        assert [(m.kind, m.role) for m in await messages_about(app, today.subject_id)] == [
            ("deadline_due_day", "finance")]
        assert [(m.kind, m.role, m.district, m.urgent) for m in await messages_about(app, late.subject_id)] == [
            ("deadline_overdue", "procuratorate", "文登区", True)]
        # R35.1: the 告知书's defence window reaches the supervisor themself (and the bureau)
        own = await inbox(client, supervisor_token(supervisor_id))
        assert [(i["kind"], i["rule"]) for i in own["items"]] == [("deadline_day_before", "R35.1")]
        district_staff = bearer("district_bureau", subject="hc", district="环翠区")
        staff = await inbox(client, district_staff, kind="deadline_day_before")
        assert any(i["subject_id"] == tomorrow.subject_id for i in staff["items"])
        # the next day: what was due tomorrow is due today (a new reminder); the overdue one is not told again
        with clock.frozen(datetime(2027, 3, 11, 9, 0, tzinfo=clock.SHANGHAI)):
            next_day = await reminder_job(app)
        assert [m.kind for m in await messages_about(app, tomorrow.subject_id)] == [
            "deadline_day_before", "deadline_day_before", "deadline_due_day", "deadline_due_day"]
        assert len(await messages_about(app, late.subject_id)) == 1
        assert len(await messages_about(app, today.subject_id)) == 2  # due day, then overdue once
        assert next_day["appraisal"] == 2 + 1 + 2  # tomorrow's two due-day, today's overdue, defence's two due-day
    finally:
        app.state.settings = original
        app.state.service_transports = {}
        app.state.deadline_fetch = deadline_fetch(app, original)
