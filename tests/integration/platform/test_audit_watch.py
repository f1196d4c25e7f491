"""Issue 16, an audit you can trust: each service verifies its own chain and witnesses the others' heads.

Two pretend services, each a real `create_service_app` app in a schema of its own (platform tables,
append-only audit log): a producer named `registry` and a witness named `appraisal` (with a consumer,
so it handles `AuditHeadPublished` as every real service does). Only the last test lets heads reach
the broker: a witness reads `platform.audit` from the earliest offset, and heads of the same name
from other tests would be witnessed too.
"""

import contextlib
import itertools
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Table, delete, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from shared import audit, audit_watch
from shared.app import ServiceSpec, create_service_app
from shared.audit import append_only_ddl
from shared.db import service_metadata
from shared.db.platform import define_platform_tables
from shared.events import topics
from shared.events.contracts import AuditHeadPublished, SubsidyApproved
from tests.support.apps import bearer, running, service_settings
from tests.support.eventing import wait_until
from tests.support.signing import envelope_for, signed_record

AUDITOR = bearer("auditor", subject="auditor-1")
ADMIN = bearer("bureau_admin", subject="admin-1")
_offsets = itertools.count(10**9)


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    schema: str

    @property
    def audit(self) -> Table:
        return self.app.state.platform.audit

    async def append(self, count: int) -> None:
        async with self.app.state.db.transaction() as session:
            for n in range(count):
                await audit.append(session, self.audit, actor="test", action="test.entry", subject=f"s{n}",
                                   details={"n": n})

    async def head(self) -> tuple[int, str]:
        async with self.app.state.db.transaction() as session:
            return await audit.head(session, self.audit)

    async def as_superuser(self, *statements) -> None:
        """What a database superuser can do: change the log with its append-only triggers disabled."""
        async with self.app.state.db.engine.begin() as conn:
            await conn.execute(text(f'ALTER TABLE "{self.schema}".audit_log DISABLE TRIGGER USER'))
            for statement in statements:
                await conn.execute(statement)
            await conn.execute(text(f'ALTER TABLE "{self.schema}".audit_log ENABLE TRIGGER USER'))

    async def witnessed(self) -> list[dict]:
        response = await self.client.get("/audit/witnessed", headers=AUDITOR)
        assert response.status_code == 200, response.text
        return response.json()

    async def metric(self, name: str) -> str:
        body = (await self.client.get("/metrics")).text
        return "\n".join(line for line in body.splitlines() if line.startswith(name + "{"))


async def ignore(session, event, envelope=None) -> None:
    """A handler so the witness has a consumer (every real service has one)."""


def _empty_feed():
    async def fetch(name: str, params: dict) -> dict:  # gap repair: no producer has anything
        return {"now": "2026-01-01T00:00:00+00:00", "events": [], "next_after_id": None}
    return fetch


