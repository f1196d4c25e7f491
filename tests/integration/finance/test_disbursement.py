"""R42.1: the monthly disbursement table (draft, issued, corrected; JSON, xlsx, PDF), masking, reconciliation."""

import io
import uuid
from datetime import date, datetime
from decimal import Decimal

from openpyxl import load_workbook
from sqlalchemy import func, select

from services.finance.models import documents, feedback_form, platform, subsidy_line, travel_claim
from shared import clock
from shared.documents.words import amount_in_words, yuan
from shared.events.contracts import SupervisorAppointed
from tests.integration.finance.helpers import (
    ADMIN,
    FIN_A,
    FIN_B,
    approve,
    covering_letter,
    deliver,
    feedback,
    funded_district,
    issue,
    line_of,
    pay,
)
from tests.support import pdf as read
from tests.support.apps import bearer

ACCOUNTS = ["6222020000000001111", "6222020000000002222", "6222020000000003333"]
TODAY = datetime(2026, 4, 8, 10, 0, tzinfo=clock.SHANGHAI)  # tables of March 2026 may be issued
PERIOD = "2026-03"


async def appoint(app, name: str, district: str) -> uuid.UUID:
    supervisor_id = uuid.uuid4()
    await deliver(app, SupervisorAppointed(
        supervisor_id=supervisor_id, name=name, gender="female", district=district, specialties=["法律"],
        employer="某单位", recommending_body="某社区", term_start=date(2025, 1, 1), term_end=date(2029, 12, 31),
        certificate_no="C1", work_card_no="W1", eligible=True))
    return supervisor_id


async def month_with_payables(app, client) -> tuple[str, list[uuid.UUID]]:
    """March 2026 in a district of its own: approved, paid-to-be, draft lines and an approved travel claim."""
    district = await funded_district(client)
    people = [await appoint(app, n, district) for n in ("王小红", "李建国", "赵明")]
    for person, account in zip(people, ACCOUNTS, strict=True):
        r = await client.put(f"/supervisors/{person}/bank-account", headers=FIN_A,
                             json={"bank_name": "中国工商银行威海分行", "account_number": account})
        assert r.status_code == 200 and r.json()["bank_account_masked"].endswith(account[-4:])
    # person 0: two activities approved; person 1: one approved + one draft; person 2: travel only
    for day in (3, 9):
        await deliver(app, feedback(supervisor_id=people[0], activity_date=date(2026, 3, day), district=district))
    await deliver(app, feedback(supervisor_id=people[1], activity_date=date(2026, 3, 4),
                                activity_type="case_quality_review", district=district))
    await deliver(app, feedback(supervisor_id=people[1], activity_date=date(2026, 3, 5), district=district))
    for line in await line_of(client, people[0]):
        await approve(client, line["id"])
    lines1 = sorted(await line_of(client, people[1]), key=lambda line: line["activity_date"])
    await approve(client, lines1[0]["id"])
    claim = (await client.post("/travel-claims", headers=FIN_A, json={
        "supervisor_id": str(people[2]), "purpose_kind": "meeting", "purpose_ref": "年度工作会议",
        "travel_date": "2026-03-20", "items": [{"category": "transport", "amount_fen": 8_850}]})).json()
    item = claim["items"][0]["id"]
    await client.put(f"/travel-claims/{claim['id']}/items/{item}/receipt",
                     headers={**FIN_A, "Content-Type": "image/png"}, content=b"\x89PNG fake")
    await client.post(f"/travel-claims/{claim['id']}/check", headers=FIN_B)
    assert (await client.post(f"/travel-claims/{claim['id']}/approve", headers=ADMIN)).status_code == 200
    return district, people


async def database_totals(app, district: str) -> tuple[int, int]:
    async with app.state.db.transaction() as session:
        subsidy = await session.scalar(select(func.coalesce(func.sum(subsidy_line.c.amount_fen), 0)).where(
            subsidy_line.c.status.in_(("approved", "paid")), subsidy_line.c.district == district))
        travel = await session.scalar(select(func.coalesce(func.sum(travel_claim.c.total_fen), 0)).where(
            travel_claim.c.status.in_(("approved", "paid")), travel_claim.c.district == district))
    return int(subsidy), int(travel)


def table_of(client, district: str, **params):
    return client.get(f"/disbursements/{PERIOD}", headers=FIN_A, params={"district": district, **params})


