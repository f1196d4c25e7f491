"""The console's and the supervisor's pages at their edges, through the real ASGI app (services down or absent):
who may open them, what a forged or malformed form gets, what a failing service or an unexpected error shows.
The pages with the services up are walked in Chromium (tests/browser/test_journeys.py)."""

from __future__ import annotations

import re
import time

import pytest

from services.portal.app import SECURITY_HEADERS
from services.portal.sessions import COOKIE_NAME, Session, User, seal
from tests.integration.portal.helpers import KEY, csrf_of, signed_in

REQUEST = "5c1d2f0e-7a43-4b8e-9a76-0d2b1e6f4c21"
PAGES = ["/console/requests", f"/console/requests/{REQUEST}", f"/console/requests/{REQUEST}/staffing",
         "/console/roster", f"/console/roster/{REQUEST}",
         "/console/training", f"/console/training/sessions/{REQUEST}",
         "/console/appraisal", f"/console/appraisal/{REQUEST}", "/console/finance/lines",
         "/console/finance/disbursements/2026-12", "/me", f"/me/activities/{REQUEST}", "/me/record", "/me/inbox",
         # issue 15's roster writes and finance pages
         "/console/roster/new", f"/console/roster/{REQUEST}/appoint", "/console/roster/import",
         "/console/roster/import/template", "/console/dismissals", f"/console/dismissals/{REQUEST}",
         "/console/finance/rates", "/console/finance/plans", "/console/finance/travel-claims",
         "/console/finance/travel-claims/new", f"/console/finance/travel-claims/{REQUEST}",
         "/console/finance/disbursements"]


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_without_a_session_goes_to_sign_in_with_the_page_remembered(client, path):
    r = await client.get(path, params={"x": "1"})
    assert r.status_code == 303 and r.headers["location"].startswith("/sign-in?next=")
    assert r.headers["location"].removeprefix("/sign-in?next=").replace("%2F", "/").startswith(path)


async def test_an_expired_session_on_a_console_page_comes_back_to_it_after_sign_in(client):
    stale = Session(user=User("dev-bureau-admin", "市司法局管理员", ("bureau_admin",)), token="expired",
                    expires_at=int(time.time()) - 1)
    client.cookies.set(COOKIE_NAME, seal(stale, KEY))
    r = await client.get("/console/requests", params={"status": "drawn"})
    assert r.status_code == 303
    assert r.headers["location"] == "/sign-in?next=/console/requests%3Fstatus%3Ddrawn&reason=expired"
    assert await signed_in(client, next_path="/console/requests?status=drawn") == "/console/requests?status=drawn"


@pytest.mark.parametrize(("persona", "path"), [("dev-supervisor", "/console/requests"),
                                               ("dev-procuratorate-weihai", "/console/finance/lines"),
                                               ("dev-bureau-admin", "/me"),
                                               ("dev-finance", "/me/record")])
async def test_pages_are_for_their_roles_only(client, persona, path):
    await signed_in(client, persona)
    r = await client.get(path)
    assert r.status_code == 403 and "无权查看此页面" in r.text


async def test_a_service_that_is_down_is_named_and_the_page_says_so_with_its_headers(client):
    await signed_in(client)
    r = await client.get("/console/requests")
    assert r.status_code == 502 and "随机抽选服务暂不可用" in r.text
    assert "Traceback" not in r.text
    assert all(r.headers[name] == value for name, value in SECURITY_HEADERS.items())


async def test_r12_1_the_live_staffing_line_of_a_request_says_which_service_is_down_as_problem_json(client):
    """What the request page's script reads every few seconds: with selection down, a problem+json naming it
    (the script shows its title and keeps asking), never a page of HTML or a stack trace."""
    await signed_in(client)
    r = await client.get(f"/console/requests/{REQUEST}/staffing", headers={"accept": "application/json"})
    assert r.status_code in (502, 503) and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["title"] == "随机抽选服务暂不可用"
    assert (await client.get("/console/requests/not-a-uuid/staffing", headers={"accept": "application/json"})
            ).json()["status"] == 404


async def test_my_record_names_each_service_that_is_down_and_still_shows_the_page_R28_1_R42_1(client):
    """The ledger (appraisal), training (registry) and subsidies (finance) are three reads: all three down is
    three named alerts on a page that renders, with the year chooser, not an error page."""
    await signed_in(client, "dev-supervisor")
    r = await client.get("/me/record")
    assert r.status_code == 200, r.text
    alerts = re.findall(r'role="alert" data-service="(\w+)"', r.text)
    assert sorted(alerts) == ["appraisal", "finance", "registry"], alerts
    assert all(f"{name}暂不可用" in r.text for name in ("考核服务", "人员名册服务", "补助经费服务"))
    assert 'id="year"' in r.text


