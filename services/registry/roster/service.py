"""Roster use cases: records, personal data (R3.1), eligibility (R22.3), the hot roster lists, specialties."""

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.registry import rules
from services.registry.config import RegistrySettings
from services.registry.models import platform, specialty, supervisor, supervisor_tally
from services.registry.rules import RuleViolation, Status
from services.registry.schemas import SupervisorCreate, SupervisorUpdate
from shared import audit, clock
from shared.crypto import FieldCipher, mask_id_number, mask_phone
from shared.db import read
from shared.errors import Conflict, NotFound, ProblemError, Unprocessable
from shared.events.contracts import EligibilityChanged, SupervisorUpdated
from shared.events.outbox import Outbox

ID_CTX = "registry.supervisor.id_number"
PHONE_CTX = "registry.supervisor.phone"
CONFLICT_CODES = {"N-TERM", "N-BAN", "N-EXCL", "invalid_transition", "R22.2", "R21.1", "exclusion_in_force",
                  "duplicate_certificate_no", "duplicate_work_card_no"}
CONTRACT_FIELDS = ("name", "district", "employer", "recommending_body", "specialties")
NO_TERM_END = date(2999, 12, 31)  # sort key of a record without a term (candidates): after every real end


def today() -> date:
    """Today in Weihai from the server clock (shared.clock: Asia/Shanghai dates)."""
    return clock.today()


def problem(v: RuleViolation) -> ProblemError:
    """A rule refusal as the client sees it: 409 for state/rule conflicts, 422 for bad input."""
    if v.code in CONFLICT_CODES:
        return Conflict(v.code, v.title, v.detail)
    return Unprocessable(v.code, v.title, v.detail)


def id_hash(cipher: FieldCipher, id_number: str) -> str:
    return cipher.blind_index(rules.normalize_id_number(id_number), context=ID_CTX)


# --- validation of what officials type ------------------------------------------------------------

def check_district(settings: RegistrySettings, district: str) -> str:
    try:
        return rules.check_district(district, settings.districts)
    except RuleViolation as v:
        raise problem(v) from v


async def active_specialties(session: AsyncSession | AsyncConnection, names: Sequence[str] | None = None,
                             ) -> set[str]:
    """The names of the managed list that are active: among `names`, or all of them (None)."""
    query = select(specialty.c.name).where(specialty.c.active)
    if names is not None:
        wanted = [n.strip() for n in names]
        if not wanted:
            return set()
        query = query.where(specialty.c.name.in_(wanted))
    return set((await session.scalars(query)).all())


async def check_specialties(session: AsyncSession, names: Sequence[str]) -> list[str]:
    """Specialties must be on the managed list and active; order kept, duplicates dropped."""
    try:
        return rules.check_specialties(list(names), await active_specialties(session, names))
    except RuleViolation as v:
        raise problem(v) from v


# --- reads --------------------------------------------------------------------------------------

async def get(session: AsyncSession, supervisor_id: uuid.UUID, *, for_update: bool = False) -> RowMapping:
    query = select(supervisor).where(supervisor.c.id == supervisor_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).mappings().first()
    if row is None:
        raise NotFound("人民监督员", supervisor_id)
    return row


def decrypt_contact(cipher: FieldCipher, row: RowMapping) -> tuple[str, str]:
    """(id number, phone) in clear: callers audit the read (R3.1)."""
    return (cipher.decrypt(row["id_number_encrypted"], context=ID_CTX),
            cipher.decrypt(row["phone_encrypted"], context=PHONE_CTX))


async def audit_read(session: AsyncSession, *, actor: str, action: str, supervisor_id: uuid.UUID,
                     fields: list[str]) -> None:
    """R3.1: every read of unmasked personal data is logged (ids and field names only, no values)."""
    await audit.append(session, platform.audit, actor=actor, action=action,
                       subject=f"supervisor:{supervisor_id}", details={"fields": fields})


