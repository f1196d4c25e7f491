"""Bulk roster work: import appointees from the xlsx template (all or nothing), export the roster (R3.1).

One door per action: every row goes through the checks of the single registration and appointment
(`rules.check_candidate` — id number, phone, district, specialties — then `rules.check_appointment` — N-BAN,
N-EXCL, N-TERM, R4.1 — and R5.1's numbers), the same pure functions `POST /supervisors` and
`POST /supervisors/{id}/appointments` call, and writes the rows, events and audit entries they would write.
The import is set-based: the checks run on the whole list against one read of what the database already holds
for these people (records, bans, terms, numbers typed by hand), a duplicate within the file is refused like a
duplicate in the roster, and only when no row failed are the rows written (bulk INSERTs, the outbox events in
one `add_many`, the audit entries in one `append_many`); otherwise nothing is written and the answer names
every bad row. A person already in the roster (same id number) gets the same checks of their row as a new one
and is appointed to a new term on their record, as `POST /supervisors/{id}/appointments` would.
"""

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.registry import rules
from services.registry.appointments import service as appointments
from services.registry.bulk.workbook import IMPORT_COLUMNS, ImportRow, RowError
from services.registry.config import RegistrySettings
from services.registry.models import appointment, ban, platform, supervisor
from services.registry.roster import service as roster
from services.registry.schemas import AppointmentCreate, SupervisorCreate
from shared import audit
from shared.crypto import FieldCipher
from shared.db import raw
from shared.errors import Unprocessable
from shared.events.contracts import EligibilityChanged
from shared.events.outbox import Outbox

# the column a refusal of the registration / appointment checks is about (codes of rules.py)
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


def _refusal(row: int, v: rules.RuleViolation) -> RowError:
    return RowError(row, IMPORT_COLUMNS.get(CODE_FIELDS.get(v.code, "")), v.code, v.detail or v.title)


@dataclass(frozen=True)
class Checked:
    """A row whose person passed the registration checks: the forms, the checked person, their id hash."""

    item: ImportRow
    person: SupervisorCreate
    appointment: AppointmentCreate
    candidate: rules.Candidate
    person_hash: str


def check_rows(rows: list[ImportRow], *, cipher: FieldCipher, settings: RegistrySettings,
               known_specialties: set[str]) -> tuple[list[Checked], list[RowError]]:
    """The cell problems, duplicates within the file, the forms' validation and `rules.check_candidate`, row
    by row (no I/O): the rows that passed, and every reason of the rows that did not."""
    errors: list[RowError] = []
    checked: list[Checked] = []
    first_row_of: dict[str, int] = {}  # normalized id number -> the row it first appeared on
    on = roster.today()
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
            person, term = SupervisorCreate(**item.supervisor), AppointmentCreate(**item.appointment)
        except ValidationError as exc:
            errors += _validation_errors(item.row, exc)
            continue
        try:
            candidate = rules.check_candidate(
                id_number=person.id_number, phone=person.phone, district=person.district,
                specialties=person.specialties, gender=person.gender, birth_date=person.birth_date, today=on,
                districts=settings.districts, known_specialties=known_specialties)
        except rules.RuleViolation as v:
            errors.append(_refusal(item.row, v))
            continue
        checked.append(Checked(item, person, term, candidate, roster.id_hash(cipher, candidate.id_number)))
    return checked, errors


