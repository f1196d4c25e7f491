"""The finance pages through the portal against the real finance service (PostgreSQL, broker): rates (N-RATE, a
back-dated one approved by a second finance user), the year's plan and budget (R41.1: the procuratorate submits, the
bureau reads), travel claims (R43.1: entered, receipts through a multipart form, checked, approved with four eyes;
over budget refused with R41.1 until another finance user approved the excess). Every write is read back from
finance; every refusal is finance's own Chinese message; a stale second tab's step gets finance's 409."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

import httpx
import pytest

from shared import clock
from shared.documents.words import yuan
from shared.events.contracts import SupervisorAppointed
from tests.integration.finance.helpers import FIN_A, deliver, fund, new_district
from tests.integration.portal.helpers import csrf_of, signed_in

PDF = b"%PDF-1.4\n% a receipt scanned at the station\n"


@pytest.fixture
async def finance(finance_app):
    """Finance itself, to read back what the portal did (and to set up what other agencies would)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=finance_app), base_url="http://finance") as c:
        yield c


async def csrf(client: httpx.AsyncClient, path: str = "/") -> str:
    return csrf_of((await client.get(path)).text)


async def test_rates_render_for_finance_and_read_only_for_the_auditor_refused_to_a_district_bureau(live):
    await signed_in(live, "dev-finance")
    page = await live.get("/console/finance/rates")
    assert page.status_code == 200 and 'id="rate-form"' in page.text and 'for="f-amount"' in page.text
    assert 'data-in-force="true"' in page.text  # the seeded rates of migration 0001, in force today
    await signed_in(live, "dev-auditor")
    page = await live.get("/console/finance/rates")
    assert page.status_code == 200 and 'id="rate-form"' not in page.text
    await signed_in(live, "dev-district-huancui")
    assert (await live.get("/console/finance/rates")).status_code == 403


async def test_a_new_rate_reaches_finance_and_a_back_dated_one_needs_a_second_finance_user_N_RATE(live, finance):
    await signed_in(live, "dev-finance")
    later = (clock.today() + timedelta(days=400)).isoformat()
    r = await live.post("/console/finance/rates", data={"activity_type": "work_briefing", "amount": "155.50",
                                                        "effective_from": later, "csrf_token": await csrf(live)})
    assert r.status_code == 303 and r.headers["location"].endswith("done=created")
    rates = (await finance.get("/rates", params={"activity_type": "work_briefing"}, headers=FIN_A)).json()
    [new] = [x for x in rates if x["effective_from"] == later]
    assert (new["amount_fen"], new["status"], new["created_by"]) == (15550, "approved", "dev-finance")

    bad = await live.post("/console/finance/rates", data={"activity_type": "other", "amount": "很多",
                                                          "effective_from": later, "csrf_token": await csrf(live)})
    assert bad.status_code == 422 and "金额格式错误" in bad.text and 'value="很多"' in bad.text

    back = "2025-01-02"  # before today: pending until a second finance user approves it
    await live.post("/console/finance/rates", data={"activity_type": "judicial_inspection", "amount": "151",
                                                    "effective_from": back, "csrf_token": await csrf(live)})
    [pending] = [x for x in (await finance.get("/rates", params={"activity_type": "judicial_inspection"},
                                               headers=FIN_A)).json() if x["effective_from"] == back]
    assert pending["status"] == "pending"
    page = await live.get("/console/finance/rates")
    assert f'/console/finance/rates/{pending["id"]}/approve' not in page.text and "待另一名财务人员批准" in page.text
    own = await live.post(f"/console/finance/rates/{pending['id']}/approve", data={"csrf_token": await csrf(live)})
    assert own.status_code == 403 and "不得自行审核或批准" in own.text  # finance's refusal (N-RATE)
    await signed_in(live, "dev-finance-reviewer")
    page = await live.get("/console/finance/rates")
    assert f'/console/finance/rates/{pending["id"]}/approve' in page.text
    ok = await live.post(f"/console/finance/rates/{pending['id']}/approve", data={"csrf_token": csrf_of(page.text)})
    assert ok.status_code == 303
    [approved] = [x for x in (await finance.get("/rates", params={"activity_type": "judicial_inspection"},
                                                headers=FIN_A)).json() if x["id"] == pending["id"]]
    assert (approved["status"], approved["approved_by"]) == ("approved", "dev-finance-reviewer")
    stale = await live.post(f"/console/finance/rates/{pending['id']}/approve", data={"csrf_token": csrf_of(page.text)})
    assert stale.status_code == 409 and "补助标准无需批准" in stale.text  # the second tab: nothing twice


