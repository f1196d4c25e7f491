"""DRAW.md protocol step 5: the periodic job that fetches each draw's receipt from selection and checks it.

The job owns its transactions (as a consumer does): one to claim due checks (FOR UPDATE SKIP LOCKED, leased,
so several replicas never take the same draw and a crashed one's lease runs out), the fetches outside any
transaction, then one transaction per draw for the check and its effects (status, audit, outbox). Selection
down, slow or without the receipt → the check waits and retries with backoff; it is never a mismatch.
"""

import asyncio
import logging
import multiprocessing
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from fastapi import FastAPI

from services.casework import service as svc
from services.casework.config import CaseworkSettings
from shared.devstack.infra import die_with_parent
from shared.http import ServiceClient

log = logging.getLogger(__name__)

ReceiptFetch = Callable[[uuid.UUID], Awaitable[Any]]
Verify = Callable[[Any], Mapping[str, Any]]
LEASE_SECONDS = 120.0  # a claimed check is retried by anyone after this, should its claimer die


def verify_receipt(receipt: Any) -> Mapping[str, Any]:
    """The stand-alone verifier of selection's receipts (standard library only), imported when first used."""
    from services.selection.draw import algorithm  # here: casework starts even while it cannot be loaded

    return algorithm.verify_receipt(receipt)


_verifier_process: ProcessPoolExecutor | None = None


async def verified(verify: Verify, receipt: Any) -> Any:
    """The verifier's answer without holding up the event loop: the real verifier runs in a process of its own.

    It recomputes the whole draw (~0.2 s of CPU over 20 000 people, pure Python): in a thread it would still
    hold the GIL against the service's requests. A verifier given by a test runs inline.
    """
    global _verifier_process
    if verify is not verify_receipt:
        return _verify_safely(verify, receipt)
    if _verifier_process is None:  # spawned (no copy of this process's threads), and it dies with us
        _verifier_process = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=die_with_parent)
    try:
        return await asyncio.get_running_loop().run_in_executor(_verifier_process, _verify_safely, verify, receipt)
    except BrokenProcessPool:  # the worker died (killed, out of memory): start another next time
        _verifier_process = None
        raise


def selection_receipt_fetch(settings: CaseworkSettings) -> ReceiptFetch:
    """GET {SELECTION_URL}/draws/{id}/receipt with the service token; None when selection has no such draw."""
    token = settings.service_token.get_secret_value() if settings.service_token else ""
    client: ServiceClient | None = None

    async def fetch(draw_id: uuid.UUID) -> Any:
        nonlocal client
        if client is None:
            client = ServiceClient("selection", settings.selection_url, token,
                                   timeout=settings.selection_timeout_seconds)
        return await client.get_json(f"/draws/{draw_id}/receipt")

    return fetch


async def check_receipts(app: FastAPI, *, fetch: ReceiptFetch | None = None,
                         verify: Verify | None = None) -> dict[str, int]:
    """DRAW.md protocol step 5, R11.1: check the receipts of due draws → counts {ok, mismatch, retry, failed}."""
    fetch = fetch or app.state.receipt_fetch
    verify = verify or verify_receipt
    settings: CaseworkSettings = app.state.settings
    db = app.state.db
    async with db.transaction() as session:
        claimed = await svc.claim_due_draw_checks(session, limit=settings.receipt_check_batch,
                                                  lease_seconds=LEASE_SECONDS)
    counts = {"ok": 0, "mismatch": 0, "retry": 0, "failed": 0}
    for row in claimed:
        try:
            failed = await _check_one(app, row, fetch=fetch, verify=verify)
        except Exception:  # one draw's failure must not stop the others; its lease runs out and it is retried
            log.error("receipt check of draw %s (request %s) failed; retried after the lease", row.draw_id,
                      row.request_id, exc_info=True)
            counts["failed"] += 1
            continue
        if failed is None:
            counts["retry"] += 1
        elif failed:
            counts["mismatch"] += 1
            app.state.receipt_mismatches.labels(app.state.service).inc()  # the alert (after the commit)
        else:
            counts["ok"] += 1
    return counts


def close_verifier(app: FastAPI | None = None) -> None:
    """At shutdown: stop the verifier process (a new one starts if a check runs again)."""
    global _verifier_process
    process, _verifier_process = _verifier_process, None
    if process is not None:
        process.shutdown(wait=True, cancel_futures=True)


async def _check_one(app: FastAPI, row, *, fetch: ReceiptFetch, verify: Verify) -> list[str] | None:
    """Fetch and check one claimed draw: the failed checks ([] = ok), or None (retry later, or checked meanwhile)."""
    try:
        receipt = await fetch(row.draw_id)
        error = None if receipt is not None else "receipt not found"
    except Exception as exc:  # selection down or failing: try again later
        receipt, error = None, f"{type(exc).__name__}: {exc}"
    # before the transaction, so no row lock waits for the verifier
    answer = None if receipt is None else await verified(verify, receipt)
    async with app.state.db.transaction() as session:
        if receipt is None:
            log.warning("receipt of draw %s (request %s) not fetched, attempt %d: %s", row.draw_id, row.request_id,
                        row.attempts, error)
            await svc.retry_draw_check_later(session, draw_id=row.draw_id, attempts=row.attempts, error=error or "")
            return None
        return await svc.check_draw_receipt(session, outbox=app.state.outbox, cipher=app.state.cipher,
                                            draw_id=row.draw_id, receipt=receipt, verify=lambda _: answer)


def _verify_safely(verify: Verify, receipt: Any) -> Any:
    """The verifier's answer, or a failed one if it cannot read the receipt (never an exception in the job)."""
    try:
        return verify(receipt)
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
