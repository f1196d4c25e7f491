"""Kafka client security settings (CommonSettings) and the aiokafka kwargs built from them."""

import base64
import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from shared.events.kafka import kafka_security, make_admin, make_producer
from shared.settings import CommonSettings

KEY = base64.urlsafe_b64encode(b"k" * 32).decode()


def settings(**overrides: object) -> CommonSettings:
    base: dict[str, object] = {
        "database_url": "postgresql+asyncpg://u:p@localhost/db",
        "kafka_bootstrap_servers": "kafka:9092",
        "field_encryption_key": KEY,
        "field_hash_key": KEY,
    }
    return CommonSettings(**(base | overrides))


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway self-signed CA certificate (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test kafka CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    assert kafka_security(settings()) == {"security_protocol": "PLAINTEXT"}


def test_sasl_plaintext() -> None:
    kwargs = kafka_security(settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="registry",
                                     kafka_sasl_password="s3cret", kafka_sasl_mechanism="SCRAM-SHA-256"))
    assert kwargs == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                      "sasl_plain_username": "registry", "sasl_plain_password": "s3cret"}


def test_ssl_with_a_cafile(ca_file: Path) -> None:
    kwargs = kafka_security(settings(kafka_security_protocol="SSL", kafka_ssl_cafile=str(ca_file)))
    assert set(kwargs) == {"security_protocol", "ssl_context"}
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    subjects = [dict(item[0] for item in c["subject"]) for c in context.get_ca_certs()]
    assert {"commonName": "test kafka CA"} in subjects


def test_sasl_ssl(ca_file: Path) -> None:
    kwargs = kafka_security(settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="casework",
                                     kafka_sasl_password="pw", kafka_ssl_cafile=str(ca_file)))
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"  # the default
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("casework", "pw")
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert any(dict(i[0] for i in c["subject"]).get("commonName") == "test kafka CA"
               for c in kwargs["ssl_context"].get_ca_certs())


def test_ssl_without_a_cafile_uses_the_system_cas() -> None:
    kwargs = kafka_security(settings(kafka_security_protocol="SSL"))
    assert kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_a_missing_cafile_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        kafka_security(settings(kafka_security_protocol="SSL", kafka_ssl_cafile=str(tmp_path / "nope.pem")))


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("credentials", [{}, {"kafka_sasl_username": "registry"}, {"kafka_sasl_password": "pw"},
                                         {"kafka_sasl_username": "registry", "kafka_sasl_password": ""}])
def test_sasl_needs_username_and_password(protocol: str, credentials: dict) -> None:
    with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        settings(kafka_security_protocol=protocol, **credentials)


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_a_cafile_without_tls_is_a_mistake(protocol: str, ca_file: Path) -> None:
    with pytest.raises(ValidationError, match="KAFKA_SSL_CAFILE"):
        settings(kafka_security_protocol=protocol, kafka_sasl_username="u", kafka_sasl_password="p",
                 kafka_ssl_cafile=str(ca_file))


def test_unknown_protocol_or_mechanism_is_refused() -> None:
    with pytest.raises(ValidationError):
        settings(kafka_security_protocol="TLS")
    with pytest.raises(ValidationError):
        settings(kafka_sasl_mechanism="GSSAPI")


def test_from_the_environment(monkeypatch: pytest.MonkeyPatch, ca_file: Path) -> None:
    for name, value in {"DATABASE_URL": "postgresql+asyncpg://u:p@h/d", "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
                        "FIELD_ENCRYPTION_KEY": KEY, "FIELD_HASH_KEY": KEY, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                        "KAFKA_SASL_USERNAME": "finance", "KAFKA_SASL_PASSWORD": "pw",
                        "KAFKA_SSL_CAFILE": str(ca_file)}.items():
        monkeypatch.setenv(name, value)
    loaded = CommonSettings()
    assert loaded.kafka_security_protocol == "SASL_SSL" and loaded.kafka_sasl_username == "finance"
    assert "pw" not in repr(loaded)  # a SecretStr


async def test_the_clients_are_built_with_it(ca_file: Path) -> None:
    secure = settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="appraisal",
                      kafka_sasl_password="pw", kafka_ssl_cafile=str(ca_file))
    producer = make_producer(secure, client_id="t")
    assert producer.client._security_protocol == "SASL_SSL"
    assert producer.client._sasl_plain_username == "appraisal"
    assert producer.client._sasl_mechanism == "SCRAM-SHA-512"
    assert isinstance(producer.client._ssl_context, ssl.SSLContext)
    admin = make_admin(secure)
    assert admin._client._security_protocol == "SASL_SSL"
    assert admin._client._sasl_plain_password == "pw"