@pytest.mark.parametrize("year", ["2023", "2999", "abc", "-1"])
async def test_my_record_for_a_year_outside_the_measures_is_a_clear_page(client, year):
    await signed_in(client, "dev-supervisor")
    r = await client.get("/me/record", params={"year": year})
    assert r.status_code == 422 and "年度有误" in r.text


@pytest.mark.parametrize(("persona", "path", "status", "text"), [
    # the form still renders (typed in, sent when registry is back); the service is named
    ("dev-bureau-admin", "/console/roster/new", 200, "人员名册服务暂不可用"),
    ("dev-finance", "/console/finance/plans?year=2027", 200, "补助经费服务暂不可用"),
    ("dev-bureau-admin", "/console/dismissals", 502, "人员名册服务暂不可用"),
    ("dev-finance", "/console/finance/rates", 502, "补助经费服务暂不可用"),
    ("dev-finance", "/console/finance/travel-claims", 502, "补助经费服务暂不可用"),
    ("dev-finance", "/console/finance/travel-claims/new", 200, "代为申报差旅费"),  # needs no service to render
])
async def test_the_new_pages_name_the_service_that_is_down(client, persona, path, status, text):
    await signed_in(client, persona)
    r = await client.get(path)
    assert r.status_code == status and text in r.text and "Traceback" not in r.text


async def test_a_form_posted_while_its_service_is_down_keeps_what_was_typed_and_names_the_service(client):
    await signed_in(client)
    token = csrf_of((await client.get("/")).text)
    r = await client.post("/console/roster/new", data={"name": "王五", "phone": "13900000000", "csrf_token": token})
    assert r.status_code == 503 and "人员名册服务暂不可用" in r.text and 'value="王五"' in r.text


async def test_an_unexpected_error_is_a_chinese_page_with_the_security_headers(client):
    await signed_in(client)

    async def broken(*args, **kwargs):
        raise RuntimeError("boom")
    client._transport.app.state.backend.get = broken  # a bug in the portal itself, not a service's refusal
    r = await client.get("/console/requests")
    assert r.status_code == 500 and "门户内部错误" in r.text and "boom" not in r.text
    assert all(r.headers[name] == value for name, value in SECURITY_HEADERS.items())


@pytest.mark.parametrize(("path", "status", "text"), [
    ("/console/requests?status=bogus", 422, "未知的申请状态"),
    ("/console/requests/not-a-uuid", 404, "不是有效的编号"),
    ("/console/roster?status=bogus", 422, "未知的筛选条件"),
    ("/console/roster?ending=7", 422, "未知的筛选条件"),
    ("/console/finance/lines?status=bogus", 422, "未知的明细状态"),
    ("/console/finance/disbursements/2026-13", 404, "月份格式错误"),
    ("/documents/finance/disbursements/2026-12/docx", 404, "文书不存在"),
    ("/documents/registry/supervisors", 404, "文书不存在"),  # only the services' documents, nothing else of them
    ("/documents/selection/draws/x/receipt", 404, "文书不存在"),
])
async def test_bad_input_in_a_page_address_is_a_clear_page(client, path, status, text):
    await signed_in(client, "dev-finance" if "finance" in path else "dev-bureau-admin")
    r = await client.get(path)
    assert r.status_code == status and text in r.text


@pytest.mark.parametrize(("persona", "path", "data"), [
    ("dev-bureau-admin", f"/console/requests/{REQUEST}/calls/{REQUEST}", {"outcome": "confirmed", "draw_id": REQUEST}),
    ("dev-bureau-admin", f"/console/requests/{REQUEST}/calls/{REQUEST}/phone", {}),
    ("dev-finance", f"/console/finance/lines/{REQUEST}/approve", {}),
    ("dev-bureau-admin", f"/console/roster/{REQUEST}/reveal", {}),
    ("dev-bureau-admin", f"/console/appraisal/{REQUEST}/forward", {"to": "reviewed"}),
    ("dev-bureau-admin", f"/console/appraisal/{REQUEST}/back", {"reason": "有误"}),
    ("dev-bureau-admin", "/console/roster/new", {"name": "张三"}),
    ("dev-bureau-admin", f"/console/roster/{REQUEST}/appoint", {"decision_no": "x"}),
    ("dev-bureau-admin", f"/console/roster/{REQUEST}/resignations", {"reason_kind": "health", "reason": "病"}),
    ("dev-bureau-admin", f"/console/roster/{REQUEST}/resignations/{REQUEST}/decision", {"approve": "true"}),
    ("dev-bureau-admin", f"/console/roster/{REQUEST}/dismissals", {"ground": "2", "evidence_note": "x"}),
    ("dev-bureau-admin", f"/console/dismissals/{REQUEST}/confirm", {}),
    ("dev-finance", "/console/finance/rates", {"activity_type": "other", "amount": "1"}),
    ("dev-finance", "/console/finance/rates/1/approve", {}),
    ("dev-procuratorate-weihai", "/console/finance/plans/2027", {"c-other-1": "1"}),
    ("dev-finance", "/console/finance/travel-claims/new", {"item1_amount": "1"}),
    ("dev-finance", f"/console/finance/travel-claims/{REQUEST}/check", {}),
    ("dev-finance", f"/console/finance/travel-claims/{REQUEST}/budget-excess", {"reason": "x"}),
    ("dev-supervisor", f"/me/assignments/{REQUEST}/confirm", {}),
    ("dev-supervisor", f"/me/activities/{REQUEST}/sign", {"content_hash": "0" * 64}),
    ("dev-bureau-admin", "/console/training/sessions", {"kind": "annual", "format": "lecture", "title": "x",
                                                        "held_on": "2026-12-01", "hours": "4"}),
    ("dev-bureau-admin", f"/console/training/sessions/{REQUEST}/results", {f"attended-{REQUEST}": "yes"}),
])
async def test_a_form_without_this_sessions_csrf_token_does_nothing(client, persona, path, data):
    await signed_in(client, persona)
    calls = []

    async def record(*args, **kwargs):
        calls.append(args)
    client._transport.app.state.backend.post = record
    for token in (None, "forged"):
        r = await client.post(path, data={**data, "note": "x", **({"csrf_token": token} if token else {})})
        assert r.status_code == 403 and "表单已失效，未执行任何操作" in r.text
    assert calls == []  # nothing reached a service


