"""Browser tests of the portal: pytest-playwright driving Debian's chromium against a real portal server.

The portal runs in a uvicorn thread of this process on a free port (development settings, the demo-persona
sign-in with a key file of the test's own). Chromium is Debian's package at CHROMIUM_PATH (default
/usr/bin/chromium): without it the tests fail with the command that installs it; they never skip.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from cryptography.fernet import Fernet

from services.portal.app import create_app
from services.portal.config import PortalSettings
from shared.devstack.infra import free_port
from shared.tokens import init_key_file

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def require_chromium() -> str:
    if not CHROMIUM.exists() and shutil.which(str(CHROMIUM)) is None:
        pytest.fail(f"Chromium is missing at {CHROMIUM}: the browser tests need Debian's package. Install it with "
                    "`sudo apt-get install -y chromium` (or `make browser`), or set CHROMIUM_PATH.", pytrace=False)
    return str(CHROMIUM)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The browser tests run last: Playwright's sync API keeps its own event loop running in the main thread from
    the first browser test to the end of the session, and no asyncio test can run beside it."""
    here = Path(__file__).resolve().parent
    items.sort(key=lambda item: Path(str(item.fspath)).resolve().is_relative_to(here))  # stable: order kept


@pytest.fixture(autouse=True)
def _dump_tasks_if_a_test_hangs() -> None:
    """tests/conftest.py's async watchdog needs the asyncio runner, which Playwright's sync API (its own event
    loop in this thread) excludes; a hung browser test still fails by pytest-timeout with its stack."""


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """pytest-playwright's launch arguments, with Debian's chromium instead of Playwright's download."""
    return {**browser_type_launch_args, "executable_path": require_chromium(), "args": ["--no-sandbox"]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    """A reader in China: Chinese locale (date inputs, number formats) and Shanghai time."""
    return {**browser_context_args, "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


class PortalServer:
    """A portal served by uvicorn in a thread; `url` is its base URL."""

    def __init__(self, settings: PortalSettings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_config=None,
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="portal", daemon=True)

    def __enter__(self) -> PortalServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the portal did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def portal_settings(tmp: Path, **overrides) -> PortalSettings:
    fields = {"environment": "development", "dev_key_file": init_key_file(tmp / "dev-keys.json"),
              "cookie_secure": False, "portal_session_key": Fernet.generate_key().decode(),
              # nothing listens on port 9 (discard): every service is down unless a test says otherwise
              "service_urls": {name: "http://127.0.0.1:9" for name in
                               ("registry", "selection", "casework", "appraisal", "finance")}}
    return PortalSettings(**{**fields, **overrides})


@pytest.fixture(scope="session")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalServer]:
    with PortalServer(portal_settings(tmp_path_factory.mktemp("portal"))) as server:
        yield server
