"""Versioned payload contracts of every integration event (EVENTS.md, version 2).

These models are the contract: the AsyncAPI document and JSON Schemas are generated from them.
A breaking change is a new class with version 2, published beside the old one; never an edit.
"""

import uuid
from datetime import date, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import topics


class Event(BaseModel):
    """Base of every event payload: frozen, past tense, with its type, version, topic and key field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str]
    KEY: ClassVar[str]  # the payload field whose value is the envelope subject and Kafka key
    SUMMARY: ClassVar[str] = ""
    # carries personal data (a name, a phone): the outbox stores its envelope encrypted (AES-GCM)
    PERSONAL: ClassVar[bool] = False
    # states its subject's state, so a newer one of the subject supersedes it: one that arrives after
    # a newer one (by the producer's sequence) is stale, recorded and not applied (shared.events.inbox).
    # False for facts that stand side by side (one FeedbackSigned per signer of an activity, one
    # SupervisorDrawn per drawn person of a request): each applies whatever its order of arrival.
    LATEST_WINS: ClassVar[bool] = False

    @property
    def subject(self) -> str:
        return str(getattr(self, self.KEY))


District = str
Grade = Literal["excellent", "qualified", "basically_qualified", "unqualified"]


# --- registry.supervisors ------------------------------------------------------------------------

class SupervisorAppointed(Event):
    TYPE = "SupervisorAppointed"
    TOPIC = topics.REGISTRY_SUPERVISORS
    KEY = "supervisor_id"
    LATEST_WINS = True
    SUMMARY = "A supervisor was appointed (R4.1, R5.1)."
    PERSONAL = True

    supervisor_id: uuid.UUID
    name: str
    gender: Literal["male", "female"]
    district: District
    specialties: list[str]
    employer: str
    recommending_body: str
    term_start: date
    term_end: date
    certificate_no: str
    work_card_no: str
    eligible: bool


class SupervisorUpdated(Event):
    TYPE = "SupervisorUpdated"
    TOPIC = topics.REGISTRY_SUPERVISORS
    KEY = "supervisor_id"
    LATEST_WINS = True
    SUMMARY = "Roster fields of a supervisor changed (R6.1)."
    PERSONAL = True

    supervisor_id: uuid.UUID
    changed: dict[Literal["district", "specialties", "employer", "recommending_body", "name"],
                  str | list[str]]


class SupervisorDismissed(Event):
    TYPE = "SupervisorDismissed"
    TOPIC = topics.REGISTRY_SUPERVISORS
    KEY = "supervisor_id"
    LATEST_WINS = True
    SUMMARY = "A supervisor was dismissed on one of the six grounds of R8.1."

    supervisor_id: uuid.UUID
    ground: int = Field(ge=1, le=6)
    decided_at: datetime
    permanent_ban: bool


class ChangeReportRecorded(Event):
    TYPE = "ChangeReportRecorded"
    TOPIC = topics.REGISTRY_SUPERVISORS
    KEY = "supervisor_id"
    SUMMARY = "A supervisor's personal-information change report was filed; late if > 1 month (R6.1)."

    supervisor_id: uuid.UUID
    report_id: uuid.UUID
    changed_on: date
    reported_on: date
    late: bool


EligibilityReason = Literal[
    "initial_training_pending", "dismissed", "resigned", "term_ended", "suspended",
    "excluded",  # N-EXCL: a recorded exclusion ground (national selection measures Art. 10 §1)
]


class EligibilityChanged(Event):
    TYPE = "EligibilityChanged"
    TOPIC = topics.REGISTRY_SUPERVISORS
    KEY = "supervisor_id"
    LATEST_WINS = True
    SUMMARY = "Whether a supervisor may be drawn changed (R22.3, R8.1)."

    supervisor_id: uuid.UUID
    eligible: bool
    reasons: list[EligibilityReason]


# --- registry.training ---------------------------------------------------------------------------

class TrainingRecorded(Event):
    TYPE = "TrainingRecorded"
    TOPIC = topics.REGISTRY_TRAINING
    KEY = "supervisor_id"
    SUMMARY = "A supervisor's attendance (and exam) of a training session was recorded (R21–R24)."

    supervisor_id: uuid.UUID
    session_id: uuid.UUID
    kind: Literal["initial", "annual", "makeup", "term"]  # term: 任期培训 (R21.1)
    format: str
    date: date
    hours: float = Field(ge=0)
    attended: bool
    exam_passed: bool | None
    # R23.1: the session meets the yearly centralized training (annual or term kind, not online); None: not stated
    centralized: bool | None = None


# --- casework.supervision-requests ---------------------------------------------------------------

class LeadTimeConsent(BaseModel):
    """A bureau user's recorded consent to a shorter lead time (R10.2): who, when, why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    by: str
    at: datetime
    reason: str


