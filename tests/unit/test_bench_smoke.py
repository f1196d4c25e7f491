"""The benchmarks import, their helpers compute what they claim (no timing assertions: see bench/)."""

import argparse
import asyncio
import inspect
import statistics
import uuid

import pytest

import bench
from bench import __main__ as bench_main
from bench import bench_events
from shared.db import Database
from shared.events.contracts import EligibilityChanged, contract_for
from shared.events.envelope import Envelope
from shared.events.inbox import InboxConsumer


def test_percentile_matches_known_values_and_statistics_quantiles() -> None:
    assert bench.percentile([5.0], 99) == 5.0
    assert bench.percentile([1, 2, 3, 4], 0) == 1
    assert bench.percentile([1, 2, 3, 4], 100) == 4
    assert bench.percentile([1, 2, 3, 4], 50) == 2.5
    assert bench.percentile([4, 1, 3, 2], 50) == 2.5  # order does not matter
    assert bench.percentile(range(1, 101), 99) == pytest.approx(99.01)
    data = [((i * 7919) % 1000) / 7 for i in range(333)]
    cuts = statistics.quantiles(data, n=100, method="inclusive")
    for p in (1, 25, 50, 90, 99):
        assert bench.percentile(data, p) == pytest.approx(cuts[p - 1])
    with pytest.raises(ValueError):
        bench.percentile([], 50)
    with pytest.raises(ValueError):
        bench.percentile([1.0], 101)


def test_summaries_and_ratios() -> None:
    summary = bench.summarize_ms([0.001, 0.002, 0.003])
    assert summary["n"] == 3
    assert summary["p50_ms"] == pytest.approx(2.0)
    assert summary["p95_ms"] == pytest.approx(2.9)
    assert summary["max_ms"] == pytest.approx(3.0)
    assert bench.summarize_ms([]) == {"n": 0}
    assert bench.ratio(15.0, 1.5) == 10.0
    assert bench.ratio(None, 1.5) is None
    assert bench.ratio(3.0, 0) is None


def test_runner_discovers_benchmarks_and_renders_rows() -> None:
    assert "events" in bench_main.available()
    args = bench_main.parse_args(["--quick", "--only", "events"])
    assert args.quick and args.only == ["events"]
    table = bench_main.render("events", {
        "rows": [{"metric": "p50", "value": 12.5, "unit": "ms", "baseline": 1.25, "ratio": 10.0,
                  "target": "<= 15 ms", "ok": True}],
        "notes": ["a note"],
    })
    assert "p50" in table and "10.00x" in table and "yes" in table and "a note" in table


def test_quick_sizes_are_smaller() -> None:
    quick, full = bench_events.sizes(True), bench_events.sizes(False)
    assert quick.raw_n == 200 and full.raw_n == 500
    assert quick.latency_n == 200 and full.latency_n == 500
    assert quick.throughput_m == 5_000 and full.throughput_m == 20_000
    assert quick.batch_size == full.batch_size == 50


def test_raw_baseline_and_inbox_consumer_fetch_alike() -> None:
    assert bench_events.FETCH_MAX_WAIT_MS == 10  # as the dev stack's kafka_fetch_max_wait_ms
    assert bench_events.LATENCY_INTERVAL_S == 0.020
    settings = bench_events.make_settings("postgresql+asyncpg://bench@/bench?host=/nonexistent", "127.0.0.1:1")
    assert settings.kafka_fetch_max_wait_ms == bench_events.FETCH_MAX_WAIT_MS
    pipeline = bench_events.Pipeline(Database(settings.database_url), settings, "t1234")
    assert type(pipeline.consumer) is InboxConsumer  # the stock consumer, no what-if subclass
    assert pipeline.consumer.settings.kafka_fetch_max_wait_ms == bench_events.FETCH_MAX_WAIT_MS


def test_pipeline_publishes_eligibility_changed_on_a_topic_of_its_own() -> None:
    settings = bench_events.make_settings("postgresql+asyncpg://bench@/bench?host=/nonexistent", "127.0.0.1:1")
    db = Database(settings.database_url)  # no connection is made
    pipeline = bench_events.Pipeline(db, settings, "t1234")
    event = pipeline.new_event()
    assert isinstance(event, EligibilityChanged)
    assert (event.TYPE, event.VERSION) == (EligibilityChanged.TYPE, EligibilityChanged.VERSION)
    assert event.TOPIC == pipeline.topic != EligibilityChanged.TOPIC
    assert pipeline.consumer.topics == [pipeline.topic]
    # what the consumer parses back is the real contract
    envelope = Envelope(type=event.TYPE, version=event.VERSION, source="bench", correlation_id="c",
                        subject=event.subject, data=event.model_dump(mode="json"))
    assert contract_for(envelope.type, envelope.version).model_validate(envelope.data).supervisor_id == (
        event.supervisor_id
    )


def test_tracker_pairs_commits_with_effects() -> None:
    tracker = bench_events.Tracker(expected=2)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    tracker.on_committed([a, b, c], 1.0)
    tracker.on_applied([a], 1.5)
    assert not tracker.done.is_set()
    tracker.on_applied([b, a], 2.0)  # a redelivery keeps the first effect time
    assert tracker.done.is_set()
    assert sorted(tracker.latencies()) == [0.5, 1.0]

    late = bench_events.Tracker()  # throughput: the count is known only when the writers stop
    late.on_applied([a, b], 2.0)
    assert not late.done.is_set()
    late.expect(2)
    assert late.done.is_set()


def test_bench_main_is_a_coroutine_function() -> None:
    assert inspect.iscoroutinefunction(bench_events.main)
    assert isinstance(bench_main.parse_args([]), argparse.Namespace)


async def test_consumer_process_reports_round_trip_through_a_stream() -> None:
    """The consumer process's stdout framing: commit time + ids, then a clean end at EOF."""
    ids = [uuid.uuid4() for _ in range(3)]
    stream = asyncio.StreamReader()
    stream.feed_data(bench_events.pack_report([], 1.25))  # the hello
    stream.feed_data(bench_events.pack_report(ids, 2.5))
    stream.feed_eof()
    assert await bench_events.read_report(stream) == (1.25, [])
    assert await bench_events.read_report(stream) == (2.5, ids)
    with pytest.raises(asyncio.IncompleteReadError):
        await bench_events.read_report(stream)


def test_the_consumer_runs_as_its_own_module_entry_point() -> None:
    """ConsumerProcess starts `python -m bench.bench_events consume` from the repository root."""
    assert (bench_events.REPO_ROOT / "bench" / "bench_events.py").is_file()
    assert inspect.iscoroutinefunction(bench_events.consume)
