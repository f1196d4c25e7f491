"""Use cases of the registry: rows and outbox events in the caller's transaction (never commits)."""

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.registry import rules
from services.registry.config import RegistrySettings
from services.registry.models import (
    appointment,
    ban,
    change_report,
    dismissal,
    number_counter,
    platform,
    resignation,
    specialty,
    supervisor,
    supervisor_tally,
    training_record,
    training_session,
)
from services.registry.rules import RuleViolation, Status
from services.registry.schemas import (
    AppointmentCreate,
    ChangeReportCreate,
    DismissalCreate,
    ResignationCreate,
    SupervisorCreate,
    SupervisorUpdate,
    TrainingResult,
    TrainingSessionCreate,
)
from shared import audit
from shared.crypto import FieldCipher, mask_id_number, mask_phone
from shared.db import raw
from shared.errors import Conflict, NotFound, ProblemError, Unprocessable
from shared.events.contracts import (
    ChangeReportRecorded,
    EligibilityChanged,
    SupervisorAppointed,
    SupervisorDismissed,
    SupervisorUpdated,
    TrainingRecorded,
)
from shared.events.outbox import Outbox

ID_CTX = "registry.supervisor.id_number"
PHONE_CTX = "registry.supervisor.phone"
SHANGHAI = ZoneInfo("Asia/Shanghai")
CONFLICT_CODES = {"N-TERM", "N-BAN", "invalid_transition", "R22.2"}
CONTRACT_FIELDS = ("name", "district", "employer", "recommending_body", "specialties")


def today() -> date:
    """Today in Weihai (dates of the programme are Asia/Shanghai dates)."""
    return datetime.now(SHANGHAI).date()


def problem(v: RuleViolation) -> ProblemError:
    """A rule refusal as the client sees it: 409 for state/rule conflicts, 422 for bad input."""
    if v.code in CONFLICT_CODES:
        return Conflict(v.code, v.title, v.detail)
    return Unprocessable(v.code, v.title, v.detail)


def id_hash(cipher: FieldCipher, id_number: str) -> str:
    return cipher.blind_index(rules.normalize_id_number(id_number), context=ID_CTX)


# --- validation of what officials type ------------------------------------------------------------

def check_district(settings: RegistrySettings, district: str) -> str:
    if district not in settings.districts:
        raise Unprocessable("unknown_district", "辖区不存在",
                            f"“{district}”不是威海市的辖区，可选：{'、'.join(settings.districts)}。")
    return district


async def check_specialties(session: AsyncSession, names: Sequence[str]) -> list[str]:
    """Specialties must be on the managed list and active; order kept, duplicates dropped."""
    wanted = list(dict.fromkeys(n.strip() for n in names))
    if not wanted:
        return []
    known = set((await session.scalars(
        select(specialty.c.name).where(specialty.c.name.in_(wanted), specialty.c.active))).all())
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise Unprocessable("unknown_specialty", "专业领域不在目录中",
                            f"以下专业领域不在目录中或已停用：{'、'.join(unknown)}。")
    return wanted


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
ELIGIBLE_FIELDS = {"name": "name", "district": "district", "specialties": "specialties"}