class ShortNotice(BaseModel):
    """The procuratorate asks for short notice (R10.2); the request waits for the bureau's decision."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


Hex256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]  # 32 bytes as lowercase hex (nonces, SHA-256)


class SupervisionRequested(Event):
    TYPE = "SupervisionRequested"
    VERSION = 2
    TOPIC = topics.CASEWORK_SUPERVISION_REQUESTS
    KEY = "request_id"
    SUMMARY = ("The procuratorate asked the bureau for supervisors for a case activity (R10.1, R10.2), "
               "committing to its draw nonce (DRAW.md protocol step 1). `requested_at` is casework's "
               "server clock. The seat split and the balance mode are the bureau's policy, not the requester's.")

    request_id: uuid.UUID
    activity_id: uuid.UUID
    case_ref: str
    activity_type: str
    office: str
    district: District
    starts_at: datetime
    ends_at: datetime
    place: str
    seats: int = Field(ge=1)
    specialty: str | None = None
    conflict_parties: list[str] = []
    requested_at: datetime
    short_notice: ShortNotice | None = None
    procuratorate_commitment: Hex256
    # a reschedule: the request (cancelled in the same transaction) this one replaces (optional, issue 13)
    rescheduled_from: uuid.UUID | None = None


class DrawNonceRevealed(Event):
    TYPE = "DrawNonceRevealed"
    TOPIC = topics.CASEWORK_SUPERVISION_REQUESTS
    KEY = "request_id"
    SUMMARY = ("The procuratorate reveals its draw nonce, only after it received SupervisionAccepted "
               "(DRAW.md protocol step 3).")

    request_id: uuid.UUID
    procuratorate_nonce: Hex256


class SupervisionCancelled(Event):
    TYPE = "SupervisionCancelled"
    TOPIC = topics.CASEWORK_SUPERVISION_REQUESTS
    KEY = "request_id"
    SUMMARY = ("A supervision request was withdrawn (with its reason); bookings are freed, and a draw "
               "already made stays in the receipt chain.")

    request_id: uuid.UUID
    activity_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=500)
    cancelled_by: str
    cancelled_at: datetime
    # optional (issue 13): the activity itself was cancelled (it will not take place), or rescheduled and this
    # request replaced by `superseded_by` (a new request for the new time, with `rescheduled_from` = this one)
    activity_cancelled: bool = False
    superseded_by: uuid.UUID | None = None


class ReceiptMismatchDetected(Event):
    TYPE = "ReceiptMismatchDetected"
    TOPIC = topics.CASEWORK_SUPERVISION_REQUESTS
    KEY = "request_id"
    SUMMARY = ("Casework checked a draw receipt against what it stored (commitments, its own nonce, the "
               "acceptance's hashes) and found a mismatch (DRAW.md protocol step 5; added by the project).")

    request_id: uuid.UUID
    draw_id: uuid.UUID
    failed_checks: list[str]
    detected_at: datetime


class RecusalRequested(Event):
    TYPE = "RecusalRequested"
    TOPIC = topics.CASEWORK_SUPERVISION_REQUESTS
    KEY = "request_id"
    SUMMARY = "The procuratorate or a party asked for a drawn supervisor's recusal (R13.2)."

    request_id: uuid.UUID
    supervisor_id: uuid.UUID
    source: Literal["procuratorate", "party"]
    ground: str
    requested_at: datetime


# --- selection.assignments -----------------------------------------------------------------------

class SupervisionRequestRefused(Event):
    TYPE = "SupervisionRequestRefused"
    TOPIC = topics.SELECTION_ASSIGNMENTS
    KEY = "request_id"
    SUMMARY = "The bureau refused a supervision request (e.g. lead time R10.1/R10.2, R44.1)."

    request_id: uuid.UUID
    code: str
    earliest_allowed_date: date | None
    detail: str


class Beacon(BaseModel):
    """A public randomness source named at acceptance, before its value exists (DRAW.md "beacon")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    round: str


