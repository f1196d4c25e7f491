"""Signing in as a demo persona and out again in a real browser; the token never reaches the page's scripts."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.pages import check_page


def sign_in(page: Page, portal_url: str, persona_label: str) -> None:
    page.goto(f"{portal_url}/sign-in")
    page.get_by_label(persona_label).check()
    page.get_by_role("button", name="登录", exact=True).click()


def test_a_supervisor_signs_in_as_a_demo_persona_and_signs_out(page: Page, portal, artifacts):
    page.goto(portal.url)
    check_page(page, artifacts, "home-anonymous")
    page.get_by_role("link", name="工作人员登录").click()
    expect(page.get_by_role("heading", name="登录", level=1)).to_be_visible()
    check_page(page, artifacts, "sign-in")

    sign_in(page, portal.url, "人民监督员（演示）（人民监督员）")
    expect(page.get_by_role("heading", level=1)).to_have_text("您好，人民监督员（演示）")
    expect(page.locator("#who-roles")).to_have_text("人民监督员")
    # HttpOnly: the session cookie (which seals the token) is invisible to the page's JavaScript
    assert "portal_session" not in page.evaluate("document.cookie")
    cookie = next(c for c in page.context.cookies() if c["name"] == "portal_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    assert "eyJ" not in page.content()  # no JWT anywhere in the page
    check_page(page, artifacts, "home-supervisor")

    page.get_by_role("button", name="退出登录").click()
    expect(page.get_by_role("status")).to_have_text("您已退出登录。")
    assert not [c for c in page.context.cookies() if c["name"] == "portal_session" and c["value"]]
    page.goto(portal.url)
    expect(page.get_by_role("link", name="登录", exact=True)).to_be_visible()


def test_a_bureau_clerk_sees_which_services_are_down_and_the_rest_of_the_page(page: Page, portal, artifacts):
    """Every service of this portal is down: the home page says so per service, in Chinese, no stack trace."""
    sign_in(page, portal.url, "市司法局管理员（市司法局管理员）")
    expect(page.get_by_role("heading", level=1)).to_have_text("您好，市司法局管理员")
    alerts = page.locator("#main [role=alert]")
    expect(alerts).to_have_count(5)
    expect(page.locator('[data-service="appraisal"]')).to_contain_text("考核服务暂不可用")
    assert "Traceback" not in page.content()
    check_page(page, artifacts, "home-bureau-services-down")


def test_a_page_that_does_not_exist_is_a_chinese_page(page: Page, portal, artifacts):
    answer = page.goto(f"{portal.url}/no-such-page")
    assert answer is not None and answer.status == 404
    expect(page.locator("#error-title")).to_have_text("资源不存在")
    check_page(page, artifacts, "not-found")


def test_keyboard_only_the_skip_link_and_signing_in_without_a_mouse(page: Page, portal):
    page.goto(f"{portal.url}/sign-in")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "跳到正文"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.get_by_label("市司法局财务（财务人员）").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Enter")  # submits the form from the focused radio button
    expect(page.get_by_role("heading", level=1)).to_have_text("您好，市司法局财务")