async def list_page(conn: AsyncSession | AsyncConnection, columns: Sequence[Any], where: list[Any], *, limit: int,
                    offset: int, tally: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
                    ) -> tuple[list[dict], int]:
    """One page ordered by name (index order) and the exact total of matches, in one round trip.

    `tally` = the filters when they are only district/status/eligible: the total then comes from
    the trigger-kept `supervisor_tally` instead of counting every matching row.
    """
    if tally is not None:
        t = supervisor_tally.c
        total_query = select(func.coalesce(func.sum(t.n), 0)).where(
            *[getattr(t, k) == v for k, v in tally.items() if v is not None])
    else:
        total_query = select(func.count()).select_from(supervisor).where(*where)
    rows = (await conn.execute(
        select(*columns, total_query.scalar_subquery().label("total_"))
        .where(*where).order_by(supervisor.c.name, supervisor.c.id).limit(limit).offset(offset), params or {},
    )).all()
    if rows:
        out = [r._asdict() for r in rows]
        for row in out:
            del row["total_"]
        return out, int(rows[0].total_)
    return [], int(await conn.scalar(total_query) or 0) if offset else 0


# --- the roster list: the hot path, hand-written SQL on the pool's asyncpg connection ------------

# field of a list item -> its SQL expression over registry.supervisor ({on} = today's date parameter).
# The keys are the fields of the response models (SupervisorListItem, EligibleSupervisor): a unit test checks it.
ROSTER_FIELDS = {
    "id": "id", "name": "name", "gender": "gender", "district": "district", "employer": "employer",
    "specialties": "specialties", "status": "status", "phone": "phone_masked", "term_start": "term_start",
    "term_end": "term_end", "certificate_no": "certificate_no",
    "training_state": "CASE WHEN initial_passed_on IS NOT NULL THEN 'trained' "
                      "WHEN status = 'active' AND initial_training_due < {on} THEN 'overdue' ELSE 'pending' END",
    "eligible": "eligible",
}
ELIGIBLE_FIELDS = {"id": "id", "name": "name", "district": "district", "specialties": "specialties"}


# sort of a roster list -> (SQL expression of its first key, the key's type in a cursor); the id breaks ties
ROSTER_SORTS: dict[str, tuple[str, type]] = {
    "name": ("name", str),
    "term_end": (f"coalesce(term_end, DATE '{NO_TERM_END.isoformat()}')", date),  # no term yet: last
}