class SupervisionAccepted(Event):
    TYPE = "SupervisionAccepted"
    TOPIC = topics.SELECTION_ASSIGNMENTS
    KEY = "request_id"
    SUMMARY = ("The bureau accepted a request (lead time passed, R10.1/R10.2): it commits to its nonce and "
               "freezes the pool snapshot and the params (DRAW.md protocol step 2). Once per request.")

    request_id: uuid.UUID
    accepted_at: datetime
    bureau_commitment: Hex256
    snapshot_hash: Hex256
    params_hash: Hex256
    beacon: Beacon | None = None
    short_notice_consent: LeadTimeConsent | None = None


class DrawCompleted(Event):
    TYPE = "DrawCompleted"
    TOPIC = topics.SELECTION_ASSIGNMENTS
    KEY = "request_id"
    SUMMARY = ("A round of the draw was made (R11.1, R14.1); its receipt is at GET /draws/{draw_id}/receipt. "
               "`shortfall` says which group the pool could not fill, by how many (added by the project).")

    request_id: uuid.UUID
    draw_id: uuid.UUID
    round: int = Field(ge=1)
    receipt_hash: Hex256
    procuratorate_nonce_used: bool
    shortfall: dict[Literal["local", "cross"], int] = {}


class SupervisorAsked(Event):
    TYPE = "SupervisorAsked"
    TOPIC = topics.SELECTION_ASSIGNMENTS
    KEY = "request_id"
    SUMMARY = ("A drawn supervisor's turn came in draw order: they are asked whether they can take part (R12.1); "
               "ids only (added by the project, so the person hears it before the phone call).")

    request_id: uuid.UUID
    draw_id: uuid.UUID
    supervisor_id: uuid.UUID
    group: Literal["local", "cross"]
    draw_order: int = Field(ge=1)
    asked_at: datetime


class SupervisorDrawn(Event):
    TYPE = "SupervisorDrawn"
    TOPIC = topics.SELECTION_ASSIGNMENTS
    KEY = "request_id"
    SUMMARY = "A drawn supervisor confirmed participation; name and phone go to the procuratorate (R12.1)."
    PERSONAL = True

    request_id: uuid.UUID
    draw_id: uuid.UUID
    supervisor_id: uuid.UUID
    name: str
    phone: str
    district: District
    specialties: list[str]
    group: Literal["local", "cross"]
    draw_order: int = Field(ge=1)
    confirmed_at: datetime
    contact_log_head: str | None = None  # hash of the draw's last contact-log entry (DRAW.md "Contact")


class SupervisorReleased(Event):
    TYPE = "SupervisorReleased"
    TOPIC = topics.SELECTION_ASSIGNMENTS
    KEY = "request_id"
    SUMMARY = "A confirmed supervisor no longer takes part (R14.2, R13)."

    request_id: uuid.UUID
    supervisor_id: uuid.UUID
    reason: Literal["declined", "recused", "withdrawn"]
    replaced_by: uuid.UUID | None = None
    contact_log_head: str | None = None


class SupervisionStaffed(Event):
    TYPE = "SupervisionStaffed"
    TOPIC = topics.SELECTION_ASSIGNMENTS
    KEY = "request_id"
    SUMMARY = "Every seat of a request is confirmed (R12.1)."

    request_id: uuid.UUID
    supervisor_ids: list[uuid.UUID]
    receipt_hash: str
    contact_log_head: str | None = None