async def import_appointees(session: AsyncSession, *, outbox: Outbox, cipher: FieldCipher,
                            settings: RegistrySettings, rows: list[ImportRow], file_sha256: str,
                            actor: str) -> list[dict[str, Any]]:
    """All rows or none (see the module docstring): the imported rows, or 422 `import_rejected` naming each bad
    row (Excel row number, column header, Chinese reason); nothing is written then."""
    on = roster.today()
    checked, errors = check_rows(rows, cipher=cipher, settings=settings,
                                 known_specialties=await roster.active_specialties(session))
    # what the database holds for these people, in one query each (their records locked, as one appointment does)
    hashes = [c.person_hash for c in checked]
    records = {r["id_number_hash"]: r for r in (await session.execute(
        select(supervisor).where(supervisor.c.id_number_hash.in_(hashes)).with_for_update())).mappings()}
    banned = set((await session.scalars(select(ban.c.person_hash).where(ban.c.person_hash.in_(hashes)))).all())
    history = await appointments.terms_of_many(session, hashes)
    used = {kind: await appointments.numbers_used(session, kind, [
        n for c in checked if (n := getattr(c.appointment, f"{kind}_no"))]) for kind in ("certificate", "work_card")}

    plans: list[tuple[Checked, dict, bool, tuple]] = []  # (row, the record before, new?, (start, end, level))
    for c in checked:
        record = records.get(c.person_hash)
        if record is not None and record["name"] != c.person.name:
            errors.append(RowError(c.item.row, IMPORT_COLUMNS["name"], "name_mismatch",
                                   "该公民身份号码已在名册中，但姓名与名册记录不一致；请核对。"))
            continue
        before = dict(record) if record is not None else {
            **roster.new_record(cipher, c.candidate, c.person, actor=actor), "initial_passed_on": None,
            "excluded_ground": None}
        try:
            term = appointments.check_appointment(settings, before, c.appointment, history=history.get(
                c.person_hash, []), banned=c.person_hash in banned, used=used)
        except rules.RuleViolation as v:
            errors.append(_refusal(c.item.row, v))
            continue
        for kind in ("certificate", "work_card"):  # R5.1: a number typed twice in the file is refused too
            if given := getattr(c.appointment, f"{kind}_no"):
                used[kind].add(given)
        plans.append((c, before, record is None, term))
    if errors:
        errors.sort(key=lambda e: e.row)
        bad_rows = sorted({e.row for e in errors})
        shown = "、".join(str(r) for r in bad_rows[:20]) + ("等" if len(bad_rows) > 20 else "")
        raise Unprocessable(
            "import_rejected", "导入文件有误，未导入任何记录",
            f"共{len(rows)}行数据，其中{len(bad_rows)}行有误（第{shown}行），整个文件未导入；"
            "请按 errors 逐行改正后重新导入。",
            errors=[e.as_dict() for e in errors[:MAX_REPORTED_ERRORS]], bad_rows=len(bad_rows), rows=len(rows))
    return await write_appointees(session, outbox=outbox, settings=settings, plans=plans, on=on,
                                  file_sha256=file_sha256, rows=len(rows), actor=actor)


async def write_appointees(session: AsyncSession, *, outbox: Outbox, settings: RegistrySettings,
                           plans: list[tuple[Checked, dict, bool, tuple]], on: Any, file_sha256: str, rows: int,
                           actor: str) -> list[dict[str, Any]]:
    """The rows, events and audit entries of the checked appointments, in bulk: what registering (for new
    people) and appointing each one would write, in the same order."""
    wanted: dict[tuple[str, int], int] = defaultdict(int)  # (kind, year) -> numbers to issue (R5.1)
    for c, _, _, _ in plans:
        for kind in ("certificate", "work_card"):
            if not getattr(c.appointment, f"{kind}_no"):
                wanted[kind, c.appointment.decision_date.year] += 1
    typed = {kind: {n for c, _, _, _ in plans if (n := getattr(c.appointment, f"{kind}_no"))}
             for kind in ("certificate", "work_card")}
    issued = {key: iter(await appointments.issue_numbers(session, settings, key[0], key[1], count,
                                                          taken=typed[key[0]]))
              for key, count in sorted(wanted.items())}
    new_people, updates, terms, events, entries, imported = [], [], [], [], [], []
    for c, before, new, (start, end, level) in plans:
        year = c.appointment.decision_date.year
        cert = c.appointment.certificate_no or next(issued["certificate", year])
        card = c.appointment.work_card_no or next(issued["work_card", year])
        state = appointments.appointed_state(before, c.appointment, start=start, end=end, cert=cert, card=card)
        after = {**before, **state}
        eligible, reasons = roster.compute_eligibility(after, on)
        changed = eligible != before["eligible"] or reasons != list(before["eligibility_reasons"])
        if not new:  # a record of the roster: a new term on it
            updates.append({"b_id": before["id"], **state, "eligible": eligible, "eligibility_reasons": reasons})
        else:
            entries.append(roster.create_entry(before, actor=actor))
            new_people.append({k: v for k, v in after.items() if k not in ("initial_passed_on", "excluded_ground")}
                              | {"eligible": eligible, "eligibility_reasons": reasons})
        terms.append(appointments.appointment_row(before, c.appointment, start=start, end=end, level=level,
                                                  cert=cert, card=card, actor=actor))
        events.append(appointments.appointed_event(after, eligible=eligible))
        if changed:
            events.append(EligibilityChanged(supervisor_id=before["id"], eligible=eligible,
                                             reasons=rules.event_reasons(reasons)))
        entries.append(appointments.appoint_entry(before["id"], c.appointment, cert=cert, card=card, actor=actor))
        imported.append({"row": c.item.row, "id": str(before["id"]), "certificate_no": cert, "work_card_no": card})
    if new_people:
        await session.execute(insert(supervisor), new_people)
    if updates:
        s = supervisor.c
        await session.execute(update(supervisor).where(s.id == bindparam("b_id")).values(updated_at=func.now()),
                              updates)
    if terms:
        await session.execute(insert(appointment), terms)
    await outbox.add_many(session, events)
    entries.append(audit.Entry(actor, "supervisor.import", "supervisors", {
        "rows": rows, "file_sha256": file_sha256, "ids": [r["id"] for r in imported]}))
    await audit.append_many(session, platform.audit, entries)
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
