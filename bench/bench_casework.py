"""Casework: POST supervision request → confirmed roster visible in casework, and signing throughput.

1. Round trip across services, over the draw protocol `people-supervisor-draw/4` (DRAW.md "Protocol"): the
   casework and selection apps (in-process, ASGI, each with its outbox relay, consumer and periodic jobs) on
   their own embedded PostgreSQL and broker. One sample = `POST /activities/{id}/supervision-requests`
   `{seats: 2, specialty}` (selection's policy splits the seats: 1 local + 1 cross) → SupervisionRequested
   (with casework's commitment) → selection accepts (SupervisionAccepted) → casework reveals its nonce
   (DrawNonceRevealed) → selection draws (DrawCompleted) → an auto-confirm loop (the "supervisors", polling
   selection every 5 ms) confirms the pending candidates → SupervisorDrawn + SupervisionStaffed → casework
   shows `staffed` with the full roster (polled every 5 ms). p50/p99 over 200 requests (20 with --quick),
   sequentially; requests spread in time so bookings never overlap.
   The protocol's share, per request, from the POST: `accepted` = casework's view first shows the acceptance
   (SupervisionAccepted arrived; the reveal is staged in the same transaction), `drawn` = selection's request
   first shows status `drawn` (the auto-confirm loop's poll), `staffed` = the end above; segments
   POST → accepted, accepted → drawn (the reveal round trip: casework's outbox → broker → selection's
   consumer → the draw committed), drawn → staffed, each p50/p99, and accepted → drawn as a share of the total.
   Beside it, for information, when casework's view first shows the DrawCompleted (a receipt check queued).
   Casework's receipt check job (every RECEIPT_CHECK_SECONDS, 5 s) runs as in production, its fetch wired to
   the in-process selection app with a service token (`casework.state.receipt_fetch`); after the round trips
   every queued check is run to the end and the outcomes reported (all `ok` expected). The job's runs are
   found from its fetches (wall time of a run: first fetch → last fetch + one check), the round trip's p99 is
   reported apart for the requests a run overlapped and for the others, and the stand-alone verifier is
   timed on one receipt (what each check runs, in a process of its own: `receipts.verified`).
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
import itertools
import os
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from bench import event_keys, percentile, servers, summarize_ms
from shared import clock

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
        # the signing run's specialty: known to the roster (R11.2) but nobody eligible has it, so its
        # requests are accepted and draw nobody (their rosters are set directly)
        await session.execute(supervisor.insert(), [
            {"id": uuid.uuid4(), "name": "不可抽选", "district": DISTRICTS[0], "specialties": [f"none{tag[5:]}"],
             "eligible": False}])


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
    service = bearer("casework", ["service"])  # casework's service token, as it calls selection

    def supervisor(sid: str) -> dict[str, str]:
        return bearer(f"sup-{sid}", ["supervisor"], supervisor_id=sid)

    async def phone(supervisor_id: uuid.UUID) -> dict:
        return {"name": "监督员", "phone": "13800000000"}

    load_before = os.getloadavg()[0]
    with servers("casework") as (url, bootstrap):
        for name in ("selection", "casework"):
            await asyncio.to_thread(upgrade, service_migrations(name), url)
        common = dict(environment="test", database_url=url, kafka_bootstrap_servers=bootstrap,
                      kafka_idempotent_producer=False, kafka_fetch_max_wait_ms=10,
                      field_encryption_key=random_key(), field_hash_key=random_key(), jwt_verify_key=public,
                      log_json=False, log_level="WARNING")
        signing, verify_keys = event_keys("selection", "casework")  # each relay signs, both verify
        run = uuid.uuid4().hex[:6]
        tag = f"bench{run}"
        db = Database(url, pool_size=2)
        await fill_pool(db, 400, tag)
        await db.dispose()
        selection = selection_app(SelectionSettings(**common, yearly_cap=10_000, consumer_group=f"sel-{run}",
                                                    event_signing_key=signing["selection"],
                                                    event_verify_keys=verify_keys))
        selection.state.contact_lookup = phone
        casework = casework_app(CaseworkSettings(**common, consumer_group=f"cw-{run}",
                                                 event_signing_key=signing["casework"], event_verify_keys=verify_keys))
        clients: dict[str, httpx.AsyncClient] = {}
        fetches = {"calls": 0, "not_found": 0}
        fetch_spans: list[tuple[float, float]] = []  # (called, returned) of each fetch, perf_counter

        async def receipt_fetch(draw_id: uuid.UUID) -> dict | None:
            """DRAW.md step 5's fetch, from the in-process selection app (not SELECTION_URL's 127.0.0.1:8002)."""
            fetches["calls"] += 1
            called = time.perf_counter()
            response = await clients["selection"].get(f"/draws/{draw_id}/receipt", headers=service)
            fetch_spans.append((called, time.perf_counter()))
            if response.status_code == 404:
                fetches["not_found"] += 1
                return None
            response.raise_for_status()
            return response.json()

        casework.state.receipt_fetch = receipt_fetch
        async with client_of(selection) as sel, client_of(casework) as cw:
            clients["selection"] = sel
            base = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=30)

            async def new_activity(k: int) -> str:
                starts = base + timedelta(minutes=2 * k)
                response = await cw.post("/activities", headers=proc, json={
                    "case_ref": f"bench-{k}", "activity_type": "public_hearing", "district": "环翠区",
                    "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(minutes=1)).isoformat(),
                    "place": "听证室", "summary": "bench"})
                response.raise_for_status()
                return response.json()["id"]

            marks: list[dict[str, float]] = []  # per timed request: seconds from the POST to each step
            rid_of_last = [""]

            async def auto_confirm(rid: str, done: asyncio.Event, started: float, mark: dict[str, float]) -> None:
                while not done.is_set():
                    view = await sel.get(f"/requests/{rid}", headers=admin)
                    if view.status_code == 200:
                        body = view.json()
                        if body["status"] == "accepted" and "selection_accepted" not in mark:
                            mark["selection_accepted"] = time.perf_counter() - started
                        if body["draws"] and "drawn" not in mark:
                            mark["drawn"] = time.perf_counter() - started
                        pending = [c for c in body["candidates"] if c["status"] == "pending"]
                        for c in pending:
                            await sel.post(f"/assignments/{rid}/confirm", headers=supervisor(c["supervisor_id"]))
                        if pending and "confirmed" not in mark:
                            mark["confirmed"] = time.perf_counter() - started
                    await asyncio.sleep(POLL_SECONDS)

            async def round_trip(k: int) -> dict[str, float]:
                aid = await new_activity(k)
                mark: dict[str, float] = {}
                started = time.perf_counter()
                response = await cw.post(f"/activities/{aid}/supervision-requests", headers=proc,
                                         json={"seats": 2, "specialty": tag})
                response.raise_for_status()
                mark["posted"] = time.perf_counter() - started
                rid = response.json()["request_id"]
                rid_of_last[0] = rid
                done = asyncio.Event()
                confirmer = asyncio.create_task(auto_confirm(rid, done, started, mark))
                try:
                    deadline = started + 30
                    while time.perf_counter() < deadline:
                        view = (await cw.get(f"/supervision-requests/{rid}", headers=proc)).json()
                        at = time.perf_counter() - started
                        if view["acceptance"] is not None and "accepted" not in mark:
                            mark["accepted"] = at
                        if view["receipt_checks"] and "draw_seen" not in mark:
                            mark["draw_seen"] = at
                        if view["status"] == "staffed" and len(view["roster"]) == 2:
                            mark["staffed"] = at
                            mark["t0"] = started
                            missing = {"accepted", "drawn"} - mark.keys()
                            if missing:
                                raise RuntimeError(f"request {rid} staffed, but {missing} never seen")
                            return mark
                        if view["status"] in ("refused", "short", "cancelled") or view["receipt_mismatch"]:
                            raise RuntimeError(f"request {rid}: {view['status']}, checks {view['receipt_checks']}")
                        await asyncio.sleep(POLL_SECONDS)
                    raise RuntimeError(f"request {rid} not staffed within 30 s: {mark}")
                finally:
                    done.set()
                    await confirmer

            for k in range(3):  # warm-up
                await round_trip(10_000 + k)
            marks = [await round_trip(k) for k in range(requests_n)]
            job_spans = list(fetch_spans)  # the job's own runs during the round trips

            # DRAW.md step 5: every receipt queued so far checked (the job's own runs, then the rest at once)
            from services.casework.receipts import check_receipts

            checks: dict[str, int] = {}
            for _ in range(20):
                await check_receipts(casework)
                checks = await draw_check_counts(casework.state.db)
                if not checks.get("pending"):
                    break
                await asyncio.sleep(0.5)
            # what the job runs on the event loop per receipt: the stand-alone verifier (CPU, synchronous)
            from services.casework.receipts import verify_receipt

            last = (await sel.get(f"/requests/{rid_of_last[0]}", headers=admin)).json()["draws"][0]["draw_id"]
            receipt = await receipt_fetch(uuid.UUID(last))
            verify_times = []
            for _ in range(10):
                t0 = time.perf_counter()
                if not verify_receipt(receipt)["ok"]:
                    raise RuntimeError(f"receipt of draw {last} does not verify")
                verify_times.append(time.perf_counter() - t0)
            verify_ms = summarize_ms(verify_times)

            # signing throughput: staffed activities (roster via the consumer's own function), opinions recorded
            from services.casework import service as svc

            requested = []
            for k in range(forms_n):
                aid = await new_activity(20_000 + k)
                response = await cw.post(f"/activities/{aid}/supervision-requests", headers=proc,
                                         json={"seats": 2, "specialty": f"none{run}"})
                response.raise_for_status()
                requested.append((aid, response.json()["request_id"]))
            # the protocol first (accepted, nonce revealed: nobody is left waiting for a reveal), then the roster
            deadline = time.perf_counter() + 60
            for _, rid in requested:
                while (await cw.get(f"/supervision-requests/{rid}", headers=proc)).json()["acceptance"] is None:
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"request {rid} for the signing run not accepted within 60 s")
                    await asyncio.sleep(0.05)
            # holding and signing happen once the activity has begun (R17.1): the signing run lives just
            # after the last of its activities' starts (the process's clock, shared.clock, frozen)
            with clock.frozen(base + timedelta(minutes=2 * (20_000 + forms_n))):
                prepared = []
                for aid, rid in requested:
                    sids = [uuid.uuid4(), uuid.uuid4()]
                    async with casework.state.db.transaction() as session:
                        for i, sid in enumerate(sids, 1):
                            await svc.on_drawn(session, cipher=casework.state.cipher, request_id=uuid.UUID(rid),
                                               supervisor_id=sid, name=f"签字{i}", phone="13800000000",
                                               district="环翠区", group="local", draw_order=i,
                                               confirmed_at=clock.now())
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
    batches = check_batches(job_spans)
    clear = [m for m in marks if not any(m["t0"] < end and start < m["t0"] + m["staffed"] for start, end in batches)]
    clear_ids = {id(m) for m in clear}
    for m in marks:
        del m["t0"]
    protocol = protocol_share(marks)
    clear_trip = summarize_ms([m["staffed"] for m in clear])
    batch_ms = summarize_ms([end - start for start, end in batches])
    trip = protocol["total"]
    sign_stats = summarize_ms(signing_times)
    per_s = round(len(jobs) / signing_s, 1)
    seg = protocol["segments"]
    rows = [
        {"metric": f"request → confirmed roster in casework, p50 ({requests_n} requests)",
         "value": trip["p50_ms"], "unit": "ms"},
        {"metric": "request → confirmed roster in casework, p99", "value": trip["p99_ms"], "unit": "ms",
         "target": f"<= {TARGET_P99_MS:.0f} ms", "ok": trip["p99_ms"] <= TARGET_P99_MS},
    ]
    for key, label in SEGMENTS:
        for pct in ("p50", "p99"):
            rows.append({"metric": f"  {label}, {pct}", "value": seg[key][f"{pct}_ms"], "unit": "ms"})
    rows += [
        {"metric": "  reveal round trip (accepted → drawn), share of the total (sum of means)",
         "value": protocol["reveal_share_pct"], "unit": "%"},
        {"metric": "  reveal round trip share per request, p50", "value": protocol["reveal_share_p50_pct"],
         "unit": "%"},
        {"metric": f"receipt check job: wall time of one run, p50 ({len(batches)} runs with receipts)",
         "value": batch_ms.get("p50_ms"), "unit": "ms"},
        {"metric": "receipt check job: wall time of one run, max", "value": batch_ms.get("max_ms"), "unit": "ms"},
        {"metric": "  stand-alone verifier on one receipt (pool 400), p50", "value": verify_ms["p50_ms"],
         "unit": "ms"},
        {"metric": f"request → confirmed roster p99, the {len(clear)} requests no check run overlapped",
         "value": clear_trip.get("p99_ms"), "unit": "ms"},
        {"metric": f"request → confirmed roster p99, the {len(marks) - len(clear)} requests one overlapped",
         "value": summarize_ms([m["staffed"] for m in marks if id(m) not in clear_ids]).get("p99_ms"), "unit": "ms"},
        {"metric": "receipt checks ok / all (DRAW.md step 5)", "value": f"{checks.get('ok', 0)}/{sum(checks.values())}",
         "unit": "", "ok": set(checks) == {"ok"}},
        {"metric": "signatures/s (8 concurrent clients)", "value": per_s, "unit": "1/s"},
        {"metric": "one signature, p99", "value": sign_stats["p99_ms"], "unit": "ms"},
    ]
    return {
        "rows": rows,
        "notes": [
            "people-supervisor-draw/4: the round trip includes the commit–reveal: SupervisionAccepted to casework,",
            "DrawNonceRevealed back to selection, then the draw (each leg: outbox relay, broker, consumer).",
            f"Steps are polled every {POLL_SECONDS * 1000:.0f} ms (casework's view; selection's for `drawn`), so each",
            "segment carries up to one poll of error; the total is the target's measure, as before.",
            "The receipt check job verifies each receipt (the stand-alone verifier) in a process of its own; its",
            "fetch is served by the in-process selection app on the one event loop both apps and the client",
            "share here, so a run still slows the requests in flight (in production selection serves it).",
            f"Load average (1 min) before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f}.",
        ],
        "round_trip": trip, "round_trip_clear_of_check_runs": clear_trip, "check_runs": batch_ms,
        "verify_one_receipt": verify_ms,
        "protocol": protocol, "receipt_checks": checks, "receipt_fetches": fetches,
        "signing": sign_stats, "signatures": len(jobs), "forms": forms_n, "poll_seconds": POLL_SECONDS,
    }


SEGMENTS = (
    ("post_to_accepted", "POST → accepted in casework (SupervisionAccepted arrived)"),
    ("accepted_to_drawn", "accepted → drawn in selection (the reveal round trip + draw)"),
    ("drawn_to_staffed", "drawn → staffed in casework (contact, confirmations, roster events)"),
)


def protocol_share(marks: list[dict[str, float]]) -> dict:
    """Per-request step times (seconds from the POST) → cumulative and segment summaries, the reveal's share."""
    segments = {
        "post_to_accepted": [m["accepted"] for m in marks],
        "accepted_to_drawn": [m["drawn"] - m["accepted"] for m in marks],
        "drawn_to_staffed": [m["staffed"] - m["drawn"] for m in marks],
    }
    total = [m["staffed"] for m in marks]
    shares = [100 * (m["drawn"] - m["accepted"]) / m["staffed"] for m in marks]
    reveal = segments["accepted_to_drawn"]
    return {
        "total": summarize_ms(total),
        "cumulative": {step: summarize_ms([m[step] for m in marks if step in m])
                       for step in ("posted", "selection_accepted", "accepted", "drawn", "draw_seen", "confirmed",
                                    "staffed")},
        "segments": {key: summarize_ms(values) for key, values in segments.items()},
        "reveal_share_pct": round(100 * sum(reveal) / sum(total), 1),
        "reveal_share_p50_pct": round(percentile(shares, 50), 1),
        "samples_ms": [{step: round(at * 1000, 1) for step, at in m.items()} for m in marks],
    }


def check_batches(spans: list[tuple[float, float]], gap: float = 1.0) -> list[tuple[float, float]]:
    """Runs of the receipt check job, from its fetches: (first fetch called, last fetch returned + the
    batch's median time from one fetch's return to the next's call, i.e. one receipt's check)."""
    runs: list[list[tuple[float, float]]] = []
    for span in sorted(spans):
        if runs and span[0] - runs[-1][-1][1] < gap:
            runs[-1].append(span)
        else:
            runs.append([span])
    out = []
    for run in runs:
        checks = [b[0] - a[1] for a, b in itertools.pairwise(run)]
        out.append((run[0][0], run[-1][1] + (percentile(checks, 50) if checks else 0.0)))
    return out


async def draw_check_counts(db) -> dict[str, int]:
    """casework's draw_check rows by status (pending, ok, mismatch)."""
    from sqlalchemy import func, select

    from services.casework.models import draw_check

    async with db.transaction() as session:
        rows = (await session.execute(select(draw_check.c.status, func.count()).group_by(draw_check.c.status))).all()
    return {status: n for status, n in rows}
