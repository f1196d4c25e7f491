"""Roster CRUD, validation (problem+json), authorization, personal data at rest (R2.1, R3.1)."""

import uuid

from sqlalchemy import func, select, text

from services.registry.models import platform
from shared import clock
from tests.support.apps import bearer
from tests.support.registry_helpers import (
    ADMIN,
    appointed,
    create,
    new_id_number,
    supervisor_body,
    trained,
)

PROBLEM = "application/problem+json"


def assert_no_id_rebuild(response_text: str, id_number: str) -> None:
    """R3.1: neither the id nor its birth-date digits (7-14, in any date form) appear anywhere in the answer."""
    born = id_number[6:14]
    assert id_number not in response_text
    assert born not in response_text
    assert f"{born[:4]}-{born[4:6]}-{born[6:]}" not in response_text


async def test_r3_1_create_read_update_masks_the_id_and_the_birth_date(client):
    body = supervisor_body(specialties=["法律", "金融"], district="文登区")
    response = await client.post("/supervisors", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "candidate"
    assert created["eligible"] is False
    number = body["id_number"]
    assert created["id_number"] == number[:6] + "*" * 8 + number[14:]
    assert created["birth_date"] is None  # digits 7-14 beside the masked id would rebuild it
    assert_no_id_rebuild(response.text, number)
    assert "*" in created["phone"] and body["phone"] not in response.text
    read = await client.get(f"/supervisors/{created['id']}", headers=ADMIN)
    assert read.json()["name"] == body["name"] and read.json()["specialties"] == ["法律", "金融"]
    assert_no_id_rebuild(read.text, number)
    patched = await client.patch(f"/supervisors/{created['id']}", headers=ADMIN,
                                 json={"employer": "新单位", "specialties": ["医学"], "district": "荣成市"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["employer"] == "新单位" and patched.json()["district"] == "荣成市"
    assert_no_id_rebuild(patched.text, number)
    # the audited unmasked read (bureau_admin) is the one view with the birth date, beside the full id
    unmasked = (await client.get(f"/supervisors/{created['id']}?unmasked=true", headers=ADMIN)).json()
    assert unmasked["id_number"] == number
    assert unmasked["birth_date"] == f"{number[6:10]}-{number[10:12]}-{number[12:14]}"


async def test_r3_1_no_masked_view_rebuilds_the_id(client):
    body = supervisor_body(district="乳山市")
    sup = await trained(client, **body)
    number = body["id_number"]
    readers = [ADMIN, bearer("auditor"), bearer("district_bureau", district="乳山市"),
               bearer("supervisor", supervisor_id=sup["id"]), bearer("service", subject="selection")]
    for headers in readers:
        for url in (f"/supervisors/{sup['id']}", f"/supervisors/{sup['id']}/appointments",
                    f"/supervisors/{sup['id']}/training", f"/supervisors/{sup['id']}/change-reports"):
            response = await client.get(url, headers=headers)
            assert response.status_code == 200, (url, response.text)
            assert_no_id_rebuild(response.text, number)
    for url in ("/supervisors?district=乳山市&limit=200", "/supervisors/eligible?district=乳山市&limit=200"):
        response = await client.get(url, headers=ADMIN)
        assert response.status_code == 200
        assert_no_id_rebuild(response.text, number)


async def audits_of(app, subject: str, action: str) -> list[dict]:
    async with app.state.db.transaction() as session:
        rows = (await session.execute(select(platform.audit.c.actor, platform.audit.c.details).where(
            platform.audit.c.subject == subject, platform.audit.c.action == action))).all()
    return [{"actor": a, "details": d} for a, d in rows]


async def test_r3_1_every_read_of_personal_data_is_audited(client, app):
    body = supervisor_body(district="经区")
    sup = await create(client, **body)
    subject = f"supervisor:{sup['id']}"
    readers = {"auditor-7": bearer("auditor", subject="auditor-7"),
               "district-7": bearer("district_bureau", subject="district-7", district="经区"),
               "self-7": bearer("supervisor", subject="self-7", supervisor_id=sup["id"])}
    for headers in readers.values():
        assert (await client.get(f"/supervisors/{sup['id']}", headers=headers)).status_code == 200
    reads = await audits_of(app, subject, "supervisor.read")
    assert sorted(r["actor"] for r in reads) == sorted(readers)
    assert all("id_number_masked" in r["details"]["fields"] for r in reads)
    for what in ("appointments", "training", "change_reports"):
        url = f"/supervisors/{sup['id']}/{what.replace('_', '-')}"
        assert (await client.get(url, headers=readers["self-7"])).status_code == 200
        assert [r["actor"] for r in await audits_of(app, subject, f"supervisor.read_{what}")] == ["self-7"]
    # a refused read shows nothing and is not a read
    other = bearer("district_bureau", subject="district-8", district="高区")
    assert (await client.get(f"/supervisors/{sup['id']}", headers=other)).status_code == 403
    assert len(await audits_of(app, subject, "supervisor.read")) == 3
    # no values in the log: neither the id, its birth date, the phone nor the name
    async with app.state.db.transaction() as session:
        logged = " ".join(str(v) for v in (await session.execute(
            select(platform.audit.c.details).where(platform.audit.c.subject == subject))).scalars())
    for secret in (body["id_number"], body["id_number"][6:14], body["phone"], body["name"]):
        assert secret not in logged


async def test_bad_id_number_is_problem_json(client):
    for bad in ("371002197501011230", "37100219750101123", "371002197513011231"):
        response = await client.post("/supervisors", json=supervisor_body(id_number=bad), headers=ADMIN)
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == "invalid_id_number"


async def test_bad_phone_unknown_district_unknown_specialty(client):
    for overrides, code in (({"phone": "12345"}, "invalid_phone"), ({"district": "青岛市"}, "unknown_district"),
                            ({"specialties": ["占卜"]}, "unknown_specialty"), ({"gender": "male", "id_number":
                            "11010519491231002X"}, "id_number_mismatch")):
        response = await client.post("/supervisors", json=supervisor_body(**overrides), headers=ADMIN)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == code
        assert response.json()["detail"]


async def test_duplicate_id_number_is_409(client):
    number = new_id_number()
    await create(client, id_number=number)
    response = await client.post("/supervisors", json=supervisor_body(id_number=number.lower()), headers=ADMIN)
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_id_number"


async def test_unknown_supervisor_is_404(client):
    response = await client.get(f"/supervisors/{uuid.uuid4()}", headers=ADMIN)
    assert response.status_code == 404 and response.headers["content-type"] == PROBLEM


async def test_r3_1_database_never_holds_plaintext_id_number_or_phone(client, app):
    body = supervisor_body()
    created = await create(client, **body)
    await client.patch(f"/supervisors/{created['id']}", headers=ADMIN, json={"phone": "13700001111"})
    async with app.state.db.transaction() as session:
        row = (await session.execute(text("SELECT * FROM registry.supervisor WHERE id = :id"),
                                     {"id": created["id"]})).mappings().one()
        dump = " ".join(str(v) for v in row.values())
        outbox = " ".join((await session.execute(text(
            "SELECT envelope::text FROM registry.outbox_event WHERE key = :k"), {"k": created["id"]})).scalars())
    for secret in (body["id_number"], body["phone"], "13700001111"):
        assert secret not in dump
        assert secret not in outbox
    assert row["id_number_encrypted"].startswith("v1.")
    assert row["phone_encrypted"].startswith("v1.")
    # R3.1: the birth date (digits 7-14) is not kept beside the masked id: together they are the id
    assert row["birth_date"] is None
    assert row["id_number_masked"] == body["id_number"][:6] + "*" * 8 + body["id_number"][14:]
    assert body["id_number"][6:14] not in dump


async def test_r3_1_unmasked_read_is_admin_only_and_audited(client, app):
    body = supervisor_body()
    created = await create(client, **body)
    subject = f"supervisor:{created['id']}"

    async def audits(action: str) -> int:
        async with app.state.db.transaction() as session:
            return await session.scalar(select(func.count()).select_from(platform.audit).where(
                platform.audit.c.subject == subject, platform.audit.c.action == action))

    assert await audits("supervisor.read_unmasked") == 0
    response = await client.get(f"/supervisors/{created['id']}?unmasked=true", headers=ADMIN)
    assert response.json()["id_number"] == body["id_number"] and response.json()["phone"] == body["phone"]
    assert await audits("supervisor.read_unmasked") == 1
    refused = await client.get(f"/supervisors/{created['id']}?unmasked=true", headers=bearer("auditor"))
    assert refused.status_code == 403
    contact = await client.get(f"/supervisors/{created['id']}/contact", headers=bearer("service", subject="selection"))
    assert contact.status_code == 200 and contact.json()["phone"] == body["phone"]
    assert await audits("supervisor.read_contact") == 1
    assert (await client.get(f"/supervisors/{created['id']}/contact", headers=bearer("auditor"))).status_code == 403


async def test_r2_1_cross_district_read_refused(client):
    created = await create(client, district="乳山市")
    own = bearer("district_bureau", district="乳山市")
    other = bearer("district_bureau", district="荣成市")
    assert (await client.get(f"/supervisors/{created['id']}", headers=own)).status_code == 200
    refused = await client.get(f"/supervisors/{created['id']}", headers=other)
    assert refused.status_code == 403
    assert refused.json()["code"] == "R2.1"
    listed = await client.get("/supervisors?district=乳山市", headers=other)
    assert listed.status_code == 403 and listed.json()["code"] == "R2.1"
    scoped = (await client.get("/supervisors?limit=200", headers=other)).json()
    assert all(item["district"] == "荣成市" for item in scoped["items"])


async def test_r2_1_district_bureau_proposes_only_in_its_district(client):
    token = bearer("district_bureau", district="经区")
    ok = await client.post("/supervisors", json=supervisor_body(district="经区"), headers=token)
    assert ok.status_code == 201 and ok.json()["status"] == "candidate"
    refused = await client.post("/supervisors", json=supervisor_body(district="高区"), headers=token)
    assert refused.status_code == 403 and refused.json()["code"] == "R2.1"
    cannot_appoint = await client.post(f"/supervisors/{ok.json()['id']}/appointments", headers=token,
                                       json={"decision_no": "x", "decision_date": "2025-01-01"})
    assert cannot_appoint.status_code == 403


async def test_procuratorate_sees_only_eligible_names_and_specialties(client):
    eligible = await trained(client, specialties=["会计审计"])
    pending = await appointed(client)
    token = bearer("procuratorate", district="环翠区")
    assert (await client.get(f"/supervisors/{eligible['id']}", headers=token)).status_code == 403
    assert (await client.get("/supervisors", headers=token)).status_code == 403
    listed, cursor = {}, None
    while True:
        page = (await client.get("/supervisors/eligible?limit=200" + (f"&cursor={cursor}" if cursor else ""),
                                 headers=token)).json()
        for item in page["items"]:
            assert set(item) == {"id", "name", "district", "specialties"}
        listed.update({item["id"]: item["name"] for item in page["items"]})
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert listed[eligible["id"]] == eligible["name"]  # the id names whom the procuratorate may ask for
    assert pending["id"] not in listed


async def test_supervisor_sees_only_own_record(client):
    mine, other = await create(client), await create(client)
    token = bearer("supervisor", supervisor_id=mine["id"])
    own = await client.get(f"/supervisors/{mine['id']}", headers=token)
    assert own.status_code == 200 and "*" in own.json()["id_number"]
    assert (await client.get(f"/supervisors/{other['id']}", headers=token)).status_code == 403
    assert (await client.get(f"/supervisors/{mine['id']}?unmasked=true", headers=token)).status_code == 403
    assert (await client.get("/supervisors", headers=token)).status_code == 403


async def test_list_filter_and_paginate(client):
    prefix = "筛" + uuid.uuid4().hex[:4]
    made = [await create(client, name=f"{prefix}{i}", district="临港区", specialties=["教育"]) for i in range(5)]
    await appointed(client, name=f"{prefix}x", district="临港区", specialties=["信息技术"])
    base = f"/supervisors?name={prefix}"
    everything = (await client.get(base, headers=ADMIN)).json()
    assert everything["total"] == 6
    first = (await client.get(base + "&limit=2", headers=ADMIN)).json()
    page = (await client.get(base + f"&limit=2&cursor={first['next_cursor']}", headers=ADMIN)).json()
    assert page["total"] == 6 and len(page["items"]) == 2
    assert [i["name"] for i in page["items"]] == sorted(i["name"] for i in everything["items"])[2:4]
    assert (await client.get(base + "&specialty=教育", headers=ADMIN)).json()["total"] == 5
    assert (await client.get(base + "&status=active", headers=ADMIN)).json()["total"] == 1
    assert (await client.get(base + "&status=candidate&district=临港区", headers=ADMIN)).json()["total"] == 5
    assert (await client.get(base + "&district=高区", headers=ADMIN)).json()["total"] == 0
    assert (await client.get(base + "&training_state=pending", headers=ADMIN)).json()["total"] == 6
    assert (await client.get(base + "&eligible=true", headers=ADMIN)).json()["total"] == 0
    active_on = (await client.get(base + f"&term_active_on={clock.today()}", headers=ADMIN)).json()
    assert active_on["total"] == 1
    assert (await client.get(base + f"&term_year={clock.today().year}", headers=ADMIN)).json()["total"] == 1
    assert made[0]["id"] in {i["id"] for i in everything["items"]}
    # LIKE wildcards are literal
    assert (await client.get("/supervisors?name=%25", headers=ADMIN)).json()["total"] == 0


async def test_specialties_are_a_managed_list(client):
    name = "专" + uuid.uuid4().hex[:4]
    assert (await client.post("/specialties", json={"name": name}, headers=bearer("auditor"))).status_code == 403
    assert (await client.post("/specialties", json={"name": name}, headers=ADMIN)).status_code == 201
    listed = (await client.get("/specialties", headers=ADMIN)).json()
    assert {"法律", "其他", name} <= {s["name"] for s in listed}
    await create(client, specialties=[name])
    assert (await client.post(f"/specialties/{name}/deactivate", headers=ADMIN)).json()["active"] is False
    response = await client.post("/supervisors", json=supervisor_body(specialties=[name]), headers=ADMIN)
    assert response.status_code == 422 and response.json()["code"] == "unknown_specialty"


async def test_tally_matches_counted_rows(client, app):
    sup = await trained(client, district="临港区")
    await client.post(f"/supervisors/{sup['id']}/dismissals", headers=ADMIN, json={"ground": 2, "evidence_note": "x"})
    await client.patch(f"/supervisors/{(await create(client))['id']}", headers=ADMIN, json={"district": "高区"})
    async with app.state.db.transaction() as session:
        counted = set((await session.execute(text(
            "SELECT district, status, eligible, count(*) FROM registry.supervisor GROUP BY 1, 2, 3"))).all())
        tallied = set((await session.execute(text(
            "SELECT district, status, eligible, n FROM registry.supervisor_tally WHERE n > 0"))).all())
    assert counted == tallied
    total = (await client.get("/supervisors?limit=1", headers=ADMIN)).json()["total"]
    assert total == sum(n for *_, n in counted)
    eligible = (await client.get("/supervisors/eligible?limit=1", headers=ADMIN)).json()["total"]
    assert eligible == sum(n for _, _, e, n in counted if e)


async def test_list_filter_with_nul_byte_is_422_not_500(client):
    for url in ("/supervisors?name=%00", "/supervisors/eligible?district=%00"):
        response = await client.get(url, headers=ADMIN)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM
