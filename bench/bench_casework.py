"""Casework: POST supervision request → confirmed roster visible in casework, and signing throughput.

1. Round trip across services: the casework and selection apps (in-process, ASGI, each with its outbox relay
   and consumer) on their own embedded PostgreSQL and broker. One sample = `POST
   /activities/{id}/supervision-requests` → SupervisionRequested → selection accepts + draws → an auto-confirm
   loop (the "supervisors", polling selection every 5 ms) confirms the pending candidates → SupervisorDrawn +
   SupervisionStaffed → casework shows `staffed` with the full roster (polled every 5 ms). p50/p99 over 200
   requests (20 with --quick), sequentially; requests spread in time so bookings never overlap.
2. Signing: activities with 2 confirmed supervisors and their opinions; both sign (the second signature
   completes the form and stages one FeedbackSigned each); signatures/s with 8 concurrent clients.
Client, servers, database and broker share this machine; ASGI in-process, so no socket time is included.
The outbox relays keep their default poll interval (NOTIFY wakes them): with a very short interval the relay's
`asyncio.wait_for` in shared/events/outbox.py was seen not to finish on cancellation at shutdown (Python 3.11).
Env: BENCH_CASEWORK_REQUESTS / BENCH_CASEWORK_FORMS override the counts.
"""

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from bench import servers, summarize_ms

TARGET_P99_MS = 500.0
DISTRICTS = ("环翠区", "文登区", "荣成市", "乳山市")
POLL_SECONDS = 0.005


def random_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


@contextlib.asynccontextmanager
async def client_of(app):
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as client:
            yield client


async def fill_pool(db, n: int, tag: str) -> None:
    from services.selection.models import supervisor

    async with db.transaction() as session:
        await session.execute(supervisor.insert(), [
            {"id": uuid.uuid4(), "name": f"监督员{i}", "district": DISTRICTS[i % len(DISTRICTS)],
             "specialties": [tag], "eligible": True} for i in range(n)])