def roster_query(*, fields: dict[str, str], on: date, limit: int, offset: int, district: str | None = None,
                 specialty_name: str | None = None, status: str | None = None, term_active_on: date | None = None,
                 term_year: int | None = None, training_state: str | None = None, name: str | None = None,
                 eligible: bool | None = None) -> tuple[str, list[Any]]:
    """SQL and arguments of one roster page: per row, the item as JSON text (`item`) and the exact total (`total_`).

    Filters are combined with AND. Only fixed SQL text is concatenated; every value is a $n parameter. With only
    district/status/eligible filters the total comes from the trigger-kept `supervisor_tally`, otherwise it is a
    window count over the matches. PostgreSQL renders each item with row_to_json over the `fields` only, after
    LIMIT/OFFSET (so skipped rows are never rendered): the service joins the texts instead of decoding every
    column into Python objects and encoding them again.
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
    if status:
        where.append(f"status = {p(status)}")
        tally.append(f"status = ${len(args)}")
    if eligible is not None:
        where.append(f"eligible = {p(eligible)}")
        tally.append(f"eligible = ${len(args)}")
    simple = len(where)
    if specialty_name:
        where.append(f"specialties @> ARRAY[{p(specialty_name)}::text]")
    if term_active_on:
        day = p(term_active_on)
        where.append(f"term_start <= {day} AND term_end >= {day}")
    if term_year:
        where.append(f"term_start <= {p(date(term_year, 12, 31))} AND term_end >= {p(date(term_year, 1, 1))}")
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
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(f"name LIKE {p(escaped + '%')} ESCAPE '\\'")
    condition = " AND ".join(where) or "TRUE"
    if len(where) == simple:
        total = f"(SELECT coalesce(sum(n), 0) FROM registry.supervisor_tally WHERE {' AND '.join(tally) or 'TRUE'})"
    else:
        total = "count(*) OVER ()"  # one pass over the (filtered) matches instead of a second scan
    shown = ", ".join(f"{expr.format(on=on_param()) if '{on}' in expr else expr} AS {field}"
                      for field, expr in fields.items())
    page = (f"SELECT {shown}, name AS order_name_, id AS order_id_, {total} AS total_ FROM registry.supervisor "
            f"WHERE {condition} ORDER BY name, id LIMIT {p(limit)} OFFSET {p(offset)}")
    item = ", ".join(f"page.{field}" for field in fields)
    sql = (f"SELECT row_to_json(item)::text AS item, page.total_ FROM ({page}) AS page "
           f"CROSS JOIN LATERAL (SELECT {item}) AS item ORDER BY page.order_name_, page.order_id_")
    return sql, args


async def roster_page(conn: AsyncConnection, sql: str, args: list[Any]) -> tuple[list[str], int]:
    """Run `roster_query` on the pooled connection's asyncpg driver: (the items' JSON texts, the total)."""
    try:
        records = await raw.fetch(conn, sql, *args)
        if not records and args[-1]:
            # past the end: the total alone (same statement, first row only)
            first = await raw.fetch(conn, sql, *args[:-2], 1, 0)
            return [], int(first[0]["total_"]) if first else 0
    except DataError as exc:  # e.g. a NUL byte in a filter
        raise Unprocessable("invalid_data", "数据无法处理", "请检查查询条件中的特殊字符。") from exc
    except OperationalError as exc:
        await conn.invalidate()  # a broken pooled connection: drop it, the next request gets a new one
        raise ProblemError(503, "unavailable", "服务暂不可用", "数据库暂不可用，请稍后重试。",
                           headers={"Retry-After": "5"}) from exc
    if not records:
        return [], 0
    return [r[0] for r in records], int(records[0][1])


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

async def create(session: AsyncSession, *, cipher: FieldCipher, settings: RegistrySettings,
                 data: SupervisorCreate, actor: str) -> RowMapping:
    """A candidate record (status `candidate`); appointment makes it active."""
    try:
        id_number = rules.check_id_number(data.id_number)
        phone = rules.check_mobile(data.phone)
    except RuleViolation as v:
        raise problem(v) from v
    born, gender = rules.birth_date_of(id_number), rules.gender_of(id_number)
    if data.birth_date is not None and data.birth_date != born:
        raise Unprocessable("id_number_mismatch", "出生日期与身份号码不符",
                            "出生日期与公民身份号码中的出生日期不一致。")
    if data.gender is not None and data.gender != gender:
        raise Unprocessable("id_number_mismatch", "性别与身份号码不符", "性别与公民身份号码的性别码不一致。")
    check_district(settings, data.district)
    specialties = await check_specialties(session, data.specialties)
    hashed = cipher.blind_index(id_number, context=ID_CTX)
    if await session.scalar(select(supervisor.c.id).where(supervisor.c.id_number_hash == hashed)):
        raise Conflict("duplicate_id_number", "身份号码已登记", "该公民身份号码已有人民监督员记录，不能重复登记。")
    supervisor_id = uuid.uuid4()
    await session.execute(insert(supervisor).values(
        id=supervisor_id, name=data.name, gender=gender, birth_date=born,
        id_number_encrypted=cipher.encrypt(id_number, context=ID_CTX), id_number_hash=hashed,
        id_number_masked=mask_id_number(id_number),
        phone_encrypted=cipher.encrypt(phone, context=PHONE_CTX),
        phone_hash=cipher.blind_index(phone, context=PHONE_CTX), phone_masked=mask_phone(phone),
        district=data.district, employer=data.employer, recommending_body=data.recommending_body,
        specialties=specialties, status=Status.CANDIDATE, eligible=False, eligibility_reasons=["not_appointed"],
        created_by=actor,
    ))
    return await get(session, supervisor_id)


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


# --- appointment (R4.1, R5.1, N-TERM, N-BAN) -----------------------------------------------------

async def next_number(session: AsyncSession, kind: str, year: int) -> int:
    """Per-year counter: the upsert locks the row until commit, so numbers are never handed out twice."""
    stmt = pg_insert(number_counter).values(kind=kind, year=year, last=1)
    stmt = stmt.on_conflict_do_update(index_elements=["kind", "year"], set_={"last": number_counter.c.last + 1})
    return int(await session.scalar(stmt.returning(number_counter.c.last)))


async def issue_number(session: AsyncSession, settings: RegistrySettings, kind: str, year: int) -> str:
    column = appointment.c.certificate_no if kind == "certificate" else appointment.c.work_card_no
    prefix = settings.certificate_prefix if kind == "certificate" else settings.work_card_prefix
    while True:  # skip numbers an official already typed by hand
        number = rules.format_number(prefix, year, await next_number(session, kind, year), style=kind)
        if not await session.scalar(select(exists().where(column == number))):
            return number


async def appoint(session: AsyncSession, *, outbox: Outbox, settings: RegistrySettings,
                  supervisor_id: uuid.UUID, data: AppointmentCreate, actor: str, on: date | None = None,
                  ) -> RowMapping:
    """R4.1: decision no./date, 5-year term; R5.1 certificate and work card; refuses N-BAN and N-TERM."""
    on = on or today()
    row = await get(session, supervisor_id, for_update=True)
    start = data.term_start or data.decision_date
    try:
        rules.check_not_banned(bool(await session.scalar(
            select(exists().where(ban.c.person_hash == row["id_number_hash"])))))
        rules.check_transition("任命", row["status"], rules.APPOINTABLE)
        if row["status"] == Status.ACTIVE and row["term_end"] and start <= row["term_end"]:
            raise RuleViolation("invalid_transition", "任期未届满",
                                "该人民监督员当前任期尚未届满，新任期须在本届任期结束后开始。")
        history = (await session.execute(select(appointment.c.term_start, appointment.c.term_end)
                                          .where(appointment.c.person_hash == row["id_number_hash"]))).all()
        rules.check_term_limit([rules.Term(s, e) for s, e in history], start)
    except RuleViolation as v:
        raise problem(v) from v
    for given, column, code, what in (
        (data.certificate_no, appointment.c.certificate_no, "duplicate_certificate_no", "证书编号"),
        (data.work_card_no, appointment.c.work_card_no, "duplicate_work_card_no", "工作证编号"),
    ):
        if given and await session.scalar(select(exists().where(column == given))):
            raise Conflict(code, f"{what}已被使用", f"依据规则 R5.1，{what}“{given}”已发放给他人，不能重复。")
    year = data.decision_date.year
    cert = data.certificate_no or await issue_number(session, settings, "certificate", year)
    card = data.work_card_no or await issue_number(session, settings, "work_card", year)
    end = rules.term_end(start)
    await session.execute(insert(appointment).values(
        id=uuid.uuid4(), supervisor_id=supervisor_id, person_hash=row["id_number_hash"],
        decision_no=data.decision_no, decision_date=data.decision_date, term_start=start, term_end=end,
        certificate_no=cert, work_card_no=card, appointed_by=actor,
    ))
    due = None if row["initial_passed_on"] else rules.initial_training_due(data.decision_date)
    await session.execute(update(supervisor).where(supervisor.c.id == supervisor_id).values(
        status=Status.ACTIVE, decision_no=data.decision_no, decision_date=data.decision_date, term_start=start,
        term_end=end, certificate_no=cert, work_card_no=card, initial_training_due=due, updated_at=func.now(),
    ))
    fresh = await get(session, supervisor_id)
    eligible, _ = compute_eligibility(fresh, on)
    await outbox.add(session, SupervisorAppointed(
        supervisor_id=supervisor_id, name=fresh["name"], gender=fresh["gender"], district=fresh["district"],
        specialties=list(fresh["specialties"]), employer=fresh["employer"],
        recommending_body=fresh["recommending_body"], term_start=start, term_end=end, certificate_no=cert,
        work_card_no=card, eligible=eligible,
    ))
    await sync_eligibility(session, outbox=outbox, supervisor_id=supervisor_id, on=on)
    await audit.append(session, platform.audit, actor=actor, action="supervisor.appoint",
                       subject=f"supervisor:{supervisor_id}",
                       details={"decision_no": data.decision_no, "certificate_no": cert, "work_card_no": card})
    return await get(session, supervisor_id)


async def appointments_of(session: AsyncSession, supervisor_id: uuid.UUID) -> list[RowMapping]:
    return list((await session.execute(select(appointment).where(appointment.c.supervisor_id == supervisor_id)
                                       .order_by(appointment.c.term_start))).mappings().all())


# --- change reports (R6.1) -----------------------------------------------------------------------

async def file_change_report(session: AsyncSession, *, outbox: Outbox, settings: RegistrySettings,
                             supervisor_id: uuid.UUID, data: ChangeReportCreate, actor: str, apply_now: bool,
                             on: date | None = None) -> RowMapping:
    """R6.1: record what changed, when, when reported; late (> 1 month) flagged. The bureau's own reports
    apply at once; a supervisor's or district bureau's report waits for the bureau's confirmation."""
    row = await get(session, supervisor_id, for_update=True)
    reported_on = data.reported_on or on or today()
    if reported_on < data.changed_on:
        raise Unprocessable("invalid_dates", "日期有误", "报告日期不能早于变更发生日期。")
    if not data.changes and not data.description:
        raise Unprocessable("empty_change_report", "变更内容为空", "请填写变更事项。")
    changes = await validated_changes(session, settings, dict(data.changes))
    report_id = uuid.uuid4()
    await session.execute(insert(change_report).values(
        id=report_id, supervisor_id=supervisor_id, changes=changes, description=data.description,
        changed_on=data.changed_on, reported_on=reported_on,
        late=rules.is_late_report(data.changed_on, reported_on), status="pending", filed_by=actor,
    ))
    # R6.1: the ledger (appraisal) counts late reports; the report's facts travel, not its content
    await outbox.add(session, ChangeReportRecorded(
        supervisor_id=supervisor_id, report_id=report_id, changed_on=data.changed_on, reported_on=reported_on,
        late=rules.is_late_report(data.changed_on, reported_on)))
    if apply_now:
        await _apply_report(session, outbox=outbox, report_id=report_id, row=row, changes=changes, actor=actor)
    return await get_change_report(session, report_id)


