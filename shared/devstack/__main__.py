"""`make run`: the whole system on one machine, with demo data.

Starts PostgreSQL (data kept in .data/postgres) and the dev broker (memory only), migrates every
service, starts every service with uvicorn, loads demo data once, and prints URLs and tokens.
Ctrl-C stops everything.
"""

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.db.migrations import services_with_migrations
from shared.devstack import infra
from shared.events.signing import generate_keypair, public_key_of
from shared.serve import available_services
from shared.tokens import (
    DEV_PERSONAS,
    init_key_file,
    load_key_file,
    mint,
    mint_persona,
    pick_supervisor,
    with_real_supervisor,
)

ROOT = Path(__file__).resolve().parents[2]
# Producers before consumers, so demo events find their readers' projections in order.
DEMO_ORDER = ["registry", "selection", "casework", "appraisal", "finance"]
# ports: SERVICE_BASE_PORT + index (the portal kept 8006 when notify came after it)
PORT_ORDER = [*DEMO_ORDER, "portal", "notify"]


class DevStackSettings(BaseSettings):
    """Ports and folders of the dev stack (override with environment variables)."""

    model_config = SettingsConfigDict(extra="ignore")
    data_dir: Path = ROOT / ".data"
    broker_port: int = 19092
    service_base_port: int = 8001
    ready_timeout_seconds: float = 90.0


SIGNING_KEYS = "event_signing_keys"  # in dev-secrets.json: service -> its Ed25519 private key
DATABASE_PASSWORDS = "database_passwords"  # in dev-secrets.json: database role -> its password
PORTAL_SESSION_KEY = "PORTAL_SESSION_KEY"  # in dev-secrets.json: the Fernet key sealing the portal's cookies


def dev_secrets(data_dir: Path, services: Iterable[str] = DEMO_ORDER) -> dict[str, str]:
    """Development secrets, generated once and kept in .data/dev-secrets.json (never in git): the
    field-encryption keys, an Ed25519 event signing key per service and a password per database role
    (the owner's and every service's, deploy/postgres/00-roles.sql), each added to an older file.

    Returns what every service shares: FIELD_ENCRYPTION_KEY, FIELD_HASH_KEY and EVENT_VERIFY_KEYS
    (every service's public key). Each service's own EVENT_SIGNING_KEY: `dev_signing_env`."""
    path = data_dir / "dev-secrets.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    before = json.dumps(stored, sort_keys=True)
    key = lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()  # noqa: E731
    for name in ("FIELD_ENCRYPTION_KEY", "FIELD_HASH_KEY", PORTAL_SESSION_KEY):
        stored.setdefault(name, key())  # a Fernet key is urlsafe base64 of 32 random bytes too
    signing = stored.setdefault(SIGNING_KEYS, {})
    for service in services:
        if service not in signing:
            signing[service], _ = generate_keypair()
    passwords = stored.setdefault(DATABASE_PASSWORDS, {})
    for role in (infra.OWNER_ROLE, *infra.SERVICE_ROLES):
        passwords.setdefault(role, secrets.token_urlsafe(24))  # URL-safe: goes into DATABASE_URL as is
    if json.dumps(stored, sort_keys=True) != before:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable by others
        with os.fdopen(fd, "w") as out:
            json.dump(stored, out)
        path.chmod(0o600)
    return {
        "FIELD_ENCRYPTION_KEY": stored["FIELD_ENCRYPTION_KEY"],
        "FIELD_HASH_KEY": stored["FIELD_HASH_KEY"],
        "EVENT_VERIFY_KEYS": json.dumps({name: public_key_of(private) for name, private in sorted(signing.items())}),
    }


def dev_signing_env(data_dir: Path, service: str) -> dict[str, str]:
    """EVENT_SIGNING_KEY of one service (made by `dev_secrets`): what its outbox relay signs with."""
    stored = json.loads((data_dir / "dev-secrets.json").read_text())
    return {"EVENT_SIGNING_KEY": stored[SIGNING_KEYS][service]}


# what only the services get: the portal holds no service token, no field keys, no database, no signing key
SERVICE_ONLY_ENV = frozenset({"SERVICE_TOKEN", "FIELD_ENCRYPTION_KEY", "FIELD_HASH_KEY", "DATABASE_URL",
                              "EVENT_SIGNING_KEY"})


def dev_portal_env(data_dir: Path, key_file: Path) -> dict[str, str]:
    """The portal's own settings: its session key, the demo-persona sign-in with the dev key file, http cookies.
    It gets no database, no signing key and no service token (services/portal/README.md)."""
    stored = json.loads((data_dir / "dev-secrets.json").read_text())
    return {PORTAL_SESSION_KEY: stored[PORTAL_SESSION_KEY], "DEV_KEY_FILE": str(key_file), "COOKIE_SECURE": "false"}


