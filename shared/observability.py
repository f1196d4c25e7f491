"""JSON logs carrying the correlation id, Prometheus metrics, and the correlation-id middleware."""

import json
import logging
import time
import uuid
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.context import peek_correlation_id, reset_correlation_id, set_correlation_id

CORRELATION_HEADER = "x-correlation-id"


class SafeExceptionsMixin:
    """Tracebacks in logs without the exception messages that may quote values: a database
    driver's DETAIL line repeats the row (`Key (nonce)=(…)`), so every exception is rendered by
    shared.errors.safe_traceback (frames, and each exception as describe_exception says it)."""

    def formatException(self, ei) -> str:
        from shared.errors import safe_traceback

        if ei and ei[1] is not None:
            return safe_traceback(ei[1])
        return super().formatException(ei)


class PlainFormatter(SafeExceptionsMixin, logging.Formatter):
    """Text lines (LOG_JSON=false), tracebacks as SafeExceptionsMixin renders them."""


class JsonFormatter(SafeExceptionsMixin, logging.Formatter):
    """One JSON object per line: time, level, service, logger, message, correlation id, error."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": peek_correlation_id(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(service: str, *, level: str = "INFO", json_logs: bool = True) -> None:
    """Route every logger (uvicorn's too) through one handler on stderr."""
    handler = logging.StreamHandler()
    if json_logs:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(PlainFormatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))


class Metrics:
    """The metrics of one service app, in a registry of its own (several apps may share a process)."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.http_latency = Histogram(
            "http_request_duration_seconds", "HTTP request latency", ["service", "method", "route", "status"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.outbox_backlog = Gauge("outbox_backlog", "Outbox rows not yet published", ["service"],
                                    registry=self.registry)
        self.events_published = Gauge("events_published_total", "Events published by the relay since start",
                                      ["service"], registry=self.registry)
        self.events_applied = Gauge("events_applied_total", "Events applied by consumers since start",
                                    ["service", "consumer"], registry=self.registry)
        self.events_dead_lettered = Gauge("events_dead_lettered_total", "Events sent to a dead-letter topic",
                                          ["service", "consumer"], registry=self.registry)
        self.consumer_lag = Gauge("consumer_lag", "Messages not yet consumed", ["service", "consumer"],
                                  registry=self.registry)
        self.consumer_stuck_seconds = Gauge(
            "consumer_stuck_seconds", "How long the consumer has been stuck (0: consuming or caught up)",
            ["service", "consumer"], registry=self.registry)
        self.consumer_rebuilds = Gauge("consumer_rebuilds_total", "Kafka consumers rebuilt by the watchdog",
                                       ["service", "consumer"], registry=self.registry)
        self.consumer_broker_restarts = Gauge(
            "consumer_broker_log_lost_total", "Times the consumer found the broker's log younger than its offsets",
            ["service", "consumer"], registry=self.registry)
        self.consumer_commit_failures = Gauge("consumer_commit_failures_total", "Offset commits that failed",
                                              ["service", "consumer"], registry=self.registry)
        self.events_repaired = Gauge("events_repaired_total", "Events applied from producers' feeds (gap repair)",
                                     ["service", "consumer"], registry=self.registry)
        self.event_repair_failures = Gauge("event_repair_failures_total", "Repair passes that could not read a feed",
                                           ["service", "consumer"], registry=self.registry)
        self.event_repair_last_success = Gauge(
            "event_repair_last_success_timestamp_seconds", "When a repair pass last read every feed",
            ["service", "consumer"], registry=self.registry)
        # audit chain watch (shared/audit_watch.py)
        self.audit_chain_ok = Gauge("audit_chain_ok", "1 if the last verification of the own audit chain passed",
                                    ["service"], registry=self.registry)
        self.audit_chain_verified_seq = Gauge(
            "audit_chain_verified_seq", "Entries of the own audit chain the last verification found valid",
            ["service"], registry=self.registry)
        self.audit_witness_alarms = Gauge(
            "audit_witness_alarms", "1 while the witnessed audit head of another service holds an alarm",
            ["service", "witnessed"], registry=self.registry)
        self.business = Counter("business_events_total", "Domain actions (e.g. draws)", ["service", "action"],
                                registry=self.registry)
        self.service = service


class CorrelationMiddleware:
    """Take X-Correlation-ID from the request (or make one), keep it in context, echo it, time the request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(CORRELATION_HEADER.encode(), b"").decode("latin-1")
        correlation_id = incoming[:100] if incoming else str(uuid.uuid4())
        token = set_correlation_id(correlation_id)
        started = time.perf_counter()
        status = 500

        async def send_with_header(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                header = (CORRELATION_HEADER.encode(), correlation_id.encode())
                message["headers"] = [*message["headers"], header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_header)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.metrics.http_latency.labels(
                self.metrics.service, scope["method"], path, str(status)
            ).observe(time.perf_counter() - started)
            reset_correlation_id(token)
