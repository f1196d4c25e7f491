"""Issue 15's journeys in a real browser against the real services (PostgreSQL, broker; tests/browser/stack.py).

One system for the module, and the journeys in the order people meet them:
1. the bureau's clerk signs in, takes the hearing from the to-do board to its call list, reveals the next
   person's phone (audited) and records the call (R12.1); finds that person on the roster and reveals their
   id number and phone (audited, R3.1);
2. the next person in draw order, on a 390×844 phone, confirms themselves; the clerk confirms the cross-district
   seat and the request is staffed;
3. the procuratorate shares a material (R15.1): the supervisor reads it on the phone;
4. on the day (the stack's clock moved to the hearing), the supervisor writes the opinion (R16.1) and signs the
   feedback form on site (R17.1); the inbox shows "you were drawn";
5. finance checks a subsidy line, a second finance user approves it (four eyes, R42.1), and the month's
   table downloads as xlsx; the supervisor reads the year's ledger (R28.1) and their subsidy on the phone;
6. a member of the public verifies the draw's real receipt and sees a tampered copy rejected (R11.1);
7. the clerk registers a person (registry's refusal beside the field first), appoints them (R4.1, R5.1), and imports
   an xlsx with one bad row among eight: that row is named and nothing is imported, then the corrected file is.
Screenshots of each key page go to tests/browser/artifacts/; axe-core runs on every page. Every test takes
pytest-playwright's `page` (so all are parametrized alike and keep this order).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pypdf
import pytest
from playwright.sync_api import Browser, Page, expect

from services.registry.bulk.workbook import IMPORT_COLUMNS
from shared.tokens import load_key_file, mint
from tests.browser import receipts
from tests.browser.conftest import PHONE
from tests.browser.pages import check_page
from tests.support.registry_helpers import new_id_number, new_phone

ROOT = Path(__file__).resolve().parents[2]
HOME = "环翠区"
SHANGHAI = ZoneInfo("Asia/Shanghai")
OFFICE = "威海市人民检察院"


class System:
    """The stack's URLs, a token minter with its key, and the other agencies' calls (plain HTTP, as they make them)."""

    def __init__(self, urls: dict[str, str], key_file: str) -> None:
        self.urls, self.private_key = urls, load_key_file(key_file)[0]
        self.portal = urls["portal"]

    def headers(self, role: str, subject: str, **claims: str) -> dict[str, str]:
        return {"Authorization": "Bearer " + mint(self.private_key, subject=subject, roles=[role], **claims)}

    def procuratorate(self) -> dict[str, str]:
        return self.headers("procuratorate", "journey-procuratorate", district=HOME, office=OFFICE)

    def bureau(self) -> dict[str, str]:
        return self.headers("bureau_admin", "journey-bureau")

    def call(self, method: str, service: str, path: str, headers: dict[str, str], **kwargs) -> httpx.Response:
        response = httpx.request(method, self.urls[service] + path, headers=headers, timeout=30, **kwargs)
        assert response.status_code < 400, (method, path, response.status_code, response.text)
        return response

    def wait_for(self, what: str, predicate, timeout: float = 60) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := predicate():
                return value
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}")

    def set_clock(self, at: datetime | None) -> None:
        body = {"at": at.isoformat() if at else None}
        assert httpx.put(self.urls["control"] + "/clock", json=body, timeout=10).status_code == 200


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    log = (tmp_path_factory.mktemp("stack") / "stack.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "tests.browser.stack"], cwd=ROOT, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        info = None
        deadline = time.monotonic() + 300  # a hang detector: a loaded machine is slow
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                raise AssertionError(f"the browser stack stopped before it was ready (log: {log.name})")
            if line.startswith('{"urls"'):
                info = json.loads(line)
            if line.strip() == "READY":
                break
        assert info is not None, f"the browser stack gave no URLs (log: {log.name})"
        yield System(info["urls"], info["key_file"])
    finally:
        process.stdin.close()  # the stack stops when its stdin closes
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def hearing(system: System) -> dict:
    """The demo hearing's selection request, once its draw is in (the draw protocol runs over the broker)."""
    def drawn():
        items = system.call("GET", "selection", "/requests", system.bureau()).json()["items"]
        return next((r for r in items if r["via"] == "event" and r["status"] == "drawn"), None)
    return system.wait_for("the demo hearing to be drawn", drawn)


