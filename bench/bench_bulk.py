"""Bulk import of 5 000 appointees over HTTP (issue 14: <= 10 s), against a bare executemany INSERT of the same rows.

The registry app runs under uvicorn in its own process (`bench.serve`) on an embedded PostgreSQL of the run's own;
this process uploads the filled-in import template (5 000 new people, all valid) to `POST /supervisors/imports`
and times the request: upload, reading the xlsx, every row's checks (rules.check_candidate, rules.check_appointment,
R5.1 numbers), the set-based writes (supervisors, appointments, 10 000 outbox events, 10 001 audit entries) and
the commit. Each round uploads a file of new people (a second upload of the same people would be refused:
they are in the roster then).

Baseline, in the same rounds (alternating): one asyncpg connection writes 5 000 supervisor rows and 5 000
appointment rows of other new people with `executemany` in one transaction (values encrypted, hashed and masked
beforehand, outside the timing): the floor of writing the same rows, without checks, events or audit.
Information rows: the file's size, reading it alone in this process (`workbook.read_import`).
"""

import argparse
import asyncio
import io
import itertools
import os
import statistics
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import asyncpg
import httpx
from openpyxl import Workbook

from bench import key, ratio, serve
from services.registry import rules
from services.registry.bulk import workbook
from shared.crypto import FieldCipher, mask_id_number, mask_phone
from shared.db.migrations import service_migrations, upgrade
from shared.devstack import infra
from shared.tokens import generate_dev_keypair, mint

ROWS = 5_000
TARGET_S = 10.0
DISTRICTS = ["环翠区", "文登区", "荣成市", "乳山市", "高区", "经区", "临港区"]
SPECIALTIES = ["法律", "会计审计", "医学", "建筑工程", "教育", "环境资源", "金融", "信息技术", "其他"]
DECIDED = date(2026, 1, 15)


def people(serial: "itertools.count[int]", n: int) -> list[dict]:
    """n new people with valid, distinct id numbers and phones (a template row's fields)."""
    out = []
    for _ in range(n):
        i = next(serial)
        first17 = f"37{i // 1000:04d}19{60 + i % 40:02d}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
        out.append({
            "name": f"批量{i:06d}", "id_number": first17 + rules.id_check_digit(first17), "phone": f"139{i:08d}",
            "district": DISTRICTS[i % len(DISTRICTS)], "employer": "威海市某单位", "recommending_body": "某街道办事处",
            "specialties": "、".join(SPECIALTIES[i % 9: i % 9 + 2]), "decision_no": f"威司任〔2026〕{i}号",
            "decision_date": DECIDED.isoformat(), "term_start": None, "certificate_no": None, "work_card_no": None,
            "level": None,
        })
    return out


