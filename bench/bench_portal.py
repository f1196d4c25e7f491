"""Portal: a console page's server time beside the bare API calls it makes, and the supervisor's first load (issue 15).

What runs, as in production: the selection service under uvicorn in its own process (`bench.serve`) over a
pool of 20 000 supervisors and a few dozen drawn requests (each recorded with POST /requests and drawn with
PUT /requests/{id}/beacon), and the portal under uvicorn in its own process calling it with the signed-in
person's token (dev sign-in, the same key selection verifies). One client, one page at a time:
- `/console/requests` (the bureau's work list) beside selection's `GET /requests` it makes;
- `/console/requests/{id}` (request + call list in draw order) beside `GET /requests/{id}` + `GET
  /requests/{id}/call-list`, made one after the other as the page makes them;
- `/me` of a drawn supervisor beside `GET /assignments`;
- the registry's pages over its 20 000 supervisors (bench_registry's rows, the registry service in its own
  process): `/console/roster` (a name prefix) beside `GET /supervisors`, a person's page `/console/roster/{id}`
  beside its registry calls (the person, terms, training, resignations, dismissals; appraisal is not running and is
  named on the page), `/console/training` beside its five registry lists.
Baseline in the same run: those API calls made directly by this client. Ratio = page / its API calls at the same
percentile; target: every page p95 ≤ 300 ms (absolute). The registry and notify are not running: the call list
shows no phones (selection says so), and /me names notify as unavailable; what is measured is the portal's own
work (session, calls, template) on top of the services'.

The supervisor's first load: the bytes of `/me` and of every stylesheet, script and image it references, as
served (no compression); target ≤ 100 KB.
"""

import asyncio
import json
import os
import random
import re
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from bench import bench_registry as registry_bench
from bench import event_keys, ratio, serve, servers, summarize_ms
from bench.bench_selection import body, random_key, replace_pool
from shared.crypto import FieldCipher
from shared.db import Database
from shared.db.migrations import service_migrations, upgrade
from shared.tokens import generate_dev_keypair, mint

TARGET_P95_MS = 300.0
TARGET_FIRST_LOAD_BYTES = 100 * 1024
POOL = 20_000


def portal_app():
    """The portal as the benchmark serves it (`uvicorn --factory`): settings from the environment."""
    from services.portal.app import create_app

    return create_app()


async def sign_in(portal: httpx.AsyncClient, persona: str, supervisor_id: str | None = None) -> None:
    page = await portal.get("/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    form = {"csrf_token": token, "persona": persona, "next": "/", **({"supervisor_id": supervisor_id}
                                                                      if supervisor_id else {})}
    answer = await portal.post("/sign-in", data=form)
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in failed: {answer.status_code} {answer.text[:300]}")


async def timed(call, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return times


def ok(response: httpx.Response) -> httpx.Response:
    if response.status_code != 200:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:300]}")
    return response


async def first_load_bytes(portal: httpx.AsyncClient, path: str) -> tuple[int, list[str]]:
    """The page and every stylesheet, script and image it references, as served."""
    page = ok(await portal.get(path))
    assets = re.findall(r'<(?:link[^>]+href|script[^>]+src|img[^>]+src)="(/[^"]+)"', page.text)
    total = len(page.content)
    for asset in assets:
        total += len(ok(await portal.get(asset)).content)
    return total, assets


