"""Events casework consumes: selection's answers to its requests (R10, R12.1, R13.2, R14.2; DRAW.md protocol).

Idempotent: the inbox drops a redelivered envelope, and every handler is an upsert/state set keyed by
(request, supervisor) or draw; a second SupervisionAccepted never overwrites the first. Events of requests
casework did not make (e.g. the bureau's own POST /requests) are ignored.
"""

import logging

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import service as svc
from shared.events.contracts import (
    DrawCompleted,
    RecusalDecided,
    SupervisionAccepted,
    SupervisionRequestRefused,
    SupervisionStaffed,
    SupervisorAbsenceRecorded,
    SupervisorDrawn,
    SupervisorReleased,
)
from shared.events.envelope import Envelope

log = logging.getLogger(__name__)


def build_handlers(app: FastAPI) -> dict:
    """The event type → handler map (handlers use the app's cipher for phones and nonce, its outbox for the reveal)."""
    cipher, outbox = app.state.cipher, app.state.outbox

    def unknown(event_type: str, request_id: object) -> None:
        log.debug("%s for unknown request %s ignored", event_type, request_id)

    async def on_accepted(session: AsyncSession, event: SupervisionAccepted, envelope: Envelope) -> None:
        if not await svc.on_accepted(
                session, outbox=outbox, cipher=cipher, request_id=event.request_id, accepted_at=event.accepted_at,
                bureau_commitment=event.bureau_commitment, snapshot_hash=event.snapshot_hash,
                params_hash=event.params_hash,
                beacon=event.beacon.model_dump(mode="json") if event.beacon else None,
                short_notice_consent=(event.short_notice_consent.model_dump(mode="json")
                                      if event.short_notice_consent else None)):
            unknown(event.TYPE, event.request_id)

    async def on_draw_completed(session: AsyncSession, event: DrawCompleted, envelope: Envelope) -> None:
        if not await svc.on_draw_completed(session, request_id=event.request_id, draw_id=event.draw_id,
                                           round_no=event.round, receipt_hash=event.receipt_hash,
                                           shortfall=dict(event.shortfall)):
            unknown(event.TYPE, event.request_id)

    async def on_drawn(session: AsyncSession, event: SupervisorDrawn, envelope: Envelope) -> None:
        if not await svc.on_drawn(session, cipher=cipher, request_id=event.request_id,
                                  supervisor_id=event.supervisor_id, name=event.name, phone=event.phone,
                                  district=event.district, group=event.group, draw_order=event.draw_order,
                                  confirmed_at=event.confirmed_at, contact_log_head=event.contact_log_head):
            unknown(event.TYPE, event.request_id)

    async def on_released(session: AsyncSession, event: SupervisorReleased, envelope: Envelope) -> None:
        await svc.on_released(session, request_id=event.request_id, supervisor_id=event.supervisor_id,
                              reason=event.reason, replaced_by=event.replaced_by,
                              contact_log_head=event.contact_log_head)

    async def on_staffed(session: AsyncSession, event: SupervisionStaffed, envelope: Envelope) -> None:
        await svc.on_staffed(session, request_id=event.request_id, receipt_hash=event.receipt_hash,
                             contact_log_head=event.contact_log_head)

    async def on_refused(session: AsyncSession, event: SupervisionRequestRefused, envelope: Envelope) -> None:
        await svc.on_refused(session, request_id=event.request_id, code=event.code,
                             earliest=event.earliest_allowed_date, detail=event.detail)

    async def on_absent(session: AsyncSession, event: SupervisorAbsenceRecorded, envelope: Envelope) -> None:
        await svc.on_absent(session, outbox=outbox, request_id=event.request_id, supervisor_id=event.supervisor_id,
                            reason=event.reason, recorded_at=event.recorded_at)

    async def on_recusal_decided(session: AsyncSession, event: RecusalDecided, envelope: Envelope) -> None:
        await svc.on_recusal_decided(session, request_id=event.request_id, supervisor_id=event.supervisor_id,
                                     granted=event.granted, decided_by=event.decided_by, reason=event.reason)

    return {
        SupervisionAccepted: on_accepted,
        DrawCompleted: on_draw_completed,
        SupervisorDrawn: on_drawn,
        SupervisorReleased: on_released,
        SupervisionStaffed: on_staffed,
        SupervisorAbsenceRecorded: on_absent,
        SupervisionRequestRefused: on_refused,
        RecusalDecided: on_recusal_decided,
    }
