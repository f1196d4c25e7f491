"""Opinions (R16.1), the feedback form and its signatures (R17.1), adoption notices (R18.1).
The caller owns the transaction: nothing here commits."""

import hashlib
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import pdf, rules
from services.casework.access import (
    audit_log,
    ensure_office,
    is_participant,
    live_roster,
    require_activity,
)
from services.casework.models import (
    adoption,
    documents,
    feedback_form,
    opinion,
    opinion_version,
    roster,
    signature,
)
from services.casework.requests.service import current_request, known_request
from shared import activity_types, clock
from shared.auth import Principal, Role, forbidden
from shared.clock import SHANGHAI, local_date
from shared.documents import archive
from shared.documents.words import document_number
from shared.errors import Conflict, ProblemError
from shared.events.contracts import (
    FeedbackSigned,
    OpinionAdoptionNotified,
    OpinionRecorded,
)
from shared.events.outbox import Outbox


async def form_of(session: AsyncSession, activity_id: uuid.UUID, *, lock: bool = False):
    stmt = select(feedback_form).where(feedback_form.c.activity_id == activity_id)
    return (await session.execute(stmt.with_for_update() if lock else stmt)).first()


# --- opinions (R16.1) -----------------------------------------------------------------------------

async def record_opinion(session: AsyncSession, *, outbox: Outbox, act, supervisor_id: uuid.UUID, text: str,
                         principal: Principal) -> dict[str, Any]:
    """R16.1: the opinion verbatim with its history; the supervisor's own words, or the procuratorate's record of an
    oral opinion, which never overwrites what the supervisor wrote; refused once the form is signed."""
    if principal.is_self(supervisor_id) and principal.has(Role.SUPERVISOR):
        source = "supervisor"
    elif principal.has(Role.PROCURATORATE):
        ensure_office(principal, act)
        source = "procuratorate_record"
    else:
        raise forbidden("只有承办检察院或人民监督员本人可以记录监督意见。")
    rules.check_opinion_text(text)
    if not await is_participant(session, act.id, supervisor_id):
        raise Conflict("R16.1", "该人民监督员未参加本活动", "只能记录确认参加本活动的人民监督员的意见。")
    rules.check_not_frozen(await form_of(session, act.id) is not None)
    versions = (await session.execute(select(opinion_version.c.version, opinion_version.c.source).where(
        opinion_version.c.activity_id == act.id, opinion_version.c.supervisor_id == supervisor_id))).all()
    rules.check_opinion_write(source, supervisor_wrote=any(v.source == "supervisor" for v in versions))
    version = max((v.version for v in versions), default=0) + 1
    at = clock.now()
    await session.execute(insert(opinion_version).values(
        activity_id=act.id, supervisor_id=supervisor_id, version=version, text=text, source=source,
        recorded_by=principal.subject, recorded_at=at))
    values = dict(text=text, recorded_by=principal.subject, recorded_at=at, source=source, version=version)
    row = (await session.execute(insert(opinion).values(activity_id=act.id, supervisor_id=supervisor_id, **values)
                                 .on_conflict_do_update(index_elements=[opinion.c.activity_id,
                                                                        opinion.c.supervisor_id], set_=values)
                                 .returning(*opinion.c))).one()
    await audit_log(session, actor=principal.subject, action="opinion.recorded", subject=f"activity:{act.id}",
                 supervisor_id=str(supervisor_id), source=source, version=version)
    # the supervisor is told what was recorded for them and that the form waits for their signature (R17.1)
    await outbox.add(session, OpinionRecorded(activity_id=act.id, supervisor_id=supervisor_id, source=source,
                                              version=version, recorded_at=at))
    return opinion_dict(row)


def opinion_dict(r) -> dict[str, Any]:
    return {"activity_id": r.activity_id, "supervisor_id": r.supervisor_id, "text": r.text, "source": r.source,
            "version": r.version, "recorded_by": r.recorded_by, "recorded_at": r.recorded_at, "frozen": r.frozen}


