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
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.devstack import infra
from shared.serve import available_services
from shared.tokens import DEV_PERSONAS, init_key_file, load_key_file, mint, mint_persona

ROOT = Path(__file__).resolve().parents[2]
# Producers before consumers, so demo events find their readers' projections in order.
DEMO_ORDER = ["registry", "selection", "casework", "appraisal", "finance"]


class DevStackSettings(BaseSettings):
    """Ports and folders of the dev stack (override with environment variables)."""

    model_config = SettingsConfigDict(extra="ignore")
    data_dir: Path = ROOT / ".data"
    broker_port: int = 19092
    service_base_port: int = 8001
    ready_timeout_seconds: float = 90.0


def dev_secrets(data_dir: Path) -> dict[str, str]:
    """Field-encryption keys for development, generated once and kept in .data (never in git)."""
    path = data_dir / "dev-secrets.json"
    if not path.exists():
        key = lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()  # noqa: E731
        path.write_text(json.dumps({"FIELD_ENCRYPTION_KEY": key(), "FIELD_HASH_KEY": key()}))
        path.chmod(0o600)
    return json.loads(path.read_text())


def service_ports(settings: DevStackSettings, services: list[str]) -> dict[str, int]:
    """Fixed port per service in DEMO_ORDER order, so URLs stay the same as services are added."""
    order = DEMO_ORDER + sorted(set(services) - set(DEMO_ORDER))
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
        stack.postgres = infra.start_postgres(settings.data_dir / "postgres")
        print(f"Starting the Kafka-compatible broker on 127.0.0.1:{settings.broker_port} "
              "(memory only: it keeps nothing across restarts; the outbox re-sends) ...", flush=True)
        stack.broker = infra.start_broker(settings.broker_port, settings.data_dir / "logs" / "broker.log")

        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "ENVIRONMENT": "development",
            "DATABASE_URL": stack.postgres.url,
            "KAFKA_BOOTSTRAP_SERVERS": stack.broker.bootstrap,
            "KAFKA_IDEMPOTENT_PRODUCER": "false",  # tansu refuses InitProducerId; the inbox dedups
            "KAFKA_FETCH_MAX_WAIT_MS": "10",  # tansu holds every fetch for the full wait
            "JWT_VERIFY_KEY": public_key,
            "LOG_JSON": "true",
            "SERVICE_TOKEN": mint(private_key, subject="dev-services", roles=["service"],
                                  ttl_seconds=30 * 86400),
            **{f"{name.upper()}_URL": f"http://127.0.0.1:{port}" for name, port in ports.items()},
            **dev_secrets(settings.data_dir),
        }
        print("Migrating every service ...", flush=True)
        subprocess.run([sys.executable, "-m", "shared.db.migrate"], env=env, check=True, cwd=ROOT)

        for name in services:
            log = open(settings.data_dir / "logs" / f"{name}.log", "ab")
            process = subprocess.Popen(
                [sys.executable, "-m", "shared.serve", name], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                env={**env, "HOST": "127.0.0.1", "PORT": str(ports[name])},
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
                subprocess.run([sys.executable, "-m", f"services.{name}.demo"], env=env, check=True, cwd=ROOT)

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
        lines.append(f"  {name:<10} {base}   docs: {base}/docs")
    lines += ["", f"  broker     127.0.0.1:{settings.broker_port}",
              f"  logs       {settings.data_dir / 'logs'}", "", "Bearer tokens (valid 8 hours):"]
    for persona in DEV_PERSONAS:
        scope = persona.district or persona.office or persona.supervisor_id or "city-wide"
        lines.append(f"  {persona.roles[0].value} ({persona.name}, {scope}):")
        lines.append(f"    {mint_persona(private_key, persona)}")
    lines += ["", "Example: curl -H 'Authorization: Bearer <token>' http://127.0.0.1:8001/docs",
              "More tokens: make token ROLE=district_bureau DISTRICT=文登区",
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