async def test_the_procuratorate_submits_the_years_plan_and_finance_reads_the_budget_R41_1(live, finance):
    await signed_in(live, "dev-procuratorate-weihai")
    page = await live.get("/console/finance/plans", params={"year": "2031"})
    assert page.status_code == 200 and 'id="plan-form"' in page.text
    assert 'for="c-public_hearing-3"' in page.text and 'for="s-public_hearing"' in page.text
    grid = {"c-public_hearing-3": "4", "s-public_hearing": "3", "c-work_briefing-11": "2", "s-work_briefing": "1",
            "csrf_token": csrf_of(page.text)}
    r = await live.post("/console/finance/plans/2031", data=grid)
    assert r.status_code == 303 and r.headers["location"] == "/console/finance/plans?year=2031&done=submitted"
    office = "威海市人民检察院"
    [plan] = (await finance.get("/plans/2031", params={"office": office}, headers=FIN_A)).json()
    assert sorted((x["month"], x["activity_type"], x["count"], x["seats"]) for x in plan["rows"]) == [
        (3, "public_hearing", 4, 3), (11, "work_briefing", 2, 1)]
    again = await live.get(r.headers["location"])
    assert 'id="c-public_hearing-3" name="c-public_hearing-3" value="4"' in again.text  # the plan as submitted

    # finance's own refusal (a negative count) shown with the grid as typed; the plan stays as it was
    refused = await live.post("/console/finance/plans/2031", data={**grid, "c-public_hearing-3": "-1"})
    assert refused.status_code == 422 and "请求数据校验失败" in refused.text and 'value="-1"' in refused.text
    [plan] = (await finance.get("/plans/2031", params={"office": office}, headers=FIN_A)).json()
    assert {x["count"] for x in plan["rows"]} == {4, 2}

    await signed_in(live, "dev-finance")
    page = await live.get("/console/finance/plans", params={"year": "2031", "office": office})
    budget = (await finance.get("/plans/2031/budget", params={"office": office}, headers=FIN_A)).json()
    assert page.status_code == 200 and 'id="plan-form"' not in page.text
    total = yuan(budget["total_budget_fen"])  # the portal's one money format
    assert budget["total_budget_fen"] > 0 and re.search(r'id="total-budget">' + re.escape(total), page.text)
    await signed_in(live, "dev-district-huancui")
    assert (await live.get("/console/finance/plans")).status_code == 403


async def supervisor_in(finance_app, district: str) -> uuid.UUID:
    """A supervisor finance knows (registry's SupervisorAppointed, through finance's real inbox)."""
    supervisor_id = uuid.uuid4()
    await deliver(finance_app, SupervisorAppointed(
        supervisor_id=supervisor_id, name="差旅" + supervisor_id.hex[:4], gender="female", district=district,
        specialties=[], employer="某单位", recommending_body="某社区", term_start=date(2025, 1, 1),
        term_end=date(2029, 12, 31), certificate_no="C-" + supervisor_id.hex[:6],
        work_card_no="W-" + supervisor_id.hex[:6], eligible=True))
    return supervisor_id