async def get_change_report(session: AsyncSession, report_id: uuid.UUID) -> RowMapping:
    row = (await session.execute(select(change_report).where(change_report.c.id == report_id))).mappings().first()
    if row is None:
        raise NotFound("变更报告", report_id)
    return row


async def _apply_report(session: AsyncSession, *, outbox: Outbox, report_id: uuid.UUID, row: RowMapping,
                        changes: dict, actor: str) -> None:
    await apply_changes(session, outbox=outbox, row=row, values=changes)
    await session.execute(update(change_report).where(change_report.c.id == report_id).values(
        status="applied", decided_by=actor, decided_at=func.now()))


async def decide_change_report(session: AsyncSession, *, outbox: Outbox, settings: RegistrySettings,
                               report_id: uuid.UUID, confirm: bool, actor: str) -> RowMapping:
    report = await get_change_report(session, report_id)
    if report["status"] != "pending":
        raise Conflict("invalid_transition", "变更报告已处理", "该变更报告已确认或驳回，不能重复处理。")
    if confirm:
        row = await get(session, report["supervisor_id"], for_update=True)
        changes = await validated_changes(session, settings, dict(report["changes"]))
        await _apply_report(session, outbox=outbox, report_id=report_id, row=row, changes=changes, actor=actor)
    else:
        await session.execute(update(change_report).where(change_report.c.id == report_id).values(
            status="rejected", decided_by=actor, decided_at=func.now()))
    return await get_change_report(session, report_id)