async def test_r42_1_monthly_table_json_masked_by_default(app, client) -> None:
    with clock.frozen(TODAY):
        district, people = await month_with_payables(app, client)
    r = await table_of(client, district)
    assert r.status_code == 200, r.text
    table = r.json()
    assert (table["status"], table["batch_no"], table["scope"]) == ("draft", None, district)
    by_id = {row["supervisor_id"]: row for row in table["rows"]}
    assert set(by_id) == {str(p) for p in people}
    assert by_id[str(people[0])]["activities"] == 2 and by_id[str(people[0])]["name"] == "王小红"
    assert by_id[str(people[1])]["activities"] == 1  # the draft line is not payable
    assert by_id[str(people[2])]["travel_fen"] == 8_850 and by_id[str(people[2])]["subsidy_fen"] == 0
    assert all(row["payment"] == "未支付" for row in table["rows"])
    assert all(ACCOUNTS[0] not in row["bank_account"] and row["bank_account"].startswith("*")
               for row in table["rows"])
    subsidy, travel = await database_totals(app, district)
    assert (table["total_subsidy_fen"], table["total_travel_fen"]) == (subsidy, travel)
    assert table["total_fen"] == subsidy + travel
    own = bearer("supervisor", subject="s", supervisor_id=str(people[0]))
    assert (await client.get(f"/disbursements/{PERIOD}", headers=own)).status_code == 403


async def test_r42_1_unmasked_export_only_for_finance_and_audited(app, client) -> None:
    with clock.frozen(TODAY):
        district, _ = await month_with_payables(app, client)
    assert (await client.get(f"/disbursements/{PERIOD}", headers=ADMIN,
                             params={"unmasked": "true", "district": district})).status_code == 403
    r = await table_of(client, district, unmasked="true")
    assert r.status_code == 200
    assert {row["bank_account"] for row in r.json()["rows"]} == set(ACCOUNTS)
    audit = platform.audit
    async with app.state.db.transaction() as session:
        actions = (await session.scalars(select(audit.c.action).where(
            audit.c.subject == f"disbursement:{PERIOD}:{district}"))).all()
    assert actions == ["disbursement.unmasked_export"]


def _fen(value) -> int:
    return int(Decimal(str(value)) * 100)


async def test_r42_1_xlsx_opens_and_totals_equal_the_database(app, client) -> None:
    with clock.frozen(TODAY):
        district, _ = await month_with_payables(app, client)
    r = await client.get(f"/disbursements/{PERIOD}/xlsx", headers=FIN_A, params={"district": district})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    values = list(load_workbook(io.BytesIO(r.content)).active.iter_rows(values_only=True))
    assert values[0][0] == "《威海市人民监督员履职补助发放表》"
    assert "草稿" in values[1][4]
    assert values[2][:7] == ("序号", "姓名", "所属区市", "履职次数", "履职补助（元）", "差旅费（元）", "合计（元）")
    assert values[2][10] == "支付状态"
    data = [row for row in values[3:] if isinstance(row[0], int)]
    totals = next(row for row in values if row and row[0] == "合计")
    assert len(data) == 3
    subsidy, travel = await database_totals(app, district)
    assert sum(_fen(row[4]) for row in data) == _fen(totals[4]) == subsidy
    assert sum(_fen(row[5]) for row in data) == _fen(totals[5]) == travel
    assert _fen(totals[6]) == subsidy + travel
    assert all(str(row[8]).startswith("*") for row in data)
    assert any(str(v).startswith("合计金额（大写）：") for row in values for v in row if v)
    book = load_workbook(io.BytesIO(r.content))
    sheet = book.worksheets[0]
    assert "A1:K1" in {str(m) for m in sheet.merged_cells.ranges}  # the title across the table
    assert sheet.page_setup.orientation == "landscape" and sheet.page_setup.fitToWidth == 1
    assert sheet.print_title_rows == "$3:$3"  # the header row on every printed page
    assert sheet.cell(4, 2).border.left.style == "thin"
    detail = list(book["履职明细"].iter_rows(values_only=True))
    assert detail[2] == ("序号", "姓名", "所属区市", "活动日期", "活动类型", "履职补助（元）", "支付状态")
    lines = [row for row in detail[3:] if isinstance(row[0], int)]
    assert sum(_fen(row[5]) for row in lines) == subsidy and all(row[4] for row in lines)


