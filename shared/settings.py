"""Settings shared by every service, read from the environment (pydantic-settings)."""

import json
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# where the services listen on one machine (the dev launcher's default ports); production sets SERVICE_URLS
DEFAULT_SERVICE_URLS = {
    "registry": "http://127.0.0.1:8001",
    "selection": "http://127.0.0.1:8002",
    "casework": "http://127.0.0.1:8003",
    "appraisal": "http://127.0.0.1:8004",
    "finance": "http://127.0.0.1:8005",
    "notify": "http://127.0.0.1:8007",
}


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

    # --- Kafka client security (issue 16; shared/events/kafka.py `kafka_security`) ---------------
    # PLAINTEXT for the dev broker and tests; production: SASL_SSL with SCRAM-SHA-512, one SCRAM
    # user per service (its principal in the broker's ACLs, shared/events/acl.py).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None  # the service's SCRAM user (= the service name in deploy/)
    kafka_sasl_password: SecretStr | None = None
    # PEM CA bundle that signed the brokers' certificates (SSL / SASL_SSL); None: the system CAs
    kafka_ssl_cafile: str | None = None
    # mutual TLS (optional): the client's PEM certificate and key
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    kafka_ssl_key_password: SecretStr | None = None
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
    service_urls: dict[str, str] = DEFAULT_SERVICE_URLS
    # shutdown: background tasks get this long to stop after cancellation, clients as long to close
    shutdown_budget_seconds: float = Field(default=10.0, gt=0)
    # --- audit chain watch (issue 16, shared/audit_watch.py) ---
    # every this many seconds (first run one period after start) each service verifies its own audit
    # chain and publishes its head (AuditHeadPublished) for the other services to witness
    audit_verify_seconds: float = Field(default=300.0, gt=0)
    # --- end audit chain watch ---

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

    # Signed events (shared/events/signing.py). This service's Ed25519 private key: base64 of the
    # raw 32 bytes. A secret with no default: without it the relay publishes nothing (the rows wait).
    event_signing_key: SecretStr | None = None
    # Every producer's public key, the service's own included: JSON {"registry": "<base64 raw 32
    # bytes>", ...}. A message from a source without a key here goes to the dead-letter topic.
    event_verify_keys: dict[str, str] = Field(default_factory=dict)

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("event_verify_keys", mode="before")
    @classmethod
    def _verify_keys_from_json(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value  # also when passed as a kwarg

    @model_validator(mode="after")
    def _event_keys_are_ed25519(self) -> "CommonSettings":
        from shared.events.signing import decode_key

        if self.event_signing_key is not None:
            decode_key(self.event_signing_key.get_secret_value(), "EVENT_SIGNING_KEY")
        for source, key in self.event_verify_keys.items():
            decode_key(key, f"EVENT_VERIFY_KEYS[{source!r}]")
        return self

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> "CommonSettings":
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            if not self.kafka_sasl_username or self.kafka_sasl_password is None \
                    or not self.kafka_sasl_password.get_secret_value():
                raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and "
                                 "KAFKA_SASL_PASSWORD")
        if not protocol.endswith("SSL"):
            tls = {"KAFKA_SSL_CAFILE": self.kafka_ssl_cafile, "KAFKA_SSL_CERTFILE": self.kafka_ssl_certfile,
                   "KAFKA_SSL_KEYFILE": self.kafka_ssl_keyfile}
            if given := [name for name, value in tls.items() if value]:
                raise ValueError(f"{', '.join(given)} given but KAFKA_SECURITY_PROTOCOL={protocol} has no TLS "
                                 "(SSL or SASL_SSL)")
        if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
            raise ValueError("KAFKA_SSL_KEYFILE needs KAFKA_SSL_CERTFILE")
        return self

    @model_validator(mode="after")
    def _retention_covers_repair(self) -> "CommonSettings":
        window = self.event_repair_seconds + self.event_repair_margin_seconds
        if self.outbox_retention_days * 86400 < 10 * window:
            raise ValueError("outbox_retention_days must keep published events far longer than the "
                             f"gap-repair window ({window:.0f} s)")
        return self
