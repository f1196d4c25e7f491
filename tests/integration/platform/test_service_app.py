"""The service app factory: problem+json everywhere, commit before the answer, health, readiness, metrics."""

import asyncio

import pytest
from sqlalchemy import func, select, text

from shared.db.migrations import upgrade
from shared.devstack import infra
from shared.settings import CommonSettings
from tests.support.apps import bearer, service_settings
from tests.support.apps import running as running_app
from tests.support.sample_service import app as sample_app
from tests.support.sample_service import migrations_dir
from tests.support.sample_service.models import note, platform


def settings_for(settings_env: dict[str, str], **overrides) -> CommonSettings:
    return service_settings(settings_env, **overrides)


def running(settings: CommonSettings):
    return running_app(sample_app.build(settings))


@pytest.fixture(scope="module")
def migrated(database_url: str) -> None:
    upgrade(migrations_dir, database_url)


ADMIN = bearer("bureau_admin", subject="u1")


async def count(app, table) -> int:
    async with app.state.db.transaction() as session:
        return await session.scalar(select(func.count()).select_from(table))


async def test_validation_errors_are_problem_json_in_chinese_and_change_nothing(migrated, settings_env):
    async with running(settings_for(settings_env)) as (app, client):
        before = await count(app, note)
        for body in ({"text": ""}, {"text": 5}, {"nope": 1}, "not an object"):
            response = await client.post("/notes", json=body, headers=ADMIN)
            assert response.status_code == 422
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert problem["code"] == "validation_error"
            assert problem["title"] == "请求数据校验失败"
            assert problem["errors"]
        json_header = {**ADMIN, "content-type": "application/json"}
        broken = await client.post("/notes", content=b"{broken", headers=json_header)
        assert broken.status_code == 422
        assert await count(app, note) == before


async def test_unknown_route_wrong_method_and_missing_token_are_problem_json(migrated, settings_env):
    async with running(settings_for(settings_env)) as (_, client):
        for response, status, code in (
            (await client.get("/nowhere"), 404, "not_found"),
            (await client.delete("/notes"), 405, "method_not_allowed"),
            (await client.post("/notes", json={"text": "x"}), 401, "unauthenticated"),
        ):
            assert response.status_code == status
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == code


async def test_an_unexpected_error_is_a_500_problem_without_internals(migrated, settings_env):
    async with running(settings_for(settings_env)) as (_, client):
        response = await client.get("/boom")
        assert response.status_code == 500
        assert response.json()["code"] == "internal_error"
        assert "secret internal detail" not in response.text
        assert "Traceback" not in response.text


async def test_a_refused_request_rolls_back_its_rows_and_its_events(migrated, settings_env):
    async with running(settings_for(settings_env)) as (app, client):
        notes, events = await count(app, note), await count(app, platform.outbox)
        response = await client.post("/notes", json={"text": "refused-one", "refuse": True}, headers=ADMIN)
        assert response.status_code == 409
        assert response.json()["code"] == "sample_refused"
        assert (await count(app, note), await count(app, platform.outbox)) == (notes, events)


async def test_success_is_answered_only_after_the_commit(migrated, settings_env, unique_name):
    async with running(settings_for(settings_env)) as (_, client):
        created = await client.post("/notes", json={"text": unique_name}, headers=ADMIN)
        assert created.status_code == 201
        assert unique_name in (await client.get("/notes")).json()
        # The unique constraint is deferred: the duplicate fails only at COMMIT. If the commit ran
        # after the response, the client would have been told 201 for a row that does not exist.
        duplicate = await client.post("/notes", json={"text": unique_name}, headers=ADMIN)
        assert duplicate.status_code == 409
        assert duplicate.json()["code"] == "conflict"
        assert (await client.get("/notes")).json().count(unique_name) == 1


async def test_correlation_id_is_echoed_and_stored_with_the_event(migrated, settings_env, unique_name):
    async with running(settings_for(settings_env)) as (app, client):
        headers = {**ADMIN, "X-Correlation-ID": "corr-" + unique_name}
        response = await client.post("/notes", json={"text": unique_name}, headers=headers)
        assert response.headers["x-correlation-id"] == "corr-" + unique_name
        async with app.state.db.transaction() as session:
            found = await session.scalar(
                select(func.count()).select_from(platform.outbox)
                .where(platform.outbox.c.envelope["correlation_id"].astext == "corr-" + unique_name)
            )
        assert found == 1