# --- resignation (R7.1) and dismissal (R8.1, R9.1, N-BAN) ----------------------------------------

async def apply_resignation(session: AsyncSession, *, supervisor_id: uuid.UUID, data: ResignationCreate,
                            actor: str) -> RowMapping:
    """R7.1: a supervisor who can no longer serve applies; the bureau decides."""
    row = await get(session, supervisor_id, for_update=True)
    try:
        rules.check_transition("申请辞去职务", row["status"], {Status.ACTIVE})
    except RuleViolation as v:
        raise problem(v) from v
    if await session.scalar(select(exists().where(resignation.c.supervisor_id == supervisor_id,
                                                  resignation.c.status == "pending"))):
        raise Conflict("resignation_pending", "已有待处理的辞职申请", "该人民监督员已有待决定的辞职申请。")
    resignation_id = uuid.uuid4()
    await session.execute(insert(resignation).values(
        id=resignation_id, supervisor_id=supervisor_id, reason_kind=data.reason_kind, reason=data.reason,
        applied_on=data.applied_on or today(), status="pending", filed_by=actor))
    return await get_resignation(session, resignation_id)


async def get_resignation(session: AsyncSession, resignation_id: uuid.UUID) -> RowMapping:
    row = (await session.execute(select(resignation).where(resignation.c.id == resignation_id))).mappings().first()
    if row is None:
        raise NotFound("辞职申请", resignation_id)
    return row


