"""Casework's side of people-supervisor-draw/4 (DRAW.md protocol, R11.1): commit, reveal after acceptance,
check every receipt, raise a mismatch loudly; the live state of the request."""

import hashlib
import json
import logging
import re
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select, update

from services.casework.models import draw_check, platform, supervision_request
from services.casework.receipts import check_receipts
from services.casework.service import NONCE_CONTEXT
from shared.events.contracts import DrawCompleted, LeadTimeConsent, SupervisionStaffed, SupervisorReleased
from shared.http import UpstreamUnavailable
from tests.support.casework_helpers import (
    accepted,
    activity_body,
    commit_to,
    drawn,
    feed,
    proc,
    receipt_for,
)

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def always_verifies(receipt) -> dict:
    return {"ok": True, "checks": {}}


async def _request(client, working_days_ahead: int = 6, **body) -> dict:
    response = await client.post("/activities", headers=proc(), json=activity_body(working_days_ahead))
    assert response.status_code == 201, response.text
    response = await client.post(f"/activities/{response.json()['id']}/supervision-requests", headers=proc(),
                                 json={"seats": 2, **body})
    assert response.status_code == 201, response.text
    return response.json()


async def _view(client, request_id: str) -> dict:
    response = await client.get(f"/supervision-requests/{request_id}", headers=proc())
    assert response.status_code == 200, response.text
    return response.json()


async def _outbox(app, subject: str, event_type: str) -> list[dict]:
    outbox = platform.outbox
    async with app.state.db.transaction() as session:
        return list((await session.execute(select(outbox.c.envelope).where(
            outbox.c.key == subject, outbox.c.event_type == event_type).order_by(outbox.c.id))).scalars())


async def _audits(app, request_id: str, action: str) -> list[dict]:
    audit = platform.audit
    async with app.state.db.transaction() as session:
        return list((await session.execute(select(audit.c.details).where(
            audit.c.subject == f"request:{request_id}", audit.c.action == action))).scalars())


async def _stored_nonce(app, request_id: str) -> tuple[str, str]:
    """(the encrypted column as stored, the nonce it decrypts to)."""
    async with app.state.db.transaction() as session:
        token = await session.scalar(select(supervision_request.c.procuratorate_nonce_encrypted).where(
            supervision_request.c.id == uuid.UUID(request_id)))
    return token, app.state.cipher.decrypt(token, context=NONCE_CONTEXT)