def service_env(env: dict[str, str], postgres: infra.Postgres, passwords: dict[str, str], data_dir: Path,
                key_file: Path, name: str) -> dict[str, str]:
    """The environment of one service process: its own database role and signing key, or the portal's settings."""
    if name in infra.SERVICES_WITHOUT_DATABASE:
        return {k: v for k, v in env.items() if k not in SERVICE_ONLY_ENV} | dev_portal_env(data_dir, key_file)
    return {**env, **dev_database_env(postgres, passwords, name), **dev_signing_env(data_dir, name)}


def dev_database_passwords(data_dir: Path) -> dict[str, str]:
    """Password of every database role (made by `dev_secrets`): what `infra.apply_database_roles` sets."""
    return dict(json.loads((data_dir / "dev-secrets.json").read_text())[DATABASE_PASSWORDS])


def dev_database_env(postgres: infra.Postgres, passwords: dict[str, str], role: str) -> dict[str, str]:
    """DATABASE_URL as `role`: the owner for the migrations, a service's own role for its process."""
    return {"DATABASE_URL": postgres.url_for(role, passwords[role])}


def service_ports(settings: DevStackSettings, services: list[str]) -> dict[str, int]:
    """Fixed port per service in DEMO_ORDER order, so URLs stay the same as services are added."""
    order = PORT_ORDER + sorted(set(services) - set(PORT_ORDER))
    return {name: settings.service_base_port + order.index(name) for name in services}