class SupervisorAbsenceRecorded(Event):
    TYPE = "SupervisorAbsenceRecorded"
    TOPIC = topics.SELECTION_ASSIGNMENTS
    KEY = "request_id"
    SUMMARY = ("A confirmed supervisor did not attend: recorded by the bureau after the activity began. The roster "
               "keeps them (no replacement, no signature, no subsidy); the ledger counts it (R28.1, R32.1 (1)). "
               "Added by the project.")

    request_id: uuid.UUID
    activity_id: uuid.UUID
    activity_date: date
    supervisor_id: uuid.UUID
    reason: str
    recorded_by: str
    recorded_at: datetime


class RecusalDecided(Event):
    TYPE = "RecusalDecided"
    TOPIC = topics.SELECTION_ASSIGNMENTS
    KEY = "request_id"
    SUMMARY = "The bureau decided a recusal (R13.1, R13.2)."

    request_id: uuid.UUID
    supervisor_id: uuid.UUID
    granted: bool
    decided_by: str
    reason: str


# --- casework.feedback ---------------------------------------------------------------------------

class FeedbackSigned(Event):
    TYPE = "FeedbackSigned"
    TOPIC = topics.CASEWORK_FEEDBACK
    KEY = "activity_id"
    SUMMARY = "A supervisor signed the feedback form of an activity (R17.1); basis of subsidy and ledger."

    form_id: uuid.UUID
    activity_id: uuid.UUID
    request_id: uuid.UUID
    supervisor_id: uuid.UUID
    activity_type: str
    activity_date: date
    district: District
    adopted: bool | None
    signed_at: datetime
    signature_hash: str
    # what the signature hash covers (R17.1, optional for older producers): the frozen form content's hash,
    # the signing method and the signature image's hash; finance recomputes the signature hash from them (R42.1)
    content_hash: str | None = None
    method: str | None = None
    image_sha256: str | None = None


class OpinionAdoptionNotified(Event):
    TYPE = "OpinionAdoptionNotified"
    TOPIC = topics.CASEWORK_FEEDBACK
    KEY = "activity_id"
    SUMMARY = "The procuratorate told a supervisor whether the opinion was adopted (R18.1)."

    activity_id: uuid.UUID
    supervisor_id: uuid.UUID
    adopted: bool
    reason: str
    notified_at: datetime


class MaterialsShared(Event):
    TYPE = "MaterialsShared"
    TOPIC = topics.CASEWORK_FEEDBACK
    KEY = "activity_id"
    SUMMARY = ("The procuratorate provided case materials for an activity (R15.1); the supervisors confirmed on it "
               "at that moment may read them until they sign the feedback form (no content, no title text).")

    activity_id: uuid.UUID
    material_id: uuid.UUID
    supervisor_ids: list[uuid.UUID]
    shared_at: datetime


class OpinionRecorded(Event):
    TYPE = "OpinionRecorded"
    TOPIC = topics.CASEWORK_FEEDBACK
    KEY = "activity_id"
    SUMMARY = ("A supervisor's opinion of an activity was recorded (R16.1), by the supervisor or by the "
               "procuratorate on their behalf; the feedback form waits for the signature (R17.1). No opinion text.")

    activity_id: uuid.UUID
    supervisor_id: uuid.UUID
    source: Literal["supervisor", "procuratorate_record"]
    version: int = Field(ge=1)
    recorded_at: datetime


# --- appraisal.results ---------------------------------------------------------------------------

class AppraisalFinalized(Event):
    TYPE = "AppraisalFinalized"
    TOPIC = topics.APPRAISAL_RESULTS
    KEY = "supervisor_id"
    SUMMARY = "A supervisor's annual or term grade was finalized (R30.1, R37.1)."

    round_id: uuid.UUID
    kind: Literal["annual", "term"]
    period: str
    supervisor_id: uuid.UUID
    grade: Grade
    finalized_at: datetime
    # a recorded correction after finalizing publishes the result again as a new version (the old one kept)
    result_version: int = Field(default=1, ge=1, description="version of this result (1 = as first finalized)")
    corrects_version: int | None = Field(default=None, ge=1, description="the version this one corrects")
    correction_reason: str | None = Field(default=None, max_length=2000, description="why it was corrected")


class CommendationIssued(Event):
    TYPE = "CommendationIssued"
    TOPIC = topics.APPRAISAL_RESULTS
    KEY = "supervisor_id"
    SUMMARY = "An excellent supervisor was commended (R38.1)."

    round_id: uuid.UUID
    supervisor_id: uuid.UUID
    kind: Literal["annual", "term"]
    issued_at: datetime


