"""Events casework consumes: selection's answers to its requests (R10, R12.1, R13.2, R14.2).

Idempotent: the inbox drops a redelivered envelope, and every handler is an upsert/state set keyed by
(request, supervisor). Events of requests casework did not make (e.g. the bureau's own POST /requests) are
ignored.
"""

import logging

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import service as svc
from shared.events.contracts import (
    RecusalDecided,
    SupervisionRequestRefused,
    SupervisionStaffed,
    SupervisorDrawn,
    SupervisorReleased,
)
from shared.events.envelope import Envelope

log = logging.getLogger(__name__)


def build_handlers(app: FastAPI) -> dict:
    """The event type → handler map (the drawn handler needs the app's cipher for the phone)."""
    cipher = app.state.cipher

    async def on_drawn(session: AsyncSession, event: SupervisorDrawn, envelope: Envelope) -> None:
        if not await svc.on_drawn(session, cipher=cipher, request_id=event.request_id,
                                  supervisor_id=event.supervisor_id, name=event.name, phone=event.phone,
                                  district=event.district, group=event.group, draw_order=event.draw_order,
                                  confirmed_at=event.confirmed_at):
            log.debug("SupervisorDrawn for unknown request %s ignored", event.request_id)

    async def on_released(session: AsyncSession, event: SupervisorReleased, envelope: Envelope) -> None:
        await svc.on_released(session, request_id=event.request_id, supervisor_id=event.supervisor_id,
                              reason=event.reason, replaced_by=event.replaced_by)

    async def on_staffed(session: AsyncSession, event: SupervisionStaffed, envelope: Envelope) -> None:
        await svc.on_staffed(session, request_id=event.request_id, receipt_hash=event.receipt_hash)

    async def on_refused(session: AsyncSession, event: SupervisionRequestRefused, envelope: Envelope) -> None:
        await svc.on_refused(session, request_id=event.request_id, code=event.code,
                             earliest=event.earliest_allowed_date, detail=event.detail)

    async def on_recusal_decided(session: AsyncSession, event: RecusalDecided, envelope: Envelope) -> None:
        await svc.on_recusal_decided(session, request_id=event.request_id, supervisor_id=event.supervisor_id,
                                     granted=event.granted, decided_by=event.decided_by, reason=event.reason)

    return {
        SupervisorDrawn: on_drawn,
        SupervisorReleased: on_released,
        SupervisionStaffed: on_staffed,
        SupervisionRequestRefused: on_refused,
        RecusalDecided: on_recusal_decided,
    }