def wait_ready(url: str, deadline: float, process: subprocess.Popen) -> bool:
    """Poll /readyz until 200, the process dies, or the deadline passes."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


class Stack:
    """Everything the launcher started, stopped in reverse order."""

    def __init__(self) -> None:
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.broker: infra.Broker | None = None
        self.postgres: infra.Postgres | None = None

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in reversed(self.processes):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                print(f"  {name} did not stop in 15 s; killing it")
                process.kill()
                process.wait()
        if self.broker:
            self.broker.stop()
        if self.postgres:
            self.postgres.stop()


def run(settings: DevStackSettings) -> int:
    services = available_services()
    with_database = infra.database_services(services)
    without_role = sorted(set(with_database) - set(infra.SERVICE_ROLES))
    # a service declared database-free may hold no migrations: then it needs a schema and a role after all
    migrating = sorted(set(services_with_migrations()) - set(with_database))
    if migrating:
        print(f"error: {', '.join(migrating)} has migrations but is in infra.SERVICES_WITHOUT_DATABASE; give it a "
              "database role instead", file=sys.stderr)
        return 1
    if without_role:  # it would have no database role: add it to both files and to infra.SERVICE_ROLES
        print(f"error: no database role for {', '.join(without_role)} in deploy/postgres/00-roles.sql and "
              "10-schemas.sql (and shared/devstack/infra.py SERVICE_ROLES)", file=sys.stderr)
        return 1
    ports = service_ports(settings, services)
    infra.require_free_port(settings.broker_port, "the Kafka-compatible broker", "BROKER_PORT")
    for name, port in ports.items():
        infra.require_free_port(port, f"the {name} service", "SERVICE_BASE_PORT")

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "logs").mkdir(exist_ok=True)
    key_file = init_key_file(settings.data_dir / "dev-keys.json")
    private_key, public_key = load_key_file(key_file)

    stack = Stack()
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        print(f"Starting PostgreSQL (data in {settings.data_dir / 'postgres'}) ...", flush=True)
        stack.postgres = infra.start_postgres(settings.data_dir / "postgres", create_database=False)
        shared_secrets = dev_secrets(settings.data_dir, DEMO_ORDER + with_database)
        passwords = dev_database_passwords(settings.data_dir)
        # as in production: the owner role owns the database and runs the migrations, each service logs
        # in as its own role (DML in its own schema only); only the superuser needs no password
        infra.require_passwords(stack.postgres)
        infra.apply_database_roles(stack.postgres, passwords)
        print(f"Starting the Kafka-compatible broker on 127.0.0.1:{settings.broker_port} "
              "(memory only: it keeps nothing across restarts; the outbox re-sends) ...", flush=True)
        stack.broker = infra.start_broker(settings.broker_port, settings.data_dir / "logs" / "broker.log")

        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "ENVIRONMENT": "development",
            "KAFKA_BOOTSTRAP_SERVERS": stack.broker.bootstrap,
            "KAFKA_IDEMPOTENT_PRODUCER": "false",  # tansu refuses InitProducerId; the inbox dedups
            "KAFKA_FETCH_MAX_WAIT_MS": "10",  # tansu holds every fetch for the full wait
            "JWT_VERIFY_KEY": public_key,
            "LOG_JSON": "true",
            "SERVICE_TOKEN": mint(private_key, subject="dev-services", roles=["service"],
                                  ttl_seconds=30 * 86400),
            **{f"{name.upper()}_URL": f"http://127.0.0.1:{port}" for name, port in ports.items()},
            # every producer's event feed, for the consumers' gap repair (CommonSettings.service_urls)
            "SERVICE_URLS": json.dumps({name: f"http://127.0.0.1:{port}" for name, port in ports.items()}),
            **shared_secrets,
        }
        print(f"Migrating every service (as {infra.OWNER_ROLE}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "shared.db.migrate"], check=True, cwd=ROOT,
                       env={**env, **dev_database_env(stack.postgres, passwords, infra.OWNER_ROLE)})

        for name in services:
            log = open(settings.data_dir / "logs" / f"{name}.log", "ab")
            process = subprocess.Popen(
                [sys.executable, "-m", "shared.serve", name], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                # its own role and key (everyone's public keys); the portal: no database, no service token
                env={**service_env(env, stack.postgres, passwords, settings.data_dir, key_file, name),
                     "HOST": "127.0.0.1", "PORT": str(ports[name])},
                preexec_fn=infra.die_with_parent,
            )
            stack.processes.append((name, process))
        deadline = time.monotonic() + settings.ready_timeout_seconds
        for name, process in stack.processes:
            if not wait_ready(f"http://127.0.0.1:{ports[name]}/readyz", deadline, process):
                print(f"{name} did not become ready; see {settings.data_dir / 'logs' / (name + '.log')}")
                return 1

        for name in [s for s in DEMO_ORDER if s in services]:
            if (ROOT / "services" / name / "demo.py").exists():
                print(f"Loading demo data for {name} (once; re-running adds nothing) ...", flush=True)
                subprocess.run([sys.executable, "-m", f"services.{name}.demo"], cwd=ROOT, check=True,
                               env={**env, **dev_database_env(stack.postgres, passwords, name),
                                    **dev_signing_env(settings.data_dir, name)})

        print_banner(services, ports, private_key, settings)
        while True:
            for name, process in stack.processes:
                if process.poll() is not None:
                    print(f"{name} exited with code {process.returncode}; stopping everything.")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    except subprocess.CalledProcessError as exc:
        print(f"failed: {' '.join(map(str, exc.cmd))} exited with {exc.returncode}")
        return 1
    except infra.PsqlFailed as exc:  # the roles and grants of deploy/postgres/
        print(f"failed: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the clean-up
        stack.stop()
        print("Stopped.", flush=True)


def print_banner(services: list[str], ports: dict[str, int], private_key: str,
                 settings: DevStackSettings) -> None:
    lines = ["", "People's supervisors — development stack is up", ""]
    if not services:
        lines.append("  (no service exists yet under services/; PostgreSQL and the broker are running)")
    for name in sorted(services, key=ports.__getitem__):
        base = f"http://127.0.0.1:{ports[name]}"
        if name in infra.SERVICES_WITHOUT_DATABASE:
            lines.append(f"  {name:<10} {base}   sign in: {base}/sign-in   receipt checker: {base}/verify")
        else:
            lines.append(f"  {name:<10} {base}   docs: {base}/docs")
    lines += ["", f"  broker     127.0.0.1:{settings.broker_port}",
              f"  logs       {settings.data_dir / 'logs'}", "", "Bearer tokens (valid 8 hours):"]
    # the supervisor token names a real person of the demo roster (R2.1: a supervisor sees only self)
    registry = f"http://127.0.0.1:{ports['registry']}" if "registry" in ports else None
    personas = with_real_supervisor(DEV_PERSONAS, registry and pick_supervisor(registry, private_key))
    for persona in personas:
        scope = persona.district or persona.office or persona.supervisor_id or "city-wide"
        lines.append(f"  {persona.roles[0].value} ({persona.name}, {scope}):")
        lines.append(f"    {mint_persona(private_key, persona)}")
    example = registry or f"http://127.0.0.1:{next(iter(ports.values()), 8001)}"
    lines += ["", f"Example: curl -H 'Authorization: Bearer <token>' {example}/docs",
              "More tokens: make token ROLE=district_bureau DISTRICT=文登区 · make token ROLE=supervisor",
              "Ctrl-C stops everything.", "READY"]
    print("\n".join(lines), flush=True)


def main() -> int:
    settings = DevStackSettings()
    try:
        return run(settings)
    except infra.PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
