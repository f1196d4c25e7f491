"""Resignation, dismissal, appraisal results and exclusion use cases (R7.1, R8.1, R9.1, R37.1, N-BAN, N-EXCL)."""

import uuid
from typing import Any

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import papers, rules
from services.registry.appointments.service import end_current_term
from services.registry.config import RegistrySettings
from services.registry.models import appraisal_result, ban, dismissal, exclusion, platform, resignation, supervisor
from services.registry.roster.service import get, page_of, problem, sync_eligibility, today
from services.registry.rules import RuleViolation, Status
from services.registry.schemas import DismissalCreate, ResignationCreate
from shared import audit, clock
from shared.errors import Conflict, NotFound
from shared.events.contracts import SupervisorDismissed
from shared.events.outbox import Outbox


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


async def resignations_of(session: AsyncSession, supervisor_id: uuid.UUID) -> list[RowMapping]:
    """R7.1: a person's resignation applications, newest first."""
    return list((await session.execute(select(resignation).where(resignation.c.supervisor_id == supervisor_id)
                                       .order_by(resignation.c.applied_on.desc(), resignation.c.id))).mappings())


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
    decided_at = clock.now()
    decided_on = clock.local_date(decided_at)
    docs = rules.dismissal_documents(
        name=row["name"], employer=row["employer"], recommending_body=row["recommending_body"],
        procuratorate=settings.procuratorate_name, bureau=settings.bureau_name, ground=ground,
        decided_on=decided_on, certificate_no=row["certificate_no"], work_card_no=row["work_card_no"])
    banned = rules.bans_permanently(ground)
    recall = {"certificate_no": row["certificate_no"], "work_card_no": row["work_card_no"],
              "recalled_on": decided_on.isoformat(), "recorded_by": actor}
    # R9.1: the decision issues the papers: each notice and the announcement take their 文号 now, in decision order
    notices = [{**n.as_record(), "number": await papers.next_number(session, papers.NOTICE_KIND, decided_on.year)}
               for n in docs.notices]
    announcement_number = await papers.next_number(session, papers.ANNOUNCEMENT_KIND, decided_on.year)
    await session.execute(update(dismissal).where(dismissal.c.id == dismissal_id).values(
        status="confirmed", permanent_ban=banned, decided_by=actor, decided_at=decided_at,
        notices=notices, announcement=docs.announcement, announcement_number=announcement_number, recall=recall))
    final = Status.RESIGNED if ground == rules.DismissalGround.RESIGNATION else Status.DISMISSED
    await session.execute(update(supervisor).where(supervisor.c.id == row["id"]).values(
        status=final, updated_at=func.now(), **({"permanent_ban": True} if banned else {})))
    # N-BAN: the term ends early; the person (id hash) may be appointed again unless banned
    await end_current_term(session, supervisor_id=row["id"], on=decided_on, reason=str(final),
                           term_start=row["term_start"])
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
    round_id = data.appraisal_round_id
    try:
        rules.check_transition("免除资格", row["status"], {Status.ACTIVE})
        rules.check_ground_basis(data.ground, appraisal_round_id=round_id,
                                 result=await appraisal_result_of(session, supervisor_id, round_id))
    except RuleViolation as v:
        raise problem(v) from v
    if round_id is not None:
        pending = await session.scalar(select(dismissal.c.id).where(
            dismissal.c.supervisor_id == supervisor_id, dismissal.c.appraisal_round_id == round_id))
        if pending is not None:
            raise Conflict("R8.1", "该考核结果已有免除资格案件",
                           f"依据该考核结果的免除资格案件已存在（{pending}），请确认或驳回该案件。")
    dismissal_id = uuid.uuid4()
    await session.execute(insert(dismissal).values(
        id=dismissal_id, supervisor_id=supervisor_id, ground=int(data.ground), evidence_note=data.evidence_note,
        status="pending", source=source, opened_by=actor, appraisal_round_id=round_id))
    await _execute_dismissal(session, outbox=outbox, settings=settings, row=row, dismissal_id=dismissal_id,
                             ground=int(data.ground), actor=actor)
    return await get_dismissal(session, dismissal_id)


async def appraisal_result_of(session: AsyncSession, supervisor_id: uuid.UUID,
                              round_id: uuid.UUID | None) -> rules.AppraisalResult | None:
    """The AppraisalFinalized result received for (round, person), if any (R8.1 ground 5)."""
    if round_id is None:
        return None
    r = appraisal_result.c
    row = (await session.execute(select(r.kind, r.grade, r.period).where(
        r.round_id == round_id, r.supervisor_id == supervisor_id))).first()
    return rules.AppraisalResult(row.kind, row.grade, row.period) if row else None