class DefenceNoticeSent(Event):
    TYPE = "DefenceNoticeSent"
    TOPIC = topics.APPRAISAL_RESULTS
    KEY = "supervisor_id"
    SUMMARY = ("The bureau sent a supervisor proposed as unqualified the 告知书: reasons, basis and the right to state "
               "and defend until window_end (R35.1). The reasons themselves stay in appraisal.")

    round_id: uuid.UUID
    supervisor_id: uuid.UUID
    kind: Literal["annual", "term"]
    period: str
    sent_on: date
    window_end: date


# --- finance.subsidies ---------------------------------------------------------------------------

class SubsidyApproved(Event):
    TYPE = "SubsidyApproved"
    TOPIC = topics.FINANCE_SUBSIDIES
    KEY = "supervisor_id"
    SUMMARY = "A subsidy line was approved for payment (R42.1)."

    line_id: uuid.UUID
    supervisor_id: uuid.UUID
    activity_id: uuid.UUID
    amount_fen: int = Field(ge=0)
    approved_by: str
    approved_at: datetime


class SubsidyPaid(Event):
    TYPE = "SubsidyPaid"
    TOPIC = topics.FINANCE_SUBSIDIES
    KEY = "supervisor_id"
    SUMMARY = "An approved subsidy line was paid by its issued monthly table (R42.1)."

    line_id: uuid.UUID
    supervisor_id: uuid.UUID
    activity_id: uuid.UUID
    amount_fen: int = Field(ge=0)
    paid_on: date
    paid_at: datetime


# --- platform.calendar ----------------------------------------------------------------------------

class CalendarYearPublished(Event):
    TYPE = "CalendarYearPublished"
    TOPIC = topics.PLATFORM_CALENDAR
    KEY = "year"
    LATEST_WINS = True
    SUMMARY = ("The bureau loaded a year's official holiday notice on one service (RULES.md Calendar); "
               "every service applies it, so working days are counted alike everywhere.")

    year: int = Field(ge=2000, le=2100)
    holidays: list[date]
    makeup_workdays: list[date]
    source: str = Field(min_length=1, max_length=200)
    loaded_by: str


# --- platform.audit -------------------------------------------------------------------------------

class AuditHeadPublished(Event):
    TYPE = "AuditHeadPublished"
    TOPIC = topics.PLATFORM_AUDIT
    KEY = "service"
    SUMMARY = ("A service's audit-log head (newest seq and hash), published every AUDIT_VERIFY_SECONDS (R3.1); "
               "every other service keeps the highest head it saw, so deleted or rewritten entries are noticed.")

    service: str = Field(min_length=1, max_length=64)
    seq: int = Field(ge=0)
    hash: str = Field(pattern="^[0-9a-f]{64}$")
    at: datetime  # the producer's clock when it read the head


ALL_EVENTS: tuple[type[Event], ...] = (
    SupervisorAppointed, SupervisorUpdated, SupervisorDismissed, ChangeReportRecorded, EligibilityChanged,
    TrainingRecorded, SupervisionRequested, DrawNonceRevealed, SupervisionCancelled, ReceiptMismatchDetected,
    RecusalRequested, SupervisionRequestRefused, SupervisionAccepted, DrawCompleted, SupervisorAsked,
    SupervisorDrawn, SupervisorReleased, SupervisionStaffed, SupervisorAbsenceRecorded, RecusalDecided, FeedbackSigned,
    OpinionAdoptionNotified, MaterialsShared, OpinionRecorded, AppraisalFinalized, CommendationIssued,
    DefenceNoticeSent, SubsidyApproved, SubsidyPaid, CalendarYearPublished, AuditHeadPublished,
)

REGISTRY: dict[tuple[str, int], type[Event]] = {(e.TYPE, e.VERSION): e for e in ALL_EVENTS}


def contract_for(event_type: str, version: int) -> type[Event] | None:
    """The payload model of an (event type, version), or None if unknown."""
    return REGISTRY.get((event_type, version))