async def list_opinions(session: AsyncSession, activity_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = (await session.execute(select(opinion).where(opinion.c.activity_id == activity_id)
                                  .order_by(opinion.c.supervisor_id))).all()
    return [opinion_dict(r) for r in rows]


async def opinion_history(session: AsyncSession, activity_id: uuid.UUID,
                          supervisor_id: uuid.UUID) -> list[dict[str, Any]]:
    """R16.1: every version of one supervisor's opinion, oldest first."""
    rows = (await session.execute(select(opinion_version).where(
        opinion_version.c.activity_id == activity_id, opinion_version.c.supervisor_id == supervisor_id)
        .order_by(opinion_version.c.version))).all()
    return [{"activity_id": r.activity_id, "supervisor_id": r.supervisor_id, "version": r.version, "text": r.text,
             "source": r.source, "recorded_by": r.recorded_by, "recorded_at": r.recorded_at} for r in rows]


# --- feedback form and signatures (R17.1) ---------------------------------------------------------

async def participants(session: AsyncSession, activity_id: uuid.UUID) -> list:
    """Confirmed supervisors of the activity (observers are not participants, R19.1)."""
    return (await session.execute(select(roster).where(roster.c.activity_id == activity_id,
                                                       roster.c.status == "confirmed", live_roster())
                                  .order_by(roster.c.supervisor_id))).all()


def _activity_facts(act) -> dict[str, Any]:
    return {"id": str(act.id), "case_ref": act.case_ref, "activity_type": act.activity_type,
            "activity_type_label": activity_types.label(act.activity_type),
            "other_description": act.other_description, "office": act.office, "district": act.district,
            "starts_at": act.starts_at.astimezone(SHANGHAI).isoformat(),
            "ends_at": act.ends_at.astimezone(SHANGHAI).isoformat(), "place": act.place}


async def draft_content(session: AsyncSession, act) -> dict[str, Any]:
    """R17.1: the form as it would be signed now (live until the first signature)."""
    people = await participants(session, act.id)
    opinions = {o["supervisor_id"]: o for o in await list_opinions(session, act.id)}
    adoptions = {r.supervisor_id: r.adopted for r in (await session.execute(
        select(adoption).where(adoption.c.activity_id == act.id))).all()}
    rows = []
    for p in people:
        o = opinions.get(p.supervisor_id)
        rows.append({"supervisor_id": p.supervisor_id, "name": p.name, "opinion": o["text"] if o else None,
                     "opinion_source": o["source"] if o else None, "adopted": adoptions.get(p.supervisor_id)})
    return rules.form_content(activity=_activity_facts(act), summary=act.summary, participants=rows)


async def adoption_annex(session: AsyncSession, act, content: dict[str, Any], *,
                         frozen: bool) -> list[dict[str, Any]]:
    """R17.1/R18.1: the adoption decisions of the form's participants, shown beside the signed content as a dated
    annex (the signed content itself never changes)."""
    names = {p["supervisor_id"]: p for p in content["participants"]}
    rows = (await session.execute(select(adoption).where(adoption.c.activity_id == act.id)
                                  .order_by(adoption.c.notified_at))).all()
    return [{"supervisor_id": r.supervisor_id, "name": names[str(r.supervisor_id)]["name"], "adopted": r.adopted,
             "reason": r.reason, "decided_by": r.decided_by, "decided_at": r.notified_at,
             "at_signing": names[str(r.supervisor_id)]["adoption"] if frozen else None}
            for r in rows if str(r.supervisor_id) in names]


async def form_view(session: AsyncSession, act) -> dict[str, Any]:
    form = await form_of(session, act.id)
    content = form.content if form else await draft_content(session, act)
    sigs = []
    if form:
        sigs = [{"supervisor_id": s.supervisor_id, "signed_at": s.signed_at, "method": s.method,
                 "content_hash": s.content_hash, "signature_hash": s.signature_hash,
                 "has_image": s.image is not None}
                for s in (await session.execute(select(signature).where(signature.c.form_id == form.id)
                                                .order_by(signature.c.signed_at))).all()]
    return {"form_id": form.id if form else None, "activity_id": act.id, "status":
            "draft" if form is None else ("signed" if form.completed_at else "signing"),
            "content": content, "content_hash": form.content_hash if form else rules.content_hash(content),
            "frozen_at": form.frozen_at if form else None, "completed_at": form.completed_at if form else None,
            "number": form.number if form else None,
            "signatures": sigs, "adoption_annex": await adoption_annex(session, act, content, frozen=form is not None)}


async def sign(session: AsyncSession, *, outbox: Outbox, act, principal: Principal, method: str,
               expected_hash: str | None, image: bytes | None) -> dict[str, Any]:
    """R17.1: a participant signs exactly the frozen content on site (once the activity has begun); each signature
    publishes its own FeedbackSigned at once (nobody waits for another's signature)."""
    if not principal.has(Role.SUPERVISOR) or not await is_participant(session, act.id, principal.supervisor_id):
        raise ProblemError(403, "R17.1", "仅参加活动的人民监督员本人可以签字",
                           "依据 R17.1，反馈表由参加活动的人民监督员本人现场签字确认。")
    if act.status == "cancelled":
        rules.check_activity_open(act.status)
    at = clock.now()
    rules.check_started(act.starts_at, at, code="R17.1")
    supervisor_id = uuid.UUID(principal.supervisor_id or "")
    form = await form_of(session, act.id, lock=True)
    if form is None:
        req = await current_request(session, act.id)
        content = await draft_content(session, act)
        missing = [p["name"] for p in content["participants"] if not p["opinion"]]
        if missing:
            raise Conflict("R16.1", "尚有人民监督员的意见未记录",
                           f"请先记录以下人民监督员的监督意见：{'、'.join(missing)}。")
        await session.execute(insert(feedback_form).values(
            id=uuid.uuid4(), activity_id=act.id, request_id=req.id, content=content,
            content_hash=rules.content_hash(content), frozen_at=at).on_conflict_do_nothing())
        await session.execute(update(opinion).where(opinion.c.activity_id == act.id).values(frozen=True))
        form = await form_of(session, act.id, lock=True)
    if expected_hash is not None and expected_hash != form.content_hash:
        raise Conflict("R17.1", "签署内容与反馈表不一致", "反馈表内容已变化，请重新核对后签字。")
    signers = {p["supervisor_id"] for p in form.content["participants"]}
    if str(supervisor_id) not in signers:
        raise ProblemError(403, "R17.1", "不在本反馈表的签字人之列", "反馈表内容固定时您不在参加人员名单中。")
    done = await session.scalar(select(exists().where(signature.c.form_id == form.id,
                                                      signature.c.supervisor_id == supervisor_id)))
    if done:
        raise Conflict("already_signed", "您已签字", "同一人民监督员对同一反馈表只签字一次。")
    image_sha = hashlib.sha256(image).hexdigest() if image else None
    sig_hash = rules.signature_hash(form_id=str(form.id), supervisor_id=str(supervisor_id),
                                    content_hash=form.content_hash, signed_at=at, method=method,
                                    image_sha256=image_sha)
    await session.execute(insert(signature).values(
        form_id=form.id, supervisor_id=supervisor_id, signed_by=principal.subject, signed_at=at, method=method,
        content_hash=form.content_hash, signature_hash=sig_hash, image=image, image_sha256=image_sha))
    adopted = await session.scalar(select(adoption.c.adopted).where(adoption.c.activity_id == act.id,
                                                                   adoption.c.supervisor_id == supervisor_id))
    await outbox.add(session, FeedbackSigned(
        form_id=form.id, activity_id=act.id, request_id=form.request_id, supervisor_id=supervisor_id,
        activity_type=act.activity_type, activity_date=local_date(act.starts_at), district=act.district,
        adopted=adopted, signed_at=at, signature_hash=sig_hash, content_hash=form.content_hash, method=method,
        image_sha256=image_sha))
    await complete_if_signed(session, act=act, form=form, at=at)
    view = await form_view(session, act)
    # last: the audit chain's lock is held until commit, so take it as late as possible
    await audit_log(session, actor=principal.subject, action="form.signed", subject=f"form:{form.id}",
                 supervisor_id=str(supervisor_id), method=method, content_hash=form.content_hash)
    return view


async def complete_if_signed(session: AsyncSession, *, act, form, at: datetime) -> bool:
    """R17.1: every signer present has signed → the form is completed (its FeedbackSigned left with each signature)
    and numbered: 威检监反〔year of completion〕n号, the next of the year's gap-free sequence (the sequence row stays
    locked until this transaction commits). A read of the form never numbers it.

    Signers are the participants of the frozen content, less those the bureau recorded absent.
    """
    absent = {str(sid) for sid in (await session.scalars(select(roster.c.supervisor_id).where(
        roster.c.activity_id == act.id, roster.c.status == "absent"))).all()}
    signers = {p["supervisor_id"] for p in form.content["participants"]} - absent
    signed = {str(sid) for sid in (await session.scalars(select(signature.c.supervisor_id).where(
        signature.c.form_id == form.id))).all()}
    if form.completed_at is not None or not signers or not signed >= signers:
        return False
    year = local_date(at).year
    number = document_number(pdf.NUMBER_CODE, year, await archive.next_sequence(session, documents, pdf.KIND, year))
    await session.execute(update(feedback_form).where(feedback_form.c.id == form.id).values(completed_at=at,
                                                                                          number=number))
    return True


async def on_absent(session: AsyncSession, *, outbox: Outbox, request_id: uuid.UUID, supervisor_id: uuid.UUID,
                    reason: str, recorded_at: datetime) -> bool:
    """The bureau recorded a confirmed supervisor absent: no longer a signer or participant (no subsidy)."""
    req = await known_request(session, request_id)
    if req is None:
        return False
    changed = (await session.execute(update(roster).where(
        roster.c.request_id == request_id, roster.c.supervisor_id == supervisor_id, roster.c.status == "confirmed",
    ).values(status="absent", absent_at=recorded_at, absence_reason=reason))).rowcount
    act = await require_activity(session, req.activity_id)
    form = await form_of(session, act.id, lock=True)
    if changed and form is not None:  # the others may all have signed already
        await complete_if_signed(session, act=act, form=form, at=clock.now())
    return bool(changed)


async def signature_image(session: AsyncSession, *, act, supervisor_id: uuid.UUID) -> bytes | None:
    form = await form_of(session, act.id)
    if form is None:
        return None
    return await session.scalar(select(signature.c.image).where(signature.c.form_id == form.id,
                                                               signature.c.supervisor_id == supervisor_id))


# --- adoption notice (R18.1) ----------------------------------------------------------------------

async def decide_adoption(session: AsyncSession, *, outbox: Outbox, act, supervisor_id: uuid.UUID, adopted: bool,
                          reason: str, principal: Principal) -> dict[str, Any]:
    """R18.1: adoption decision + reason per opinion, notified to the supervisor (never edits the signed form)."""
    if await session.scalar(select(exists().where(opinion.c.activity_id == act.id,
                                                  opinion.c.supervisor_id == supervisor_id))) is not True:
        raise Conflict("R18.1", "没有该人民监督员的监督意见", "只能对已记录的监督意见作出采纳决定。")
    at = clock.now()
    values = dict(adopted=adopted, reason=reason, decided_by=principal.subject, notified_at=at)
    row = (await session.execute(insert(adoption).values(activity_id=act.id, supervisor_id=supervisor_id, **values)
                                 .on_conflict_do_update(index_elements=[adoption.c.activity_id,
                                                                        adoption.c.supervisor_id], set_=values)
                                 .returning(*adoption.c))).one()
    await outbox.add(session, OpinionAdoptionNotified(activity_id=act.id, supervisor_id=supervisor_id,
                                                      adopted=adopted, reason=reason, notified_at=at))
    await audit_log(session, actor=principal.subject, action="adoption.notified", subject=f"activity:{act.id}",
                 supervisor_id=str(supervisor_id), adopted=adopted)
    return adoption_dict(row)


def adoption_dict(r) -> dict[str, Any]:
    return {"activity_id": r.activity_id, "supervisor_id": r.supervisor_id, "adopted": r.adopted,
            "reason": r.reason, "decided_by": r.decided_by, "notified_at": r.notified_at}


async def notices_of(session: AsyncSession, supervisor_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = (await session.execute(select(adoption).where(adoption.c.supervisor_id == supervisor_id)
                                  .order_by(adoption.c.notified_at.desc()).limit(200))).all()
    return [adoption_dict(r) for r in rows]
