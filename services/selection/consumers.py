"""Event handlers: registry events keep the pool current; casework sends requests, reveals, cancellations, recusals.

Handlers are built with the app's settings and working calendar (a closure), so the lead-time
rule uses the same calendar, bureau-loaded years included, as the HTTP path. Each handler is
idempotent: the inbox drops a redelivered event id, and the request id is a natural key.
"""

from services.selection.config import SelectionSettings
from services.selection.contact import service as contact
from services.selection.models import platform
from services.selection.pool import service as pool
from services.selection.requests import service as requests
from shared.calendar import WorkingCalendar
from shared.errors import ProblemError
from shared.events.contracts import (
    DrawNonceRevealed,
    EligibilityChanged,
    RecusalRequested,
    SupervisionCancelled,
    SupervisionRequested,
    SupervisionRequestRefused,
    SupervisorAppointed,
    SupervisorDismissed,
    SupervisorUpdated,
)
from shared.events.outbox import Outbox


def build_handlers(settings: SelectionSettings, calendar: WorkingCalendar, outbox: Outbox) -> dict:
    """The event type → handler map of the selection consumer."""

    async def on_requested(session, event: SupervisionRequested, envelope=None) -> None:
        """Protocol step 1 → 2: accept (SupervisionAccepted), wait for consent, or refuse.

        A reschedule (`rescheduled_from`) cancels the request it replaces first: casework cancels it in
        the same transaction, but that SupervisionCancelled travels under the old request's key and may
        arrive after this one, which would otherwise be refused as request_exists (one live request per
        activity). Cancelling twice changes nothing."""
        if event.rescheduled_from is not None:
            await requests.cancel(session, request_id=event.rescheduled_from,
                                  reason=f"改期：由申请 {event.request_id} 取代", by="procuratorate",
                                  at=event.requested_at)
        try:
            await requests.submit(session, outbox=outbox, calendar=calendar, settings=settings,
                                  data=event.model_dump(), via="event", actor="procuratorate")
        except ProblemError as exc:  # malformed beyond the contract (e.g. ends before it starts)
            await outbox.add(session, SupervisionRequestRefused(
                request_id=event.request_id, code=exc.code, earliest_allowed_date=None,
                detail=exc.detail or exc.title))

    async def on_revealed(session, event: DrawNonceRevealed, envelope=None) -> None:
        """Protocol step 3 → 4: the procuratorate's nonce, then the draw."""
        await requests.on_revealed(session, outbox=outbox, settings=settings, request_id=event.request_id,
                                   nonce=event.procuratorate_nonce)

    async def on_cancelled(session, event: SupervisionCancelled, envelope=None) -> None:
        await requests.cancel(session, request_id=event.request_id, reason=event.reason, by=event.cancelled_by,
                              at=event.cancelled_at)

    async def on_dismissed(session, event: SupervisorDismissed, envelope=None) -> None:
        """R9.1: out of the pool, and out of what is still to come (windows, rosters)."""
        await pool.on_dismissed(session, event)
        await contact.withdraw_dismissed(session, outbox=outbox, settings=settings, platform=platform,
                                         supervisor_id=event.supervisor_id)

    async def on_eligibility(session, event: EligibilityChanged, envelope=None) -> None:
        await pool.on_eligibility(session, event)
        if "dismissed" in event.reasons:
            await contact.withdraw_dismissed(session, outbox=outbox, settings=settings, platform=platform,
                                             supervisor_id=event.supervisor_id)

    async def on_recusal_requested(session, event: RecusalRequested, envelope=None) -> None:
        await contact.request_recusal(session, request_id=event.request_id, supervisor_id=event.supervisor_id,
                                      source=event.source, ground=event.ground,
                                      requested_at=event.requested_at, strict=False)

    return {
        SupervisorAppointed: pool.on_appointed,
        SupervisorUpdated: pool.on_updated,
        SupervisorDismissed: on_dismissed,
        EligibilityChanged: on_eligibility,
        SupervisionRequested: on_requested,
        DrawNonceRevealed: on_revealed,
        SupervisionCancelled: on_cancelled,
        RecusalRequested: on_recusal_requested,
    }