def sign_in(page: Page, system: System, persona: str, supervisor_id: str | None = None) -> None:
    page.goto(system.portal + "/sign-in")
    page.check(f"#persona-{persona}")
    if supervisor_id:
        page.fill("#supervisor-id", supervisor_id)
    page.click("#sign-in-button")
    expect(page.locator("#sign-out")).to_be_visible()


def record_confirmed(page: Page, supervisor_id: str) -> None:
    card = page.locator(f'li.call[data-supervisor-id="{supervisor_id}"]')
    if card.locator("details.outcome").get_attribute("open") is None:
        card.locator("details.outcome summary").click()
    card.locator('input[value="confirmed"]').check()
    card.locator("button.record").click()
    expect(page.locator("#done")).to_have_text("已记录联络结果。")


def pending_in(page: Page, group_label: str) -> str:
    """The supervisor id of the first person waiting for a call in a group (本区市 / 跨区市)."""
    card = page.locator("li.call[data-status=pending]", has_text=group_label).first
    return card.get_attribute("data-supervisor-id")


@pytest.fixture(scope="module")
def state() -> dict:
    return {}


def test_clerk_from_to_do_board_through_call_list_R12_1(page: Page, system: System, hearing: dict, state: dict,
                                                         artifacts: Path) -> None:
    sign_in(page, system, "dev-bureau-admin")
    row = page.locator('tr[data-rule="R12.1"][data-kind="contact_pending"]')
    expect(row).to_be_visible()
    assert row.locator("td").nth(5).inner_text() == "1"  # one request upcoming, seeded by the demo hearing
    check_page(page, artifacts, "journey-clerk-todo")
    row.locator("a").click()
    expect(page).to_have_url(re.compile(r"/console/requests\?status=drawn$"))
    card = page.locator(f'li.item[data-request-id="{hearing["request_id"]}"]')
    expect(card).to_contain_text("公开听证/公开审查")  # the N-ACT label, not the code
    check_page(page, artifacts, "journey-clerk-requests")
    card.locator("a").click()

    expect(page.locator("#confirmed-count")).to_have_text("0")
    nxt = page.locator("li.call-next")
    first = nxt.get_attribute("data-supervisor-id")
    assert nxt.locator(".call-phone").inner_text().count("*") == 4  # masked until revealed
    nxt.locator("button.reveal").click()
    expect(page.locator("li.call-next .phone-full")).to_have_text(re.compile(r"^1\d{10}$"))
    check_page(page, artifacts, "journey-clerk-call-list")
    stale = page.context.new_page()  # a second tab with the same call list, left open
    stale.goto(f"{system.portal}/console/requests/{hearing['request_id']}")
    record_confirmed(page, first)
    expect(page.locator("#confirmed-count")).to_have_text("1")
    # the stale tab's form for the same person: a clear refusal, nothing recorded twice
    card = stale.locator(f'li.call[data-supervisor-id="{first}"]')
    card.locator('input[value="confirmed"]').check()
    card.locator("button.record").click()
    expect(stale.locator("#error-title")).to_have_text("联络结果已记录")  # selection's own 409, in Chinese
    expect(stale.locator("#error-code")).to_have_text("contact_already_recorded")
    stale.close()
    page.reload()
    expect(page.locator("#confirmed-count")).to_have_text("1")
    assert page.locator(f'li.call[data-supervisor-id="{first}"]').get_attribute("data-status") == "confirmed"
    # the phone reveal is in selection's audit log with the clerk as actor (R3.1)
    state["local_next"] = pending_in(page, "本区市")
    state["cross_next"] = pending_in(page, "跨区市")
    state["confirmed"] = [first]


