"""Kafka clients configured one way for every service (acks=all; idempotence where the broker has it).

Also what the consumers' watchdog needs to see the broker as it really is, independently of a
consumer's own (possibly wedged) state: `BrokerProbe` (partitions, end offsets, a group's committed
offsets, the record at an offset), and `bounded()`, a timeout that never swallows a cancellation.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError, for_code
from aiokafka.helpers import create_ssl_context

from shared.events import topics as topic_names
from shared.settings import CommonSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

TOPIC_ALREADY_EXISTS = TopicAlreadyExistsError.errno


class BrokerUnavailable(Exception):
    """The broker cannot be reached (or answered with a retriable error): try again later."""


class TopicsNotCreated(RuntimeError):
    """The broker refused to create topics (bad partition count, replication, authorization, ...).

    A configuration error: start-up fails with it instead of logging the topics as created.
    """


def is_unreachable(exc: BaseException) -> bool:
    """Errors that mean "the broker is not there (yet)", as opposed to "the broker said no"."""
    if isinstance(exc, BrokerUnavailable | OSError | TimeoutError | asyncio.TimeoutError | KafkaTimeoutError):
        return True
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


class ClientCancelled(Exception):
    """A client call ended by a cancellation that was not ours (see `bounded`)."""


async def bounded(awaitable: Awaitable[T], timeout: float, what: str) -> T:
    """`await awaitable`, or TimeoutError after `timeout` seconds (the work is then cancelled).

    asyncio.wait, not wait_for / asyncio.timeout: on 3.11 both implement the timeout by cancelling
    the caller, and a shutdown cancel racing with it can be swallowed (see OutboxRelay.run). Here the
    caller is never cancelled by the timeout, and a cancellation of the caller cancels the work.
    Work that ends cancelled without the caller being cancelled raises `ClientCancelled` (an
    Exception), never CancelledError: a loop that re-raises CancelledError would stop for good.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task in done:
        if task.cancelled():
            # cancelled inside the client (aiokafka's stop() re-raises the cancellation of its own
            # fetch tasks), not by our caller: an ordinary failure, or it would end the caller's loop
            raise ClientCancelled(f"{what} was cancelled inside the Kafka client")
        return task.result()
    task.cancel()
    # never awaited: a client call that ignores its cancellation must not hold us; retrieve its
    # outcome so asyncio does not complain about it later
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    raise TimeoutError(f"{what} took longer than {timeout:g} s")


def kafka_security(settings: CommonSettings) -> dict[str, Any]:
    """The security keyword arguments of every aiokafka client (producer, consumer, admin).

    PLAINTEXT: none beyond the protocol. SSL / SASL_SSL: a TLS context that verifies the brokers
    against KAFKA_SSL_CAFILE (the system CAs without it), with the hostname checked, and the
    client's certificate for mutual TLS if given. SASL_*: the service's SCRAM (or PLAIN) user.
    CommonSettings has already checked that SASL has its credentials.
    """
    protocol = settings.kafka_security_protocol
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        key_password = settings.kafka_ssl_key_password
        kwargs["ssl_context"] = create_ssl_context(
            cafile=settings.kafka_ssl_cafile, certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
            password=key_password.get_secret_value() if key_password is not None else None,
        )
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        password = settings.kafka_sasl_password
        kwargs |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": password.get_secret_value() if password is not None else None,
        }
    return kwargs