def template_file(rows: list[dict]) -> bytes:
    """The import template filled in with `rows` (as a clerk's Excel would save it)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(workbook.SHEET)
    sheet.append(list(workbook.IMPORT_COLUMNS.values()))
    for r in rows:
        sheet.append([r.get(field) for field in workbook.IMPORT_COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


SUPERVISOR_COLUMNS = ["id", "name", "gender", "id_number_encrypted", "id_number_hash", "id_number_masked",
                      "phone_encrypted", "phone_hash", "phone_masked", "district", "employer", "recommending_body",
                      "specialties", "status", "decision_no", "decision_date", "term_start", "term_end",
                      "certificate_no", "work_card_no", "initial_training_due", "eligible", "eligibility_reasons",
                      "created_by"]
APPOINTMENT_COLUMNS = ["id", "supervisor_id", "person_hash", "decision_no", "decision_date", "term_start",
                       "term_end", "certificate_no", "work_card_no", "appointed_by", "level"]


def baseline_rows(rows: list[dict], cipher: FieldCipher, round_no: int) -> tuple[list[tuple], list[tuple]]:
    """The supervisor and appointment rows the import writes for these people, computed beforehand."""
    supervisors, terms = [], []
    end = rules.term_end(DECIDED)
    for n, r in enumerate(rows):
        sid, number, phone = uuid.uuid4(), r["id_number"], r["phone"]
        id_hash = cipher.blind_index(number, context="registry.supervisor.id_number")
        cert, card = f"基线证〔{round_no}〕{n:05d}", f"JX-{round_no}-{n:05d}"
        supervisors.append((
            sid, r["name"], rules.gender_of(number), cipher.encrypt(number, context="registry.supervisor.id_number"),
            id_hash, mask_id_number(number), cipher.encrypt(phone, context="registry.supervisor.phone"),
            cipher.blind_index(phone, context="registry.supervisor.phone"), mask_phone(phone), r["district"],
            r["employer"], r["recommending_body"], r["specialties"].split("、"), "active", r["decision_no"], DECIDED,
            DECIDED, end, cert, card, rules.initial_training_due(DECIDED), False, ["initial_training_pending"],
            "bench"))
        terms.append((uuid.uuid4(), sid, id_hash, r["decision_no"], DECIDED, DECIDED, end, cert, card, "bench",
                      "city"))
    return supervisors, terms


def insert_sql(table: str, columns: list[str]) -> str:
    values = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return f"INSERT INTO registry.{table} ({', '.join(columns)}) VALUES ({values})"


async def baseline_insert(dsn: str, supervisors: list[tuple], terms: list[tuple]) -> float:
    """The bare write: executemany of both tables in one transaction, committed (the supervisor_tally trigger
    runs, as for the import)."""
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        async with conn.transaction():
            await conn.executemany(insert_sql("supervisor", SUPERVISOR_COLUMNS), supervisors)
            await conn.executemany(insert_sql("appointment", APPOINTMENT_COLUMNS), terms)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def import_file(client: httpx.AsyncClient, data: bytes, headers: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    response = await client.post("/supervisors/imports", content=data, headers=headers)
    elapsed = time.perf_counter() - started
    if response.status_code != 201 or response.json()["imported"] != ROWS:
        raise RuntimeError(f"import refused: {response.status_code} {response.text[:500]}")
    return elapsed, len(response.json()["supervisors"])


async def main(args: argparse.Namespace) -> dict:
    quick = bool(getattr(args, "quick", False))
    rounds = 2 if quick else 3
    load_before = os.getloadavg()[0]
    private_key, public_key = generate_dev_keypair()
    enc_key, hash_key = key(), key()
    cipher = FieldCipher.from_settings(enc_key, hash_key)
    serial = itertools.count(1)
    imports: list[float] = []
    baselines: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-bulk-", ignore_cleanup_errors=True) as tmp:
        postgres = infra.start_postgres(Path(tmp) / "pg", cleanup="delete")
        try:
            await asyncio.to_thread(upgrade, service_migrations("registry"), postgres.url)
            dsn = postgres.url.replace("postgresql+asyncpg://", "postgresql://")
            env = {
                "DATABASE_URL": postgres.url, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{infra.free_port()}",
                "KAFKA_IDEMPOTENT_PRODUCER": "false", "FIELD_ENCRYPTION_KEY": enc_key, "FIELD_HASH_KEY": hash_key,
                "JWT_VERIFY_KEY": public_key, "LOG_LEVEL": "WARNING", "ENVIRONMENT": "test",
                "OUTBOX_POLL_SECONDS": "30",
            }
            token = mint(private_key, subject="bench", roles=["bureau_admin"])
            headers = {"Authorization": f"Bearer {token}", "Content-Type": workbook.XLSX_MEDIA_TYPE}
            files = [template_file(people(serial, ROWS)) for _ in range(rounds)]
            others = [baseline_rows(people(serial, ROWS), cipher, n) for n in range(rounds)]
            read_started = time.perf_counter()
            assert len(workbook.read_import(files[0])) == ROWS
            read_s = time.perf_counter() - read_started
            async with (serve("services.registry.app:create_app", env, Path(tmp) / "registry.log") as base,
                        httpx.AsyncClient(base_url=base, timeout=120) as client):
                await import_file(client, template_file(people(serial, ROWS)), headers)  # warm-up, untimed
                for data, (supervisors, terms) in zip(files, others, strict=True):
                    baselines.append(await baseline_insert(dsn, supervisors, terms))
                    imports.append((await import_file(client, data, headers))[0])
        finally:
            postgres.stop()
    median, floor = statistics.median(imports), statistics.median(baselines)
    return {
        "rows": [
            {"metric": f"import of {ROWS} appointees over HTTP, median", "value": round(median, 2), "unit": "s",
             "baseline": round(floor, 2), "ratio": ratio(median, floor), "target": f"<= {TARGET_S:.0f} s",
             "ok": median <= TARGET_S},
            {"metric": f"import of {ROWS}, slowest round", "value": round(max(imports), 2), "unit": "s",
             "baseline": round(max(baselines), 2)},
            {"metric": "reading the xlsx alone (this process)", "value": round(read_s, 2), "unit": "s"},
            {"metric": "file size", "value": round(len(files[0]) / 1024), "unit": "KiB"},
        ],
        "notes": [
            f"{rounds} rounds after one untimed warm-up import, each a file of {ROWS} new people (all valid); the "
            f"registry under uvicorn in its own process, the request timed from the upload's start to the 201 "
            f"(per round: {[round(s, 2) for s in imports]} s). Baseline per round: asyncpg executemany of the "
            f"same number of supervisor + appointment rows of other new people in one committed transaction, "
            f"values prepared beforehand (per round: {[round(s, 2) for s in baselines]} s).",
            f"Load average (1 min) before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f} (2-core machine; "
            "client, server and PostgreSQL share it).",
        ],
        "imports_s": imports, "baselines_s": baselines,
    }