async def record_appraisal_result(session: AsyncSession, *, round_id: uuid.UUID, supervisor_id: uuid.UUID,
                                  kind: str, period: str, grade: str, finalized_at: Any,
                                  event_id: uuid.UUID | None) -> None:
    """R8.1(5): keep every AppraisalFinalized result received (a re-finalized round replaces its result)."""
    values = dict(kind=kind, period=period, grade=grade, finalized_at=finalized_at, event_id=event_id)
    stmt = pg_insert(appraisal_result).values(round_id=round_id, supervisor_id=supervisor_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["round_id", "supervisor_id"],
                                                     set_={**values, "received_at": func.now()}))


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
            rules.check_ground_basis(case["ground"], appraisal_round_id=case["appraisal_round_id"],
                                     result=await appraisal_result_of(session, case["supervisor_id"],
                                                                      case["appraisal_round_id"]))
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
                           note: str, actor: str) -> RowMapping:
    """N-EXCL: a recorded exclusion ground (with its note) makes the person ineligible and unappointable;
    dismissal on R8.1(6) is a separate step."""
    row = await get(session, supervisor_id, for_update=True)
    if row["excluded_ground"] is not None:
        raise Conflict("exclusion_in_force", "已记录不得担任情形",
                       "该人员已有未解除的不得担任情形记录；如需更改，请先解除该记录。")
    exclusion_id = uuid.uuid4()
    await session.execute(insert(exclusion).values(
        id=exclusion_id, supervisor_id=supervisor_id, person_hash=row["id_number_hash"], ground=ground, note=note,
        recorded_by=actor))
    await session.execute(update(supervisor).where(supervisor.c.id == supervisor_id).values(
        excluded_ground=ground, updated_at=func.now()))
    await sync_eligibility(session, outbox=outbox, supervisor_id=supervisor_id)
    await audit.append(session, platform.audit, actor=actor, action="supervisor.exclude",
                       subject=f"supervisor:{supervisor_id}", details={"ground": ground,
                                                                      "exclusion_id": str(exclusion_id)})
    return await get(session, supervisor_id)


async def get_exclusion(session: AsyncSession, exclusion_id: uuid.UUID, *, for_update: bool = False) -> RowMapping:
    query = select(exclusion).where(exclusion.c.id == exclusion_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).mappings().first()
    if row is None:
        raise NotFound("不得担任情形记录", exclusion_id)
    return row


async def lift_exclusion(session: AsyncSession, *, outbox: Outbox, exclusion_id: uuid.UUID, reason: str,
                         actor: str) -> RowMapping:
    """N-EXCL: an exclusion is lifted with a reason (kept); the person becomes eligible again if nothing else bars."""
    record = await get_exclusion(session, exclusion_id, for_update=True)
    if record["lifted_at"] is not None:
        raise Conflict("invalid_transition", "该记录已解除", "该不得担任情形记录已经解除，不能重复解除。")
    await get(session, record["supervisor_id"], for_update=True)
    await session.execute(update(exclusion).where(exclusion.c.id == exclusion_id).values(
        lifted_by=actor, lifted_at=clock.now(), lift_reason=reason))
    await session.execute(update(supervisor).where(supervisor.c.id == record["supervisor_id"]).values(
        excluded_ground=None, updated_at=func.now()))
    await sync_eligibility(session, outbox=outbox, supervisor_id=record["supervisor_id"])
    await audit.append(session, platform.audit, actor=actor, action="supervisor.exclusion_lifted",
                       subject=f"supervisor:{record['supervisor_id']}", details={"exclusion_id": str(exclusion_id)})
    return await get_exclusion(session, exclusion_id)


async def exclusions_of(session: AsyncSession, supervisor_id: uuid.UUID) -> list[RowMapping]:
    return list((await session.execute(select(exclusion).where(exclusion.c.supervisor_id == supervisor_id)
                                       .order_by(exclusion.c.recorded_at, exclusion.c.id))).mappings().all())



async def dismissals(session: AsyncSession, *, status: str | None, supervisor_id: uuid.UUID | None, limit: int,
                     offset: int) -> tuple[list[RowMapping], int]:
    c = dismissal.c
    where: list[Any] = []
    if status:
        where.append(c.status == status)
    if supervisor_id:
        where.append(c.supervisor_id == supervisor_id)
    return await page_of(session, dismissal, where, (c.created_at.desc(), c.id), limit=limit, offset=offset)