async def test_health_readiness_and_metrics(migrated, settings_env):
    async with running(settings_for(settings_env)) as (_, client):
        assert (await client.get("/healthz")).json()["status"] == "ok"
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": True, "broker": True}
        await client.get("/notes")
        metrics = (await client.get("/metrics")).text
        labels = 'method="GET",route="/notes",service="sample",status="200"'
        assert f"http_request_duration_seconds_count{{{labels}}}" in metrics
        assert "outbox_backlog" in metrics


async def test_readiness_fails_when_the_broker_is_unreachable_but_requests_are_still_accepted(
    migrated, settings_env, unique_name
):
    dead_broker = f"127.0.0.1:{infra.free_port()}"
    async with running(settings_for(settings_env, kafka_bootstrap_servers=dead_broker)) as (app, client):
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": True, "broker": False}
        # the broker being down never fails a request: the event waits in the outbox
        created = await client.post("/notes", json={"text": unique_name}, headers=ADMIN)
        assert created.status_code == 201
        await asyncio.sleep(0.2)
        async with app.state.db.transaction() as session:
            waiting = await session.scalar(text(
                "SELECT count(*) FROM sample.outbox_event WHERE published_at IS NULL"
            ))
        assert waiting >= 1


async def test_bureau_loads_a_new_year_and_answers_stop_being_provisional(migrated, settings_env):
    # a year no other test uses: the load is published to every service listening on the broker
    async with running(settings_for(settings_env)) as (app, client):
        params = {"from": "2094-09-30", "to": "2094-10-08"}
        before = (await client.get("/calendar/working-days-between", params=params, headers=ADMIN)).json()
        assert before["provisional"] is True and before["note"] == "calendar: provisional"
        notice = {"holidays": [f"2094-10-0{d}" for d in range(1, 8)], "makeup_workdays": ["2094-10-09"],
                  "source": "国办发明电〔2026〕99号（测试）"}
        district = bearer("district_bureau", subject="d", district="环翠区")
        assert (await client.put("/calendar/years/2094", json=notice, headers=district)).status_code == 403
        bad = {**notice, "makeup_workdays": ["2094-10-11"]}  # a Monday cannot be a make-up day
        refused = await client.put("/calendar/years/2094", json=bad, headers=ADMIN)
        assert refused.status_code == 422 and refused.json()["code"] == "calendar_invalid"

        loaded = await client.put("/calendar/years/2094", json=notice, headers=ADMIN)
        assert loaded.json() == {"year": 2094, "status": "loaded"}
        # staged for every other service in the same transaction (they apply it: tests/e2e)
        async with app.state.db.transaction() as session:
            staged = (await session.execute(select(platform.outbox.c.envelope).where(
                platform.outbox.c.envelope["type"].astext == "CalendarYearPublished",
                platform.outbox.c.envelope["subject"].astext == "2094"))).scalars().all()
        assert [e["data"]["holidays"] for e in staged] == [notice["holidays"]]
        assert staged[0]["data"]["makeup_workdays"] == ["2094-10-09"] and staged[0]["data"]["loaded_by"] == "u1"
        after = (await client.get("/calendar/working-days-between", params=params, headers=ADMIN)).json()
        assert after == {"value": 1, "provisional": False, "provisional_years": [], "note": None}
        years = await client.get("/calendar/years/2094", headers=ADMIN)
        assert years.json()["status"] == "loaded"
    # a fresh app (another replica, or a restart) knows the year from the database
    async with running(settings_for(settings_env)) as (_, client):
        await asyncio.sleep(0.3)
        assert (await client.get("/calendar/years/2094", headers=ADMIN)).json()["status"] == "loaded"


async def test_text_postgresql_cannot_store_is_a_422_not_a_500(migrated, settings_env):
    async with running(settings_for(settings_env)) as (_, client):
        response = await client.post("/notes", json={"text": "nul\u0000byte"}, headers=ADMIN)
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_data"


async def test_working_days_past_the_last_representable_date_is_a_422_not_a_500(migrated, settings_env):
    async with running(settings_for(settings_env)) as (_, client):
        response = await client.get("/calendar/add-working-days", params={"date": "9999-12-30", "days": 5},
                                    headers=ADMIN)
        assert response.status_code == 422 and response.json()["code"] == "date_out_of_range"
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_running_service_keeps_its_start_up_heap_out_of_full_collections(migrated, settings_env):
    """gc.freeze() after start-up: a full collection then skips the long-lived objects (no 100 ms pauses)."""
    import gc

    async with running(settings_for(settings_env)) as (_, client):
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # modules, models, routes: the long-lived heap
        assert (await client.get("/healthz")).status_code == 200
    assert gc.get_freeze_count() == 0  # unfrozen at shutdown, so a test process does not keep growing it