def _mismatch_metric(text: str) -> float:
    match = re.search(r'^draw_receipt_mismatches_total\{service="casework"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_r11_1_request_carries_only_the_commitment(cw):
    app, client = cw
    view = await _request(client)
    rid = view["request_id"]
    token, nonce = await _stored_nonce(app, rid)
    assert HEX64.match(nonce) and nonce not in token  # 32 random bytes, encrypted at rest
    [envelope] = await _outbox(app, rid, "SupervisionRequested")
    data = envelope["data"]
    assert data["procuratorate_commitment"] == hashlib.sha256(bytes.fromhex(nonce)).hexdigest()
    assert view["procuratorate_commitment"] == data["procuratorate_commitment"]
    assert "procuratorate_nonce" not in data
    # the nonce is nowhere: not in the event, the answer, the audit log
    assert nonce not in json.dumps(envelope) and nonce not in json.dumps(view)
    assert nonce not in json.dumps(await _audits(app, rid, "supervision_request.created"))
    assert await _outbox(app, rid, "DrawNonceRevealed") == []


async def test_r11_1_reveals_only_after_acceptance(cw, caplog):
    app, client = cw
    rid = (await _request(client))["request_id"]
    assert await _outbox(app, rid, "DrawNonceRevealed") == []
    first, _ = accepted(rid, beacon={"source": "中国福利彩票双色球", "round": "2026140"})
    await feed(app, first)
    [reveal] = await _outbox(app, rid, "DrawNonceRevealed")
    view = await _view(client, rid)
    assert commit_to(reveal["data"]["procuratorate_nonce"]) == view["procuratorate_commitment"]
    assert reveal["data"]["procuratorate_nonce"] == (await _stored_nonce(app, rid))[1]
    assert view["status"] == "accepted"
    acceptance = view["acceptance"]
    assert acceptance["bureau_commitment"] == first.bureau_commitment
    assert acceptance["snapshot_hash"] == first.snapshot_hash and acceptance["params_hash"] == first.params_hash
    assert acceptance["beacon"] == {"source": "中国福利彩票双色球", "round": "2026140"}
    assert datetime.fromisoformat(acceptance["accepted_at"]) == first.accepted_at
    # the same acceptance delivered again changes nothing, silently
    await feed(app, first)
    assert len(await _outbox(app, rid, "DrawNonceRevealed")) == 1
    assert await _audits(app, rid, "supervision_request.second_acceptance_ignored") == []
    # a second, different acceptance is ignored loudly and never overwrites the first (no re-roll)
    second, _ = accepted(rid)
    with caplog.at_level(logging.ERROR, logger="services.casework.service"):
        await feed(app, second)
    assert len(await _outbox(app, rid, "DrawNonceRevealed")) == 1
    assert (await _view(client, rid))["acceptance"] == acceptance
    [ignored] = await _audits(app, rid, "supervision_request.second_acceptance_ignored")
    assert "bureau_commitment" in ignored["differs"] and "snapshot_hash" in ignored["differs"]
    assert any(r.levelno == logging.ERROR and rid in r.getMessage() for r in caplog.records)


async def test_r10_2_consent_arrives_with_the_acceptance(cw):
    app, client = cw
    rid = (await _request(client, 4, short_notice={"reason": "羁押期限即将届满"}))["request_id"]
    assert (await _view(client, rid))["status"] == "awaiting_consent"
    consent = LeadTimeConsent(by="市司法局张科长", at=datetime.now(UTC), reason="同意缩短通知期限")
    await feed(app, accepted(rid, short_notice_consent=consent)[0])
    view = await _view(client, rid)
    assert view["status"] == "accepted"
    assert view["acceptance"]["short_notice_consent"]["by"] == "市司法局张科长"
    assert len(await _outbox(app, rid, "DrawNonceRevealed")) == 1


async def test_r11_1_cancelled_request_does_not_reveal(cw):
    app, client = cw
    rid = (await _request(client))["request_id"]
    response = await client.post(f"/supervision-requests/{rid}/cancel", headers=proc(), json={"reason": "撤回"})
    assert response.status_code == 200, response.text
    await feed(app, accepted(rid)[0])
    assert await _outbox(app, rid, "DrawNonceRevealed") == []
    assert (await _view(client, rid))["status"] == "cancelled"
    # events of requests casework never made are ignored
    await feed(app, accepted(str(uuid.uuid4()))[0])


async def _accepted_and_drawn(app, client) -> dict:
    """A request accepted (nonce revealed): what a faithful receipt of its first round would hold."""
    rid = (await _request(client))["request_id"]
    acceptance, bureau_nonce = accepted(rid)
    await feed(app, acceptance)
    [reveal] = await _outbox(app, rid, "DrawNonceRevealed")
    ours = (await _view(client, rid))["procuratorate_commitment"]
    return dict(request_id=rid, draw_id=uuid.uuid4(), bureau_commitment=acceptance.bureau_commitment,
                bureau_nonce=bureau_nonce, procuratorate_commitment=ours,
                procuratorate_nonce=reveal["data"]["procuratorate_nonce"], snapshot_hash=acceptance.snapshot_hash,
                params_hash=acceptance.params_hash, round_no=1)


async def _completed(app, facts: dict, receipt: dict, shortfall: dict | None = None) -> None:
    await feed(app, DrawCompleted(request_id=uuid.UUID(facts["request_id"]), draw_id=facts["draw_id"],
                                  round=facts["round_no"], receipt_hash=receipt["receipt_hash"],
                                  procuratorate_nonce_used=True, shortfall=shortfall or {}))


async def test_r11_1_receipt_mismatch_is_raised_loudly(cw, caplog):
    app, client = cw
    facts = await _accepted_and_drawn(app, client)
    rid, draw_id = facts["request_id"], facts["draw_id"]
    forged = receipt_for(**{**facts, "bureau_nonce": "11" * 32})  # n_B does not match the commitment
    await _completed(app, facts, forged)
    view = await _view(client, rid)
    assert view["status"] == "drawn" and view["receipt_mismatch"] is False
    assert view["receipt_checks"] == [{"draw_id": str(draw_id), "round": 1, "status": "pending",
                                       "failed_checks": [], "checked_at": None}]
    before = _mismatch_metric((await client.get("/metrics")).text)

    async def fetch(wanted: uuid.UUID) -> dict:
        if wanted != draw_id:
            raise UpstreamUnavailable("selection", "not this test's draw")
        return forged

    with caplog.at_level(logging.ERROR, logger="services.casework.service"):
        counts = await check_receipts(app, fetch=fetch, verify=always_verifies)
    assert counts["mismatch"] == 1
    view = await _view(client, rid)
    [check] = view["receipt_checks"]
    assert check["status"] == "mismatch" and check["failed_checks"] == ["bureau_commitment"]
    assert check["checked_at"] is not None and view["receipt_mismatch"] is True
    [event] = await _outbox(app, rid, "ReceiptMismatchDetected")
    assert event["data"]["draw_id"] == str(draw_id) and event["data"]["failed_checks"] == ["bureau_commitment"]
    [audit] = await _audits(app, rid, "draw.receipt_mismatch")
    assert audit["failed_checks"] == ["bureau_commitment"] and audit["draw_id"] == str(draw_id)
    assert _mismatch_metric((await client.get("/metrics")).text) == before + 1
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and rid in r.getMessage()]
    assert str(draw_id) in line and "bureau_commitment" in line
    assert facts["procuratorate_nonce"] not in line and "11" * 32 not in line
    # checked once: the job does not look at it again
    await check_receipts(app, fetch=fetch, verify=always_verifies)
    assert len(await _outbox(app, rid, "ReceiptMismatchDetected")) == 1