def test_clerk_finds_a_person_on_the_roster_and_reveals_their_data_audited_R3_1(page: Page, system: System,
                                                                              state: dict, artifacts: Path) -> None:
    sign_in(page, system, "dev-bureau-admin")
    person = system.call("GET", "registry", f"/supervisors/{state['confirmed'][0]}", system.bureau()).json()
    page.goto(system.portal + "/console/roster")
    page.fill("#name", person["name"])
    page.click("form.filters button")
    row = page.locator(f'#roster tr[data-supervisor-id="{person["id"]}"]')
    expect(row).to_be_visible()
    assert "*" in row.locator("td").nth(6).inner_text()  # masked in the list (R3.1)
    check_page(page, artifacts, "journey-clerk-roster")
    row.locator("a").click()
    expect(page.locator("#id-number")).to_contain_text("*")
    expect(page.locator("#appointments li")).to_have_count(1)
    page.click("#reveal-button")
    expect(page.locator("#revealed")).to_be_visible()
    expect(page.locator("#id-number")).to_have_text(re.compile(r"^\d{17}[\dX]$"))
    expect(page.locator("#phone")).to_have_text(re.compile(r"^1\d{10}$"))
    check_page(page, artifacts, "journey-clerk-person")
    certificate = page.request.get(system.portal + page.locator("a.certificate").first.get_attribute("href"))
    assert certificate.status == 200 and certificate.body().startswith(b"%PDF")
    assert person["name"] in "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(certificate.body())).pages)
    page.goto(system.portal + "/console/training")  # the sessions of the year and who still needs training
    for key in ("overdue", "makeup", "term", "annual"):
        expect(page.locator(f'section.due[data-list="{key}"] .due-total')).to_have_text(re.compile(r"^\d+$"))
    check_page(page, artifacts, "journey-clerk-training")
    # the year's centralized training (R23.1): a session, and this person's attendance recorded on it
    page.locator("#new-session summary").click()
    page.fill("#session-title", "人民监督员年度集中培训")
    page.select_option("#session-kind", "annual")
    page.select_option("#session-format", "lecture")
    page.fill("#session-date", datetime.now(SHANGHAI).date().isoformat())
    page.fill("#session-hours", "6")
    page.click("#create-session")
    expect(page.locator("#done")).to_contain_text("已新建培训班次")
    page.fill("#name", person["name"])
    page.click("form.filters button")
    page.locator(f'tr.candidate[data-supervisor-id="{person["id"]}"] select').first.select_option("yes")
    page.click("#record-results")
    expect(page.locator("#done")).to_have_text("已录入 1 人的培训结果。")
    expect(page.locator(f'#results tr[data-supervisor-id="{person["id"]}"] .attended')).to_have_text("出勤")
    expect(page.locator(f'tr.candidate[data-supervisor-id="{person["id"]}"]')).to_have_count(0)  # not twice
    check_page(page, artifacts, "journey-clerk-training-session")
    page.goto(f"{system.portal}/console/roster/{person['id']}")
    expect(page.locator("#training")).to_contain_text("年度集中培训")