async def enter_claim(live: httpx.AsyncClient, supervisor_id: uuid.UUID) -> str:
    page = await live.get("/console/finance/travel-claims/new", params={"supervisor_id": str(supervisor_id)})
    assert page.status_code == 200 and f'value="{supervisor_id}"' in page.text and 'for="f-item1_amount"' in page.text
    form = {"supervisor_id": str(supervisor_id), "purpose_kind": "training", "purpose_ref": "2026年度集中培训",
            "travel_date": (clock.today() - timedelta(days=2)).isoformat(), "item1_category": "transport",
            "item1_amount": "120.00", "item1_description": "高铁 威海—济南", "item2_category": "accommodation",
            "item2_amount": "300", "item2_nights": "1", "item3_category": "other", "item3_amount": "",
            "csrf_token": csrf_of(page.text)}
    r = await live.post("/console/finance/travel-claims/new", data=form)
    assert r.status_code == 303 and r.headers["location"].endswith("?done=created"), r.text
    return r.headers["location"].split("/")[4].split("?")[0]


async def attach_receipts(live: httpx.AsyncClient, claim_id: str, claim: dict) -> None:
    for item in claim["items"]:
        token = await csrf(live, f"/console/finance/travel-claims/{claim_id}")
        r = await live.post(f"/console/finance/travel-claims/{claim_id}/items/{item['id']}/receipt",
                            data={"csrf_token": token}, files={"receipt": ("票据.pdf", PDF, "application/pdf")})
        assert r.status_code == 303, r.text


async def test_finance_enters_a_claim_receipts_check_and_a_second_finance_user_approves_R43_1(live, finance,
                                                                                              finance_app):
    district = new_district()
    await fund(finance, clock.today().year, district)
    supervisor_id = await supervisor_in(finance_app, district)
    await signed_in(live, "dev-finance")
    claim_id = await enter_claim(live, supervisor_id)
    url = f"/console/finance/travel-claims/{claim_id}"
    claim = (await finance.get(f"/travel-claims/{claim_id}", headers=FIN_A)).json()
    assert (claim["total_fen"], claim["status"], claim["created_by"], claim["district"]) == (
        42_000, "draft", "dev-finance", district)

    no_receipts = await live.post(f"{url}/check", data={"csrf_token": await csrf(live, url)})
    assert no_receipts.status_code == 422 and "缺少票据" in no_receipts.text
    assert "尚有 2 项未上传票据" in no_receipts.text  # finance's R43.1 detail
    await attach_receipts(live, claim_id, claim)
    claim = (await finance.get(f"/travel-claims/{claim_id}", headers=FIN_A)).json()
    assert all(i["receipt_sha256"] and i["receipt_content_type"] == "application/pdf" for i in claim["items"])
    page = await live.get(url)
    [receipt] = re.findall(r'href="(/documents/finance/travel-claims/[^"]+/receipt)"', page.text)[:1]
    shown = await live.get(receipt)
    assert shown.status_code == 200 and shown.content == PDF and shown.headers["content-type"] == "application/pdf"

    token = await csrf(live, url)
    assert (await live.post(f"{url}/check", data={"csrf_token": token})).status_code == 303
    stale = await live.post(f"{url}/check", data={"csrf_token": token})  # the same button in a second tab
    assert stale.status_code == 409 and "状态不允许此操作" in stale.text
    page = await live.get(url)
    assert 'id="four-eyes"' in page.text and 'id="approve-button"' not in page.text
    own = await live.post(f"{url}/approve", data={"csrf_token": token})
    assert own.status_code == 403 and "不得自行审核或批准" in own.text
    assert (await finance.get(f"/travel-claims/{claim_id}", headers=FIN_A)).json()["status"] == "checked"

    await signed_in(live, "dev-finance-reviewer")
    page = await live.get(url)
    assert 'id="approve-button"' in page.text
    r = await live.post(f"{url}/approve", data={"approved_amount": "", "reason": "", "csrf_token": csrf_of(page.text)})
    assert r.status_code == 303
    claim = (await finance.get(f"/travel-claims/{claim_id}", headers=FIN_A)).json()
    assert (claim["status"], claim["checked_by"], claim["approved_by"], claim["payable_fen"]) == (
        "approved", "dev-finance", "dev-finance-reviewer", 42_000)
    listed = await live.get("/console/finance/travel-claims", params={"supervisor_id": str(supervisor_id)})
    assert listed.status_code == 200 and f'data-claim-id="{claim_id}" data-status="approved"' in listed.text

    await signed_in(live, "dev-auditor")
    page = await live.get(url)
    assert page.status_code == 200 and "办理" not in page.text and 'class="receipt-form"' not in page.text
    await signed_in(live, "dev-district-huancui")
    assert (await live.get(url)).status_code == 403