async def test_r11_1_good_receipt_checks_ok_and_selection_down_is_retried_not_a_mismatch(cw):
    app, client = cw
    facts = await _accepted_and_drawn(app, client)
    rid, draw_id = facts["request_id"], facts["draw_id"]
    good = receipt_for(**facts)
    await _completed(app, facts, good)

    async def down(wanted: uuid.UUID) -> dict:
        raise UpstreamUnavailable("selection", "ConnectError")

    counts = await check_receipts(app, fetch=down, verify=always_verifies)
    assert counts["mismatch"] == 0 and counts["retry"] >= 1
    async with app.state.db.transaction() as session:
        row = (await session.execute(select(draw_check).where(draw_check.c.draw_id == draw_id))).one()
        assert row.status == "pending" and row.attempts == 1 and "UpstreamUnavailable" in row.last_error
        assert row.next_attempt_at > await session.scalar(select(func.now()))  # backed off
        await session.execute(update(draw_check).where(draw_check.c.draw_id == draw_id)
                              .values(next_attempt_at=func.now()))  # time passes

    async def fetch(wanted: uuid.UUID) -> dict:
        if wanted != draw_id:
            raise UpstreamUnavailable("selection", "not this test's draw")
        return good

    await check_receipts(app, fetch=fetch, verify=always_verifies)
    view = await _view(client, rid)
    assert [(c["status"], c["failed_checks"]) for c in view["receipt_checks"]] == [("ok", [])]
    assert view["receipt_mismatch"] is False
    assert await _outbox(app, rid, "ReceiptMismatchDetected") == []
    assert len(await _audits(app, rid, "draw.receipt_checked")) == 1
    # the receipt the verifier rejects is a mismatch even if every hash matches
    facts2 = {**facts, "draw_id": uuid.uuid4(), "round_no": 2}
    second = receipt_for(**facts2)
    await _completed(app, facts2, second, shortfall={"cross": 1})
    assert (await _view(client, rid))["status"] == "short"
    assert (await _view(client, rid))["shortfall"] == {"cross": 1}

    async def fetch2(wanted: uuid.UUID) -> dict:
        if wanted != facts2["draw_id"]:
            raise UpstreamUnavailable("selection", "not this test's draw")
        return second

    await check_receipts(app, fetch=fetch2, verify=lambda r: {"ok": False, "checks": {}})
    view = await _view(client, rid)
    assert [(c["round"], c["status"], c["failed_checks"]) for c in view["receipt_checks"]] == [
        (1, "ok", []), (2, "mismatch", ["receipt_verifies"])]


async def test_live_state_follows_selection_events(cw):
    app, client = cw
    rid = (await _request(client))["request_id"]
    assert (await _view(client, rid))["status"] == "requested"
    await feed(app, accepted(rid)[0])
    assert (await _view(client, rid))["status"] == "accepted"
    a, b = uuid.uuid4(), uuid.uuid4()
    await feed(app, drawn(rid, a, 1, contact_log_head="01" * 32))
    view = await _view(client, rid)
    assert view["status"] == "drawn" and view["staffing"] == {"confirmed": 1, "seats": 2}
    assert view["contact_log_head"] == "01" * 32
    await feed(app, drawn(rid, b, 2, contact_log_head="02" * 32))
    await feed(app, SupervisionStaffed(request_id=uuid.UUID(rid), supervisor_ids=[a, b], receipt_hash="ab" * 32,
                                       contact_log_head="03" * 32))
    view = await _view(client, rid)
    assert view["status"] == "staffed" and view["staffing"] == {"confirmed": 2, "seats": 2}
    assert view["contact_log_head"] == "03" * 32 and view["receipt_hash"] == "ab" * 32
    await feed(app, SupervisorReleased(request_id=uuid.UUID(rid), supervisor_id=a, reason="declined",
                                       contact_log_head="04" * 32))
    view = await _view(client, rid)
    assert view["status"] == "drawn" and view["staffing"] == {"confirmed": 1, "seats": 2}
    assert view["contact_log_head"] == "04" * 32
    # a DrawCompleted of a later round keeps a staffed request staffed
    await feed(app, drawn(rid, uuid.uuid4(), 3))
    await feed(app, SupervisionStaffed(request_id=uuid.UUID(rid), supervisor_ids=[b], receipt_hash="ab" * 32))
    await feed(app, DrawCompleted(request_id=uuid.UUID(rid), draw_id=uuid.uuid4(), round=2, receipt_hash="cd" * 32,
                                  procuratorate_nonce_used=True))
    view = await _view(client, rid)
    assert view["status"] == "staffed" and view["contact_log_head"] == "04" * 32  # kept when an event has none
    assert [c["status"] for c in view["receipt_checks"]] == ["pending"]