def test_supervisor_confirms_on_a_phone_and_the_request_is_staffed(browser: Browser, page: Page, system: System,
                                                                     hearing: dict, state: dict,
                                                                     artifacts: Path) -> None:
    # the clerk has the request open while the next person is asked (the live staffing line, R12.1)
    sign_in(page, system, "dev-bureau-admin")
    page.goto(f"{system.portal}/console/requests/{hearing['request_id']}")
    expect(page.locator("#live-confirmed")).to_have_text("1")
    expect(page.locator("#live-update")).to_be_hidden()

    phone = browser.new_context(viewport=PHONE, is_mobile=True)
    mine = phone.new_page()
    sign_in(mine, system, "dev-supervisor", state["local_next"])
    mine.goto(system.portal + "/me")
    assignment = mine.locator(f'li.assignment[data-request-id="{hearing["request_id"]}"]')
    expect(assignment).to_have_attribute("data-status", "pending")
    check_page(mine, artifacts, "journey-supervisor-assignment")
    mine.set_viewport_size(PHONE)
    assignment.locator("button.confirm").click()
    expect(mine.locator("#done")).to_have_text("已确认参加，谢谢！")
    expect(assignment).to_have_attribute("data-status", "confirmed")
    state["supervisor_page"] = mine
    state["confirmed"].append(state["local_next"])

    # the clerk's open page sees it without a reload, and offers one for the call list
    expect(page.locator("#live-confirmed")).to_have_text("2", timeout=30_000)
    expect(page.locator("#live-update")).to_be_visible()
    check_page(page, artifacts, "journey-clerk-live-staffing")
    page.click("#live-reload")
    assert page.locator(f'li.call[data-supervisor-id="{state["local_next"]}"]').get_attribute(
        "data-status") == "confirmed"
    record_confirmed(page, state["cross_next"])
    state["confirmed"].append(state["cross_next"])
    expect(page.locator("#confirmed-count")).to_have_text("3")
    expect(page.locator("#request-status")).to_have_attribute("data-status", "staffed")


def test_supervisor_reads_materials_R15_1(page: Page, system: System, hearing: dict, state: dict,
                                          artifacts: Path) -> None:
    activity = hearing["activity_id"]

    def on_roster():
        people = system.call("GET", "casework", f"/activities/{activity}/feedback-form",
                             system.procuratorate()).json()["content"]["participants"]
        return len(people) == 3
    system.wait_for("the confirmed roster in casework", on_roster, timeout=180)
    system.call("POST", "casework", f"/activities/{activity}/materials", system.procuratorate(),
                json={"title": "听证案件基本情况", "text": "犯罪嫌疑人张某涉嫌盗窃一案的基本情况说明。"})
    mine: Page = state["supervisor_page"]
    mine.goto(system.portal + "/me")
    mine.locator(f'li.assignment[data-request-id="{hearing["request_id"]}"] a.button').click()
    expect(mine.locator("#materials a")).to_have_text("听证案件基本情况")
    check_page(mine, artifacts, "journey-supervisor-activity")
    mine.set_viewport_size(PHONE)
    mine.locator("#materials a").click()
    expect(mine.locator("body")).to_contain_text("犯罪嫌疑人张某涉嫌盗窃一案的基本情况说明。")
    mine.go_back()


def test_supervisor_writes_the_opinion_and_signs_on_site_R16_1_R17_1(page: Page, system: System, hearing: dict,
                                                                      state: dict, artifacts: Path) -> None:
    starts = datetime.fromisoformat(hearing["starts_at"])
    system.set_clock(starts + timedelta(minutes=30))  # on site, during the hearing
    mine: Page = state["supervisor_page"]
    mine.goto(f"{system.portal}/me/activities/{hearing['activity_id']}")
    mine.fill("#opinion-text", "建议对犯罪嫌疑人作出不起诉决定，理由充分。")
    mine.click("#opinion-button")
    expect(mine.locator("#my-opinion")).to_have_text("建议对犯罪嫌疑人作出不起诉决定，理由充分。")
    # the procuratorate records the other two opinions as spoken (R16.1) so the form can be frozen
    for other in state["confirmed"]:
        if other != state["local_next"]:
            system.call("PUT", "casework", f"/activities/{hearing['activity_id']}/opinions/{other}",
                        system.procuratorate(), json={"text": "同意承办检察官的意见。"})
    mine.reload()
    check_page(mine, artifacts, "journey-supervisor-sign")
    mine.set_viewport_size(PHONE)
    mine.click("#sign-button")
    expect(mine.locator("#done")).to_have_text("已签字确认，谢谢！")
    expect(mine.locator("#signed")).to_contain_text("现场签字确认")
    form = system.call("GET", "casework", f"/activities/{hearing['activity_id']}/feedback-form",
                       system.procuratorate()).json()
    assert [s["supervisor_id"] for s in form["signatures"]] == [state["local_next"]]
    # the form of record, one click away (issue 18): the PDF casework made, with the opinion in it
    pdf = mine.request.get(system.portal + mine.locator("#form-pdf").get_attribute("href"))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.body())).pages).replace("\n", "")
    assert "建议对犯罪嫌疑人作出不起诉决定" in text