async def test_over_budget_approval_shows_R41_1_until_another_finance_user_approves_the_excess(live, finance,
                                                                                             finance_app):
    supervisor_id = await supervisor_in(finance_app, new_district())  # a district without a plan: budget 0
    await signed_in(live, "dev-finance")
    claim_id = await enter_claim(live, supervisor_id)
    url = f"/console/finance/travel-claims/{claim_id}"
    await attach_receipts(live, claim_id, (await finance.get(f"/travel-claims/{claim_id}", headers=FIN_A)).json())
    assert (await live.post(f"{url}/check", data={"csrf_token": await csrf(live, url)})).status_code == 303

    await signed_in(live, "dev-finance-reviewer")
    refused = await live.post(f"{url}/approve", data={"csrf_token": await csrf(live, url)})
    assert refused.status_code == 409 and "超出年度预算" in refused.text and 'data-code="R41.1"' in refused.text
    assert "<details class=\"card workflow\" open>" in refused.text  # the excess form opened beside the refusal
    assert (await finance.get(f"/travel-claims/{claim_id}", headers=FIN_A)).json()["status"] == "checked"

    await signed_in(live, "dev-finance")
    r = await live.post(f"{url}/budget-excess", data={"reason": "年度计划追加，经局务会同意",
                                                      "csrf_token": await csrf(live, url)})
    assert r.status_code == 303
    await signed_in(live, "dev-finance-reviewer")
    assert (await live.post(f"{url}/approve", data={"csrf_token": await csrf(live, url)})).status_code == 303
    claim = (await finance.get(f"/travel-claims/{claim_id}", headers=FIN_A)).json()
    assert (claim["status"], claim["excess_approved_by"], claim["excess_reason"]) == (
        "approved", "dev-finance", "年度计划追加，经局务会同意")


async def test_a_claim_finance_refuses_comes_back_with_what_was_typed(live, finance_app):
    supervisor_id = await supervisor_in(finance_app, new_district())
    await signed_in(live, "dev-finance")
    page = await live.get("/console/finance/travel-claims/new")
    future = (clock.today() + timedelta(days=3)).isoformat()
    r = await live.post("/console/finance/travel-claims/new", data={
        "supervisor_id": str(supervisor_id), "purpose_kind": "meeting", "purpose_ref": "全市人民监督员工作会议",
        "travel_date": future, "item1_category": "transport", "item1_amount": "80", "csrf_token": csrf_of(page.text)})
    assert r.status_code == 422 and "差旅日期晚于今天" in r.text  # finance's R43.1
    assert 'value="全市人民监督员工作会议"' in r.text and f'value="{future}"' in r.text
    r = await live.post("/console/finance/travel-claims/new", data={
        "supervisor_id": str(supervisor_id), "purpose_kind": "meeting", "purpose_ref": "会议",
        "travel_date": clock.today().isoformat(), "item1_category": "transport", "item1_amount": "八十",
        "csrf_token": csrf_of(page.text)})
    assert r.status_code == 422 and "金额格式错误" in r.text
    assert re.search(r'id="f-item1_amount"[^>]*aria-invalid', r.text)