def make_producer(settings: CommonSettings, *, client_id: str) -> AIOKafkaProducer:
    """A producer that waits for all in-sync replicas; idempotent on Apache Kafka (setting)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=settings.kafka_idempotent_producer,
        request_timeout_ms=10_000,
        retry_backoff_ms=200,
        linger_ms=0,
        **kafka_security(settings),
    )


def make_admin(settings: CommonSettings, *, client_id: str = "admin") -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, client_id=client_id,
                               request_timeout_ms=10_000, **kafka_security(settings))


def all_topics_with_dead_letters() -> list[str]:
    """Every topic of the contract and its dead-letter topic."""
    return [t for topic in topic_names.ALL_TOPICS for t in (topic, topic_names.dead_letter(topic))]


async def ensure_topics(settings: CommonSettings, names: list[str] | None = None) -> list[str]:
    """Create the topics that are missing (start-up; and again after a dev broker restart).

    Returns the topics created. Raises BrokerUnavailable when the broker cannot be reached or
    answered with a retriable error (the caller retries later), TopicsNotCreated when the broker
    refused (a configuration error: fail loudly). "Already exists" is success (another service
    created it first).
    """
    wanted = list(names or all_topics_with_dead_letters())
    admin = make_admin(settings, client_id="ensure-topics")
    try:
        try:
            await admin.start()
            # list_topics asks for every topic: a metadata request naming a topic would make some
            # brokers (tansu, Kafka with auto.create.topics.enable) create it with their defaults
            existing = set(await admin.list_topics())
        except Exception as exc:
            if is_unreachable(exc):
                raise BrokerUnavailable(f"broker unreachable: {exc!r}") from exc
            raise
        missing = [n for n in wanted if n not in existing]
        if not missing:
            return []
        new = [
            NewTopic(n, num_partitions=settings.kafka_topic_partitions,
                     replication_factor=settings.kafka_topic_replication)
            for n in missing
        ]
        try:
            response = await admin.create_topics(new)
        except TopicAlreadyExistsError:
            return []  # another service created them first
        except Exception as exc:
            if is_unreachable(exc):
                raise BrokerUnavailable(f"broker unreachable while creating topics: {exc!r}") from exc
            raise TopicsNotCreated(f"the broker refused to create {missing}: {exc!r}") from exc
        created, refused, retry = [], [], []
        for topic, code, *rest in response.topic_errors:  # (topic, error_code[, error_message])
            if code == 0:
                created.append(topic)
            elif code != TOPIC_ALREADY_EXISTS:
                error = for_code(code)
                (retry if getattr(error, "retriable", False) else refused).append(
                    f"{topic}: {error.__name__} {(rest[0] if rest else '') or ''}".strip())
        if refused:
            raise TopicsNotCreated("the broker refused to create topics: " + "; ".join(refused))
        if retry:
            raise BrokerUnavailable("topic creation must be retried: " + "; ".join(retry))
        if created:
            log.info("created topics %s", created)
        return created
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


class BrokerProbe:
    """What the broker really holds, read with clients of its own (no consumer group).

    The consumers' watchdog uses it: aiokafka often logs a broken coordinator or a failing commit
    and retries internally without raising, and its highwater cache goes stale with it, so a
    consumer's own view cannot tell whether it is stuck.
    """

    def __init__(self, settings: CommonSettings, *, client_id: str) -> None:
        self.settings = settings
        self.client_id = client_id
        self.timeout = settings.consumer_broker_timeout_seconds
        self._admin: AIOKafkaAdminClient | None = None
        self._reader: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()  # record_at assigns and seeks the reader

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._reader is None:
            await self.close()
            admin = make_admin(self.settings, client_id=f"{self.client_id}-probe")
            reader = AIOKafkaConsumer(
                bootstrap_servers=self.settings.kafka_bootstrap_servers, client_id=f"{self.client_id}-probe",
                group_id=None, enable_auto_commit=False, auto_offset_reset="none",
                request_timeout_ms=int(self.timeout * 1000), fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms,
                **kafka_security(self.settings),
            )
            try:
                await bounded(admin.start(), self.timeout, "probe admin start")
                await bounded(reader.start(), self.timeout, "probe reader start")
            except BaseException:
                for client in (admin, reader):
                    with contextlib.suppress(Exception):
                        await bounded(client.close() if client is admin else client.stop(), 2, "probe stop")
                raise
            self._admin, self._reader = admin, reader
        return self._admin, self._reader

    async def partitions(self, topics: Iterable[str]) -> tuple[list[TopicPartition], list[str]]:
        """(every partition of the topics that exist, the topics that do not)."""
        admin, _ = await self._clients()
        wanted = list(topics)
        existing = set(await bounded(admin.list_topics(), self.timeout, "list topics"))
        present = [t for t in wanted if t in existing]
        missing = [t for t in wanted if t not in existing]
        tps: list[TopicPartition] = []
        if present:
            for described in await bounded(admin.describe_topics(present), self.timeout, "describe topics"):
                if described["error_code"]:
                    missing.append(described["topic"])
                    continue
                tps += [TopicPartition(described["topic"], p["partition"]) for p in described["partitions"]]
        return sorted(tps), missing

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        _, reader = await self._clients()
        return await bounded(reader.end_offsets(tps), self.timeout, "end offsets") if tps else {}

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        _, reader = await self._clients()
        return await bounded(reader.beginning_offsets(tps), self.timeout, "beginning offsets") if tps else {}

    async def committed(self, group: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The group's committed offsets (-1: none), whichever replica committed them."""
        admin, _ = await self._clients()
        if not tps:
            return {}
        offsets = await bounded(admin.list_consumer_group_offsets(group, partitions=tps), self.timeout,
                                "group offsets")
        return {tp: meta.offset for tp, meta in offsets.items()}

    async def records_at(self, wanted: dict[TopicPartition, int]) -> dict[TopicPartition, ConsumerRecord | None]:
        """The record at each offset; None where the broker answered with a later record first (it has
        none there). A partition whose answer did not come in time, or came with earlier records only,
        is left out: unknown is not "lost" (a slow or busy broker must not look like one that lost its
        log)."""
        if not wanted:
            return {}
        async with self._lock:
            _, reader = await self._clients()
            found: dict[TopicPartition, ConsumerRecord | None] = {}
            reader.assign(list(wanted))
            try:
                for tp, offset in wanted.items():
                    reader.seek(tp, offset)
                loop = asyncio.get_running_loop()
                deadline = loop.time() + self.timeout
                pending = set(wanted)
                while pending and loop.time() < deadline:
                    batches = await bounded(reader.getmany(*pending, timeout_ms=200, max_records=len(pending) * 50),
                                            self.timeout, "probe fetch")
                    for tp, records in batches.items():
                        at_or_after = [r for r in records if r.offset >= wanted[tp]]
                        if tp in pending and at_or_after:
                            first = at_or_after[0]
                            found[tp] = first if first.offset == wanted[tp] else None
                            pending.discard(tp)
            finally:
                reader.assign([])  # no background fetching between checks
            return found

    async def close(self) -> None:
        admin, reader, self._admin, self._reader = self._admin, self._reader, None, None
        if reader is not None:
            with contextlib.suppress(Exception):
                await bounded(reader.stop(), 5, "probe reader stop")
        if admin is not None:
            with contextlib.suppress(Exception):
                await bounded(admin.close(), 5, "probe admin close")
