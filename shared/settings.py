"""Settings shared by every service, read from the environment (pydantic-settings)."""

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """Fields every service needs. Secrets have no default: production must set them."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = "production"
    database_url: str = Field(description="postgresql+asyncpg://user:pass@host:port/db")
    database_pool_size: int = 10
    kafka_bootstrap_servers: str = Field(description="host:port[,host:port]")
    # Apache Kafka supports the idempotent producer; the dev broker (tansu) refuses InitProducerId.
    kafka_idempotent_producer: bool = True
    kafka_topic_partitions: int = 3
    kafka_topic_replication: int = 1
    outbox_batch_size: int = 200
    outbox_poll_seconds: float = 1.0
    # Published rows are kept this long, then purged. They are what gap repair serves from
    # GET /events/feed: a consumer that lost events (a broker that lost its log) can repair the gap
    # only while the producer still has them, so this must exceed the longest outage you want healed
    # without an operator (validated below to exceed the repair window by far).
    outbox_retention_days: int = Field(default=14, ge=1)
    consumer_max_attempts: int = 3
    # How long the broker may hold a fetch; Apache Kafka answers early when data arrives, the dev
    # broker (tansu) always waits the full time, so the dev stack and tests set it low.
    kafka_fetch_max_wait_ms: int = 100
    consumer_group: str | None = None  # default: the service name (also the inbox's consumer name)
    # Consumer watchdog: every `consumer_watch_seconds` the broker's real end offsets are read with a
    # client of its own; a consumer that makes no progress for `consumer_stuck_seconds` while events
    # wait for it (or while the broker is unreachable) is stuck: /readyz says 503, its consumer is
    # rebuilt (rejoin, re-seek) with backoff.
    consumer_watch_seconds: float = Field(default=1.0, gt=0)
    consumer_stuck_seconds: float = Field(default=30.0, gt=0)
    consumer_rebuild_max_backoff_seconds: float = Field(default=30.0, gt=0)
    # a broker call that takes longer than this counts as failed (aiokafka retries some forever)
    consumer_broker_timeout_seconds: float = Field(default=15.0, gt=0)
    # Gap repair: every `event_repair_seconds`, and at once after the broker lost its log, each
    # consumer reads its producers' GET /events/feed for events published since its last repair
    # point minus `event_repair_margin_seconds` and applies what its inbox lacks.
    event_repair_seconds: float = Field(default=60.0, gt=0)
    event_repair_margin_seconds: float = Field(default=120.0, ge=0)
    event_repair_page_size: int = Field(default=500, ge=1, le=5000)
    event_repair_timeout_seconds: float = Field(default=10.0, gt=0)
    # Base URL of every service (the event feed of a producer; user-facing reads). The dev launcher
    # sets SERVICE_URLS (JSON) for its ports; production sets the in-cluster addresses.
    service_urls: dict[str, str] = {
        "registry": "http://127.0.0.1:8001",
        "selection": "http://127.0.0.1:8002",
        "casework": "http://127.0.0.1:8003",
        "appraisal": "http://127.0.0.1:8004",
        "finance": "http://127.0.0.1:8005",
    }
    # shutdown: background tasks get this long to stop after cancellation, clients as long to close
    shutdown_budget_seconds: float = Field(default=10.0, gt=0)

    # Auth: verify bearer JWTs with a PEM public key / HS secret, or a JWKS endpoint.
    jwt_verify_key: SecretStr | None = None
    jwt_jwks_url: str | None = None
    jwt_algorithms: list[str] = ["EdDSA", "RS256", "ES256"]
    jwt_issuer: str = "weihai-supervision"
    jwt_audience: str = "weihai-supervision"

    # This service's own token for the few user-facing REST reads of another service (role `service`).
    service_token: SecretStr | None = None

    # Personal data at rest: 32-byte keys, base64 (urlsafe). No defaults, ever.
    field_encryption_key: SecretStr
    field_hash_key: SecretStr

    log_level: str = "INFO"
    log_json: bool = True

    @model_validator(mode="after")
    def _retention_covers_repair(self) -> "CommonSettings":
        window = self.event_repair_seconds + self.event_repair_margin_seconds
        if self.outbox_retention_days * 86400 < 10 * window:
            raise ValueError("outbox_retention_days must keep published events far longer than the "
                             f"gap-repair window ({window:.0f} s)")
        return self
