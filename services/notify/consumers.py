"""Events notify turns into messages for people (and the request details its activity notices need).

Idempotent twice over: the inbox drops a redelivered envelope, and each message's dedupe key
(`event:<envelope id>:<recipient>`) makes a second delivery of the same event (e.g. through gap repair)
store nothing. Only what the events carry is used: SupervisorDrawn (PERSONAL, sealed in its producer's
outbox, plain on the signed wire) gives the phone, which is stored sealed with the delivery and never
in a message; the other supervisor notices find the phone in the registry when the SMS is sent.
"""

import logging

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import rules
from services.notify import service as svc
from shared import clock
from shared.events.contracts import (
    AppraisalFinalized,
    CommendationIssued,
    DefenceNoticeSent,
    DrawCompleted,
    FeedbackSigned,
    MaterialsShared,
    OpinionAdoptionNotified,
    OpinionRecorded,
    ReceiptMismatchDetected,
    RecusalDecided,
    RecusalRequested,
    SubsidyApproved,
    SubsidyPaid,
    SupervisionRequested,
    SupervisionRequestRefused,
    SupervisorAbsenceRecorded,
    SupervisorAsked,
    SupervisorDrawn,
    SupervisorReleased,
)
from shared.events.envelope import Envelope

log = logging.getLogger(__name__)