async def decide_resignation(session: AsyncSession, *, outbox: Outbox, settings: RegistrySettings,
                             resignation_id: uuid.UUID, approve: bool, note: str, actor: str) -> RowMapping:
    """Approval dismisses on R8.1 ground 1 (own resignation), without a ban."""
    res = await get_resignation(session, resignation_id)
    if res["status"] != "pending":
        raise Conflict("invalid_transition", "辞职申请已处理", "该辞职申请已作出决定，不能重复处理。")
    await session.execute(update(resignation).where(resignation.c.id == resignation_id).values(
        status="approved" if approve else "rejected", decided_by=actor, decided_at=func.now(),
        decision_note=note))
    if approve:
        await dismiss(session, outbox=outbox, settings=settings, supervisor_id=res["supervisor_id"],
                      data=DismissalCreate(ground=rules.DismissalGround.RESIGNATION,
                                           evidence_note=f"本人辞职申请（{res['reason']}）"),
                      actor=actor, source="resignation")
    return await get_resignation(session, resignation_id)


async def get_dismissal(session: AsyncSession, dismissal_id: uuid.UUID) -> RowMapping:
    row = (await session.execute(select(dismissal).where(dismissal.c.id == dismissal_id))).mappings().first()
    if row is None:
        raise NotFound("免除资格记录", dismissal_id)
    return row


async def _execute_dismissal(session: AsyncSession, *, outbox: Outbox, settings: RegistrySettings,
                             row: RowMapping, dismissal_id: uuid.UUID, ground: int, actor: str) -> None:
    """R9.1: notices to four recipients, announcement, recall record; out of the draw pool at once (events)."""
    decided_at = datetime.now(UTC)
    decided_on = decided_at.astimezone(SHANGHAI).date()
    docs = rules.dismissal_documents(
        name=row["name"], employer=row["employer"], recommending_body=row["recommending_body"],
        procuratorate=settings.procuratorate_name, bureau=settings.bureau_name, ground=ground,
        decided_on=decided_on, certificate_no=row["certificate_no"], work_card_no=row["work_card_no"])
    banned = rules.bans_permanently(ground)
    recall = {"certificate_no": row["certificate_no"], "work_card_no": row["work_card_no"],
              "recalled_on": decided_on.isoformat(), "recorded_by": actor}
    await session.execute(update(dismissal).where(dismissal.c.id == dismissal_id).values(
        status="confirmed", permanent_ban=banned, decided_by=actor, decided_at=decided_at,
        notices=[{"recipient_kind": n.recipient_kind, "recipient": n.recipient, "text": n.text} for n in docs.notices],
        announcement=docs.announcement, recall=recall))
    final = Status.RESIGNED if ground == rules.DismissalGround.RESIGNATION else Status.DISMISSED
    await session.execute(update(supervisor).where(supervisor.c.id == row["id"]).values(
        status=final, updated_at=func.now(), **({"permanent_ban": True} if banned else {})))
    if banned:
        await session.execute(pg_insert(ban).values(
            person_hash=row["id_number_hash"], supervisor_id=row["id"], dismissal_id=dismissal_id, ground=ground,
        ).on_conflict_do_nothing())
    await outbox.add(session, SupervisorDismissed(supervisor_id=row["id"], ground=ground, decided_at=decided_at,
                                                  permanent_ban=banned))
    await sync_eligibility(session, outbox=outbox, supervisor_id=row["id"])
    await audit.append(session, platform.audit, actor=actor, action="supervisor.dismiss",
                       subject=f"supervisor:{row['id']}",
                       details={"dismissal_id": str(dismissal_id), "ground": ground, "permanent_ban": banned})