async def test_r42_1_pdf_export_draft_then_issued_archived_and_served_byte_identical(app, client) -> None:
    with clock.frozen(TODAY):
        district, _ = await month_with_payables(app, client)
        r = await client.get(f"/disbursements/{PERIOD}/pdf", headers=ADMIN, params={"district": district})
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        table = (await table_of(client, district)).json()
        text = read.text(r.content)
        for field in ("《威海市人民监督员履职补助发放表》", "发放单位：威海市司法局", "发放月份：2026年3月",
                      f"范围：{district}", "草稿", "制表日期：2026年4月8日", "制表人：", "审核人：", "负责人：",
                      f"合计金额（大写）：{amount_in_words(table['total_fen'])}", yuan(table["total_fen"]),
                      "第 1 页", "共 1 页"):
            assert field in text, field
        for row in table["rows"]:
            assert row["name"] in text and yuan(row["total_fen"]) in text and row["bank_account"] in text
        fonts = read.fonts(r.content)
        assert fonts and all(fonts.values()), fonts
        issued = await issue(client, PERIOD, district)
        first = await client.get(f"/disbursements/{PERIOD}/pdf", headers=ADMIN, params={"district": district})
        again = await client.get(f"/disbursements/{PERIOD}/pdf", headers=FIN_A, params={"district": district})
    assert first.status_code == again.status_code == 200
    assert first.content == again.content  # the archived document, byte-identical
    assert f"批次号：{issued['batch_no']}" in read.text(first.content) and "草稿" not in read.text(first.content)
    async with app.state.db.transaction() as session:
        stored = (await session.execute(select(documents.document).where(
            documents.document.c.subject == issued["table_id"]))).all()
    assert [(r.kind, r.issued_by, r.sha256) for r in stored] == [
        ("disbursement_table", "admin-carol", first.headers["x-document-sha256"])]


async def test_r42_1_issued_table_is_frozen_and_a_late_line_goes_to_the_next_month(app, client) -> None:
    with clock.frozen(TODAY):
        district, people = await month_with_payables(app, client)
        early = await client.post("/disbursements/2026-05/issue", headers=FIN_A, params={"district": district})
        assert early.status_code == 422 and early.json()["code"] == "R42.1"  # May has not begun
        issued = await issue(client, PERIOD, district)
        assert issued["status"] == "issued" and issued["version"] == 1
        assert issued["batch_no"].startswith("202603-") and issued["issued_by"] == "fin-alice"
        assert datetime.fromisoformat(issued["issued_at"]) == TODAY
        again = await client.post(f"/disbursements/{PERIOD}/issue", headers=FIN_B, params={"district": district})
        assert again.status_code == 409 and again.json()["code"] == "R42.1"
        # the draft line of person 1 is approved after the table was issued
        [late] = [line for line in await line_of(client, people[1]) if line["status"] == "draft"]
        await approve(client, late["id"])
    frozen = (await table_of(client, district)).json()
    assert frozen["total_fen"] == issued["total_fen"] and frozen["rows"] == issued["rows"]
    april = (await client.get("/disbursements/2026-04", headers=FIN_A, params={"district": district})).json()
    assert april["status"] == "draft" and april["total_subsidy_fen"] == late["amount_fen"]
    assert [row["supervisor_id"] for row in april["rows"]] == [str(people[1])]
    # the issued table's xlsx says what it is
    r = await client.get(f"/disbursements/{PERIOD}/xlsx", headers=FIN_A, params={"district": district})
    values = list(load_workbook(io.BytesIO(r.content)).active.iter_rows(values_only=True))
    assert issued["batch_no"] in values[1][4] and "已签发" in values[1][4]
    totals = next(row for row in values if row and row[0] == "合计")
    assert _fen(totals[6]) == issued["total_fen"]
    # a line of an issued table cannot be rejected: correct the table first
    [in_table] = [line for line in await line_of(client, people[1]) if line["table_id"]]
    refused = await client.post(f"/subsidy-lines/{in_table['id']}/reject", headers=FIN_A, json={"reason": "x"})
    assert refused.status_code == 409 and refused.json()["code"] == "R42.1"


