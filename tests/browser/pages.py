"""What every browser test checks on a page: axe-core finds nothing serious or critical; screenshots at two sizes."""

from __future__ import annotations

from pathlib import Path

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

from tests.browser.conftest import DESKTOP, PHONE

AXE = Axe()
BLOCKING_IMPACTS = ("serious", "critical")


def assert_accessible(page: Page) -> None:
    """No axe-core violation of serious or critical impact (WCAG 2.x A/AA rules and best practices)."""
    results = AXE.run(page)
    blocking = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                for v in results.response["violations"] if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, f"{page.url}: {blocking}"


def screenshots(page: Page, artifacts: Path, name: str) -> None:
    """The page at a phone's 390×844 and a desktop's 1280×800, whole, under tests/browser/artifacts/."""
    for size in (PHONE, DESKTOP):
        page.set_viewport_size(size)
        page.screenshot(path=artifacts / f"{name}-{size['width']}x{size['height']}.png", full_page=True)


def assert_fits(page: Page, width: int = 360) -> None:
    """Nothing wider than a 360 px screen: no horizontal scrolling of the page."""
    page.set_viewport_size({"width": width, "height": 740})
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} is {overflow} px wider than {width} px"


def check_page(page: Page, artifacts: Path, name: str) -> None:
    assert_fits(page)
    assert_accessible(page)
    screenshots(page, artifacts, name)