async def dismiss(session: AsyncSession, *, outbox: Outbox, settings: RegistrySettings, supervisor_id: uuid.UUID,
                  data: DismissalCreate, actor: str, source: str = "bureau") -> RowMapping:
    """R8.1: dismissal only on one of the six grounds with an evidence note; decided at once."""
    row = await get(session, supervisor_id, for_update=True)
    try:
        rules.check_transition("免除资格", row["status"], {Status.ACTIVE})
    except RuleViolation as v:
        raise problem(v) from v
    dismissal_id = uuid.uuid4()
    await session.execute(insert(dismissal).values(
        id=dismissal_id, supervisor_id=supervisor_id, ground=int(data.ground), evidence_note=data.evidence_note,
        status="pending", source=source, opened_by=actor))
    await _execute_dismissal(session, outbox=outbox, settings=settings, row=row, dismissal_id=dismissal_id,
                             ground=int(data.ground), actor=actor)
    return await get_dismissal(session, dismissal_id)


async def open_appraisal_case(session: AsyncSession, *, supervisor_id: uuid.UUID, round_id: uuid.UUID,
                              period: str) -> uuid.UUID | None:
    """R37.1: an annual 'unqualified' grade opens a pending dismissal case (ground 5), once per round and person."""
    status = await session.scalar(select(supervisor.c.status).where(supervisor.c.id == supervisor_id))
    if status != Status.ACTIVE:
        return None  # unknown or no longer serving: nothing to dismiss
    stmt = pg_insert(dismissal).values(
        id=uuid.uuid4(), supervisor_id=supervisor_id, ground=int(rules.DismissalGround.ANNUAL_UNQUALIFIED),
        evidence_note=f"{period}年度考核结果为不合格（考核轮次 {round_id}）", status="pending", source="appraisal",
        appraisal_round_id=round_id, opened_by="appraisal",
    ).on_conflict_do_nothing(constraint="uq_dismissal_round").returning(dismissal.c.id)
    return await session.scalar(stmt)


async def decide_case(session: AsyncSession, *, outbox: Outbox, settings: RegistrySettings,
                      dismissal_id: uuid.UUID, confirm: bool, evidence_note: str | None, actor: str) -> RowMapping:
    case = await get_dismissal(session, dismissal_id)
    if case["status"] != "pending":
        raise Conflict("invalid_transition", "该案件已处理", "该免除资格案件已确认或驳回，不能重复处理。")
    if confirm:
        row = await get(session, case["supervisor_id"], for_update=True)
        try:
            rules.check_transition("免除资格", row["status"], {Status.ACTIVE})
        except RuleViolation as v:
            raise problem(v) from v
        if evidence_note:
            await session.execute(update(dismissal).where(dismissal.c.id == dismissal_id)
                                  .values(evidence_note=evidence_note))
        await _execute_dismissal(session, outbox=outbox, settings=settings, row=row, dismissal_id=dismissal_id,
                                 ground=case["ground"], actor=actor)
    else:
        await session.execute(update(dismissal).where(dismissal.c.id == dismissal_id).values(
            status="rejected", decided_by=actor, decided_at=func.now()))
        await audit.append(session, platform.audit, actor=actor, action="dismissal.reject",
                           subject=f"supervisor:{case['supervisor_id']}", details={"dismissal_id": str(dismissal_id)})
    return await get_dismissal(session, dismissal_id)


async def record_exclusion(session: AsyncSession, *, outbox: Outbox, supervisor_id: uuid.UUID, ground: str,
                           actor: str) -> RowMapping:
    """N-EXCL: a recorded exclusion ground makes the person ineligible (dismissal on R8.1(6) is a separate step)."""
    await get(session, supervisor_id, for_update=True)
    await session.execute(update(supervisor).where(supervisor.c.id == supervisor_id).values(
        excluded_ground=ground, updated_at=func.now()))
    await sync_eligibility(session, outbox=outbox, supervisor_id=supervisor_id)
    await audit.append(session, platform.audit, actor=actor, action="supervisor.exclude",
                       subject=f"supervisor:{supervisor_id}", details={"ground": ground})
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


