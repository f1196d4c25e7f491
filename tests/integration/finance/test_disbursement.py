"""R42.1: the monthly disbursement table (JSON, xlsx, PDF), masking, and the reconciliation check."""

import io
import uuid
from datetime import date
from decimal import Decimal

from openpyxl import load_workbook
from sqlalchemy import func, select

from services.finance.models import feedback_form, platform, subsidy_line, travel_claim
from services.finance.rules import month_bounds
from shared.events.contracts import SupervisorAppointed
from tests.integration.finance.helpers import ADMIN, FIN_A, FIN_B, approve, deliver, feedback, line_of, unique_month
from tests.support.apps import bearer

ACCOUNTS = ["6222020000000001111", "6222020000000002222", "6222020000000003333"]


async def appoint(app, name: str, district: str) -> uuid.UUID:
    supervisor_id = uuid.uuid4()
    await deliver(app, SupervisorAppointed(
        supervisor_id=supervisor_id, name=name, gender="female", district=district, specialties=["法律"],
        employer="某单位", recommending_body="某社区", term_start=date(2025, 1, 1), term_end=date(2029, 12, 31),
        certificate_no="C1", work_card_no="W1", eligible=True))
    return supervisor_id


async def month_with_payables(app, client) -> tuple[int, int, list[uuid.UUID]]:
    year, month = unique_month()
    people = [await appoint(app, n, d) for n, d in (("王小红", "环翠区"), ("李建国", "文登区"), ("赵明", "荣成市"))]
    for person, account in zip(people, ACCOUNTS, strict=True):
        r = await client.put(f"/supervisors/{person}/bank-account", headers=FIN_A,
                             json={"bank_name": "中国工商银行威海分行", "account_number": account})
        assert r.status_code == 200 and r.json()["bank_account_masked"].endswith(account[-4:])
    # person 0: two activities approved + one paid; person 1: one approved + one draft; person 2: travel only
    for day in (3, 9):
        await deliver(app, feedback(supervisor_id=people[0], activity_date=date(year, month, day)))
    await deliver(app, feedback(supervisor_id=people[1], activity_date=date(year, month, 4),
                                activity_type="case_quality_review"))
    await deliver(app, feedback(supervisor_id=people[1], activity_date=date(year, month, 5)))
    lines0 = await line_of(client, people[0])
    await approve(client, lines0[0]["id"], pay=True)
    await approve(client, lines0[1]["id"])
    lines1 = sorted(await line_of(client, people[1]), key=lambda line: line["activity_date"])
    await approve(client, lines1[0]["id"])
    claim = (await client.post("/travel-claims", headers=FIN_A, json={
        "supervisor_id": str(people[2]), "purpose_kind": "meeting", "purpose_ref": "年度工作会议",
        "travel_date": str(date(year, month, 20)), "items": [{"category": "transport", "amount_fen": 8_850}]})).json()
    item = claim["items"][0]["id"]
    await client.put(f"/travel-claims/{claim['id']}/items/{item}/receipt",
                     headers={**FIN_A, "Content-Type": "image/png"}, content=b"\x89PNG fake")
    await client.post(f"/travel-claims/{claim['id']}/check", headers=FIN_B)
    assert (await client.post(f"/travel-claims/{claim['id']}/approve", headers=ADMIN)).status_code == 200
    return year, month, people


async def database_totals(app, year: int, month: int) -> tuple[int, int]:
    start, end = month_bounds(year, month)
    async with app.state.db.transaction() as session:
        subsidy = await session.scalar(select(func.coalesce(func.sum(subsidy_line.c.amount_fen), 0)).where(
            subsidy_line.c.status.in_(("approved", "paid")), subsidy_line.c.activity_date >= start,
            subsidy_line.c.activity_date < end))
        travel = await session.scalar(select(func.coalesce(func.sum(travel_claim.c.total_fen), 0)).where(
            travel_claim.c.status.in_(("approved", "paid")), travel_claim.c.travel_date >= start,
            travel_claim.c.travel_date < end))
    return int(subsidy), int(travel)


