"""The to-do board's rows link to the console's pages for their work: every link is a page of the portal."""

from starlette.routing import Match

from services.portal.app import create_app
from services.portal.config import PortalSettings
from services.portal.todo import WORK_PAGES


def test_every_work_page_of_the_board_is_a_page_of_the_portal():
    app = create_app(PortalSettings(environment="development", portal_session_key=None))
    for (service, kind), link in WORK_PAGES.items():
        path = link.split("?")[0]
        scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
        assert any(route.matches(scope)[0] == Match.FULL for route in app.routes), (service, kind, link)
    assert WORK_PAGES[("finance", "claim_to_approve")] == "/console/finance/travel-claims?status=checked"