# --- training (R22.1–R24.1) ----------------------------------------------------------------------

async def create_session(session: AsyncSession, *, data: TrainingSessionCreate, actor: str,
                         session_id: uuid.UUID | None = None) -> RowMapping:
    session_id = session_id or uuid.uuid4()
    await session.execute(insert(training_session).values(
        id=session_id, kind=data.kind, format=data.format, title=data.title, held_on=data.held_on,
        hours=data.hours, created_by=actor))
    return await get_session_row(session, session_id)


async def get_session_row(session: AsyncSession, session_id: uuid.UUID) -> RowMapping:
    row = (await session.execute(select(training_session).where(training_session.c.id == session_id))
           ).mappings().first()
    if row is None:
        raise NotFound("培训班次", session_id)
    return row


async def attempts_of(session: AsyncSession, supervisor_id: uuid.UUID) -> list[rules.Attempt]:
    rows = (await session.execute(
        select(training_session.c.kind, training_record.c.attended, training_record.c.exam_passed)
        .join(training_session, training_session.c.id == training_record.c.session_id)
        .where(training_record.c.supervisor_id == supervisor_id))).all()
    return [rules.Attempt(k, a, p) for k, a, p in rows]


async def record_results(session: AsyncSession, *, outbox: Outbox, session_id: uuid.UUID,
                         results: list[TrainingResult], actor: str) -> int:
    """Attendance and exam per supervisor → `TrainingRecorded`; a passed initial/make-up exam can make eligible."""
    course = await get_session_row(session, session_id)
    for result in results:
        row = await get(session, result.supervisor_id, for_update=True)
        try:
            rules.check_transition("记录培训", row["status"], {Status.ACTIVE})
            rules.check_attempt_kind(course["kind"], await attempts_of(session, result.supervisor_id))
        except RuleViolation as v:
            raise problem(v) from v
        if not result.attended and result.exam_passed:
            raise Unprocessable("invalid_training_result", "培训结果矛盾", "未参加培训的人员不能记为考试通过。")
        if await session.scalar(select(exists().where(training_record.c.session_id == session_id,
                                                      training_record.c.supervisor_id == result.supervisor_id))):
            raise Conflict("duplicate_training_record", "培训记录已存在", "该人员在本班次的培训结果已记录。")
        await session.execute(insert(training_record).values(
            session_id=session_id, supervisor_id=result.supervisor_id, attended=result.attended,
            exam_passed=result.exam_passed, recorded_by=actor))
        await outbox.add(session, TrainingRecorded(
            supervisor_id=result.supervisor_id, session_id=session_id, kind=course["kind"], format=course["format"],
            date=course["held_on"], hours=float(course["hours"]), attended=result.attended,
            exam_passed=result.exam_passed))
        if rules.passes_initial(course["kind"], result.attended, result.exam_passed) and not row["initial_passed_on"]:
            await session.execute(update(supervisor).where(supervisor.c.id == result.supervisor_id).values(
                initial_passed_on=course["held_on"], updated_at=func.now()))
            await sync_eligibility(session, outbox=outbox, supervisor_id=result.supervisor_id)
    return len(results)


async def training_of(session: AsyncSession, supervisor_id: uuid.UUID) -> list[RowMapping]:
    return list((await session.execute(
        select(training_record.c.session_id, training_record.c.supervisor_id, training_session.c.kind,
               training_session.c.format, training_session.c.held_on, training_session.c.hours,
               training_record.c.attended, training_record.c.exam_passed)
        .join(training_session, training_session.c.id == training_record.c.session_id)
        .where(training_record.c.supervisor_id == supervisor_id).order_by(training_session.c.held_on)
    )).mappings().all())


DUE_COLUMNS = (supervisor.c.id, supervisor.c.name, supervisor.c.district, supervisor.c.decision_date,
               supervisor.c.initial_training_due)


def overdue_conditions(on: date) -> list[Any]:
    """R22.1: active appointees without a passed initial/make-up exam whose two months have run out."""
    c = supervisor.c
    return [c.status == Status.ACTIVE, c.initial_passed_on.is_(None), c.initial_training_due < on]