@pytest.fixture
async def start(database_url, settings_env, caplog):
    """start(name): a service named as a real one, in a fresh schema, running until the test ends."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(name: str, *, consume: bool = False, **overrides) -> Service:
            schema = f"aw_{name[:4]}_{uuid.uuid4().hex[:8]}"
            metadata = service_metadata(schema)
            platform = define_platform_tables(metadata)
            engine = create_async_engine(database_url)
            async with engine.begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
                await conn.run_sync(metadata.create_all)
                for statement in append_only_ddl(schema):
                    await conn.execute(text(statement))
            await engine.dispose()
            spec = ServiceSpec(name=name, title=name, metadata=metadata, platform=platform,
                               handlers={SubsidyApproved: ignore} if consume else {})
            settings = service_settings(settings_env, signer=name, consumer_group=f"{schema}-consumer",
                                        outbox_poll_seconds=0.2, **overrides)
            app = create_service_app(spec, settings)
            logging.getLogger().addHandler(caplog.handler)  # configure_logging replaced the root's handlers
            app.state.event_feed_fetch = _empty_feed()
            _, client = await stack.enter_async_context(running(app))
            return Service(app, client, schema)

        yield make


async def deliver_head(witness: Service, head: tuple[int, str], *, source: str = "registry") -> None:
    """The head as the producer's relay publishes it, handed to the witness's inbox consumer."""
    event = AuditHeadPublished(service=source, seq=head[0], hash=head[1], at=datetime.now(UTC))
    envelope = envelope_for(event, source=source)
    await witness.app.state.consumer.process([signed_record(envelope, topics.PLATFORM_AUDIT,
                                                            offset=next(_offsets))])


def errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name == "shared.audit_watch"]


# --- (a) an edited entry ---------------------------------------------------------------------------

async def test_r3_1_an_edited_entry_is_reported_broken_at_its_seq(start, caplog):
    registry = await start("registry")
    await registry.append(5)

    answer = await registry.client.get("/audit/verify", headers=AUDITOR)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    head_seq, head_hash = await registry.head()
    assert (body["ok"], body["state"], body["checked"], body["head_seq"], body["head_hash"]) == (
        True, "ok", 5, head_seq, head_hash)
    assert head_seq == 5
    assert 'audit_chain_ok{service="registry"} 1.0' in await registry.metric("audit_chain_ok")
    assert registry.app.state.audit_status.ok

    await registry.as_superuser(update(registry.audit).where(registry.audit.c.seq == 3)
                                .values(details={"n": 99}))
    body = (await registry.client.get("/audit/verify", headers=ADMIN)).json()
    assert (body["ok"], body["state"], body["first_bad_seq"], body["checked"]) == (False, "broken", 3, 2)
    assert body["reason"] == "hash mismatch: entry was altered"
    assert registry.app.state.audit_status.first_bad_seq == 3
    assert 'audit_chain_ok{service="registry"} 0.0' in await registry.metric("audit_chain_ok")
    assert 'audit_chain_verified_seq{service="registry"} 2.0' in await registry.metric("audit_chain_verified_seq")
    assert any(m.startswith("audit chain of registry broken at seq 3: hash mismatch") for m in errors(caplog))


async def test_only_auditors_and_the_bureau_may_verify(start):
    registry = await start("registry")
    for path in ("/audit/verify", "/audit/witnessed"):
        assert (await registry.client.get(path)).status_code == 401
        assert (await registry.client.get(path, headers=bearer("finance"))).status_code == 403
    half = await registry.client.get("/audit/verify", params={"expected_seq": 1}, headers=AUDITOR)
    assert half.status_code == 422


# --- (b) a truncated chain -------------------------------------------------------------------------

async def test_r3_1_a_truncated_chain_alarms_its_witness_and_fails_against_the_witnessed_head(start, caplog):
    registry = await start("registry")
    appraisal = await start("appraisal", consume=True)
    await registry.append(5)
    witnessed = await registry.head()
    await deliver_head(appraisal, witnessed)
    [row] = await appraisal.witnessed()
    assert (row["service"], row["seq"], row["hash"], row["alarm"]) == ("registry", 5, witnessed[1], None)

    # a superuser deletes the newest entries: the rest is still a valid chain
    await registry.as_superuser(delete(registry.audit).where(registry.audit.c.seq > 3))
    body = (await registry.client.get("/audit/verify", headers=AUDITOR)).json()
    assert (body["ok"], body["head_seq"]) == (True, 3)

    # ... but the witness, receiving the lower head, raises the alarm and keeps the old head
    await deliver_head(appraisal, await registry.head())
    [row] = await appraisal.witnessed()
    assert (row["seq"], row["hash"]) == witnessed
    assert row["alarm"].startswith(f"audit chain of registry went back: witnessed seq 5 hash {witnessed[1]}, "
                                   "now seq 3 hash ")
    assert row["alarm_at"] is not None
    assert any(m.startswith("audit chain of registry went back: witnessed seq 5") for m in errors(caplog))
    assert 'audit_witness_alarms{service="appraisal",witnessed="registry"} 1.0' in (
        await appraisal.metric("audit_witness_alarms"))
    async with appraisal.app.state.db.transaction() as session:  # the witness audits its alarm
        actions = (await session.scalars(select(appraisal.audit.c.action))).all()
    assert "audit.witness_alarm" in actions

    # a later, higher head raises the witnessed head; the alarm stays for an operator to clear
    await registry.append(3)
    await deliver_head(appraisal, await registry.head())
    [row] = await appraisal.witnessed()
    assert row["seq"] == 6 and row["alarm"] is not None

    # the auditor pastes the head witnessed before the deletion into the producer's verification
    body = (await registry.client.get("/audit/verify", headers=AUDITOR,
                                      params={"expected_seq": witnessed[0], "expected_hash": witnessed[1]})).json()
    assert body["ok"] is False and body["state"] in ("broken", "truncated")
    assert (body["first_bad_seq"], body["expected_seq"]) == (5, 5)
    assert body["reason"] == "hash differs from the anchored head: chain rewritten"


async def test_r3_1_the_auditor_sees_a_truncation_against_the_witnessed_head(start):
    registry = await start("registry")
    await registry.append(5)
    witnessed = await registry.head()
    await registry.as_superuser(delete(registry.audit).where(registry.audit.c.seq > 2))
    params = {"expected_seq": witnessed[0], "expected_hash": witnessed[1]}
    body = (await registry.client.get("/audit/verify", headers=AUDITOR, params=params)).json()
    assert (body["ok"], body["state"], body["first_bad_seq"], body["head_seq"]) == (False, "truncated", 3, 2)
    assert body["reason"] == "chain ends at seq 2 but the anchored head is seq 5"


async def test_r3_1_a_replica_remembers_the_head_it_verified_and_notices_a_truncation(start):
    registry = await start("registry")
    await registry.append(4)
    assert (await audit_watch.check_chain(registry.app)).ok  # what the periodic job does
    await registry.as_superuser(delete(registry.audit).where(registry.audit.c.seq == 4))
    status = await audit_watch.check_chain(registry.app)
    assert (status.ok, status.state, status.first_bad_seq, status.expected_seq) == (False, "truncated", 4, 4)


async def test_a_witness_ignores_its_own_head_and_heads_signed_for_another_service(start):
    appraisal = await start("appraisal", consume=True)
    await deliver_head(appraisal, (1, "a" * 64), source="appraisal")
    assert await appraisal.witnessed() == []
    # finance signs a head claiming to be registry's: not registry's head
    event = AuditHeadPublished(service="registry", seq=9, hash="b" * 64, at=datetime.now(UTC))
    await appraisal.app.state.consumer.process([signed_record(envelope_for(event, source="finance"),
                                                              topics.PLATFORM_AUDIT, offset=next(_offsets))])
    assert await appraisal.witnessed() == []


# --- (c) through the outbox and the broker ---------------------------------------------------------

async def test_r3_1_the_periodic_job_publishes_the_head_and_another_service_witnesses_it(start):
    registry = await start("registry", audit_verify_seconds=1.0)
    appraisal = await start("appraisal", consume=True)
    await registry.append(3)
    head = await registry.head()

    async def witnessed() -> bool:
        rows = await appraisal.witnessed()
        return bool(rows) and (rows[0]["service"], rows[0]["seq"], rows[0]["hash"]) == ("registry", *head)

    await wait_until(witnessed, timeout=60)
    status = registry.app.state.audit_status  # the job ran: verified and published
    assert status is not None and status.ok and status.head_seq >= 3
    [row] = await appraisal.witnessed()
    assert row["alarm"] is None
    async with registry.app.state.db.transaction() as session:
        staged = (await session.execute(text(
            f'SELECT count(*) FROM "{registry.schema}".outbox_event WHERE event_type = :t'),
            {"t": "AuditHeadPublished"})).scalar_one()
    assert staged >= 1
    assert re.search(r'audit_chain_verified_seq\{service="registry"\} 3\.0', await registry.metric(
        "audit_chain_verified_seq"))