async def test_r22_2_a_results_form_with_nothing_filled_in_sends_nothing(client):
    await signed_in(client)
    token = csrf_of((await client.get("/")).text)
    calls = []

    async def record(*args, **kwargs):
        calls.append(args)
    client._transport.app.state.backend.post = record
    r = await client.post(f"/console/training/sessions/{REQUEST}/results",
                          data={"csrf_token": token, f"attended-{REQUEST}": ""})
    assert r.status_code == 422 and "请至少录入一人的培训结果" in r.text
    assert calls == []


@pytest.mark.parametrize("persona", ["dev-district-huancui", "dev-auditor"])
async def test_r22_2_only_the_city_bureau_records_training_results(client, persona):
    """registry's record_results is bureau_admin's; the portal refuses the others before calling it."""
    await signed_in(client, persona)
    token = csrf_of((await client.get("/")).text)
    r = await client.post(f"/console/training/sessions/{REQUEST}/results",
                          data={"csrf_token": token, f"attended-{REQUEST}": "yes"})
    assert r.status_code == 403


@pytest.mark.parametrize(("persona", "path", "field"), [
    ("dev-bureau-admin", "/console/roster/import", "file"),
    ("dev-finance", f"/console/finance/travel-claims/{REQUEST}/items/{REQUEST}/receipt", "receipt"),
])
async def test_a_file_form_without_this_sessions_csrf_token_sends_nothing(client, persona, path, field):
    await signed_in(client, persona)
    calls = []

    async def record(*args, **kwargs):
        calls.append(args)
    client._transport.app.state.backend.send_file = record
    for token in (None, "forged"):
        r = await client.post(path, data={"csrf_token": token} if token else {},
                              files={field: ("a.xlsx", b"PK\x03\x04 bytes", "application/octet-stream")})
        assert r.status_code == 403 and "表单已失效，未执行任何操作" in r.text
    r = await client.post(path, data={"csrf_token": "x"})  # not multipart: refused before anything is read
    assert r.status_code == 415
    assert calls == []


async def test_a_call_outcome_form_is_checked_before_anything_is_sent(client):
    await signed_in(client)
    token = csrf_of((await client.get("/")).text)
    calls = []

    async def record(*args, **kwargs):
        calls.append((args, kwargs))
    client._transport.app.state.backend.post = record
    base = {"csrf_token": token, "draw_id": REQUEST}
    for data, text in (({**base, "outcome": "maybe"}, "请选择联络结果"),
                       ({**base, "outcome": "unreachable", "attempt1_at": "yesterday"}, "联系时间格式错误"),
                       ({**base, "outcome": "declined", "attempt1_at": "2026-12-07T09:00", "attempt1_channel": "fax"},
                        "联系方式无效")):
        r = await client.post(f"/console/requests/{REQUEST}/calls/{REQUEST}", data=data)
        assert r.status_code == 422 and text in r.text
    assert calls == []
    r = await client.post(f"/console/requests/{REQUEST}/calls/{REQUEST}",
                          data={**base, "outcome": "unreachable", "attempt1_at": "2026-12-07T09:00:05",
                                "attempt1_channel": "phone", "attempt2_at": "2026-12-07T11:00",
                                "attempt2_channel": "sms"})
    assert r.status_code == 303
    (args, _), = calls  # one call to selection, with the attempts in Shanghai time (the clerk's stated times)
    assert args[:2] == ("selection", f"/draws/{REQUEST}/contacts")
    assert args[3]["attempts"] == [{"at": "2026-12-07T09:00:05+08:00", "channel": "phone"},
                                   {"at": "2026-12-07T11:00:00+08:00", "channel": "sms"}]
