"""Gap repair: every producing service serves its outbox as an event feed; consumers read it.

A broker can lose messages it acknowledged (the dev broker keeps nothing across a restart; an
Apache Kafka cluster after an unclean leader election or a re-created topic). The outbox still has
them: published rows are kept `outbox_retention_days` (14) before `OutboxRelay.purge_published`
deletes them. So

- every service serves `GET /events/feed?topic=&since=&after_id=&limit=` (role `service`): the
  rows of its outbox on `topic` published at or after `since`, in outbox id order, `limit` per page
  (`next_after_id` pages on), each with the stored envelope's JSON text and the Kafka headers the
  relay sends (`shared.events.outbox.outbox_value` / `outbox_headers`: the same bytes, so a
  signature made for the wire verifies here too);
- every consumer runs a `GapRepairer`: at start-up, every `event_repair_seconds` and at once when
  its watchdog finds the broker lost its log (`InboxConsumer.restart_detected`), it reads the feed
  of each producer of each of its topics (`shared.events.asyncapi.publishers`) from its last
  repair point minus `event_repair_margin_seconds`, and passes the events its inbox lacks to
  `InboxConsumer.process` as records with the original value and headers. The inbox makes a
  duplicate free; inbox rows that came this way have partition -1 and the outbox id as offset.

The repair point only moves after a complete pass of one (producer, topic), from the producer's own
clock (`now` of the feed's first page), so passes chain without a hole. At start-up it is the
consumer's newest inbox row minus the margin (nothing older can be missing unless the consumer was
already behind before it stopped, which the broker then still holds).

Fetching is injectable (`app.state.event_feed_fetch(producer, params) -> page`): tests wire
in-process apps together without TCP; the default calls `settings.service_urls[producer]` with the
service's own token. A service's own outbox (the calendar topic, which every service publishes) is
read directly.
"""

import asyncio
import base64
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import ConsumerRecord
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from sqlalchemy import Table, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY

from shared.auth import Principal, Role, require
from shared.db import Database
from shared.errors import ProblemError
from shared.events import topics as topic_names
from shared.events.asyncapi import publishers
from shared.events.inbox import InboxConsumer
from shared.events.outbox import OutboxRelay, outbox_headers, outbox_value, wire_columns
from shared.settings import CommonSettings

log = logging.getLogger(__name__)

FeedFetch = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
MAX_PAGE = 5000
REPAIRED_PARTITION = -1  # inbox rows of events that arrived through repair, not from a partition
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- the producer's side ------------------------------------------------------------------------

