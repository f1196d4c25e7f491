"""Events finance consumes: FeedbackSigned (R42.1 subsidy lines) and the registry's supervisor facts.

Idempotent twice over: the inbox drops a redelivered envelope, and the unique (supervisor, activity)
key of subsidy_line drops a second event for the same participation (e.g. re-signed form, new envelope).
A form without a verified signature, or an activity date with no rate in force, raises ValueError:
the inbox retries and then dead-letters it to `casework.feedback.dlq` (nothing is paid).
"""

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from services.finance import service as svc
from shared.events.contracts import FeedbackSigned, SupervisorAppointed, SupervisorUpdated
from shared.events.envelope import Envelope

log = logging.getLogger(__name__)


async def on_feedback_signed(session: AsyncSession, event: FeedbackSigned, envelope: Envelope) -> None:
    """R42.1: one draft subsidy line per supervisor per activity, priced by the rate on the activity date."""
    line_id = await svc.record_feedback(session, event)
    if line_id is None:
        log.info("form %s: subsidy line for activity %s already exists", event.form_id, event.activity_id)


async def on_supervisor_appointed(session: AsyncSession, event: SupervisorAppointed, envelope: Envelope) -> None:
    await svc.project_supervisor(session, event.supervisor_id, name=event.name, district=event.district)


async def on_supervisor_updated(session: AsyncSession, event: SupervisorUpdated, envelope: Envelope) -> None:
    name = event.changed.get("name")
    district = event.changed.get("district")
    await svc.project_supervisor(session, event.supervisor_id,
                                 name=name if isinstance(name, str) else None,
                                 district=district if isinstance(district, str) else None)


HANDLERS = {
    FeedbackSigned: on_feedback_signed,
    SupervisorAppointed: on_supervisor_appointed,
    SupervisorUpdated: on_supervisor_updated,
}