async def main(args) -> dict:
    quick = getattr(args, "quick", False)
    repeats, requests_n = (40, 10) if quick else (200, 30)
    load_before = os.getloadavg()[0]
    private, public = generate_dev_keypair()
    bureau = {"Authorization": "Bearer " + mint(private, subject="bench", roles=["bureau_admin"])}
    signing, verify_keys = event_keys("selection", "registry")
    with servers("portal") as (url, bootstrap), \
            tempfile.TemporaryDirectory(prefix="bench-portal-", ignore_cleanup_errors=True) as tmp:
        await asyncio.to_thread(upgrade, service_migrations("selection"), url)
        await asyncio.to_thread(upgrade, service_migrations("registry"), url)
        db = Database(url, pool_size=2)
        await replace_pool(db, POOL)
        await db.dispose()
        enc_key, hash_key = random_key(), random_key()
        roster = await asyncio.to_thread(registry_bench.rows, POOL, FieldCipher.from_settings(enc_key, hash_key),
                                         random.Random(7))
        await registry_bench.load(url.replace("postgresql+asyncpg://", "postgresql://"), roster)
        person_id = str(roster[len(roster) // 2][0])
        prefix = roster[len(roster) // 3][1][:1]
        key_file = Path(tmp) / "keys.json"
        key_file.write_text(json.dumps({"private_key": private, "public_key": public}))
        selection_env = {
            "ENVIRONMENT": "test", "DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_IDEMPOTENT_PRODUCER": "false", "FIELD_ENCRYPTION_KEY": random_key(),
            "FIELD_HASH_KEY": random_key(), "JWT_VERIFY_KEY": public, "LOG_JSON": "false", "LOG_LEVEL": "WARNING",
            "YEARLY_CAP": "10000", "EVENT_SIGNING_KEY": signing["selection"],
            "EVENT_VERIFY_KEYS": json.dumps(verify_keys)}
        registry_env = {**selection_env, "FIELD_ENCRYPTION_KEY": enc_key, "FIELD_HASH_KEY": hash_key,
                        "EVENT_SIGNING_KEY": signing["registry"]}
        async with serve("bench.bench_selection:server_app", selection_env, Path(tmp) / "selection.log") as api, \
                serve("services.registry.app:create_app", registry_env, Path(tmp) / "registry.log") as registry:
            nowhere = "http://127.0.0.1:9"  # appraisal and notify are not part of this benchmark
            portal_env = {"ENVIRONMENT": "development", "DEV_KEY_FILE": str(key_file), "COOKIE_SECURE": "false",
                          "PORTAL_SESSION_KEY": Fernet.generate_key().decode(), "LOG_LEVEL": "WARNING",
                          "SERVICE_URLS": json.dumps({"selection": api, "registry": registry, "notify": nowhere,
                                                      "appraisal": nowhere})}
            async with serve("bench.bench_portal:portal_app", portal_env, Path(tmp) / "portal.log") as site, \
                    httpx.AsyncClient(base_url=api, timeout=60, headers=bureau) as client, \
                    httpx.AsyncClient(base_url=registry, timeout=60, headers=bureau) as registry_client:
                request_ids = []
                for k in range(requests_n):
                    created = ok_created(await client.post("/requests", json=body(k)))
                    ok(await client.put(f"/requests/{created}/beacon", json={"value": f"bench {k}"}))
                    request_ids.append(created)
                target = request_ids[0]
                detail = ok(await client.get(f"/requests/{target}")).json()
                drawn = next(c["supervisor_id"] for c in detail["candidates"] if c["status"] == "pending")
                supervisor = {"Authorization": "Bearer " + mint(private, subject="bench-supervisor",
                                                                roles=["supervisor"], supervisor_id=drawn)}
                async with httpx.AsyncClient(base_url=site, timeout=60, headers={"accept": "text/html"}) as clerk, \
                        httpx.AsyncClient(base_url=site, timeout=60, headers={"accept": "text/html"}) as person:
                    await sign_in(clerk, "dev-bureau-admin")
                    await sign_in(person, "dev-supervisor", drawn)
                    pages = {
                        "/console/requests": (lambda: clerk.get("/console/requests"),
                                              lambda: client.get("/requests", params={"limit": 25})),
                        "/console/requests/{id}": (
                            lambda: clerk.get(f"/console/requests/{target}"),
                            lambda: _both(client, f"/requests/{target}", f"/requests/{target}/call-list")),
                        "/me": (lambda: person.get("/me"),
                                lambda: client.get("/assignments", headers=supervisor)),
                        "/console/roster?name=": (
                            lambda: clerk.get("/console/roster", params={"name": prefix}),
                            lambda: registry_client.get("/supervisors", params={"name": prefix, "limit": 25})),
                        "/console/roster/{id}": (
                            lambda: clerk.get(f"/console/roster/{person_id}"),
                            lambda: _all(registry_client, f"/supervisors/{person_id}",
                                         f"/supervisors/{person_id}/appointments",
                                         f"/supervisors/{person_id}/training",
                                         f"/supervisors/{person_id}/resignations",
                                         f"/dismissals?supervisor_id={person_id}&limit=20")),
                        "/console/training": (
                            lambda: clerk.get("/console/training"),
                            lambda: _all(registry_client, "/training/sessions?limit=100",
                                         "/training/overdue?limit=100", "/training/makeup-needed?limit=100",
                                         "/training/term-pending?limit=100",
                                         f"/training/annual-check?limit=100&year={date.today().year}")),
                    }
                    results = {}
                    for name, (page, bare) in pages.items():
                        ok(await page())
                        await bare()  # warm both paths
                        results[name] = {"page": summarize_ms(await timed(page, repeats)),
                                         "bare": summarize_ms(await timed(bare, repeats))}
                    first_load, assets = await first_load_bytes(person, "/me")
    rows = []
    for name, r in results.items():
        for pct in ("p50", "p95"):
            page_ms, bare_ms = r["page"][f"{pct}_ms"], r["bare"][f"{pct}_ms"]
            rows.append({"metric": f"{name} {pct}", "value": page_ms, "unit": "ms", "baseline": bare_ms,
                         "ratio": ratio(page_ms, bare_ms),
                         **({"target": f"≤ {TARGET_P95_MS:.0f} ms", "ok": page_ms <= TARGET_P95_MS}
                            if pct == "p95" else {})})
    rows.append({"metric": "supervisor's first load (/me + its assets)", "value": round(first_load / 1024, 1),
                 "unit": "KB", "target": f"≤ {TARGET_FIRST_LOAD_BYTES // 1024} KB",
                 "ok": first_load <= TARGET_FIRST_LOAD_BYTES})
    return {"rows": rows, "results": results, "first_load_bytes": first_load, "first_load_assets": assets,
            "notes": [f"pool {POOL:,} supervisors (selection) and the same number on the registry's roster, "
                      f"{requests_n} drawn requests; {repeats} sequential page loads each;",
                      "baseline: the API calls the page makes, made directly by the same client in the same run.",
                      f"load average before: {load_before:.1f}, after: {os.getloadavg()[0]:.1f}"]}


def ok_created(response: httpx.Response) -> str:
    if response.status_code != 201:
        raise RuntimeError(f"request not accepted: {response.status_code} {response.text[:300]}")
    return response.json()["request_id"]


async def _both(client: httpx.AsyncClient, first: str, second: str) -> None:
    await _all(client, first, second)


async def _all(client: httpx.AsyncClient, *paths: str) -> None:
    """The API calls a page makes, one after the other as the page makes them."""
    for path in paths:
        ok(await client.get(path))


if __name__ == "__main__":
    import argparse

    print(json.dumps(asyncio.run(main(argparse.Namespace(quick=True))), ensure_ascii=False, indent=1)[:3000])
