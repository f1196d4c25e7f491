"""Bulk roster work against the real database: the xlsx import of appointees (all or nothing, R4.1, R5.1, N-BAN,
N-EXCL, N-TERM through the single-appointment path), the template, the roster export (masked by default, R3.1)."""

import io
import itertools
import random
import uuid
from datetime import date, timedelta

from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select, text

from services.registry import rules
from services.registry.bulk.workbook import IMPORT_COLUMNS, MAX_ROWS, XLSX_MEDIA_TYPE
from services.registry.models import platform, supervisor
from shared import audit, clock
from tests.support.apps import bearer
from tests.support.registry_helpers import ADMIN, appointed, new_id_number, new_phone, trained

XLSX = {**ADMIN, "Content-Type": XLSX_MEDIA_TYPE}
HEADERS = list(IMPORT_COLUMNS.values())


# Ids of the rows: a region code of this process's own (the other helpers use 371002) and consecutive numbers, so
# 5 000 rows never repeat a person by chance (random ids would, a few times in 5 000, and fail the all-or-nothing)
_REGION = f"3710{random.randint(10, 99)}"
_serial = itertools.count(random.randint(0, 1_000_000))


def unique_id_number() -> str:
    n = next(_serial)
    born = date(1950, 1, 1) + timedelta(days=(n // 1000) % 18_000)
    first17 = f"{_REGION}{born:%Y%m%d}{n % 1000:03d}"
    return first17 + rules.id_check_digit(first17)


def row(prefix: str, i: int, **overrides) -> dict:
    values = {"name": f"{prefix}{i:05d}", "id_number": unique_id_number(), "phone": new_phone(),
              "district": "文登区", "employer": "威海市某单位", "recommending_body": "文登区某街道",
              "specialties": "法律、金融", "decision_no": f"威司任〔2026〕{prefix}{i}号",
              "decision_date": clock.today().isoformat(), "term_start": None, "certificate_no": None,
              "work_card_no": None, "level": None}
    values.update(overrides)
    return values


def xlsx(rows: list[dict], headers: list[str] = HEADERS) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("人民监督员")
    sheet.append(headers)
    for r in rows:
        sheet.append([r.get(field) for field in IMPORT_COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def count_named(app, prefix: str) -> int:
    async with app.state.db.transaction() as session:
        return await session.scalar(select(func.count()).select_from(supervisor).where(
            supervisor.c.name.like(prefix + "%")))


async def outbox_rows(app) -> int:
    async with app.state.db.transaction() as session:
        return await session.scalar(text("SELECT count(*) FROM registry.outbox_event"))


async def test_r4_1_r5_1_import_appointees_all_rows_appointed_with_events(client, app):
    prefix = "导" + uuid.uuid4().hex[:5]
    rows = [row(prefix, i) for i in range(3)]
    rows[1]["certificate_no"] = f"威监证〔2026〕{uuid.uuid4().hex[:8]}"  # typed by hand (R5.1)
    rows[2]["level"] = "市级"
    before = await outbox_rows(app)
    response = await client.post("/supervisors/imports", content=xlsx(rows), headers=XLSX)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["imported"] == 3 and [s["row"] for s in answer["supervisors"]] == [2, 3, 4]
    assert answer["supervisors"][1]["certificate_no"] == rows[1]["certificate_no"]
    for item, given in zip(answer["supervisors"], rows, strict=True):
        record = (await client.get(f"/supervisors/{item['id']}", headers=ADMIN)).json()
        assert record["status"] == "active" and record["name"] == given["name"]
        assert record["specialties"] == ["法律", "金融"]
        assert record["term_start"] == given["decision_date"]  # R4.1: 5-year term from the decision
        assert record["term_end"] == rules.term_end(date.fromisoformat(given["decision_date"])).isoformat()
        assert record["certificate_no"].startswith("威监证〔") and record["work_card_no"].startswith("WH-GZ-")
    # the single appointment's events, per person: SupervisorAppointed + EligibilityChanged, via the outbox
    assert await outbox_rows(app) - before >= 6


async def test_import_of_5000_rows_with_one_bad_row_near_the_end_imports_nothing_and_names_the_row(client, app):
    prefix = "批" + uuid.uuid4().hex[:5]
    rows = [row(prefix, i) for i in range(MAX_ROWS)]
    bad = MAX_ROWS - 68
    rows[bad]["phone"] = "12345"  # not a mainland mobile
    before = await outbox_rows(app)
    response = await client.post("/supervisors/imports", content=xlsx(rows), headers=XLSX)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["code"] == "import_rejected" and problem["bad_rows"] == 1 and problem["rows"] == MAX_ROWS
    assert problem["errors"] == [{"row": bad + 2, "column": "手机号码", "code": "invalid_phone",
                                  "reason": "请输入11位中国大陆手机号码（如 13812345678）。"}]
    assert f"第{bad + 2}行" in problem["detail"]
    assert await count_named(app, prefix) == 0  # all or nothing
    assert await outbox_rows(app) == before  # no event staged either


async def test_r4_1_r5_1_r3_1_import_of_5000_appointees_writes_what_5000_single_appointments_would(client, app):
    """Set-based writes, the single path's outcome: every person active with unique numbers (R5.1), each with
    SupervisorAppointed + EligibilityChanged in the outbox, a create and an appoint audit entry each plus the
    import's, and the audit chain still verifies (R3.1)."""
    prefix = "万" + uuid.uuid4().hex[:5]
    rows = [row(prefix, i) for i in range(MAX_ROWS)]
    async with app.state.db.transaction() as session:
        seq_before = (await audit.head(session, platform.audit))[0]
    events_before = await outbox_rows(app)
    response = await client.post("/supervisors/imports", content=xlsx(rows), headers=XLSX)
    assert response.status_code == 201, response.text
    answer = response.json()["supervisors"]
    assert len(answer) == MAX_ROWS and [s["row"] for s in answer] == list(range(2, MAX_ROWS + 2))
    assert len({s["certificate_no"] for s in answer}) == len({s["work_card_no"] for s in answer}) == MAX_ROWS
    assert await outbox_rows(app) - events_before == 2 * MAX_ROWS
    async with app.state.db.transaction() as session:
        people = (await session.execute(select(supervisor.c.id, supervisor.c.status, supervisor.c.certificate_no,
                                               supervisor.c.eligibility_reasons)
                                        .where(supervisor.c.name.like(prefix + "%")))).all()
        types = (await session.execute(text(
            "SELECT event_type, count(*) FROM registry.outbox_event WHERE id > (SELECT max(id) - :n FROM "
            "registry.outbox_event) GROUP BY event_type"), {"n": 2 * MAX_ROWS})).all()
        # the roster's own entries (the shared test database's calendar consumer may append meanwhile)
        actions = (await session.execute(select(platform.audit.c.action, func.count()).where(
            platform.audit.c.seq > seq_before, platform.audit.c.action.like("supervisor.%"))
            .group_by(platform.audit.c.action))).all()
        chain = await audit.verify(session, platform.audit)
    assert {p.status for p in people} == {"active"} and len(people) == MAX_ROWS
    assert {tuple(p.eligibility_reasons) for p in people} == {("initial_training_pending",)}  # R22.1
    assert {str(p.id): p.certificate_no for p in people} == {s["id"]: s["certificate_no"] for s in answer}
    assert dict(types) == {"SupervisorAppointed": MAX_ROWS, "EligibilityChanged": MAX_ROWS}
    assert dict(actions) == {"supervisor.create": MAX_ROWS, "supervisor.appoint": MAX_ROWS, "supervisor.import": 1}
    assert chain.ok, chain


async def test_import_checks_the_rows_of_people_already_in_the_roster_like_new_ones(client, app):
    """A row of a person on the roster (same id number and name) gets the registration checks too: phone,
    district, specialties; and R5.1 refuses a number typed twice in one file."""
    ended = await appointed(client, decision_date=date(2014, 1, 1))
    assert (await client.post("/supervisors/term-end-sweep", headers=ADMIN)).status_code == 200
    id_number = (await client.get(f"/supervisors/{ended['id']}?unmasked=true", headers=ADMIN)).json()["id_number"]
    prefix = "查" + uuid.uuid4().hex[:5]
    again = {"id_number": id_number, "name": ended["name"], "decision_date": "2019-01-01"}
    typed = f"威监证〔2026〕{uuid.uuid4().hex[:8]}"
    for bad, column, code in ((dict(phone="12345"), "手机号码", "invalid_phone"),
                              (dict(district="青岛市"), "辖区", "unknown_district"),
                              (dict(specialties="占卜"), "专业领域", "unknown_specialty")):
        response = await client.post("/supervisors/imports", content=xlsx([row(prefix, 0, **again, **bad)]),
                                     headers=XLSX)
        assert response.status_code == 422, response.text
        assert [(e["row"], e["column"], e["code"]) for e in response.json()["errors"]] == [(2, column, code)]
    twice = [row(prefix, 1, certificate_no=typed), row(prefix, 2, certificate_no=typed)]
    response = await client.post("/supervisors/imports", content=xlsx(twice), headers=XLSX)
    assert [(e["row"], e["column"], e["code"]) for e in response.json()["errors"]] == [
        (3, "证书编号", "duplicate_certificate_no")]
    assert await count_named(app, prefix) == 0
    record = (await client.get(f"/supervisors/{ended['id']}", headers=ADMIN)).json()
    assert record["status"] == "term_ended"  # nothing changed on the record either


async def test_import_reports_every_bad_row_with_column_and_reason(client, app):
    prefix = "错" + uuid.uuid4().hex[:5]
    banned = await trained(client)
    dismissed = await client.post(f"/supervisors/{banned['id']}/dismissals", headers=ADMIN,
                                  json={"ground": 4, "evidence_note": "选任中提供不实材料"})
    assert dismissed.status_code in (200, 201), dismissed.text
    banned_id = (await client.get(f"/supervisors/{banned['id']}?unmasked=true", headers=ADMIN)).json()["id_number"]
    excluded = await appointed(client)
    ended = await client.post(f"/supervisors/{excluded['id']}/exclusions", headers=ADMIN,
                              json={"ground": "criminal_penalty", "note": "判决书"})
    assert ended.status_code in (200, 201), ended.text
    excluded_id = (await client.get(f"/supervisors/{excluded['id']}?unmasked=true", headers=ADMIN)).json()["id_number"]
    duplicate = new_id_number()
    rows = [
        row(prefix, 0),
        row(prefix, 1, id_number="371002197501011230"),  # bad check digit
        row(prefix, 2, district="青岛市"),
        row(prefix, 3, specialties="占卜"),
        row(prefix, 4, id_number=duplicate),
        row(prefix, 5, id_number=duplicate, name=f"{prefix}00004"),  # the same person twice in one file
        row(prefix, 6, id_number=banned_id, name=banned["name"]),  # N-BAN
        row(prefix, 7, id_number=excluded_id, name=excluded["name"]),  # N-EXCL
        row(prefix, 8, decision_date="明天"),
        row(prefix, 9, level="县级", employer=None),
    ]
    response = await client.post("/supervisors/imports", content=xlsx(rows), headers=XLSX)
    assert response.status_code == 422, response.text
    found = {(e["row"], e["column"], e["code"]) for e in response.json()["errors"]}
    assert found == {
        (3, "公民身份号码", "invalid_id_number"), (4, "辖区", "unknown_district"),
        (5, "专业领域", "unknown_specialty"), (7, "公民身份号码", "duplicate_in_file"),
        (8, "公民身份号码", "N-BAN"), (9, "公民身份号码", "N-EXCL"), (10, "任命决定日期", "invalid_value"),
        (11, "工作单位", "required"), (11, "检察院层级", "invalid_level"),
    }
    assert all(e["reason"] for e in response.json()["errors"])
    assert await count_named(app, prefix) == 0


async def test_n_term_import_appoints_a_person_already_in_the_roster_to_a_new_term(client, app):
    sup = await appointed(client, decision_date=date(2014, 1, 1))
    first_end = sup["term_end"]
    sweep = await client.post("/supervisors/term-end-sweep", headers=ADMIN)
    assert sweep.status_code == 200
    id_number = (await client.get(f"/supervisors/{sup['id']}?unmasked=true", headers=ADMIN)).json()["id_number"]
    prefix = "续" + uuid.uuid4().hex[:5]
    again = row(prefix, 0, id_number=id_number, name=sup["name"], decision_date="2019-01-01")
    response = await client.post("/supervisors/imports", content=xlsx([again]), headers=XLSX)
    assert response.status_code == 201, response.text
    assert response.json()["supervisors"][0]["id"] == sup["id"]  # the same record, a new term
    record = (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()
    assert record["term_start"] == "2019-01-01" and record["term_end"] != first_end
    third = row(prefix, 1, id_number=id_number, name=sup["name"], decision_date="2024-01-01")
    refused = await client.post("/supervisors/imports", content=xlsx([third]), headers=XLSX)
    assert refused.status_code == 422
    # N-TERM: a third consecutive term is refused, on the same path as POST /supervisors/{id}/appointments
    assert [(e["row"], e["column"], e["code"]) for e in refused.json()["errors"]] == [(2, "任期开始日期", "N-TERM")]
    renamed = row(prefix, 2, id_number=id_number, name="别的名字", decision_date="2030-01-01")
    mismatch = await client.post("/supervisors/imports", content=xlsx([renamed]), headers=XLSX)
    assert [(e["column"], e["code"]) for e in mismatch.json()["errors"]] == [("姓名", "name_mismatch")]


async def test_bad_files_are_422_and_change_nothing(client, app):
    prefix = "坏" + uuid.uuid4().hex[:5]
    good = xlsx([row(prefix, 0)])
    cases = [
        ("not_xlsx", b"name,id\n" * 10),
        ("not_xlsx", b"PK\x03\x04" + b"\x00" * 100),  # a zip header and nothing behind it
        ("invalid_template", xlsx([row(prefix, 1)], headers=["姓名", "身份证"])),
        ("empty_file", xlsx([])),
        ("too_many_rows", xlsx([row(prefix, i) for i in range(MAX_ROWS + 1)])),
        ("file_too_large", good + b"\x00" * (5 * 1024 * 1024)),
    ]
    for code, body in cases:
        response = await client.post("/supervisors/imports", content=body, headers=XLSX)
        assert response.status_code == 422, (code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code and response.json()["detail"]
    assert await count_named(app, prefix) == 0
    district = {**bearer("district_bureau", district="文登区"), "Content-Type": XLSX_MEDIA_TYPE}
    refused = await client.post("/supervisors/imports", content=good, headers=district)
    assert refused.status_code == 403
    assert await count_named(app, prefix) == 0


async def test_import_template_has_the_appointment_fields_in_chinese(client):
    response = await client.get("/supervisors/import-template", headers=ADMIN)
    assert response.status_code == 200 and response.headers["content-type"] == XLSX_MEDIA_TYPE
    book = load_workbook(io.BytesIO(response.content), read_only=True)
    header = next(book.worksheets[0].iter_rows(values_only=True))
    assert list(header) == HEADERS
    notes = " ".join(str(v) for r in book["填写说明"].iter_rows(values_only=True) for v in r if v)
    assert "文登区" in notes and "法律" in notes
    assert (await client.get("/supervisors/import-template", headers=bearer("auditor"))).status_code == 403


async def export_sheet(client, url: str, headers=ADMIN) -> list[tuple]:
    response = await client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX_MEDIA_TYPE
    return list(load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0].iter_rows(values_only=True))


async def test_r3_1_export_is_masked_by_default_and_unmasked_only_for_bureau_admin_audited(client, app):
    prefix = "出" + uuid.uuid4().hex[:5]
    sup = await appointed(client, name=f"{prefix}甲", district="高区")
    full = (await client.get(f"/supervisors/{sup['id']}?unmasked=true", headers=ADMIN)).json()
    number, phone = full["id_number"], full["phone"]
    rows = await export_sheet(client, f"/supervisors/export?name={prefix}")
    header, data = rows[0], [r for r in rows[1:] if r and r[0] == sup["name"]]
    assert header[:5] == ("姓名", "性别", "公民身份号码", "出生日期", "手机号码")
    assert len(data) == 1
    dump = " ".join(str(v) for r in rows for v in r if v is not None)
    assert number not in dump and number[6:14] not in dump and phone not in dump  # nothing rebuilds the id
    assert data[0][2] == sup["id_number"] and data[0][3] == "（已隐去）" and data[0][4] == sup["phone"]
    district = bearer("district_bureau", district="高区", subject="district-export")
    assert [r[0] for r in (await export_sheet(client, f"/supervisors/export?name={prefix}", district))[1:]
            if r and r[0]] == [sup["name"], "说明：身份号码与手机号码已部分隐去，出生日期不显示（R3.1）。"]
    for who in (district, bearer("auditor")):
        assert (await client.get(f"/supervisors/export?name={prefix}&unmasked=true", headers=who)).status_code == 403
    unmasked = await export_sheet(client, f"/supervisors/export?name={prefix}&unmasked=true")
    assert unmasked[1][2] == number and unmasked[1][4] == phone
    assert unmasked[1][3] == f"{number[6:10]}-{number[10:12]}-{number[12:14]}"
    async with app.state.db.transaction() as session:
        entries = (await session.execute(select(platform.audit.c.action, platform.audit.c.details).where(
            platform.audit.c.action.in_(["supervisor.export", "supervisor.export_unmasked"]),
            platform.audit.c.subject == "supervisors").order_by(platform.audit.c.seq.desc()).limit(3))).all()
    assert entries[0].action == "supervisor.export_unmasked" and entries[0].details["ids"] == [sup["id"]]
    assert prefix not in str(entries[0].details)  # the name filter is not logged
    assert {e.action for e in entries[1:]} == {"supervisor.export"}
    refused = await client.get("/supervisors/export?district=乙区", headers=ADMIN)
    assert refused.status_code == 422 and refused.json()["code"] == "unknown_district"
