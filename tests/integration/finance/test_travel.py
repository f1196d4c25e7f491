"""R43.1: travel claims with receipts, cap warnings and the same approval flow."""

import hashlib
import uuid
from datetime import date

from tests.integration.finance.helpers import ADMIN, FIN_A, FIN_B, unique_month
from tests.support.apps import bearer

PDF = b"%PDF-1.4\n% a receipt\n"


def claim_body(supervisor_id: uuid.UUID | None, day: date) -> dict:
    body = {
        "purpose_kind": "training", "purpose_ref": "2026年度人民监督员培训", "travel_date": str(day),
        "items": [
            {"category": "transport", "amount_fen": 12_000, "description": "高铁 威海—济南"},
            {"category": "accommodation", "amount_fen": 90_000, "nights": 2},
        ],
    }
    if supervisor_id:
        body["supervisor_id"] = str(supervisor_id)
    return body


async def test_r43_1_travel_claim_with_receipts_cap_warning_and_approval(client) -> None:
    year, month = unique_month()
    supervisor_id = uuid.uuid4()
    created = await client.post("/travel-claims", headers=FIN_A, json=claim_body(supervisor_id, date(year, month, 2)))
    assert created.status_code == 201, created.text
    claim = created.json()
    assert claim["total_fen"] == 102_000 and claim["status"] == "draft"
    [warning] = claim["warnings"]  # 900 yuan for 2 nights > 2 × 400 yuan: warned, not refused
    assert (warning["item"], warning["category"], warning["cap_fen"]) == (1, "accommodation", 80_000)

    url = f"/travel-claims/{claim['id']}"
    no_receipt = await client.post(f"{url}/check", headers=FIN_B)
    assert no_receipt.status_code == 422 and no_receipt.json()["code"] == "R43.1"

    bad_type = await client.put(f"{url}/items/{claim['items'][0]['id']}/receipt", headers={
        **FIN_A, "Content-Type": "text/plain"}, content=b"hello")
    assert bad_type.status_code == 415
    for item in claim["items"]:
        up = await client.put(f"{url}/items/{item['id']}/receipt", headers={**FIN_A, "Content-Type": "application/pdf"},
                              content=PDF)
        assert up.status_code == 200, up.text
        assert up.json()["sha256"] == hashlib.sha256(PDF).hexdigest()
    got = await client.get(f"{url}/items/{claim['items'][0]['id']}/receipt", headers=FIN_B)
    assert got.status_code == 200 and got.content == PDF and got.headers["content-type"] == "application/pdf"

    assert (await client.post(f"{url}/check", headers=FIN_B)).status_code == 200
    # fin-alice created the claim, fin-bob checked it: neither may approve
    for who in (FIN_A, FIN_B):
        refused = await client.post(f"{url}/approve", headers=who)
        assert refused.status_code == 403 and refused.json()["code"] == "self_approval"
    approved = await client.post(f"{url}/approve", headers=ADMIN)
    assert approved.status_code == 200 and approved.json()["approved_by"] == "admin-carol"
    locked = await client.put(f"{url}/items/{claim['items'][0]['id']}/receipt",
                              headers={**FIN_A, "Content-Type": "application/pdf"}, content=PDF)
    assert locked.status_code == 409
    paid = await client.post(f"{url}/pay", headers=FIN_B, json={"paid_on": "2026-12-01", "payment_reference": "T1"})
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    again = await client.post(f"{url}/pay", headers=FIN_B, json={"paid_on": "2026-12-01", "payment_reference": "T1"})
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"


async def test_r43_1_supervisor_claims_for_self_only(client) -> None:
    year, month = unique_month()
    me, other = uuid.uuid4(), uuid.uuid4()
    token = bearer("supervisor", subject="sup-x", supervisor_id=str(me))
    own = await client.post("/travel-claims", headers=token, json=claim_body(None, date(year, month, 3)))
    assert own.status_code == 201 and own.json()["supervisor_id"] == str(me)
    assert (await client.post("/travel-claims", headers=token,
                              json=claim_body(other, date(year, month, 3)))).status_code == 403
    theirs = await client.post("/travel-claims", headers=FIN_A, json=claim_body(other, date(year, month, 3)))
    assert (await client.get(f"/travel-claims/{theirs.json()['id']}", headers=token)).status_code == 404
    listed = (await client.get("/travel-claims", headers=token)).json()
    assert {c["supervisor_id"] for c in listed["items"]} == {str(me)}
    missing = await client.post("/travel-claims", headers=FIN_A, json=claim_body(None, date(year, month, 3)))
    assert missing.status_code == 422


async def test_r43_1_amounts_are_integer_fen(client) -> None:
    year, month = unique_month()
    body = claim_body(uuid.uuid4(), date(year, month, 4))
    body["items"][0]["amount_fen"] = 120.5
    assert (await client.post("/travel-claims", headers=FIN_A, json=body)).status_code == 422