def test_supervisor_inbox_shows_being_drawn_and_what_was_recorded(page: Page, system: System, state: dict,
                                                                  artifacts: Path) -> None:
    mine: Page = state["supervisor_page"]
    mine.goto(system.portal + "/me/inbox")
    expect(mine.locator("li.message[data-kind=supervisor_asked]").first).to_contain_text("请确认能否参加")
    drawn = mine.locator("li.message[data-kind=supervisor_drawn]")
    expect(drawn.first).to_be_visible(timeout=30_000)
    # what people read: the N-ACT label and a Chinese date, never a code or an ISO date
    expect(drawn.first).to_contain_text("公开听证/公开审查")
    assert not re.search(r"\d{4}-\d{2}-\d{2}|public_hearing", mine.locator("#messages").inner_text())
    check_page(mine, artifacts, "journey-supervisor-inbox")
    before = mine.locator("li.message[data-read=false]").count()
    drawn.first.locator("button").click()
    expect(mine.locator("li.message[data-read=false]")).to_have_count(before - 1)


def test_finance_checks_approves_with_four_eyes_and_downloads_the_table_R42_1(page: Page, system: System,
                                                                             hearing: dict, state: dict,
                                                                             artifacts: Path) -> None:
    activity = hearing["activity_id"]
    form = system.call("GET", "casework", f"/activities/{activity}/feedback-form", system.procuratorate()).json()
    for other in state["confirmed"]:  # the two others sign on site too (with their own tokens)
        if other != state["local_next"]:
            system.call("POST", "casework", f"/activities/{activity}/feedback-form/signatures",
                        system.headers("supervisor", f"journey-{other}", supervisor_id=other),
                        json={"method": "on_site_token", "content_hash": form["content_hash"]})

    def lines():  # FeedbackSigned reaches finance over the broker: one subsidy line per signer
        items = system.call("GET", "finance", "/subsidy-lines", system.headers("finance", "journey-finance"),
                            params={"status": "draft"}).json()["items"]
        return len(items) == 3
    system.wait_for("three subsidy lines in finance", lines, timeout=180)

    sign_in(page, system, "dev-finance")
    page.goto(system.portal + "/console/finance/lines?status=draft")
    expect(page.locator("li.line")).to_have_count(3)
    check_page(page, artifacts, "journey-finance-lines")
    line = page.locator("li.line").first
    line_id = line.get_attribute("data-line-id")
    line.locator("button.act").click()
    expect(page.locator("#done")).to_contain_text("审核通过")
    page.goto(system.portal + "/console/finance/lines?status=checked")
    mine = page.locator(f'li.line[data-line-id="{line_id}"]')
    expect(mine.locator(".four-eyes")).to_be_visible()  # who checked it may not approve it
    expect(mine.locator("button.act")).to_have_count(0)

    sign_in(page, system, "dev-finance-reviewer")
    page.goto(system.portal + "/console/finance/lines?status=checked")
    page.locator(f'li.line[data-line-id="{line_id}"] button.act').click()
    expect(page.locator("#done")).to_contain_text("批准")
    line_after = system.call("GET", "finance", f"/subsidy-lines/{line_id}",
                             system.headers("finance", "journey-finance")).json()
    assert line_after["status"] == "approved"
    assert line_after["checked_by"] == "dev-finance" and line_after["approved_by"] == "dev-finance-reviewer"

    period = hearing["starts_at"][:7]
    page.goto(f"{system.portal}/console/finance/disbursements/{period}")
    check_page(page, artifacts, "journey-finance-table")
    with page.expect_download() as download:
        page.click("#download-xlsx")
    saved = artifacts / f"journey-disbursement-{period}.xlsx"
    download.value.save_as(saved)
    workbook = openpyxl.load_workbook(saved, read_only=True)
    cells = [c for sheet in workbook.worksheets for row in sheet.iter_rows(values_only=True) for c in row if c]
    assert "《威海市人民监督员履职补助发放表》" in cells
    assert line_after["amount_fen"] / 100 in cells  # the approved line's subsidy, in yuan


