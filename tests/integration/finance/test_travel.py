"""R43.1: travel claims with receipts, cap warnings, the attended activity, the claim period, approval in part."""

import hashlib
import uuid
from datetime import date, datetime

from shared import clock
from shared.events.contracts import SupervisorAppointed
from tests.integration.finance.helpers import (
    ADMIN,
    FIN_A,
    FIN_B,
    deliver,
    feedback,
    fund,
    funded_district,
    issue,
    new_district,
)
from tests.support.apps import bearer

PDF = b"%PDF-1.4\n% a receipt\n"
TODAY = datetime(2026, 4, 8, 10, 0, tzinfo=clock.SHANGHAI)


def claim_body(supervisor_id: uuid.UUID | None, day: date, *, kind: str = "training", ref: str | None = None) -> dict:
    body = {
        "purpose_kind": kind, "purpose_ref": ref or "2026年度人民监督员培训", "travel_date": str(day),
        "items": [
            {"category": "transport", "amount_fen": 12_000, "description": "高铁 威海—济南"},
            {"category": "accommodation", "amount_fen": 90_000, "nights": 2},
        ],
    }
    if supervisor_id:
        body["supervisor_id"] = str(supervisor_id)
    return body


async def with_receipts(client, claim: dict) -> None:
    for item in claim["items"]:
        up = await client.put(f"/travel-claims/{claim['id']}/items/{item['id']}/receipt",
                              headers={**FIN_A, "Content-Type": "application/pdf"}, content=PDF)
        assert up.status_code == 200, up.text


async def test_r43_1_travel_claim_with_receipts_cap_warning_and_approval(app, client) -> None:
    supervisor_id = uuid.uuid4()
    district = await funded_district(client)
    await deliver(app, SupervisorAppointed(
        supervisor_id=supervisor_id, name="周敏", gender="female", district=district, specialties=[],
        employer="某单位", recommending_body="某社区", term_start=date(2025, 1, 1), term_end=date(2029, 12, 31),
        certificate_no="C3", work_card_no="W3", eligible=True))
    with clock.frozen(TODAY):
        created = await client.post("/travel-claims", headers=FIN_A, json=claim_body(supervisor_id, date(2026, 4, 2)))
    assert created.status_code == 201, created.text
    claim = created.json()
    assert claim["total_fen"] == 102_000 and claim["status"] == "draft" and claim["district"] == district
    [warning] = claim["warnings"]  # 900 yuan for 2 nights > 2 × 400 yuan: warned, not refused
    assert (warning["item"], warning["category"], warning["cap_fen"]) == (1, "accommodation", 80_000)

    url = f"/travel-claims/{claim['id']}"
    no_receipt = await client.post(f"{url}/check", headers=FIN_B)
    assert no_receipt.status_code == 422 and no_receipt.json()["code"] == "R43.1"

    bad_type = await client.put(f"{url}/items/{claim['items'][0]['id']}/receipt", headers={
        **FIN_A, "Content-Type": "text/plain"}, content=b"hello")
    assert bad_type.status_code == 415
    await with_receipts(client, claim)
    got = await client.get(f"{url}/items/{claim['items'][0]['id']}/receipt", headers=FIN_B)
    assert got.status_code == 200 and got.content == PDF and got.headers["content-type"] == "application/pdf"
    assert got.headers["etag"] == f'"{hashlib.sha256(PDF).hexdigest()}"'

    assert (await client.post(f"{url}/check", headers=FIN_B)).status_code == 200
    # fin-alice created the claim, fin-bob checked it: neither may approve
    for who in (FIN_A, FIN_B):
        refused = await client.post(f"{url}/approve", headers=who)
        assert refused.status_code == 403 and refused.json()["code"] == "self_approval"
    approved = await client.post(f"{url}/approve", headers=ADMIN)
    assert approved.status_code == 200 and approved.json()["approved_by"] == "admin-carol"
    assert approved.json()["payable_fen"] == 102_000
    locked = await client.put(f"{url}/items/{claim['items'][0]['id']}/receipt",
                              headers={**FIN_A, "Content-Type": "application/pdf"}, content=PDF)
    assert locked.status_code == 409
    not_issued = await client.post(f"{url}/pay", headers=FIN_B, json={"payment_reference": "T1"})
    assert not_issued.status_code == 409 and not_issued.json()["code"] == "R42.1"


