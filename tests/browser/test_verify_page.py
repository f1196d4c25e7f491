"""/verify recomputes a receipt in the browser and agrees with the stand-alone verifier, check by check (R11.1).

Receipts are made by the selection service's own draw code (tests/browser/receipts.py); the Python verdict is
that of `python -S -m services.selection.draw.verify receipt.json`, run as anyone would run it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser import receipts
from tests.browser.pages import check_page

ROOT = Path(__file__).resolve().parents[2]


def python_verdict(path: Path, *previous: Path) -> dict:
    """{ok, checks: {name: ok}} of the stand-alone verifier on the file(s)."""
    run = subprocess.run([sys.executable, "-S", "-m", "services.selection.draw.verify", str(path), *map(str, previous)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode in (0, 1), run.stderr
    result = json.loads(run.stdout)
    return {"ok": result["ok"], "checks": {name: c["ok"] for name, c in result["checks"].items()}}


def browser_verdict(page: Page) -> dict:
    """{ok, checks: {name: ok}} as the page shows them, once the verdict is in."""
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-ok", re.compile("^(true|false)$"), timeout=60_000)
    checks = {li.get_attribute("data-check"): li.get_attribute("data-ok") == "true"
              for li in page.locator("#checks li").all()}
    return {"ok": verdict.get_attribute("data-ok") == "true", "checks": checks}


def verify_in_browser(page: Page, portal_url: str, path: Path, *, upload: bool, previous: Path | None = None) -> dict:
    page.goto(f"{portal_url}/verify")
    if upload:
        page.get_by_label("或上传凭证文件").set_input_files(str(path))
    else:
        page.get_by_label("凭证内容（JSON）").fill(path.read_text(encoding="utf-8"))
    if previous is not None:
        page.get_by_label("上一份凭证文件（可选，用于核验凭证链）").set_input_files(str(previous))
    page.get_by_role("button", name="核验", exact=True).click()
    return browser_verdict(page)


def write(tmp_path: Path, name: str, receipt: dict) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(receipt, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


GOOD = {
    "staffed_strict": lambda: receipts.staffed(),
    "weighted_with_beacon": lambda: receipts.staffed(
        mode="weighted", beacon={"source": "lottery", "round": "2026-031", "value": "7 19 23"}),
    "without_procuratorate_nonce": lambda: receipts.draw(receipts.people(40), with_procuratorate=False),
    "specialty_and_exclusions": lambda: receipts.draw(
        receipts.people(60), specialty="法律",
        excluded={receipts.people(60)[0]["id"]: ["conflict"], receipts.people(60)[4]["id"]: ["recused"]}),
}


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_r11_1_a_real_receipt_passes_every_check_in_the_browser_as_in_python(page: Page, portal, artifacts, tmp_path,
                                                                              kind):
    path = write(tmp_path, kind, GOOD[kind]())
    expected = python_verdict(path)
    assert expected["ok"] is True, expected
    seen = verify_in_browser(page, portal.url, path, upload=kind == "staffed_strict")
    assert seen == expected
    expect(page.locator("#verdict")).to_contain_text("核验通过")
    assert page.locator("#checks li").count() == len(expected["checks"])
    if kind == "staffed_strict":
        check_page(page, artifacts, "verify-passed")


# (how the receipt is tampered with, the check that must fail first in both verifiers)
TAMPERED = [("order", "order"), ("nonce", "bureau_commitment"), ("seed", "seed"), ("served", "buckets"),
            ("contact_skip", "contacts_follow_order"), ("float", "well_formed")]


@pytest.mark.parametrize(("how", "failing"), TAMPERED)
def test_r11_1_a_tampered_receipt_is_rejected_naming_the_failing_check_as_in_python(page: Page, portal, artifacts,
                                                                                     tmp_path, how, failing):
    path = write(tmp_path, f"tampered-{how}", receipts.tampered(receipts.staffed(), how))
    expected = python_verdict(path)
    assert expected["ok"] is False and expected["checks"][failing] is False, expected
    seen = verify_in_browser(page, portal.url, path, upload=how == "nonce")
    assert seen == expected
    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text("核验未通过")
    failed_line = page.locator(f'#checks li[data-check="{failing}"]')
    expect(failed_line).to_have_attribute("data-ok", "false")
    expect(failed_line).to_contain_text("未通过")
    if how == "order":
        check_page(page, artifacts, "verify-tampered")


def test_r11_1_the_chain_link_to_the_previous_receipt_is_checked_as_in_python(page: Page, portal, tmp_path):
    first = receipts.staffed()
    second = receipts.draw(receipts.people(50, seed=9))
    second["prev_receipt_hash"] = "ab" * 32  # as drawn: not the first's hash
    a, b = write(tmp_path, "first", first), write(tmp_path, "second", second)
    expected = python_verdict(b, a)
    assert expected["checks"]["chain_link"] is False
    assert verify_in_browser(page, portal.url, b, upload=True, previous=a) == expected


def test_r11_1_text_that_is_no_json_gets_a_chinese_message_and_no_checks(page: Page, portal):
    page.goto(f"{portal.url}/verify")
    page.get_by_label("凭证内容（JSON）").fill("{not json")
    page.get_by_role("button", name="核验", exact=True).click()
    expect(page.locator("#verdict")).to_contain_text("无法读取凭证")
    assert page.locator("#checks li").count() == 0


def test_the_verify_page_is_accessible_before_any_receipt(page: Page, portal, artifacts):
    page.goto(f"{portal.url}/verify")
    expect(page.get_by_role("heading", name="抽选凭证核验", level=1)).to_be_visible()
    check_page(page, artifacts, "verify-empty")


def malformed(kind: str) -> str:
    """Receipt files that are JSON but not receipts, or receipts with values canonical JSON refuses."""
    good = receipts.staffed()
    if kind == "array":
        return "[1, 2]"
    if kind == "empty_object":
        return "{}"
    if kind == "no_buckets":
        del good["buckets"]
    elif kind == "big_integer":  # beyond 2**53 - 1: refused by RFC 8785 (I-JSON), in both verifiers
        good["params"]["yearly_cap"] = 2**60
    elif kind == "log_not_a_list":
        good["contact_log"] = {"seq": 1}
    return json.dumps(good, ensure_ascii=False)


@pytest.mark.parametrize("kind", ["array", "empty_object", "no_buckets", "big_integer", "log_not_a_list"])
def test_r11_1_a_malformed_receipt_fails_in_the_browser_exactly_as_in_python(page: Page, portal, tmp_path, kind):
    path = tmp_path / f"{kind}.json"
    path.write_text(malformed(kind), encoding="utf-8")
    expected = python_verdict(path)
    assert expected["ok"] is False, expected
    assert verify_in_browser(page, portal.url, path, upload=False) == expected
