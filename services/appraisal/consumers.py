"""Events appraisal consumes: registry supervisor facts, FeedbackSigned, OpinionAdoptionNotified, TrainingRecorded.

Idempotent twice over: the inbox drops a redelivered envelope, and every ledger write is keyed by a natural
key (form id; training session + person; activity + person for adoption), so a replayed topic with new
envelope ids leaves the ledger exactly as it was (R28.1).
"""

from sqlalchemy.ext.asyncio import AsyncSession

from services.appraisal import ledger
from shared.events.contracts import (
    ChangeReportRecorded,
    FeedbackSigned,
    OpinionAdoptionNotified,
    SupervisorAbsenceRecorded,
    SupervisorAppointed,
    SupervisorDismissed,
    SupervisorUpdated,
    TrainingRecorded,
)
from shared.events.envelope import Envelope


async def on_supervisor_appointed(session: AsyncSession, event: SupervisorAppointed, envelope: Envelope) -> None:
    await ledger.project_appointed(session, event)


async def on_supervisor_updated(session: AsyncSession, event: SupervisorUpdated, envelope: Envelope) -> None:
    await ledger.project_updated(session, event)


async def on_supervisor_dismissed(session: AsyncSession, event: SupervisorDismissed, envelope: Envelope) -> None:
    await ledger.project_dismissed(session, event)


async def on_change_report_recorded(session: AsyncSession, event: ChangeReportRecorded, envelope: Envelope) -> None:
    """R6.1 → R28.1: late change reports are counted in the ledger."""
    await ledger.record_late_change_report(session, event)


async def on_feedback_signed(session: AsyncSession, event: FeedbackSigned, envelope: Envelope) -> None:
    """R28.1(1): a signed feedback form is one supervision activity in the ledger."""
    await ledger.record_activity(session, event)


async def on_opinion_adoption(session: AsyncSession, event: OpinionAdoptionNotified, envelope: Envelope) -> None:
    """R18.1 → R28.1: adopted or not, on the matching activity entry."""
    await ledger.record_adoption(session, event)


async def on_training_recorded(session: AsyncSession, event: TrainingRecorded, envelope: Envelope) -> None:
    """R28.1(2): training attendance (and hours) in the ledger."""
    await ledger.record_training(session, event)


async def on_absence(session: AsyncSession, event: SupervisorAbsenceRecorded, envelope: Envelope) -> None:
    """R28.1(1), R32.1(1): an absence the bureau recorded after the activity began."""
    await ledger.record_absence(session, event)


HANDLERS = {
    SupervisorAppointed: on_supervisor_appointed,
    SupervisorUpdated: on_supervisor_updated,
    SupervisorDismissed: on_supervisor_dismissed,
    ChangeReportRecorded: on_change_report_recorded,
    FeedbackSigned: on_feedback_signed,
    OpinionAdoptionNotified: on_opinion_adoption,
    TrainingRecorded: on_training_recorded,
    SupervisorAbsenceRecorded: on_absence,
}