async def test_r42_1_correction_is_a_new_version_and_the_old_one_is_kept(app, client) -> None:
    with clock.frozen(TODAY):
        district, people = await month_with_payables(app, client)
        v1 = await issue(client, PERIOD, district)
        await covering_letter(client, PERIOD, district)
        paid_line, wrong_line = await line_of(client, people[0])
        assert (await pay(client, paid_line["id"])).status_code == 200
        url = f"/disbursements/{PERIOD}/corrections"
        no_paid = await client.post(url, headers=FIN_B, params={"district": district},
                                    json={"reason": "x", "exclude_line_ids": [paid_line["id"]]})
        assert no_paid.status_code == 409 and no_paid.json()["code"] == "R42.1"
        v2 = await client.post(url, headers=FIN_B, params={"district": district},
                               json={"reason": "该次活动签字待核实，移出本期", "exclude_line_ids": [wrong_line["id"]]})
    assert v2.status_code == 200, v2.text
    v2 = v2.json()
    assert (v2["batch_no"], v2["version"], v2["status"]) == (v1["batch_no"], 2, "issued")
    assert v2["total_fen"] == v1["total_fen"] - wrong_line["amount_fen"]
    assert v2["correction_reason"] == "该次活动签字待核实，移出本期"
    old = (await table_of(client, district, version=1)).json()
    assert (old["status"], old["total_fen"], old["rows"][0]["activities"]) == ("superseded", v1["total_fen"],
                                                                              v1["rows"][0]["activities"])
    versions = (await client.get(f"/disbursements/{PERIOD}/versions", headers=ADMIN,
                                 params={"district": district})).json()
    assert [(v["version"], v["status"]) for v in versions] == [(1, "superseded"), (2, "issued")]
    # the moved-out line is free again: it may be rejected now, or go to a later table
    released = (await client.get(f"/subsidy-lines/{wrong_line['id']}", headers=FIN_A)).json()
    assert released["table_id"] is None and released["status"] == "approved"


async def test_r42_1_reconciliation_catches_missing_and_orphan_lines(app, client) -> None:
    district = await funded_district(client)
    period, day = "2026-02", date(2026, 2, 2)
    good = feedback(activity_date=day, district=district)
    await deliver(app, good)
    params = {"district": district}
    clean = (await client.get(f"/disbursements/{period}/reconciliation", headers=FIN_A, params=params)).json()
    assert clean["ok"] is True and clean["forms_checked"] == clean["lines_checked"] == 1

    lost = feedback(activity_date=date(2026, 2, 3), district=district)  # a form received whose line is missing
    [line] = await line_of(client, good.supervisor_id)
    orphan_id = uuid.uuid4()
    async with app.state.db.transaction() as session:
        await session.execute(feedback_form.insert().values(
            form_id=lost.form_id, activity_id=lost.activity_id, request_id=lost.request_id,
            supervisor_id=lost.supervisor_id, activity_type=lost.activity_type, activity_date=lost.activity_date,
            district=lost.district, signature_hash=lost.signature_hash, signed_at=lost.signed_at))
        await session.execute(subsidy_line.insert().values(  # a line typed in by hand, no signed form behind it
            id=orphan_id, supervisor_id=uuid.uuid4(), activity_id=uuid.uuid4(), form_id=None,
            activity_type="public_hearing", activity_date=date(2026, 2, 4), district=district,
            rate_id=line["rate_id"], amount_fen=40_000, status="draft"))
    r = await client.get(f"/disbursements/{period}/reconciliation", headers=ADMIN, params=params)
    assert r.status_code == 200
    report = r.json()
    assert report["ok"] is False
    assert [m["form_id"] for m in report["missing_lines"]] == [str(lost.form_id)]
    assert [o["line_id"] for o in report["orphan_lines"]] == [str(orphan_id)]


async def test_r42_1_reconciliation_keys_forms_by_form_and_supervisor(app, client) -> None:
    """One activity, three signers: casework sends three FeedbackSigned with the same form_id."""
    district = await funded_district(client)
    first = feedback(activity_date=date(2026, 2, 10), district=district)
    signers = [first] + [first.model_copy(update={"supervisor_id": uuid.uuid4(),
                                                   "signature_hash": uuid.uuid4().hex * 2}) for _ in range(2)]
    for event in signers:
        await deliver(app, event)
    for event in signers:
        [line] = await line_of(client, event.supervisor_id)
        assert line["form_id"] == str(first.form_id)
        await approve(client, line["id"])
    report = (await client.get("/disbursements/2026-02/reconciliation", headers=FIN_A,
                               params={"district": district})).json()
    assert report["ok"] is True, report
    assert (report["forms_checked"], report["lines_checked"], report["orphan_lines"]) == (3, 3, [])
