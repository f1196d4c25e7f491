"""Settings shared by every service, read from the environment (pydantic-settings)."""

from typing import Literal

from pydantic import Field, SecretStr
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
    outbox_retention_days: int = 14  # published rows are kept this long for inspection, then purged
    consumer_max_attempts: int = 3
    # How long the broker may hold a fetch; Apache Kafka answers early when data arrives, the dev
    # broker (tansu) always waits the full time, so the dev stack and tests set it low.
    kafka_fetch_max_wait_ms: int = 100
    consumer_group: str | None = None  # default: the service name (also the inbox's consumer name)

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
