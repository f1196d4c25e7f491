"""`python -m tests.browser.stack`: the whole system for the browser journeys, in one process, with a test clock.

Real PostgreSQL and the real broker (as every test), the six services and the portal each served by uvicorn on
its own port (threads of this process), the demo data of registry, casework, finance and appraisal (120 supervisors;
a hearing whose supervision request goes through the draw protocol; rates and the year's plans; this year's
appraisal round). What `make run`
does, with two test-only additions that never exist in a service:
- the clock: the journeys must move from "before the activity" (calls, confirmations, materials) to "during it"
  (R17.1: the form is signed on site), so this process's `shared.clock` is frozen and moved by
  `PUT /clock` on a control port (process-wide, so every service thread sees the same moment);
- the tokens: every service verifies the tests' key, and the portal's demo sign-in mints with it.
It prints one JSON line (the URLs, the key file) and then READY; it stops on SIGTERM or when stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import uvicorn
from cryptography.fernet import Fernet
from fastapi import FastAPI
from pydantic import AwareDatetime, BaseModel

from services.appraisal import demo as appraisal_demo
from services.appraisal.app import create_app as appraisal_app
from services.appraisal.config import AppraisalSettings
from services.casework import demo as casework_demo
from services.casework.app import create_app as casework_app
from services.casework.config import CaseworkSettings
from services.finance import demo as finance_demo
from services.finance.app import create_app as finance_app
from services.finance.config import FinanceSettings
from services.notify.app import create_app as notify_app
from services.notify.config import NotifySettings
from services.portal.app import create_app as portal_app
from services.portal.config import PortalSettings
from services.registry import demo as registry_demo
from services.registry.app import create_app as registry_app
from services.registry.config import RegistrySettings
from services.selection.app import build as selection_app
from services.selection.config import SelectionSettings
from shared import clock
from shared.db.migrations import service_migrations, upgrade
from shared.devstack import infra
from tests.support.apps import PRIVATE_KEY, PUBLIC_KEY, bearer, service_settings
from tests.support.signing import signing_env

SERVICES = ("registry", "selection", "casework", "appraisal", "finance", "notify")


def token_of(*roles: str, subject: str) -> str:
    return bearer(*roles, subject=subject)["Authorization"].removeprefix("Bearer ")


class Served:
    """An app under uvicorn on a given port, in a thread."""

    def __init__(self, app: FastAPI, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                                    lifespan="on", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def wait(self, deadline: float) -> None:
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("a server of the browser stack did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


class ClockIn(BaseModel):
    at: AwareDatetime | None = None  # None: the real clock again


def control_app() -> FastAPI:
    app = FastAPI()

    @app.put("/clock")
    async def set_clock(body: ClockIn) -> dict:
        clock._frozen = body.at  # tests only: the process-wide freeze of shared.clock, moved
        return {"now": clock.now().isoformat()}

    @app.get("/clock")
    async def get_clock() -> dict:
        return {"now": clock.now().isoformat()}

    return app


def wait_for_pool(urls: dict[str, str], *, deadline: float) -> None:
    """Until selection's pool holds the registry's eligible people (its projection of registry events), or has
    stopped growing for 5 s: a draw made earlier would be over part of the roster."""
    headers = bearer("bureau_admin", subject="browser-stack")
    want = httpx.get(urls["registry"] + "/supervisors/eligible", params={"limit": 1}, headers=headers,
                     timeout=10).json()["total"]
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        have = httpx.get(urls["selection"] + "/pool/status", headers=headers, timeout=10).json()["eligible_total"]
        if have >= want or (have > 0 and have == last and time.monotonic() - since > 5):
            return
        if have != last:
            last, since = have, time.monotonic()
        time.sleep(0.3)
    raise RuntimeError(f"selection's pool has {last} of the registry's {want} eligible supervisors")


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="browser-stack-"))
    postgres = infra.start_postgres(workdir / "pg", cleanup="delete")
    broker = infra.start_broker(infra.free_port())
    served: list[Served] = []
    try:
        for name in SERVICES:
            upgrade(service_migrations(name), postgres.url)
        env = {"ENVIRONMENT": "test", "DATABASE_URL": postgres.url, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
               "KAFKA_IDEMPOTENT_PRODUCER": "false", "KAFKA_FETCH_MAX_WAIT_MS": "10",
               "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
               "FIELD_HASH_KEY": Fernet.generate_key().decode(), "LOG_JSON": "false", **signing_env("registry")}
        ports = {name: infra.free_port() for name in (*SERVICES, "portal", "control")}
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        run = uuid.uuid4().hex[:8]

        service_urls = {name: urls[name] for name in SERVICES}

        def settings(cls, name: str, **extra):
            return service_settings(env, cls, consumer_group=f"{name}-browser-{run}", service_urls=service_urls,
                                    log_level="WARNING", **extra)

        registry_settings = settings(RegistrySettings, "registry")
        casework_settings = settings(CaseworkSettings, "casework", selection_url=urls["selection"],
                                     receipt_check_seconds=0.2)
        finance_settings = settings(FinanceSettings, "finance")
        appraisal_settings = settings(AppraisalSettings, "appraisal")
        apps = {
            "registry": registry_app(registry_settings),
            "selection": selection_app(settings(SelectionSettings, "selection", registry_url=urls["registry"],
                                                service_token=token_of("service", subject="selection"))),
            "casework": casework_app(casework_settings),
            "appraisal": appraisal_app(appraisal_settings),
            "finance": finance_app(finance_settings),
            "notify": notify_app(settings(NotifySettings, "notify",
                                          service_token=token_of("service", subject="notify"))),
        }
        key_file = workdir / "keys.json"
        key_file.write_text(json.dumps({"private_key": PRIVATE_KEY, "public_key": PUBLIC_KEY}))
        apps["portal"] = portal_app(PortalSettings(
            environment="development", dev_key_file=str(key_file), cookie_secure=False,
            portal_session_key=Fernet.generate_key().decode(), service_urls=service_urls, log_level="WARNING",
            live_refresh_seconds=1.0))
        apps["control"] = control_app()
        deadline = time.monotonic() + 120
        for name, app in apps.items():
            served.append(Served(app, ports[name]))
        for server in served:
            server.wait(deadline)
        asyncio.run(registry_demo.seed(registry_settings))
        wait_for_pool(urls, deadline=time.monotonic() + 120)  # the hearing is drawn over the whole demo roster
        asyncio.run(casework_demo.seed(casework_settings))
        asyncio.run(finance_demo.seed(finance_settings))  # rates and the year's plans (the budget of R41.1)
        asyncio.run(appraisal_demo.seed(appraisal_settings))  # this year's round
        print(json.dumps({"urls": urls, "key_file": str(key_file)}), flush=True)
        print("READY", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        stop.wait()
        return 0
    finally:
        for server in reversed(served):
            with contextlib.suppress(Exception):
                server.stop()
        broker.stop()
        postgres.stop()


if __name__ == "__main__":
    sys.exit(main())