def test_supervisor_reads_the_years_ledger_and_subsidy_on_the_phone_R28_1_R42_1(page: Page, system: System,
                                                                               hearing: dict, state: dict,
                                                                               artifacts: Path) -> None:
    mine: Page = state["supervisor_page"]
    me, year = state["local_next"], hearing["starts_at"][:4]
    own = system.call("GET", "finance", "/subsidy-lines", system.headers("finance", "journey-finance"),
                      params={"supervisor_id": me}).json()["items"]
    assert len(own) == 1, own  # the signed hearing's line (R42.1)
    mine.goto(f"{system.portal}/me/record?year={year}")
    hearing_entry = mine.locator("#ledger-entries li[data-kind=activity]", has_text="公开听证/公开审查")
    deadline = time.monotonic() + 60  # the signed form reaches appraisal's ledger over the broker (R28.1)
    while hearing_entry.count() == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
        mine.reload()
    expect(hearing_entry).to_have_count(1)
    expect(mine.locator("li.line")).to_have_count(1)
    line = mine.locator("li.line").first
    expect(line.locator(".amount")).to_have_text(f"{own[0]['amount_yuan']} 元")
    expect(line.locator(".status")).to_contain_text({"draft": "待审核", "checked": "待批准",
                                                     "approved": "已批准"}[own[0]["status"]])
    expect(mine.locator("#training-heading")).to_have_text(f"{year} 年培训记录")
    check_page(mine, artifacts, "journey-supervisor-record")
    pdf = mine.request.get(system.portal + mine.locator("#ledger-pdf").get_attribute("href"))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.body())).pages).replace("\n", "")
    assert "公开听证/公开审查" in text, text[:500]


def test_bureau_moves_the_appraisal_round_forward_and_back_with_who_and_when_R34_1(page: Page, system: System,
                                                                                  artifacts: Path) -> None:
    sign_in(page, system, "dev-bureau-admin")
    page.goto(system.portal + "/console/appraisal")
    page.locator("#rounds li.item a").first.click()
    expect(page.locator('li.step[data-state="opened"]')).to_have_attribute("data-status", "current")
    check_page(page, artifacts, "journey-appraisal-stepper")
    page.fill("#forward-note", "个人总结已收齐")
    page.click("#forward-button")
    expect(page.locator("#done")).to_have_text("已推进到下一步。")
    step = page.locator('li.step[data-state="self_summaries"]')
    expect(step).to_have_attribute("data-status", "current")
    expect(step.locator(".step-who")).to_contain_text("dev-bureau-admin")  # who moved it, and when
    expect(step.locator(".step-who")).to_contain_text("个人总结已收齐")
    expect(page.locator('li.step[data-state="opened"]')).to_have_attribute("data-status", "done")
    page.fill("#back-reason", "一名人民监督员的总结有误，退回重交")
    page.click("#back-button")
    expect(page.locator("#done")).to_have_text("已退回上一步。")
    expect(page.locator('li.step[data-state="opened"]')).to_have_attribute("data-status", "current")


