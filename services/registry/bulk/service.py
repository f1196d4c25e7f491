"""Bulk roster work: import appointees from the xlsx template (all or nothing), export the roster (R3.1).

The import runs every row through the single-appointment code path (`roster.service.create`, then
`appointments.service.appoint`: every rule they check — R4.1 term, R5.1 numbers, N-TERM, N-BAN, N-EXCL, the id
number, phone, district and specialties — and the events they stage in the outbox), each row in a savepoint of
the request's one transaction. A row that fails is rolled back to its savepoint and its reason kept; the rows
after it are still checked (against the rows before them: a duplicate within the file is refused like a
duplicate in the roster). If any row failed, the whole transaction is rolled back: nothing is imported, no
event leaves, and the answer names every bad row. A person already in the roster (same id number) is appointed
to a new term on their record, as `POST /supervisors/{id}/appointments` would.
"""

import hashlib
import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.registry import rules
from services.registry.appointments import service as appointments
from services.registry.bulk.workbook import IMPORT_COLUMNS, ImportRow, RowError
from services.registry.config import RegistrySettings
from services.registry.models import platform, supervisor
from services.registry.roster import service as roster
from services.registry.schemas import AppointmentCreate, SupervisorCreate
from shared import audit
from shared.crypto import FieldCipher
from shared.db import raw
from shared.errors import ProblemError, Unprocessable
from shared.events.outbox import Outbox

# the column a refusal of the single-appointment path is about (codes of roster.service / appointments.service)
CODE_FIELDS = {
    "invalid_id_number": "id_number", "id_number_mismatch": "id_number", "duplicate_id_number": "id_number",
    "N-BAN": "id_number", "N-EXCL": "id_number", "invalid_phone": "phone", "unknown_district": "district",
    "unknown_specialty": "specialties", "duplicate_certificate_no": "certificate_no",
    "duplicate_work_card_no": "work_card_no", "N-TERM": "term_start", "invalid_transition": "term_start",
    "name_mismatch": "name",
}
MAX_REPORTED_ERRORS = 5_000 * 3  # every bad row is named; a row reports at most a few reasons


def _validation_errors(row: int, exc: ValidationError) -> list[RowError]:
    out = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err.get("loc") else None
        header = IMPORT_COLUMNS.get(field or "")
        out.append(RowError(row, header, "invalid_value", f"“{header or field}”的取值无效（{err['msg']}）。"))
    return out


def _refusal(row: int, exc: ProblemError) -> RowError:
    field = CODE_FIELDS.get(exc.code)
    return RowError(row, IMPORT_COLUMNS.get(field or ""), exc.code, exc.detail or exc.title)


async def _import_row(session: AsyncSession, *, outbox: Outbox, cipher: FieldCipher, settings: RegistrySettings,
                      item: ImportRow, actor: str) -> dict[str, Any]:
    """One row through the single-appointment path: a new candidate then its appointment, or a new term for a
    person already in the roster (their name must match the record)."""
    candidate = SupervisorCreate(**item.supervisor)
    appointment = AppointmentCreate(**item.appointment)
    try:
        hashed = roster.id_hash(cipher, rules.check_id_number(candidate.id_number, today=roster.today()))
    except rules.RuleViolation as v:
        raise roster.problem(v) from v
    existing = await session.scalar(select(supervisor.c.id).where(supervisor.c.id_number_hash == hashed))
    if existing is None:
        existing = (await roster.create(session, cipher=cipher, settings=settings, data=candidate, actor=actor))["id"]
    else:
        record = await roster.get(session, existing)
        if record["name"] != candidate.name:
            raise Unprocessable("name_mismatch", "姓名与名册不符",
                                "该公民身份号码已在名册中，但姓名与名册记录不一致；请核对。")
    row = await appointments.appoint(session, outbox=outbox, settings=settings, supervisor_id=existing,
                                     data=appointment, actor=actor)
    return {"row": item.row, "id": str(row["id"]), "certificate_no": row["certificate_no"],
            "work_card_no": row["work_card_no"]}