async def main(args: argparse.Namespace) -> dict:
    from services.casework.app import create_app as casework_app
    from services.casework.config import CaseworkSettings
    from services.selection.app import build as selection_app
    from services.selection.config import SelectionSettings
    from shared.db import Database
    from shared.db.migrations import service_migrations, upgrade
    from shared.tokens import generate_dev_keypair, mint

    quick = bool(getattr(args, "quick", False))
    requests_n, forms_n = (20, 20) if quick else (200, 100)
    requests_n = int(os.environ.get("BENCH_CASEWORK_REQUESTS", requests_n))
    forms_n = int(os.environ.get("BENCH_CASEWORK_FORMS", forms_n))
    private, public = generate_dev_keypair()
    tokens: dict[str, dict[str, str]] = {}

    def bearer(subject: str, roles: list[str], **claims) -> dict[str, str]:
        if subject not in tokens:
            tokens[subject] = {"Authorization": "Bearer " + mint(private, subject=subject, roles=roles, **claims)}
        return tokens[subject]

    proc = bearer("proc", ["procuratorate"], district="环翠区", office="威海市人民检察院")
    admin = bearer("admin", ["bureau_admin"])

    def supervisor(sid: str) -> dict[str, str]:
        return bearer(f"sup-{sid}", ["supervisor"], supervisor_id=sid)

    async def phone(supervisor_id: uuid.UUID) -> dict:
        return {"name": "监督员", "phone": "13800000000"}

    with servers("casework") as (url, bootstrap):
        for name in ("selection", "casework"):
            await asyncio.to_thread(upgrade, service_migrations(name), url)
        common = dict(environment="test", database_url=url, kafka_bootstrap_servers=bootstrap,
                      kafka_idempotent_producer=False, kafka_fetch_max_wait_ms=10,
                      field_encryption_key=random_key(), field_hash_key=random_key(), jwt_verify_key=public,
                      log_json=False, log_level="WARNING")
        run = uuid.uuid4().hex[:6]
        tag = f"bench{run}"
        db = Database(url, pool_size=2)
        await fill_pool(db, 400, tag)
        await db.dispose()
        selection = selection_app(SelectionSettings(**common, yearly_cap=10_000, consumer_group=f"sel-{run}"))
        selection.state.contact_lookup = phone
        casework = casework_app(CaseworkSettings(**common, consumer_group=f"cw-{run}"))
        async with client_of(selection) as sel, client_of(casework) as cw:
            base = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=30)

            async def new_activity(k: int) -> str:
                starts = base + timedelta(minutes=2 * k)
                response = await cw.post("/activities", headers=proc, json={
                    "case_ref": f"bench-{k}", "activity_type": "public_hearing", "district": "环翠区",
                    "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(minutes=1)).isoformat(),
                    "place": "听证室", "summary": "bench"})
                response.raise_for_status()
                return response.json()["id"]

            phases: dict[str, list[float]] = {"drawn": [], "confirmed": []}

            async def auto_confirm(rid: str, done: asyncio.Event, started: float) -> None:
                while not done.is_set():
                    view = await sel.get(f"/requests/{rid}", headers=admin)
                    if view.status_code == 200:
                        pending = [c for c in view.json()["candidates"] if c["status"] == "pending"]
                        if pending:
                            phases["drawn"].append(time.perf_counter() - started)
                        for c in pending:
                            await sel.post(f"/assignments/{rid}/confirm", headers=supervisor(c["supervisor_id"]))
                        if pending:
                            phases["confirmed"].append(time.perf_counter() - started)
                    await asyncio.sleep(POLL_SECONDS)

            async def round_trip(k: int) -> float:
                aid = await new_activity(k)
                started = time.perf_counter()
                response = await cw.post(f"/activities/{aid}/supervision-requests", headers=proc,
                                         json={"seats": 2, "seats_local": 1, "specialty": tag})
                response.raise_for_status()
                rid = response.json()["request_id"]
                done = asyncio.Event()
                confirmer = asyncio.create_task(auto_confirm(rid, done, started))
                try:
                    deadline = started + 30
                    while time.perf_counter() < deadline:
                        view = (await cw.get(f"/supervision-requests/{rid}", headers=proc)).json()
                        if view["status"] == "staffed" and len(view["roster"]) == 2:
                            return time.perf_counter() - started
                        await asyncio.sleep(POLL_SECONDS)
                    raise RuntimeError(f"request {rid} not staffed within 30 s")
                finally:
                    done.set()
                    await confirmer

            for k in range(3):  # warm-up
                await round_trip(10_000 + k)
            trips = [await round_trip(k) for k in range(requests_n)]

            # signing throughput: staffed activities (roster via the consumer's own function), opinions recorded
            from services.casework import service as svc

            prepared = []
            for k in range(forms_n):
                aid = await new_activity(20_000 + k)
                response = await cw.post(f"/activities/{aid}/supervision-requests", headers=proc,
                                         json={"seats": 2, "specialty": f"none{run}"})
                rid = response.json()["request_id"]
                sids = [uuid.uuid4(), uuid.uuid4()]
                async with casework.state.db.transaction() as session:
                    for i, sid in enumerate(sids, 1):
                        await svc.on_drawn(session, cipher=casework.state.cipher, request_id=uuid.UUID(rid),
                                           supervisor_id=sid, name=f"签字{i}", phone="13800000000", district="环翠区",
                                           group="local", draw_order=i, confirmed_at=datetime.now(UTC))
                for sid in sids:
                    (await cw.put(f"/activities/{aid}/opinions/{sid}", headers=proc,
                                  json={"text": "同意检察机关意见。"})).raise_for_status()
                prepared.append((aid, [str(s) for s in sids]))
            signing_times: list[float] = []

            async def sign(aid: str, sid: str) -> None:
                t0 = time.perf_counter()
                response = await cw.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(sid),
                                         json={"method": "on_site_token"})
                response.raise_for_status()
                signing_times.append(time.perf_counter() - t0)

            jobs = [(aid, sid) for aid, sids in prepared for sid in sids[:1]] + \
                   [(aid, sids[1]) for aid, sids in prepared]
            started = time.perf_counter()
            for i in range(0, len(jobs), 8):
                await asyncio.gather(*[sign(aid, sid) for aid, sid in jobs[i:i + 8]])
            signing_s = time.perf_counter() - started
    trip = summarize_ms(trips)
    sign_stats = summarize_ms(signing_times)
    per_s = round(len(jobs) / signing_s, 1)
    return {
        "rows": [
            {"metric": f"request → confirmed roster in casework, p50 ({requests_n} requests)",
             "value": trip["p50_ms"], "unit": "ms"},
            {"metric": "request → confirmed roster in casework, p99", "value": trip["p99_ms"], "unit": "ms",
             "target": f"<= {TARGET_P99_MS:.0f} ms", "ok": trip["p99_ms"] <= TARGET_P99_MS},
            {"metric": "signatures/s (8 concurrent clients)", "value": per_s, "unit": "1/s"},
            {"metric": "one signature, p99", "value": sign_stats["p99_ms"], "unit": "ms"},
        ],
        "round_trip": trip, "phase_drawn_in_selection": summarize_ms(phases["drawn"]),
        "phase_confirmed_in_selection": summarize_ms(phases["confirmed"]), "signing": sign_stats,
        "signatures": len(jobs), "forms": forms_n, "poll_seconds": POLL_SECONDS,
    }
