"""Events the registry consumes: an annual 'unqualified' appraisal opens a dismissal case (R37.1)."""

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.dismissals import service as svc
from shared.events.contracts import AppraisalFinalized
from shared.events.envelope import Envelope

log = logging.getLogger(__name__)


async def on_appraisal_finalized(session: AsyncSession, event: AppraisalFinalized, envelope: Envelope) -> None:
    """R37.1: every result is kept (R8.1 ground 5 rests on it); annual + unqualified → a pending dismissal case on
    ground 5 for the bureau to confirm.

    Idempotent twice over: the inbox drops a redelivered event, and the (person, round) keys of the result and
    of the case drop a second event of the same round.
    """
    await svc.record_appraisal_result(session, round_id=event.round_id, supervisor_id=event.supervisor_id,
                                      kind=event.kind, period=event.period, grade=event.grade,
                                      finalized_at=event.finalized_at, event_id=envelope.id if envelope else None)
    if event.kind != "annual" or event.grade != "unqualified":
        return
    case_id = await svc.open_appraisal_case(session, supervisor_id=event.supervisor_id, round_id=event.round_id,
                                            period=event.period)
    log.info("appraisal round %s: dismissal case %s for supervisor %s", event.round_id, case_id,
             event.supervisor_id)


HANDLERS = {AppraisalFinalized: on_appraisal_finalized}
