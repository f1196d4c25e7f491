"""Consumers that heal (issue 16), against real broker processes killed with SIGKILL; no mocks.

A producing and a consuming service (tests/support/faults.py) run against a broker process the test
starts itself on a free port. Writers keep writing through the producer's HTTP API all along.

- The broker is SIGKILLed mid-stream and a new one (empty: the dev broker keeps nothing) started on
  the same port, twice (2-5 s later, then after longer than the consumer's stuck threshold):
  every accepted write's effect arrives exactly once, within
  HEAL_TIMEOUT of the new broker, without restarting anything by hand; the consumer's /readyz goes
  503 (consumer stuck) and back to 200. Events the old broker acknowledged but nobody read come back
  through gap repair (the producer's GET /events/feed).
- The consumer service's process is SIGKILLed mid-stream and started again: the same.

Run them alone with `pytest -m fault`.
"""

import asyncio
import random
import time
import uuid

import httpx
import pytest

from shared.devstack import infra
from shared.devstack.live import live_server
from shared.events import inbox, topics
from shared.tokens import mint
from tests.support import faults
from tests.support.apps import PRIVATE_KEY
from tests.support.eventing import wait_until
from tests.support.faults import (
    BrokerProcess,
    EffectReader,
    Readiness,
    Writers,
    poll_readiness,
    settings_for,
    two_services,
)

pytestmark = pytest.mark.fault

HEAL_TIMEOUT = 60.0  # new broker listening -> every write accepted before the kill applied once
FINAL_TIMEOUT = 60.0  # writers stopped -> every accepted write applied once
MIN_WRITES = 1000


async def test_broker_killed_mid_stream_every_accepted_write_arrives_exactly_once(settings_env, database_url):
    broker = BrokerProcess()
    broker.start()
    rng = random.Random()
    poller = None
    try:
        async with two_services(settings_env, database_url, broker) as rig:
            reader: EffectReader = rig["reader"]
            readiness = Readiness()
            poller = asyncio.create_task(poll_readiness(rig["cclient"].get, readiness))
            writers = Writers(rig["pclient"].post)
            writers.start(n=4)

            async def flowing() -> bool:
                return len(await reader.counts()) >= 100
            await wait_until(flowing, timeout=60)

            first_kill = None
            recoveries = []
            # longer than the stuck threshold plus one failing watchdog look (a probe that cannot reach
            # the broker gives up after two bounded calls): /readyz must have said 503 by then
            long_outage = (faults.FAST_HEALING["consumer_stuck_seconds"]
                           + 2 * faults.FAST_HEALING["consumer_broker_timeout_seconds"] + 2)
            for outage in (rng.uniform(2, 5), long_outage):  # the second outlasts the stuck threshold
                await asyncio.sleep(4)
                broker.kill()
                killed_at = time.monotonic()
                first_kill = first_kill or killed_at
                await asyncio.sleep(outage)
                broker.start()
                up_at = time.monotonic()
                healed = await reader.wait_for(writers.before(killed_at), timeout=HEAL_TIMEOUT)
                assert healed is not None, f"writes accepted before the kill not all applied {HEAL_TIMEOUT} s after"
                recoveries.append(round(time.monotonic() - up_at, 1))

                async def ready_again(up_at: float = up_at) -> bool:
                    return readiness.first_ready_after(up_at) is not None
                await wait_until(ready_again, timeout=HEAL_TIMEOUT)

            await asyncio.sleep(3)
            await writers.stop()
            assert len(writers.accepted) >= MIN_WRITES, len(writers.accepted)
            assert await reader.wait_for(writers.accepted, timeout=FINAL_TIMEOUT) is not None
            await asyncio.sleep(2)  # duplicates, if any, would arrive now
            counts = await reader.counts()
            writers.check_exactly_once(counts)

            consumer = rig["consumer"].state.consumer
            # it noticed the broker's log was younger than what it had read (after a restart where it
            # had read nothing from the new broker yet there is nothing to compare: the repair that
            # follows every outage brings those events)
            assert consumer.broker_restarts_total >= 1
            # /readyz said 503 (consumer stuck) during the outage longer than the stuck threshold
            assert readiness.stuck_seen_after(first_kill), "the consumer never reported itself stuck"
            await asyncio.sleep(1)
            assert readiness.samples[-1][1] == 200, readiness.samples[-1]
            print(f"\n{len(writers.accepted)} writes, recovered in {recoveries} s, "
                  f"repaired {rig['consumer'].state.repairer.repaired_total} events from the feed")
    finally:
        if poller:
            poller.cancel()
        broker.stop()


