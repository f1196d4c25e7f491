"""Settings never default a secret; logs are JSON lines carrying the correlation id and no stack to clients."""

import json
import logging

import pytest
from pydantic import ValidationError

from shared.context import reset_correlation_id, set_correlation_id
from shared.observability import JsonFormatter
from shared.settings import CommonSettings

REQUIRED = {
    "DATABASE_URL": "postgresql+asyncpg://u@h/db",
    "KAFKA_BOOTSTRAP_SERVERS": "k:9092",
    "FIELD_ENCRYPTION_KEY": "a" * 43 + "=",
    "FIELD_HASH_KEY": "b" * 43 + "=",
}


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_every_secret_and_connection_setting_is_required(monkeypatch, missing):
    for name, value in REQUIRED.items():
        if name != missing:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError):
        CommonSettings()


def test_production_defaults_are_the_safe_ones(monkeypatch):
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    settings = CommonSettings()
    assert settings.environment == "production"
    assert settings.kafka_idempotent_producer is True  # Apache Kafka in production
    assert settings.jwt_verify_key is None and settings.jwt_jwks_url is None  # → every request refused
    assert "aaaa" not in repr(settings)  # secrets are not printed


def test_log_lines_are_json_with_the_correlation_id():
    formatter = JsonFormatter("registry")
    token = set_correlation_id("corr-42")
    try:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("世界",), None)
        line = json.loads(formatter.format(record))
    finally:
        reset_correlation_id(token)
    assert line["service"] == "registry"
    assert line["message"] == "hello 世界"
    assert line["correlation_id"] == "corr-42"
    assert line["level"] == "INFO"


def test_service_discovery_names_real_service_folders():
    from shared.db.migrations import SERVICES_DIR, services_with_migrations
    from shared.serve import available_services

    with_migrations = services_with_migrations()
    for name in with_migrations:
        assert (SERVICES_DIR / name / "migrations" / "env.py").is_file(), name
        assert name in available_services(), name
    assert "migrations" not in with_migrations