def roster_query(*, fields: dict[str, str], on: date, limit: int, after: Sequence[Any] | None = None,
                 sort: str = "name", district: str | None = None, specialty_name: str | None = None,
                 statuses: Sequence[str] = (), term_active_on: date | None = None, term_year: int | None = None,
                 term_ends_from: date | None = None, term_ends_to: date | None = None,
                 training_state: str | None = None, name: str | None = None, number: str | None = None,
                 eligible: bool | None = None) -> tuple[str, list[Any]]:
    """SQL and arguments of one roster page in keyset order (shared.pagination), in one round trip.

    The statement always answers at least one row: `total_` (the exact count of matches), `known_` (false when
    the specialty filter names no specialty of the managed list) and, per item of the page, the item as JSON
    text (`item`) with its sort key (`k1_`, `k2_` = id). Filters are combined with AND; only fixed SQL text is
    concatenated, every value is a $n parameter. With only district/status/eligible filters the total comes from
    the trigger-kept `supervisor_tally`, otherwise it counts the matches. PostgreSQL renders each item with
    row_to_json over the `fields` only, after LIMIT: the service joins the texts instead of decoding every
    column into Python objects and encoding them again. `limit + 1` rows are read to know whether more follow.
    """
    args: list[Any] = []

    def p(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where: list[str] = []
    tally: list[str] = []
    if district:
        where.append(f"district = {p(district)}")
        tally.append(f"district = ${len(args)}")
    if statuses:
        where.append(f"status = ANY({p(list(statuses))}::text[])")
        tally.append(f"status = ANY(${len(args)}::text[])")
    if eligible is not None:
        where.append(f"eligible = {p(eligible)}")
        tally.append(f"eligible = ${len(args)}")
    simple = len(where)
    known = "TRUE"
    if specialty_name:
        where.append(f"specialties @> ARRAY[{p(specialty_name)}::text]")
        known = f"EXISTS (SELECT 1 FROM registry.specialty WHERE name = ${len(args)}::text)"
    if term_active_on:
        day = p(term_active_on)
        where.append(f"term_start <= {day} AND term_end >= {day}")
    if term_year:
        where.append(f"term_start <= {p(date(term_year, 12, 31))} AND term_end >= {p(date(term_year, 1, 1))}")
    if term_ends_from:
        where.append(f"term_end >= {p(term_ends_from)}")
    if term_ends_to:
        where.append(f"term_end <= {p(term_ends_to)}")
    on_refs: list[str] = []

    def on_param() -> str:
        """The date parameter, added on first use only (an unused parameter has no type)."""
        if not on_refs:
            on_refs.append(p(on))
        return on_refs[0]

    if training_state == "trained":
        where.append("initial_passed_on IS NOT NULL")
    elif training_state == "overdue":
        where.append(f"initial_passed_on IS NULL AND status = 'active' AND initial_training_due < {on_param()}")
    elif training_state == "pending":
        where.append(f"initial_passed_on IS NULL AND (status <> 'active' OR initial_training_due IS NULL "
                     f"OR initial_training_due >= {on_param()})")
    if name:
        where.append(f"name LIKE {p(like_prefix(name))} ESCAPE '\\'")
    if number:
        pattern = p(like_prefix(number))
        where.append(f"(certificate_no LIKE {pattern} ESCAPE '\\' OR work_card_no LIKE {pattern} ESCAPE '\\')")
    condition = " AND ".join(where) or "TRUE"
    if len(where) == simple:
        total = f"(SELECT coalesce(sum(n), 0) FROM registry.supervisor_tally WHERE {' AND '.join(tally) or 'TRUE'})"
    else:
        total = f"(SELECT count(*) FROM registry.supervisor WHERE {condition})"
    key, key_type = ROSTER_SORTS[sort]
    page_condition = condition
    if after is not None:
        cast_to = "date" if key_type is date else "text"
        page_condition += f" AND ({key}, id) > ({p(after[0])}::{cast_to}, {p(after[1])}::uuid)"
    shown = ", ".join(f"{expr.format(on=on_param()) if '{on}' in expr else expr} AS {field}"
                      for field, expr in fields.items())
    page = (f"SELECT {shown}, {key} AS k1_, id AS k2_ FROM registry.supervisor WHERE {page_condition} "
            f"ORDER BY {key}, id LIMIT {p(limit + 1)}")
    return read.json_page_sql(head=f"SELECT {total} AS total_, {known} AS known_", page=page,
                              fields={field: f"page.{field}" for field in fields}), args


def like_prefix(text: str) -> str:
    """A LIKE pattern matching `text` literally at the start (its wildcards escaped)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def roster_page(conn: AsyncConnection, sql: str, args: list[Any], *, limit: int,
                      ) -> tuple[list[str], int, list[Any] | None]:
    """Run `roster_query` on the pooled connection's asyncpg driver: (the items' JSON texts, the total, the sort
    key of the last item shown when more follow). An unknown specialty filter is a 422 (nothing to list)."""
    records = await read.fetch(conn, sql, *args)
    if not records[0]["known_"]:
        raise Unprocessable("unknown_specialty", "专业领域不在目录中", "筛选条件中的专业领域不在专业领域目录中。")
    return read.json_page_of(records, limit=limit)


async def masked_contacts(session: AsyncSession, *, actor: str, ids: Sequence[uuid.UUID]) -> list[RowMapping]:
    """Name and masked phone of many supervisors in one read (R12.1's call list), audited as one entry naming
    every id read (R3.1: ids and field names only, no values). Unknown ids are simply not in the answer."""
    c = supervisor.c
    rows = list((await session.execute(select(c.id, c.name, c.district, c.phone_masked).where(c.id.in_(ids))
                                        .order_by(c.id))).mappings().all())
    if rows:
        await audit.append(session, platform.audit, actor=actor, action="supervisor.read_masked_contacts",
                           subject="supervisors", details={"ids": [str(r["id"]) for r in rows],
                                                           "fields": ["name", "phone_masked"]})
    return rows


# --- eligibility (R22.3) -------------------------------------------------------------------------

def compute_eligibility(row: RowMapping | dict, on: date) -> tuple[bool, list[str]]:
    return rules.eligibility(status=row["status"], initial_passed=row["initial_passed_on"] is not None,
                             term_end_on=row["term_end"], excluded=row["excluded_ground"] is not None, today=on)


async def sync_eligibility(session: AsyncSession, *, outbox: Outbox, supervisor_id: uuid.UUID,
                           on: date | None = None) -> tuple[bool, list[str]]:
    """Recompute eligibility; store and publish `EligibilityChanged` when the value or its reasons changed."""
    row = await get(session, supervisor_id)
    eligible, reasons = compute_eligibility(row, on or today())
    if eligible != row["eligible"] or reasons != list(row["eligibility_reasons"]):
        await session.execute(update(supervisor).where(supervisor.c.id == supervisor_id)
                              .values(eligible=eligible, eligibility_reasons=reasons, updated_at=func.now()))
        await outbox.add(session, EligibilityChanged(supervisor_id=supervisor_id, eligible=eligible,
                                                     reasons=rules.event_reasons(reasons)))
    return eligible, reasons


# --- supervisors ---------------------------------------------------------------------------------

def check_candidate(settings: RegistrySettings, data: SupervisorCreate, known_specialties: set[str]
                    ) -> rules.Candidate:
    """`rules.check_candidate` of a registration form (422 problem on the first refusal)."""
    try:
        return rules.check_candidate(
            id_number=data.id_number, phone=data.phone, district=data.district, specialties=data.specialties,
            gender=data.gender, birth_date=data.birth_date, today=today(), districts=settings.districts,
            known_specialties=known_specialties)
    except RuleViolation as v:
        raise problem(v) from v


CANDIDATE_REASONS = ["not_appointed"]  # R22.3: a candidate is not eligible until appointed


def new_record(cipher: FieldCipher, candidate: rules.Candidate, data: SupervisorCreate, *, actor: str) -> dict:
    """The `supervisor` row of a checked candidate (R3.1: id number and phone encrypted, blind-indexed, masked;
    the birth date not kept beside the masked id)."""
    return {
        "id": uuid.uuid4(), "name": data.name, "gender": candidate.gender, "birth_date": None,
        "id_number_encrypted": cipher.encrypt(candidate.id_number, context=ID_CTX),
        "id_number_hash": cipher.blind_index(candidate.id_number, context=ID_CTX),
        "id_number_masked": mask_id_number(candidate.id_number),
        "phone_encrypted": cipher.encrypt(candidate.phone, context=PHONE_CTX),
        "phone_hash": cipher.blind_index(candidate.phone, context=PHONE_CTX),
        "phone_masked": mask_phone(candidate.phone), "district": candidate.district, "employer": data.employer,
        "recommending_body": data.recommending_body, "specialties": candidate.specialties,
        "status": Status.CANDIDATE, "eligible": False, "eligibility_reasons": list(CANDIDATE_REASONS),
        "created_by": actor,
    }


def create_entry(record: dict, *, actor: str) -> audit.Entry:
    """The audit entry of a registration (ids and the district only)."""
    return audit.Entry(actor, "supervisor.create", f"supervisor:{record['id']}", {"district": record["district"]})


async def create(session: AsyncSession, *, cipher: FieldCipher, settings: RegistrySettings,
                 data: SupervisorCreate, actor: str) -> RowMapping:
    """A candidate record (status `candidate`); appointment makes it active."""
    candidate = check_candidate(settings, data, await active_specialties(session, data.specialties))
    record = new_record(cipher, candidate, data, actor=actor)
    if await session.scalar(select(supervisor.c.id).where(supervisor.c.id_number_hash == record["id_number_hash"])):
        raise Conflict("duplicate_id_number", "身份号码已登记", "该公民身份号码已有人民监督员记录，不能重复登记。")
    await session.execute(insert(supervisor).values(**record))
    await audit.append_many(session, platform.audit, [create_entry(record, actor=actor)])
    return await get(session, record["id"])


async def apply_changes(session: AsyncSession, *, outbox: Outbox, row: RowMapping, values: dict[str, Any]) -> dict:
    """Write changed roster fields and publish `SupervisorUpdated` with only the contract fields that changed."""
    changed = {k: v for k, v in values.items() if row[k] != v}
    if not changed:
        return {}
    await session.execute(update(supervisor).where(supervisor.c.id == row["id"]).values(**changed,
                                                                                     updated_at=func.now()))
    public = {k: v for k, v in changed.items() if k in CONTRACT_FIELDS}
    if public:
        await outbox.add(session, SupervisorUpdated(supervisor_id=row["id"], changed=public))
    return changed


async def validated_changes(session: AsyncSession, settings: RegistrySettings, changes: dict[str, Any]) -> dict:
    """Check district/specialties/text fields of an update or change report."""
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if value is None:
            continue
        if key == "specialties":
            if not isinstance(value, list):
                raise Unprocessable("invalid_change", "变更内容无效", "专业领域应为列表。")
            out[key] = await check_specialties(session, value)
        elif isinstance(value, str) and value.strip():
            out[key] = check_district(settings, value.strip()) if key == "district" else value.strip()
        else:
            raise Unprocessable("invalid_change", "变更内容无效", f"字段 {key} 的取值无效。")
    return out


async def update_supervisor(session: AsyncSession, *, outbox: Outbox, cipher: FieldCipher,
                            settings: RegistrySettings, supervisor_id: uuid.UUID, data: SupervisorUpdate,
                            actor: str) -> RowMapping:
    row = await get(session, supervisor_id, for_update=True)
    values = await validated_changes(session, settings, data.model_dump(exclude={"phone"}, exclude_none=True))
    if data.phone is not None:
        try:
            phone = rules.check_mobile(data.phone)
        except RuleViolation as v:
            raise problem(v) from v
        values.update(phone_encrypted=cipher.encrypt(phone, context=PHONE_CTX),
                      phone_hash=cipher.blind_index(phone, context=PHONE_CTX), phone_masked=mask_phone(phone))
        if values["phone_hash"] == row["phone_hash"]:
            for k in ("phone_encrypted", "phone_hash", "phone_masked"):
                values.pop(k)
    changed = await apply_changes(session, outbox=outbox, row=row, values=values)
    if changed:
        await audit.append(session, platform.audit, actor=actor, action="supervisor.update",
                           subject=f"supervisor:{supervisor_id}", details={"fields": sorted(changed)})
    return await get(session, supervisor_id)



# --- specialties ---------------------------------------------------------------------------------

async def add_specialty(session: AsyncSession, name: str) -> RowMapping:
    stmt = pg_insert(specialty).values(name=name, active=True)
    stmt = stmt.on_conflict_do_update(index_elements=["name"], set_={"active": True})
    await session.execute(stmt)
    return (await session.execute(select(specialty).where(specialty.c.name == name))).mappings().one()


async def deactivate_specialty(session: AsyncSession, name: str) -> RowMapping:
    result = await session.execute(update(specialty).where(specialty.c.name == name).values(active=False)
                                   .returning(specialty.c.name, specialty.c.active))
    row = result.mappings().first()
    if row is None:
        raise NotFound("专业领域", name)
    return row



# --- simple lists --------------------------------------------------------------------------------

async def page_of(session: AsyncSession, table: Any, where: list[Any], order: Sequence[Any], *, limit: int,
                offset: int) -> tuple[list[RowMapping], int]:
    rows = (await session.execute(select(table).where(*where).order_by(*order).limit(limit).offset(offset))
            ).mappings().all()
    total = await session.scalar(select(func.count()).select_from(table).where(*where)) or 0
    return list(rows), total



async def specialties(session: AsyncSession, *, include_inactive: bool) -> list[RowMapping]:
    query = select(specialty.c.name, specialty.c.active).order_by(specialty.c.created_at, specialty.c.name)
    if not include_inactive:
        query = query.where(specialty.c.active)
    return list((await session.execute(query)).mappings().all())