async def test_consumer_process_killed_mid_stream_every_accepted_write_arrives_exactly_once(
    settings_env, database_url, tmp_path
):
    broker = BrokerProcess()
    broker.start()
    run = uuid.uuid4().hex[:8]
    pspec = faults.producer_spec(f"fp_{run}")
    cspec, effect = faults.consumer_spec(f"fc_{run}")
    await faults.create_schema(database_url, pspec.metadata)
    await faults.create_schema(database_url, cspec.metadata)
    producer = faults.create_service_app(pspec, settings_for(settings_env, broker.bootstrap, faults.PRODUCER))
    reader = EffectReader(database_url, effect)
    process = None
    try:
        with live_server(producer) as producer_url:
            port = infra.free_port()
            env = faults.consumer_env(
                settings_env, bootstrap=broker.bootstrap, schema=f"fc_{run}", group=f"heal-{run}", port=port,
                producer_url=producer_url,
                service_token=mint(PRIVATE_KEY, subject="consumer", roles=["service"], ttl_seconds=3600))
            log_path = tmp_path / "consumer.log"
            process = faults.start_consumer_process(env, log_path)
            async with httpx.AsyncClient(base_url=producer_url, timeout=10) as pclient, \
                    httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as cclient:
                readiness = Readiness()
                poller = asyncio.create_task(poll_readiness(cclient.get, readiness))
                writers = Writers(pclient.post)
                writers.start(n=4, pause=0.0)
                try:
                    async def flowing() -> bool:
                        return len(await reader.counts()) >= 100
                    await wait_until(flowing, timeout=90)
                    for _ in range(2):
                        await asyncio.sleep(3)
                        process.kill()  # SIGKILL: no clean shutdown, offsets of the last poll not committed
                        process.wait(10)
                        killed_at = time.monotonic()
                        await asyncio.sleep(random.uniform(1, 2))
                        process = faults.start_consumer_process(env, log_path)
                        assert await reader.wait_for(writers.before(killed_at), timeout=HEAL_TIMEOUT) is not None

                        async def ready_again(killed_at: float = killed_at) -> bool:
                            return readiness.first_ready_after(killed_at) is not None
                        await wait_until(ready_again, timeout=HEAL_TIMEOUT)
                    await asyncio.sleep(3)
                    await writers.stop()
                    assert len(writers.accepted) >= MIN_WRITES, len(writers.accepted)
                    assert await reader.wait_for(writers.accepted, timeout=FINAL_TIMEOUT) is not None, (
                        log_path.read_text()[-3000:])
                    await asyncio.sleep(2)
                    counts = await reader.counts()
                    writers.check_exactly_once(counts)
                    assert readiness.samples[-1][1] == 200, readiness.samples[-1]
                finally:
                    poller.cancel()
                    await writers.stop()
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except Exception:
                process.kill()
        await reader.close()
        broker.stop()


async def test_a_consumer_whose_topic_is_younger_than_its_offsets_rereads_it_and_repairs(settings_env, database_url):
    """The broker's topic re-created under a running consumer (same broker, no outage): the consumer
    finds the log is not the one it read, re-reads it from the beginning, and repair brings back what
    the old log had."""
    broker = BrokerProcess()
    broker.start()
    try:
        async with two_services(settings_env, database_url, broker) as rig:
            reader: EffectReader = rig["reader"]
            writers = Writers(rig["pclient"].post)
            writers.start(n=2)

            async def some() -> bool:
                return len(await reader.counts()) >= 50
            await wait_until(some, timeout=60)
            await writers.stop()
            assert await reader.wait_for(writers.accepted, timeout=30) is not None
            from aiokafka.admin import AIOKafkaAdminClient

            admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
            await admin.start()
            try:
                await admin.delete_topics([topics.REGISTRY_SUPERVISORS])
            finally:
                await admin.close()
            consumer = rig["consumer"].state.consumer

            async def noticed() -> bool:
                return consumer.broker_restarts_total >= 1
            await wait_until(noticed, timeout=60)
            writers.start(n=2)
            await asyncio.sleep(3)
            await writers.stop()
            assert await reader.wait_for(writers.accepted, timeout=HEAL_TIMEOUT) is not None
            writers.check_exactly_once(await reader.counts())
    finally:
        broker.stop()


async def test_a_healthy_broker_under_load_is_never_taken_for_one_that_lost_its_log(settings_env, database_url):
    """No restart, writers as fast as they go for longer than two anchor checks: the watchdog's checks
    (end offsets read while the consumer moves on) find nothing lost, nothing is rebuilt or re-read."""
    broker = BrokerProcess()
    broker.start()
    try:
        async with two_services(settings_env, database_url, broker) as rig:
            reader: EffectReader = rig["reader"]
            writers = Writers(rig["pclient"].post)
            writers.start(n=4, pause=0.0)
            await asyncio.sleep(2 * inbox.ANCHOR_CHECK_SECONDS + 5)
            await writers.stop()
            assert await reader.wait_for(writers.accepted, timeout=FINAL_TIMEOUT) is not None
            # and idle for another check: the dev broker reports the end of a log whose last batch
            # holds several records one short, which once read as "our offset is beyond its end"
            await asyncio.sleep(inbox.ANCHOR_CHECK_SECONDS + 3)
            writers.check_exactly_once(await reader.counts())
            consumer = rig["consumer"].state.consumer
            assert consumer._last_anchor_check > 0, "no anchor check ran"
            assert (consumer.broker_restarts_total, consumer.rebuilds_total) == (0, 0)
    finally:
        broker.stop()


async def test_a_consumer_whose_loop_has_ended_makes_the_service_not_ready(settings_env, database_url):
    """Whatever ends a consumer's loop (here: its task cancelled), /readyz says so for good: a service
    whose consumer is gone must not look alive (issue 16)."""
    broker = BrokerProcess()
    broker.start()
    try:
        async with two_services(settings_env, database_url, broker) as rig:
            client = rig["cclient"]
            consumer = rig["consumer"].state.consumer

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200
            await wait_until(ready, timeout=30)
            [task] = [t for t in asyncio.all_tasks() if t.get_name().endswith("-consumer")
                      and t.get_coro().cr_frame is not None and t.get_coro().cr_frame.f_locals.get("self") is consumer]
            task.cancel()
            await asyncio.wait({task}, timeout=10)
            answer = await client.get("/readyz")
            assert answer.status_code == 503, answer.text
            assert answer.json()["checks"]["consumer"] is False
            assert "its consume loop has ended" in answer.json()["reason"]
    finally:
        broker.stop()