def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def read_feed(db: Database, table: Table, relay: OutboxRelay, *, topic: str, since: datetime,
                    after_id: int = 0, limit: int = 500) -> dict[str, Any]:
    """One page of the feed: published rows of `topic` with published_at >= since and id > after_id,
    each with the value and headers the relay sends (its signer, its cipher for sealed rows)."""
    t = table
    limit = max(1, min(limit, MAX_PAGE))
    now = datetime.now(UTC)  # before the read: the next pass starts from here minus the margin
    stmt = (
        select(*[c for c in t.c if c.name != "envelope"], *wire_columns(t))
        .where(t.c.topic == topic, t.c.published_at.is_not(None), t.c.published_at >= _aware(since),
               t.c.id > after_id)
        .order_by(t.c.id).limit(limit + 1)
    )
    async with db.transaction() as session:
        rows = (await session.execute(stmt)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    events = []
    for row in rows:
        value = outbox_value(row, relay.cipher, context=relay.context)
        headers = outbox_headers(row, relay.signer, value=value)
        sig = dict(headers).get("sig")
        events.append({
            "seq": row.id, "event_id": str(row.event_id), "topic": row.topic, "key": row.key,
            "type": row.type, "version": int(row.version),
            "created_at": row.created_at.isoformat(), "published_at": row.published_at.isoformat(),
            "envelope": value.decode(),
            "headers": [[name, base64.b64encode(value).decode()] for name, value in headers],
            "sig": base64.b64encode(sig).decode() if sig is not None else None,
        })
    return {"topic": topic, "since": _aware(since).isoformat(), "after_id": after_id, "now": now.isoformat(),
            "events": events, "next_after_id": rows[-1].id if more else None}


router = APIRouter(tags=["ops"])


@router.get("/events/feed", summary="事件源（缺口修复）：本服务已发布的事件")
async def event_feed(
    request: Request,
    topic: str = Query(description="topic, e.g. registry.supervisors"),
    since: datetime = Query(description="published at or after (ISO 8601)"),
    after_id: int = Query(default=0, ge=0, le=2**63 - 1, description="outbox id (seq) to page after"),
    limit: int = Query(default=500, ge=1, le=MAX_PAGE),
    principal: Principal = Depends(require(Role.SERVICE)),
) -> dict[str, Any]:
    """The events this service published on `topic` since `since`, as the relay sent them (role
    `service`): envelope JSON, key, headers (signature included), `seq` = outbox id. Published events
    are kept `outbox_retention_days`."""
    if topic not in topic_names.ALL_TOPICS:
        raise ProblemError(404, "unknown_topic", "未知的主题", f"主题 {topic} 不在事件契约中")
    return await read_feed(request.app.state.db, request.app.state.platform.outbox, request.app.state.relay,
                           topic=topic, since=since, after_id=after_id, limit=limit)


# --- the consumer's side ------------------------------------------------------------------------

def http_feed_fetch(settings: CommonSettings) -> tuple[FeedFetch, Callable[[], Awaitable[None]]]:
    """(fetch, close): GET {service_urls[producer]}/events/feed with this service's own token."""
    clients: dict[str, httpx.AsyncClient] = {}
    token = settings.service_token.get_secret_value() if settings.service_token else ""

    async def fetch(producer: str, params: dict[str, Any]) -> dict[str, Any]:
        if producer not in clients:
            if producer not in settings.service_urls:
                raise LookupError(f"no URL for service {producer!r} in SERVICE_URLS")
            clients[producer] = httpx.AsyncClient(
                base_url=settings.service_urls[producer], timeout=settings.event_repair_timeout_seconds,
                headers={"Authorization": f"Bearer {token}"})
        response = await clients[producer].get("/events/feed", params=params)
        response.raise_for_status()
        return response.json()

    async def close() -> None:
        for client in clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()
        clients.clear()

    return fetch, close


def _record(event: dict[str, Any]) -> ConsumerRecord:
    """The message the relay sent for this feed row, as a consumer record for InboxConsumer.process."""
    key, value = event["key"].encode(), event["envelope"].encode()
    published = datetime.fromisoformat(event["published_at"])
    return ConsumerRecord(
        topic=event["topic"], partition=REPAIRED_PARTITION, offset=int(event["seq"]),
        timestamp=int(published.timestamp() * 1000), timestamp_type=0, key=key, value=value, checksum=None,
        serialized_key_size=len(key), serialized_value_size=len(value),
        headers=tuple((name, base64.b64decode(data)) for name, data in event["headers"]),
    )


class GapRepairer:
    """Applies what a consumer missed, from its producers' outboxes (see the module docstring)."""

    def __init__(self, app: FastAPI, consumer: InboxConsumer, settings: CommonSettings) -> None:
        self.app = app
        self.consumer = consumer
        self.settings = settings
        self.service: str = app.state.service
        self._since: dict[tuple[str, str], datetime] = {}
        self._start_since: datetime | None = None
        self._offered: dict[str, float] = {}  # event ids handed to process() (a poison one is not retried)
        self.repaired_total = 0  # events the inbox lacked, applied (or dead-lettered) through repair
        self.passes_total = 0
        self.failures_total = 0
        self.last_success: datetime | None = None

    def pairs(self) -> list[tuple[str, str]]:
        """(producer, topic) for every topic the consumer reads."""
        return [(producer, topic) for topic in self.consumer.topics for producer in publishers(topic)]

    async def run(self) -> None:
        """Repair at start-up, every event_repair_seconds, and at once after the broker lost its log
        (then twice more, 5 s and 20 s later: a row acknowledged just before the loss may be marked
        published a moment after the first pass)."""
        follow_ups: list[float] = []
        reason = "start-up"
        while True:
            try:
                await self.repair_once(reason)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.error("event repair of %s failed; retrying later", self.consumer.name, exc_info=True)
            interval = self.settings.event_repair_seconds * random.uniform(0.9, 1.1)
            now = time.monotonic()
            follow_ups = [t for t in follow_ups if t > now]
            timeout = min([interval, *[t - now for t in follow_ups]])
            waiter = asyncio.ensure_future(self.consumer.restart_detected.wait())
            try:
                done, _ = await asyncio.wait({waiter}, timeout=timeout)
            finally:
                waiter.cancel()
            if waiter in done:
                self.consumer.restart_detected.clear()
                reason = "the broker lost its log"
                follow_ups = [time.monotonic() + 5, time.monotonic() + 20]
            elif follow_ups and timeout < interval:
                reason = "follow-up after the broker lost its log"
            else:
                reason = "periodic"

    async def _start_point(self) -> datetime:
        """Newest inbox row of this consumer minus the margin (epoch for a consumer that has none)."""
        if self._start_since is None:
            inbox = self.consumer.inbox
            async with self.consumer.db.transaction() as session:
                newest = await session.scalar(
                    select(func.max(inbox.c.received_at)).where(inbox.c.consumer == self.consumer.name))
            margin = timedelta(seconds=self.settings.event_repair_margin_seconds)
            self._start_since = (_aware(newest) - margin) if newest else EPOCH
        return self._start_since

    async def repair_once(self, reason: str = "periodic") -> int:
        """One pass over every (producer, topic); returns how many missing events it applied."""
        self.passes_total += 1
        repaired, failed = 0, []
        for producer, topic in self.pairs():
            try:
                repaired += await self._repair(producer, topic)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failed.append(f"{producer}/{topic}: {type(exc).__name__}: {str(exc)[:200]}")
        if failed:
            self.failures_total += 1
            log.warning("event repair of %s (%s): could not read %s", self.consumer.name, reason, "; ".join(failed))
        else:
            self.last_success = datetime.now(UTC)
        self.repaired_total += repaired
        if repaired:
            log.warning("event repair of %s (%s): applied %d events the broker never delivered",
                        self.consumer.name, reason, repaired)
        return repaired

    async def _fetch(self, producer: str, params: dict[str, Any]) -> dict[str, Any]:
        if producer == self.service:  # our own outbox
            return await read_feed(self.consumer.db, self.app.state.platform.outbox, self.app.state.relay,
                                   topic=params["topic"],
                                   since=datetime.fromisoformat(params["since"]), after_id=params["after_id"],
                                   limit=params["limit"])
        return await self.app.state.event_feed_fetch(producer, params)

    async def _repair(self, producer: str, topic: str) -> int:
        since = self._since.get((producer, topic)) or await self._start_point()
        params: dict[str, Any] = {"topic": topic, "since": since.isoformat(), "after_id": 0,
                                  "limit": self.settings.event_repair_page_size}
        producer_now: datetime | None = None
        repaired = 0
        while True:
            page = await self._fetch(producer, params)
            producer_now = producer_now or datetime.fromisoformat(page["now"])
            handled = [e for e in page["events"] if (e["type"], int(e["version"])) in self.consumer.handlers]
            missing = await self._missing(handled)
            if missing:
                records = [_record(e) for e in missing]
                for i in range(0, len(records), 200):
                    await self.consumer._process_with_db_retry(records[i:i + 200])
                now = time.monotonic()
                self._offered.update((e["event_id"], now) for e in missing)
                repaired += len(missing)
            if page["next_after_id"] is None:
                break
            params["after_id"] = page["next_after_id"]
        self._since[(producer, topic)] = producer_now - timedelta(seconds=self.settings.event_repair_margin_seconds)
        if len(self._offered) > 100_000:
            cutoff = time.monotonic() - 3600
            self._offered = {k: v for k, v in self._offered.items() if v > cutoff}
        return repaired

    async def _missing(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events this consumer's inbox has no row for (applied or dead-lettered)."""
        events = [e for e in events if e["event_id"] not in self._offered]
        if not events:
            return []
        inbox = self.consumer.inbox
        query = select(inbox.c.event_id).where(
            inbox.c.consumer == self.consumer.name,
            inbox.c.event_id == any_(bindparam("ids", type_=ARRAY(inbox.c.event_id.type))))
        async with self.consumer.db.transaction() as session:
            rows = await session.scalars(query, {"ids": [uuid.UUID(e["event_id"]) for e in events]})
            known = {str(event_id) for event_id in rows.all()}
        return [e for e in events if e["event_id"] not in known]