async def import_appointees(session: AsyncSession, *, outbox: Outbox, cipher: FieldCipher,
                            settings: RegistrySettings, rows: list[ImportRow], file_sha256: str,
                            actor: str) -> list[dict[str, Any]]:
    """All rows or none (see the module docstring): the imported rows, or 422 `import_rejected` naming each bad
    row (Excel row number, column header, Chinese reason); the caller's transaction is then rolled back."""
    errors: list[RowError] = []
    imported: list[dict[str, Any]] = []
    first_row_of: dict[str, int] = {}  # normalized id number -> the row it first appeared on
    for item in rows:
        if item.errors:
            errors += item.errors
            continue
        number = rules.normalize_id_number(item.supervisor.get("id_number") or "")
        if number in first_row_of:
            errors.append(RowError(item.row, IMPORT_COLUMNS["id_number"], "duplicate_in_file",
                                   f"与第{first_row_of[number]}行的公民身份号码相同：同一人在一个文件中只能出现一次。"))
            continue
        first_row_of[number] = item.row
        try:
            async with session.begin_nested():
                imported.append(await _import_row(session, outbox=outbox, cipher=cipher, settings=settings,
                                                  item=item, actor=actor))
        except ValidationError as exc:
            errors += _validation_errors(item.row, exc)
        except ProblemError as exc:
            errors.append(_refusal(item.row, exc))
    if errors:
        bad_rows = sorted({e.row for e in errors})
        shown = "、".join(str(r) for r in bad_rows[:20]) + ("等" if len(bad_rows) > 20 else "")
        raise Unprocessable(
            "import_rejected", "导入文件有误，未导入任何记录",
            f"共{len(rows)}行数据，其中{len(bad_rows)}行有误（第{shown}行），整个文件未导入；"
            "请按 errors 逐行改正后重新导入。",
            errors=[e.as_dict() for e in errors[:MAX_REPORTED_ERRORS]], bad_rows=len(bad_rows), rows=len(rows))
    await audit.append(session, platform.audit, actor=actor, action="supervisor.import", subject="supervisors",
                       details={"rows": len(rows), "file_sha256": file_sha256,
                                "ids": [r["id"] for r in imported]})
    return imported


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- export --------------------------------------------------------------------------------------

# field of an export row -> its SQL expression (masked forms; the unmasked export decrypts the *_encrypted ones)
EXPORT_FIELDS = {
    "id": "id", "name": "name", "gender": "gender", "id_number": "id_number_masked", "phone": "phone_masked",
    "district": "district", "employer": "employer", "recommending_body": "recommending_body",
    "specialties": "specialties", "status": "status", "decision_no": "decision_no", "decision_date": "decision_date",
    "term_start": "term_start", "term_end": "term_end", "certificate_no": "certificate_no",
    "work_card_no": "work_card_no", "eligible": "eligible",
}
UNMASKED_FIELDS = {**EXPORT_FIELDS, "id_number_encrypted": "id_number_encrypted",
                   "phone_encrypted": "phone_encrypted"}
MAX_EXPORT_ROWS = 50_000


async def export_rows(conn: AsyncConnection, cipher: FieldCipher, *, filters: dict[str, Any],
                      unmasked: bool) -> list[dict[str, Any]]:
    """Every roster row matching the roster list's filters, in its order; decrypted only when `unmasked`
    (the caller has checked the role and audits the read, R3.1)."""
    sql, args = roster.roster_query(
        fields=UNMASKED_FIELDS if unmasked else EXPORT_FIELDS, on=roster.today(), limit=MAX_EXPORT_ROWS,
        sort=filters["sort"], district=filters["district"], specialty_name=filters["specialty"],
        statuses=filters["status"], term_active_on=filters["term_active_on"], term_year=filters["term_year"],
        term_ends_from=filters["term_ends_from"], term_ends_to=filters["term_ends_to"],
        training_state=filters["training_state"], name=filters["name"], number=filters["number"],
        eligible=filters["eligible"])
    records = await raw.fetch(conn, sql, *args)
    if not records[0]["known_"]:
        raise Unprocessable("unknown_specialty", "专业领域不在目录中", "筛选条件中的专业领域不在专业领域目录中。")
    if len(records) > MAX_EXPORT_ROWS:
        raise Unprocessable("export_too_large", "导出范围过大",
                            f"符合条件的人员超过{MAX_EXPORT_ROWS}人，请缩小筛选范围后分批导出。")
    out = []
    for record in records:
        if record["item"] is None:
            continue
        row = json.loads(record["item"])
        if unmasked:
            row["id_number"] = cipher.decrypt(row.pop("id_number_encrypted"), context=roster.ID_CTX)
            row["phone"] = cipher.decrypt(row.pop("phone_encrypted"), context=roster.PHONE_CTX)
            row["birth_date"] = rules.birth_date_of(row["id_number"]).isoformat()
        else:
            row["birth_date"] = None
        out.append(row)
    return out


async def audit_export(session: AsyncSession, *, actor: str, rows: list[dict[str, Any]], filters: dict[str, Any],
                       unmasked: bool) -> None:
    """R3.1: an export is a read of personal data; the unmasked one names every person read (ids only)."""
    # the filters by name only where a value could be personal (a name prefix)
    shown = {k: ("…" if k == "name" else v) for k, v in filters.items() if v not in (None, [])}
    details: dict[str, Any] = {"count": len(rows), "filters": shown}
    if unmasked:
        details |= {"ids": [r["id"] for r in rows], "fields": ["id_number", "phone", "birth_date"]}
    await audit.append(session, platform.audit, actor=actor,
                       action="supervisor.export_unmasked" if unmasked else "supervisor.export",
                       subject="supervisors", details=details)