async def test_r43_1_activity_claim_matches_an_attended_activity_approved_in_part_and_paid_once(app, client) -> None:
    district = new_district()
    await fund(client, 2026, district, count=1, seats=1)  # 400 + 50 yuan: the claim goes over it
    with clock.frozen(TODAY):
        attended = feedback(activity_date=date(2026, 3, 20), district=district)  # signed "today"
        await deliver(app, attended)
        sid = attended.supervisor_id
        elsewhere = await client.post("/travel-claims", headers=FIN_A, json=claim_body(
            sid, date(2026, 3, 20), kind="activity", ref=str(uuid.uuid4())))
        assert elsewhere.status_code == 422 and elsewhere.json()["code"] == "R43.1"  # not attended
        not_an_id = await client.post("/travel-claims", headers=FIN_A, json=claim_body(
            sid, date(2026, 3, 20), kind="activity", ref="公开听证"))
        assert not_an_id.status_code == 422 and not_an_id.json()["code"] == "R43.1"
        far = await client.post("/travel-claims", headers=FIN_A, json=claim_body(
            sid, date(2026, 3, 25), kind="activity", ref=str(attended.activity_id)))
        assert far.status_code == 422 and far.json()["title"] == "差旅日期与活动不符"
        created = await client.post("/travel-claims", headers=FIN_A, json=claim_body(
            sid, date(2026, 3, 19), kind="activity", ref=str(attended.activity_id)))
        assert created.status_code == 201, created.text
        claim = created.json()
        assert (claim["activity_id"], claim["district"]) == (str(attended.activity_id), district)
        url = f"/travel-claims/{claim['id']}"
        await with_receipts(client, claim)
        assert (await client.post(f"{url}/check", headers=FIN_B)).status_code == 200
        no_reason = await client.post(f"{url}/approve", headers=ADMIN, json={"approved_fen": 92_000})
        assert no_reason.status_code == 422 and no_reason.json()["code"] == "reason_required"
        too_much = await client.post(f"{url}/approve", headers=ADMIN, json={"approved_fen": 200_000, "reason": "x"})
        assert too_much.status_code == 422 and too_much.json()["code"] == "R43.1"
        part_body = {"approved_fen": 92_000, "reason": "住宿费超标准部分不予报销"}
        over = await client.post(f"{url}/approve", headers=ADMIN, json=part_body)
        assert over.status_code == 409 and over.json()["code"] == "R41.1"
        excess = await client.post(f"{url}/budget-excess", headers=FIN_A, json={"reason": "培训差旅超出预估"})
        assert excess.status_code == 200 and excess.json()["excess_approved_by"] == "fin-alice"
        part = await client.post(f"{url}/approve", headers=ADMIN, json=part_body)
        assert part.status_code == 200, part.text
        assert (part.json()["approved_fen"], part.json()["approval_note"]) == (92_000, "住宿费超标准部分不予报销")
        table = await issue(client, "2026-03", district)
        assert table["total_travel_fen"] == 92_000
        paid = await client.post(f"{url}/pay", headers=FIN_B, json={"payment_reference": "T1"})
        assert paid.status_code == 200 and paid.json()["status"] == "paid" and paid.json()["paid_by"] == "fin-bob"
        again = await client.post(f"{url}/pay", headers=FIN_B, json={"payment_reference": "T1"})
        assert again.status_code == 409 and again.json()["code"] == "already_paid"


async def test_r43_1_claim_period_is_a_setting_and_future_travel_is_refused(client) -> None:
    with clock.frozen(TODAY):
        late = await client.post("/travel-claims", headers=FIN_A, json=claim_body(uuid.uuid4(), date(2025, 12, 1)))
        assert late.status_code == 422 and late.json()["code"] == "R43.1" and "90日" in late.json()["detail"]
        ahead = await client.post("/travel-claims", headers=FIN_A, json=claim_body(uuid.uuid4(), date(2026, 4, 9)))
        assert ahead.status_code == 422 and ahead.json()["code"] == "R43.1"


async def test_r43_1_reject_a_claim_with_a_reason(client) -> None:
    with clock.frozen(TODAY):
        claim = (await client.post("/travel-claims", headers=FIN_A, json=claim_body(uuid.uuid4(),
                                                                                    date(2026, 4, 1)))).json()
    url = f"/travel-claims/{claim['id']}"
    assert (await client.post(f"{url}/reject", headers=FIN_B, json={})).status_code == 422
    rejected = await client.post(f"{url}/reject", headers=FIN_B, json={"reason": "与活动无关"})
    assert rejected.status_code == 200
    assert (rejected.json()["status"], rejected.json()["reject_reason"], rejected.json()["rejected_by"]) == (
        "rejected", "与活动无关", "fin-bob")


async def test_r43_1_supervisor_claims_for_self_only(client) -> None:
    me, other = uuid.uuid4(), uuid.uuid4()
    token = bearer("supervisor", subject="sup-x", supervisor_id=str(me))
    with clock.frozen(TODAY):
        own = await client.post("/travel-claims", headers=token, json=claim_body(None, date(2026, 4, 3)))
        assert own.status_code == 201 and own.json()["supervisor_id"] == str(me)
        assert (await client.post("/travel-claims", headers=token,
                                  json=claim_body(other, date(2026, 4, 3)))).status_code == 403
        theirs = await client.post("/travel-claims", headers=FIN_A, json=claim_body(other, date(2026, 4, 3)))
        missing = await client.post("/travel-claims", headers=FIN_A, json=claim_body(None, date(2026, 4, 3)))
    assert (await client.get(f"/travel-claims/{theirs.json()['id']}", headers=token)).status_code == 404
    listed = (await client.get("/travel-claims", headers=token)).json()
    assert {c["supervisor_id"] for c in listed["items"]} == {str(me)}
    assert missing.status_code == 422


async def test_r43_1_amounts_are_integer_fen(client) -> None:
    body = claim_body(uuid.uuid4(), date(2026, 4, 4))
    body["items"][0]["amount_fen"] = 120.5
    assert (await client.post("/travel-claims", headers=FIN_A, json=body)).status_code == 422