def makeup_conditions() -> list[Any]:
    """R22.2: active, not yet passed, and an initial/make-up attempt missed or failed."""
    c = supervisor.c
    failed = exists().where(
        training_record.c.supervisor_id == c.id, training_session.c.id == training_record.c.session_id,
        training_session.c.kind.in_(["initial", "makeup"]),
        or_(training_record.c.attended.is_(False), training_record.c.exam_passed.is_(False)))
    return [c.status == Status.ACTIVE, c.initial_passed_on.is_(None), failed]


def annual_absentee_conditions(year: int) -> list[Any]:
    """R23.1: active supervisors serving in `year` who attended no training session in that year."""
    c = supervisor.c
    attended = exists().where(
        training_record.c.supervisor_id == c.id, training_session.c.id == training_record.c.session_id,
        training_record.c.attended.is_(True),
        and_(training_session.c.held_on >= date(year, 1, 1), training_session.c.held_on <= date(year, 12, 31)))
    return [c.status == Status.ACTIVE, c.term_start <= date(year, 12, 31), c.term_end >= date(year, 1, 1), ~attended]


# --- simple lists --------------------------------------------------------------------------------

async def _page(session: AsyncSession, table: Any, where: list[Any], order: Sequence[Any], *, limit: int,
                offset: int) -> tuple[list[RowMapping], int]:
    rows = (await session.execute(select(table).where(*where).order_by(*order).limit(limit).offset(offset))
            ).mappings().all()
    total = await session.scalar(select(func.count()).select_from(table).where(*where)) or 0
    return list(rows), total


async def change_reports(session: AsyncSession, *, supervisor_id: uuid.UUID | None = None, status: str | None = None,
                         late: bool | None = None, district: str | None = None, limit: int, offset: int,
                         ) -> tuple[list[RowMapping], int]:
    c = change_report.c
    where: list[Any] = []
    if supervisor_id:
        where.append(c.supervisor_id == supervisor_id)
    if status:
        where.append(c.status == status)
    if late is not None:
        where.append(c.late.is_(late))
    if district:
        where.append(c.supervisor_id.in_(select(supervisor.c.id).where(supervisor.c.district == district)))
    return await _page(session, change_report, where, (c.created_at.desc(), c.id), limit=limit, offset=offset)


async def dismissals(session: AsyncSession, *, status: str | None, supervisor_id: uuid.UUID | None, limit: int,
                     offset: int) -> tuple[list[RowMapping], int]:
    c = dismissal.c
    where: list[Any] = []
    if status:
        where.append(c.status == status)
    if supervisor_id:
        where.append(c.supervisor_id == supervisor_id)
    return await _page(session, dismissal, where, (c.created_at.desc(), c.id), limit=limit, offset=offset)


async def sessions(session: AsyncSession, *, year: int | None, limit: int, offset: int,
                   ) -> tuple[list[RowMapping], int]:
    c = training_session.c
    where: list[Any] = []
    if year:
        where += [c.held_on >= date(year, 1, 1), c.held_on <= date(year, 12, 31)]
    return await _page(session, training_session, where, (c.held_on.desc(), c.id), limit=limit, offset=offset)


async def specialties(session: AsyncSession, *, include_inactive: bool) -> list[RowMapping]:
    query = select(specialty.c.name, specialty.c.active).order_by(specialty.c.created_at, specialty.c.name)
    if not include_inactive:
        query = query.where(specialty.c.active)
    return list((await session.execute(query)).mappings().all())


async def end_terms(session: AsyncSession, *, outbox: Outbox, actor: str, on: date | None = None) -> int:
    """Active supervisors whose term ended before `on` become `term_ended` (R4.1) and leave the pool (R22.3)."""
    on = on or today()
    ended = (await session.execute(
        update(supervisor).where(supervisor.c.status == Status.ACTIVE, supervisor.c.term_end < on)
        .values(status=Status.TERM_ENDED, updated_at=func.now()).returning(supervisor.c.id))).scalars().all()
    for supervisor_id in ended:
        await sync_eligibility(session, outbox=outbox, supervisor_id=supervisor_id, on=on)
    if ended:
        await audit.append(session, platform.audit, actor=actor, action="supervisor.end_terms",
                           subject="supervisors", details={"count": len(ended), "on": on.isoformat()})
    return len(ended)