async def test_r42_1_monthly_table_json_masked_by_default(app, client) -> None:
    year, month, people = await month_with_payables(app, client)
    r = await client.get(f"/disbursements/{year}-{month:02d}", headers=FIN_A)
    assert r.status_code == 200, r.text
    table = r.json()
    by_id = {row["supervisor_id"]: row for row in table["rows"]}
    assert set(by_id) == {str(p) for p in people}
    assert by_id[str(people[0])]["activities"] == 2 and by_id[str(people[0])]["name"] == "王小红"
    assert by_id[str(people[1])]["activities"] == 1  # the draft line is not payable
    assert by_id[str(people[2])]["travel_fen"] == 8_850 and by_id[str(people[2])]["subsidy_fen"] == 0
    assert all(ACCOUNTS[0] not in row["bank_account"] and row["bank_account"].startswith("*")
               for row in table["rows"])
    subsidy, travel = await database_totals(app, year, month)
    assert (table["total_subsidy_fen"], table["total_travel_fen"]) == (subsidy, travel)
    assert table["total_fen"] == subsidy + travel
    own = bearer("supervisor", subject="s", supervisor_id=str(people[0]))
    assert (await client.get(f"/disbursements/{year}-{month:02d}", headers=own)).status_code == 403


async def test_r42_1_unmasked_export_only_for_finance_and_audited(app, client) -> None:
    year, month, _ = await month_with_payables(app, client)
    period = f"{year}-{month:02d}"
    assert (await client.get(f"/disbursements/{period}", headers=ADMIN,
                             params={"unmasked": "true"})).status_code == 403
    r = await client.get(f"/disbursements/{period}", headers=FIN_A, params={"unmasked": "true"})
    assert r.status_code == 200
    assert {row["bank_account"] for row in r.json()["rows"]} == set(ACCOUNTS)
    audit = platform.audit
    async with app.state.db.transaction() as session:
        actions = (await session.scalars(select(audit.c.action).where(
            audit.c.subject == f"disbursement:{year}-{month:02d}"))).all()
    assert actions == ["disbursement.unmasked_export"]


async def test_r42_1_xlsx_opens_and_totals_equal_the_database(app, client) -> None:
    year, month, _ = await month_with_payables(app, client)
    r = await client.get(f"/disbursements/{year}-{month:02d}/xlsx", headers=FIN_A)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    values = list(load_workbook(io.BytesIO(r.content)).active.iter_rows(values_only=True))
    assert values[0][0] == "《威海市人民监督员履职补助发放表》"
    assert values[2][:7] == ("序号", "姓名", "所属区市", "履职次数", "履职补助（元）", "差旅费（元）", "合计（元）")
    data = [row for row in values[3:] if isinstance(row[0], int)]
    totals = next(row for row in values if row and row[0] == "合计")
    assert len(data) == 3

    def fen(value) -> int:
        return int(Decimal(str(value)) * 100)

    subsidy, travel = await database_totals(app, year, month)
    assert sum(fen(row[4]) for row in data) == fen(totals[4]) == subsidy
    assert sum(fen(row[5]) for row in data) == fen(totals[5]) == travel
    assert fen(totals[6]) == subsidy + travel
    assert all(str(row[8]).startswith("*") for row in data)


async def test_r42_1_pdf_export(app, client) -> None:
    year, month, _ = await month_with_payables(app, client)
    r = await client.get(f"/disbursements/{year}-{month:02d}/pdf", headers=ADMIN)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")


async def test_r42_1_reconciliation_catches_missing_and_orphan_lines(app, client) -> None:
    year, month = unique_month()
    period = f"{year}-{month:02d}"
    good = feedback(activity_date=date(year, month, 2))
    await deliver(app, good)
    clean = (await client.get(f"/disbursements/{period}/reconciliation", headers=FIN_A)).json()
    assert clean["ok"] is True and clean["forms_checked"] == clean["lines_checked"] == 1

    lost = feedback(activity_date=date(year, month, 3))  # a form received whose line is missing
    [line] = await line_of(client, good.supervisor_id)
    orphan_id = uuid.uuid4()
    async with app.state.db.transaction() as session:
        await session.execute(feedback_form.insert().values(
            form_id=lost.form_id, activity_id=lost.activity_id, request_id=lost.request_id,
            supervisor_id=lost.supervisor_id, activity_type=lost.activity_type, activity_date=lost.activity_date,
            district=lost.district, signature_hash=lost.signature_hash, signed_at=lost.signed_at))
        await session.execute(subsidy_line.insert().values(  # a line typed in by hand, no signed form behind it
            id=orphan_id, supervisor_id=uuid.uuid4(), activity_id=uuid.uuid4(), form_id=None,
            activity_type="public_hearing", activity_date=date(year, month, 4), rate_id=line["rate_id"],
            amount_fen=40_000, status="draft"))
    r = await client.get(f"/disbursements/{period}/reconciliation", headers=ADMIN)
    assert r.status_code == 200
    report = r.json()
    assert report["ok"] is False
    assert [m["form_id"] for m in report["missing_lines"]] == [str(lost.form_id)]
    assert [o["line_id"] for o in report["orphan_lines"]] == [str(orphan_id)]