def build_handlers(app: FastAPI) -> dict:
    """The event type → handler map (handlers use the app's settings and cipher)."""

    async def store(session: AsyncSession, envelope: Envelope, drafts: list[rules.Draft], phone: str | None = None):
        await svc.record(session, drafts, key_prefix=f"event:{envelope.id}", source=envelope.source,
                         settings=app.state.settings, cipher=app.state.cipher, event_id=envelope.id, phone=phone)

    async def on_requested(session: AsyncSession, event: SupervisionRequested, envelope: Envelope) -> None:
        await svc.save_request(session, request_id=event.request_id, activity_id=event.activity_id,
                               activity_type=event.activity_type, office=event.office, district=event.district,
                               place=event.place, starts_at=event.starts_at, ends_at=event.ends_at)
        if event.short_notice is not None:  # R10.2: waits for the bureau's consent
            await store(session, envelope, rules.short_notice_consent(
                request_id=event.request_id, activity_type=event.activity_type, district=event.district,
                office=event.office, starts_at=event.starts_at, reason=event.short_notice.reason))

    async def on_asked(session: AsyncSession, event: SupervisorAsked, envelope: Envelope) -> None:
        activity = await svc.activity_of(session, event.request_id)
        await store(session, envelope, [rules.supervisor_asked(
            request_id=event.request_id, supervisor_id=event.supervisor_id, draw_order=event.draw_order,
            activity=activity, now=clock.now())])

    async def on_drawn(session: AsyncSession, event: SupervisorDrawn, envelope: Envelope) -> None:
        activity = await svc.activity_of(session, event.request_id)
        await store(session, envelope, [rules.supervisor_drawn(
            request_id=event.request_id, supervisor_id=event.supervisor_id, activity=activity, now=clock.now())],
            phone=event.phone)

    async def on_released(session: AsyncSession, event: SupervisorReleased, envelope: Envelope) -> None:
        activity = await svc.activity_of(session, event.request_id)
        await store(session, envelope, [rules.supervisor_released(
            request_id=event.request_id, supervisor_id=event.supervisor_id, reason=event.reason, activity=activity,
            now=clock.now())])

    async def on_recusal_decided(session: AsyncSession, event: RecusalDecided, envelope: Envelope) -> None:
        activity = await svc.activity_of(session, event.request_id)
        await store(session, envelope, [rules.recusal_decided(
            request_id=event.request_id, supervisor_id=event.supervisor_id, granted=event.granted,
            activity=activity, now=clock.now())])

    async def on_absence(session: AsyncSession, event: SupervisorAbsenceRecorded, envelope: Envelope) -> None:
        await store(session, envelope, [rules.absence_recorded(
            request_id=event.request_id, supervisor_id=event.supervisor_id, activity_date=event.activity_date)])

    async def on_draw_completed(session: AsyncSession, event: DrawCompleted, envelope: Envelope) -> None:
        if any(event.shortfall.values()):  # R14.1
            activity = await svc.activity_of(session, event.request_id)
            await store(session, envelope, rules.short_staffed(request_id=event.request_id,
                                                               shortfall=dict(event.shortfall), activity=activity))

    async def on_recusal_requested(session: AsyncSession, event: RecusalRequested, envelope: Envelope) -> None:
        activity = await svc.activity_of(session, event.request_id)
        await store(session, envelope, rules.recusal_to_decide(
            request_id=event.request_id, supervisor_id=event.supervisor_id, source=event.source, activity=activity))

    async def on_refused(session: AsyncSession, event: SupervisionRequestRefused, envelope: Envelope) -> None:
        activity = await svc.activity_of(session, event.request_id)
        await store(session, envelope, rules.request_refused(request_id=event.request_id, code=event.code,
                                                             detail=event.detail, activity=activity))

    async def on_mismatch(session: AsyncSession, event: ReceiptMismatchDetected, envelope: Envelope) -> None:
        await store(session, envelope, rules.receipt_mismatch(request_id=event.request_id,
                                                              failed_checks=list(event.failed_checks)))

    async def on_signed(session: AsyncSession, event: FeedbackSigned, envelope: Envelope) -> None:
        await store(session, envelope, [rules.feedback_signed(
            activity_id=event.activity_id, supervisor_id=event.supervisor_id, activity_date=event.activity_date)])

    async def on_adoption(session: AsyncSession, event: OpinionAdoptionNotified, envelope: Envelope) -> None:
        await store(session, envelope, [rules.opinion_adoption(
            activity_id=event.activity_id, supervisor_id=event.supervisor_id, adopted=event.adopted,
            reason=event.reason)])

    async def on_finalized(session: AsyncSession, event: AppraisalFinalized, envelope: Envelope) -> None:
        await store(session, envelope, [rules.appraisal_finalized(
            round_id=event.round_id, supervisor_id=event.supervisor_id, kind=event.kind, period=event.period,
            grade=event.grade, result_version=event.result_version)])

    async def on_commended(session: AsyncSession, event: CommendationIssued, envelope: Envelope) -> None:
        await store(session, envelope, [rules.commendation_issued(round_id=event.round_id,
                                                                  supervisor_id=event.supervisor_id, kind=event.kind)])

    async def on_subsidy(session: AsyncSession, event: SubsidyApproved, envelope: Envelope) -> None:
        await store(session, envelope, [rules.subsidy_approved(line_id=event.line_id, supervisor_id=event.supervisor_id,
                                                               amount_fen=event.amount_fen)])

    async def on_materials(session: AsyncSession, event: MaterialsShared, envelope: Envelope) -> None:
        activity = await svc.activity_of_activity(session, event.activity_id)
        await store(session, envelope, [rules.materials_shared(activity_id=event.activity_id, supervisor_id=s,
                                                               activity=activity) for s in event.supervisor_ids])

    async def on_opinion(session: AsyncSession, event: OpinionRecorded, envelope: Envelope) -> None:
        activity = await svc.activity_of_activity(session, event.activity_id)
        await store(session, envelope, [rules.opinion_recorded(
            activity_id=event.activity_id, supervisor_id=event.supervisor_id, source=event.source,
            version=event.version, activity=activity)])

    async def on_defence_notice(session: AsyncSession, event: DefenceNoticeSent, envelope: Envelope) -> None:
        await store(session, envelope, [rules.defence_notice_sent(
            round_id=event.round_id, supervisor_id=event.supervisor_id, kind=event.kind, period=event.period,
            sent_on=event.sent_on, window_end=event.window_end)])

    async def on_paid(session: AsyncSession, event: SubsidyPaid, envelope: Envelope) -> None:
        await store(session, envelope, [rules.subsidy_paid(line_id=event.line_id, supervisor_id=event.supervisor_id,
                                                           amount_fen=event.amount_fen, paid_on=event.paid_on)])

    return {
        MaterialsShared: on_materials, OpinionRecorded: on_opinion, DefenceNoticeSent: on_defence_notice,
        SubsidyPaid: on_paid,
        SupervisionRequested: on_requested, SupervisorAsked: on_asked, SupervisorDrawn: on_drawn,
        SupervisorReleased: on_released,
        RecusalDecided: on_recusal_decided, SupervisorAbsenceRecorded: on_absence, DrawCompleted: on_draw_completed,
        RecusalRequested: on_recusal_requested, SupervisionRequestRefused: on_refused,
        ReceiptMismatchDetected: on_mismatch, FeedbackSigned: on_signed, OpinionAdoptionNotified: on_adoption,
        AppraisalFinalized: on_finalized, CommendationIssued: on_commended, SubsidyApproved: on_subsidy,
    }
