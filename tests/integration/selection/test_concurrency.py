"""Concurrency: parallel draws and confirmations never double-book; parallel replays and beacons make one draw."""

import asyncio
import uuid

from sqlalchemy import func, select

from services.selection.models import booking, draw
from tests.integration.selection.conftest import (
    ADMIN,
    appoint,
    attempts_for,
    fake_contact,
    overridden_settings,
    request_body,
    window_of,
)
from tests.support.apps import bearer
from tests.support.fuzz import assert_no_server_errors


async def test_r11_1_parallel_draws_and_confirmations_never_book_one_person_twice(svc, unique_name):
    app, client = svc
    people = await appoint(app, unique_name, unique_name, 4)
    # 20 requests whose windows all overlap (09:00-12:00 .. 10:35-13:35 on the same day)
    bodies = [request_body(unique_name, unique_name, seats=1, hour=9) for _ in range(20)]
    for i, body in enumerate(bodies):
        body["starts_at"] = body["starts_at"].replace("T09:00", f"T{9 + i // 12:02d}:{(i * 5) % 60:02d}")
    with overridden_settings(app, local_share=1.0):
        responses = await asyncio.gather(*[client.post("/requests", json=b, headers=ADMIN) for b in bodies])
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses if r.status_code != 201]
    # the 20 draws run at once: each when its beacon value is entered
    responses = await asyncio.gather(*[client.put(f"/requests/{b['request_id']}/beacon", json={"value": str(i)},
                                                  headers=ADMIN) for i, b in enumerate(bodies)])
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    views = [r.json() for r in responses]

    async def confirm_all_windows() -> list[int]:
        calls = []
        for view in views:
            for sid in window_of(view):
                calls.append(client.post(f"/draws/{view['draws'][-1]['draw_id']}/contacts", headers=ADMIN,
                                         json={"supervisor_id": sid, "outcome": "confirmed",
                                               "attempts": attempts_for("confirmed")}))
        return [r.status_code for r in await asyncio.gather(*calls)]

    statuses = await confirm_all_windows()
    assert set(statuses) <= {200, 409}
    assert statuses.count(200) <= len(people)
    async with app.state.db.transaction() as session:
        per_person = dict((await session.execute(
            select(booking.c.supervisor_id, func.count()).where(
                booking.c.supervisor_id.in_(people), booking.c.active).group_by(booking.c.supervisor_id))).all())
    assert all(n == 1 for n in per_person.values()), per_person
    assert len(per_person) == statuses.count(200) >= 1
    # and the receipt chain stayed intact under concurrent draws
    for view in views[-3:]:
        verified = (await client.get(f"/draws/{view['draws'][0]['draw_id']}/verify", headers=ADMIN)).json()
        assert verified["ok"], verified


async def test_r11_1_parallel_replays_of_one_request_make_one_draw(svc, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 3)
    body = request_body(unique_name, unique_name, seats=1)
    responses = await asyncio.gather(*[client.post("/requests", json=body, headers=ADMIN) for _ in range(8)])
    assert sorted(r.status_code for r in responses).count(201) == 1
    assert {r.status_code for r in responses} <= {200, 201}
    url = f"/requests/{body['request_id']}/beacon"
    entered = await asyncio.gather(*[client.put(url, json={"value": str(i)}, headers=ADMIN) for i in range(4)])
    assert sorted(r.status_code for r in entered) == [200, 409, 409, 409]
    async with app.state.db.transaction() as session:
        n = await session.scalar(select(func.count()).select_from(draw).where(
            draw.c.request_id == uuid.UUID(body["request_id"])))
    assert n == 1


def test_selection_api_answers_no_5xx_to_generated_requests(selection_migrated, settings_env):
    from services.selection.app import build
    from tests.integration.selection.conftest import selection_settings

    app = build(selection_settings(settings_env), consume=False)
    app.state.contact_lookup = fake_contact
    assert assert_no_server_errors(app, bearer("bureau_admin"), max_examples=15) > 50