def test_public_verifies_the_real_receipt_and_rejects_a_tampered_one_R11_1(page: Page, system: System,
                                                                            hearing: dict,
                                                                            artifacts: Path) -> None:
    detail = system.call("GET", "selection", f"/requests/{hearing['request_id']}", system.bureau()).json()
    draw_id = detail["draws"][0]["draw_id"]
    receipt = system.call("GET", "selection", f"/draws/{draw_id}/receipt", system.bureau()).json()
    context = page.context
    context.clear_cookies()  # the public: nobody signed in
    page.goto(system.portal + "/verify")
    page.fill("#receipt-text", json.dumps(receipt, ensure_ascii=False))
    page.click("#verify-button")
    expect(page.locator("#verdict")).to_have_attribute("data-ok", "true", timeout=60_000)
    check_page(page, artifacts, "journey-public-verify")
    tampered = receipts.tampered(receipt, "seed")  # one digit of the seed (tests/browser/receipts.py)
    page.fill("#receipt-text", json.dumps(tampered, ensure_ascii=False))
    page.click("#verify-button")
    expect(page.locator("#verdict")).to_have_attribute("data-ok", "false", timeout=60_000)


def roster_file(rows: list[dict]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "人民监督员"
    sheet.append(list(IMPORT_COLUMNS.values()))
    for row in rows:
        sheet.append([row.get(field) for field in IMPORT_COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_clerk_registers_and_appoints_a_person_then_imports_a_file_with_a_bad_row_R4_1_R5_1(page: Page,
                                                                                          system: System,
                                                                                          artifacts: Path) -> None:
    sign_in(page, system, "dev-bureau-admin")
    page.goto(system.portal + "/console/roster")
    page.click("#new-link")
    name = "门户" + uuid.uuid4().hex[:4]
    page.fill("#f-name", name)
    page.fill("#f-id_number", new_id_number())
    page.fill("#f-phone", "12345")  # registry refuses it: its message beside the field, the rest kept
    page.fill("#f-district", "文登区")
    page.fill("#f-employer", "威海市某公司")
    page.fill("#f-recommending_body", "文登区某街道")
    page.locator("fieldset .choice", has_text="法律").locator("input").check()
    page.click("#candidate-button")
    expect(page.locator("#refusal-title")).to_have_text("手机号码无效")
    expect(page.locator("#e-phone")).to_contain_text("请输入11位中国大陆手机号码")
    expect(page.locator("#f-name")).to_have_value(name)
    check_page(page, artifacts, "journey-clerk-register-refused")
    page.fill("#f-phone", new_phone())
    page.click("#candidate-button")
    expect(page.locator("#done")).to_contain_text("已登记为候选人员")
    page.fill("#f-decision_no", f"威司任〔2026〕{name}号")
    check_page(page, artifacts, "journey-clerk-appoint")
    page.click("#appoint-button")
    expect(page.locator("#done")).to_contain_text("已任命（R4.1）")
    expect(page.locator("#appointments li")).to_have_count(1)
    person_id = page.url.split("/")[5].split("?")[0]
    person = system.call("GET", "registry", f"/supervisors/{person_id}", system.bureau()).json()
    assert (person["name"], person["status"]) == (name, "active") and person["certificate_no"]
    check_page(page, artifacts, "journey-clerk-appointed-person")

    page.goto(system.portal + "/console/roster")
    page.click("#import-link")
    with page.expect_download() as download:
        page.click("#template-link")
    assert download.value.suggested_filename.endswith(".xlsx")
    prefix = "批" + uuid.uuid4().hex[:4]
    rows = [{"name": f"{prefix}{i}", "id_number": new_id_number(), "phone": new_phone(), "district": "荣成市",
             "employer": "荣成市某单位", "recommending_body": "荣成市某社区", "specialties": "法律",
             "decision_no": f"威司任〔2026〕{prefix}{i}号", "decision_date": datetime.now().date().isoformat()}
            for i in range(8)]
    rows[4]["id_number"] = "370000000000000000"  # Excel row 6: not a valid id number
    page.set_input_files("#import-file", files=[{"name": "名单.xlsx", "buffer": roster_file(rows),
                                                 "mimeType": "application/octet-stream"}])
    page.click("#import-button")
    expect(page.locator("#refusal-title")).to_have_text("导入文件有误，未导入任何记录")
    bad = page.locator("#import-errors tbody tr")
    expect(bad).to_have_count(1)
    expect(bad.first).to_have_attribute("data-row", "6")
    expect(bad.first).to_contain_text("公民身份号码")
    check_page(page, artifacts, "journey-clerk-import-rejected")
    listed = system.call("GET", "registry", "/supervisors", system.bureau(), params={"name": prefix}).json()
    assert listed["total"] == 0  # all or nothing
    rows[4]["id_number"] = new_id_number()
    page.set_input_files("#import-file", files=[{"name": "名单.xlsx", "buffer": roster_file(rows),
                                                 "mimeType": "application/octet-stream"}])
    page.click("#import-button")
    expect(page.locator("#imported-count")).to_have_text("8")
    check_page(page, artifacts, "journey-clerk-imported")
    listed = system.call("GET", "registry", "/supervisors", system.bureau(), params={"name": prefix}).json()
    assert listed["total"] == 8


EVERY_PAGE = [  # (persona, path): every page of the portal a person can open, after the journeys filled the system
    (None, "/verify"), (None, "/sign-in"),
    ("dev-bureau-admin", "/"), ("dev-bureau-admin", "/console/requests"),
    ("dev-bureau-admin", "/console/requests/{request_id}"), ("dev-bureau-admin", "/console/roster"),
    ("dev-bureau-admin", "/console/roster/{person_id}"), ("dev-bureau-admin", "/console/roster/new"),
    ("dev-bureau-admin", "/console/roster/import"), ("dev-bureau-admin", "/console/dismissals"),
    ("dev-bureau-admin", "/console/training"), ("dev-bureau-admin", "/console/training/sessions/{session_id}"),
    ("dev-bureau-admin", "/console/appraisal"), ("dev-bureau-admin", "/console/appraisal/{round_id}"),
    ("dev-district-huancui", "/console/requests"), ("dev-auditor", "/console/roster"),
    ("dev-finance", "/console/finance/lines"), ("dev-finance", "/console/finance/disbursements"),
    ("dev-finance", "/console/finance/rates"), ("dev-finance", "/console/finance/plans"),
    ("dev-finance", "/console/finance/travel-claims"), ("dev-finance", "/console/finance/travel-claims/new"),
    ("dev-procuratorate-weihai", "/console/finance/plans"),
    ("supervisor", "/me"), ("supervisor", "/me/record"), ("supervisor", "/me/inbox"),
    ("supervisor", "/me/activities/{activity_id}"),
]


def test_every_page_is_accessible_fits_a_phone_and_has_no_error_at_360_px(page: Page, system: System, hearing: dict,
                                                                        state: dict, artifacts: Path) -> None:
    """Issue 15: axe-core on every page (no serious or critical violation), nothing wider than 360 px, a Chinese
    page and never an error, for the role that uses it, over the data the journeys left."""
    bureau = system.bureau()
    sessions = system.call("GET", "registry", "/training/sessions", bureau, params={"limit": 1}).json()["items"]
    rounds = system.call("GET", "appraisal", "/rounds", bureau).json()
    ids = {"request_id": hearing["request_id"], "activity_id": hearing["activity_id"],
           "person_id": state["confirmed"][0], "session_id": sessions[0]["id"],
           "round_id": (rounds["items"] if isinstance(rounds, dict) else rounds)[0]["id"]}
    signed_as = "none"
    for n, (persona, path) in enumerate(EVERY_PAGE, start=1):
        if persona != signed_as:
            page.context.clear_cookies()
            if persona == "supervisor":
                sign_in(page, system, "dev-supervisor", state["local_next"])
            elif persona is not None:
                sign_in(page, system, persona)
            signed_as = persona
        answer = page.goto(system.portal + path.format(**ids))
        assert answer is not None and answer.status == 200, (persona, path, answer and answer.status)
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        check_page(page, artifacts, f"every-page-{n:02d}" + re.sub(r"[^a-z0-9]+", "-", path.split("{")[0]).rstrip("-"))
