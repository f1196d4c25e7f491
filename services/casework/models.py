"""Tables of the casework schema: activities (+ reschedules), requests + roster (projection of selection events),
draw checks, recusals, materials, opinions (+ versions), feedback forms + signatures, adoptions, observers, reports
(+ transmittal items), idempotency keys."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from services.casework.rules import REQUEST_STATUSES
from shared.db import service_metadata
from shared.db.platform import define_platform_tables
from shared.documents.archive import define_document_tables

SCHEMA = "casework"
metadata = service_metadata(SCHEMA)
platform = define_platform_tables(metadata)
documents = define_document_tables(metadata)  # issued documents + 文号 sequences (issue 18)
NOW = func.now()

# N-ACT, N-MUST: one case activity of a procuratorate office
activity = Table(
    "activity", metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_ref", Text, nullable=False),
    Column("activity_type", Text, nullable=False),
    Column("other_description", Text, nullable=True),
    Column("mandatory_invitation", Boolean, nullable=False, server_default="false"),
    Column("office", Text, nullable=False),
    Column("district", Text, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("place", Text, nullable=False),
    Column("summary", Text, nullable=False, server_default=""),
    Column("status", Text, nullable=False, server_default="open"),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("held_at", DateTime(timezone=True), nullable=True),
    Column("held_by", Text, nullable=True),
    Column("hearing_matter", Text, nullable=True),  # N-MUST: the matter of a public review / hearing (0006)
    Column("cancel_reason", Text, nullable=True),  # the activity did not take place (0006)
    Column("cancelled_by", Text, nullable=True),
    Column("cancelled_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("status IN ('open', 'held', 'cancelled')", name="status_valid"),
    CheckConstraint("ends_at > starts_at", name="window_valid"),
    Index("ix_activity_district_starts", "district", "starts_at"),
    Index("ix_activity_ends_at", "ends_at"),  # R20.1: the overdue query filters on the end
    Index("ix_activity_starts_at", "starts_at", "id"),  # the work list's keyset (0007)
    Index("ix_activity_case_ref", "case_ref"),  # the work list's case number filter (0007)
    Index("ix_activity_type_starts", "activity_type", "starts_at"),  # the work list's type filter (0007)
    Index("ix_activity_status_starts", "status", "starts_at", "id"),  # the work list's state filter (0008)
    Index("ix_activity_district_status_starts", "district", "status", "starts_at", "id"),  # (0008)
    Index("ix_activity_office_starts", "office", "starts_at", "id"),  # an office's own list (0008)
)

# Exact counts per (district, office, status, activity_type), kept by triggers (migration 0008): the work list's
# totals for those filters come from here instead of counting every matching activity on every request.
activity_tally = Table(
    "activity_tally", metadata,
    Column("district", Text, primary_key=True),
    Column("office", Text, primary_key=True),
    Column("status", Text, primary_key=True),
    Column("activity_type", Text, primary_key=True),
    Column("n", BigInteger, nullable=False),
)

# a new time for an activity: its live request cancelled and a new one linked to it (0006)
activity_reschedule = Table(
    "activity_reschedule", metadata,
    Column("id", Uuid, primary_key=True),
    Column("activity_id", Uuid, ForeignKey("activity.id"), nullable=False, index=True),
    Column("previous_starts_at", DateTime(timezone=True), nullable=False),
    Column("previous_ends_at", DateTime(timezone=True), nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
    Column("cancelled_request_id", Uuid, nullable=True),
    Column("request_id", Uuid, nullable=True),
    Column("rescheduled_by", Text, nullable=False),
    Column("rescheduled_at", DateTime(timezone=True), nullable=False),
)

# R10.1/R10.2, DRAW.md protocol: the request sent to the bureau, with its live state from selection's events
supervision_request = Table(
    "supervision_request", metadata,
    Column("id", Uuid, primary_key=True),
    Column("activity_id", Uuid, ForeignKey("activity.id"), nullable=False, index=True),
    Column("seats", Integer, nullable=False),
    Column("specialty", Text, nullable=True),
    Column("conflict_parties", JSONB, nullable=False, server_default="[]"),
    Column("short_notice", JSONB, nullable=True),  # R10.2 {reason}: waits for the bureau's consent
    Column("calendar_provisional", Boolean, nullable=False, server_default="false"),
    # DRAW.md step 1: n_P encrypted at rest (context casework.request.procuratorate_nonce), sha256(n_P) sent
    Column("procuratorate_nonce_encrypted", Text, nullable=True),
    Column("procuratorate_commitment", Text, nullable=True),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="requested"),
    Column("refusal_code", Text, nullable=True),
    Column("refusal_detail", Text, nullable=True),
    Column("earliest_allowed_date", Date, nullable=True),
    # DRAW.md step 2: the bureau's acceptance, stored once (a second one is ignored and audited)
    Column("accepted_at", DateTime(timezone=True), nullable=True),
    Column("bureau_commitment", Text, nullable=True),
    Column("snapshot_hash", Text, nullable=True),
    Column("params_hash", Text, nullable=True),
    Column("beacon", JSONB, nullable=True),
    Column("short_notice_consent", JSONB, nullable=True),
    Column("revealed_at", DateTime(timezone=True), nullable=True),  # DRAW.md step 3
    Column("shortfall", JSONB, nullable=False, server_default="{}"),
    Column("receipt_hash", Text, nullable=True),
    Column("contact_log_head", Text, nullable=True),
    Column("cancel_reason", Text, nullable=True),
    Column("cancelled_by", Text, nullable=True),
    Column("cancelled_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    # a reschedule: the request this one replaces (cancelled in the same transaction, 0006)
    Column("rescheduled_from", Uuid, nullable=True),
    CheckConstraint("status IN (" + ", ".join(f"'{s}'" for s in REQUEST_STATUSES) + ")", name="status_valid"),
    CheckConstraint("seats >= 1", name="seats_positive"),
    # one live request per activity, also under concurrent POSTs
    Index("uq_supervision_request_live_activity", "activity_id", unique=True,
          postgresql_where=text("status NOT IN ('refused', 'cancelled')")),
)

# DRAW.md protocol step 5: each draw round selection announced, and casework's check of its receipt
draw_check = Table(
    "draw_check", metadata,
    Column("draw_id", Uuid, primary_key=True),
    Column("request_id", Uuid, ForeignKey("supervision_request.id"), nullable=False, index=True),
    Column("round", Integer, nullable=False),
    Column("receipt_hash", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("failed_checks", JSONB, nullable=False, server_default="[]"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("checked_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("status IN ('pending', 'ok', 'mismatch')", name="status_valid"),
    Index("ix_draw_check_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
)

# R12.1/R15.1: who selection confirmed (names + encrypted phones), and who left (R14.2)
roster = Table(
    "roster", metadata,
    Column("request_id", Uuid, ForeignKey("supervision_request.id"), primary_key=True),
    Column("supervisor_id", Uuid, primary_key=True),
    Column("activity_id", Uuid, nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("phone_encrypted", Text, nullable=False),
    Column("phone_masked", Text, nullable=False),
    Column("district", Text, nullable=False),
    Column("group", Text, nullable=False),
    Column("draw_order", Integer, nullable=False),
    Column("status", Text, nullable=False, server_default="confirmed"),
    Column("confirmed_at", DateTime(timezone=True), nullable=False),
    Column("released_at", DateTime(timezone=True), nullable=True),
    Column("release_reason", Text, nullable=True),
    Column("replaced_by", Uuid, nullable=True),
    Column("absent_at", DateTime(timezone=True), nullable=True),  # the bureau recorded an absence (0003)
    Column("absence_reason", Text, nullable=True),
    CheckConstraint("status IN ('confirmed', 'released', 'absent')", name="status_valid"),
    Index("ix_roster_supervisor", "supervisor_id"),
)

# R13.2: recusal grounds found by the procuratorate or applied for by a party
recusal = Table(
    "recusal", metadata,
    Column("id", Uuid, primary_key=True),
    Column("request_id", Uuid, ForeignKey("supervision_request.id"), nullable=False, index=True),
    Column("supervisor_id", Uuid, nullable=False),
    Column("source", Text, nullable=False),
    Column("ground", Text, nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("decided_by", Text, nullable=True),
    Column("decision_reason", Text, nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("source IN ('procuratorate', 'party')", name="source_valid"),
    CheckConstraint("status IN ('pending', 'granted', 'rejected')", name="status_valid"),
)

# R15.1/R3.1: case materials of an activity
material = Table(
    "material", metadata,
    Column("id", Uuid, primary_key=True),
    Column("activity_id", Uuid, ForeignKey("activity.id"), nullable=False, index=True),
    Column("title", Text, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("uploaded_by", Text, nullable=False),
    Column("uploaded_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

# R16.1: each supervisor's current opinion verbatim; frozen (trigger) once the form is signed
opinion = Table(
    "opinion", metadata,
    Column("activity_id", Uuid, ForeignKey("activity.id"), primary_key=True),
    Column("supervisor_id", Uuid, primary_key=True),
    Column("text", Text, nullable=False),
    Column("recorded_by", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("frozen", Boolean, nullable=False, server_default="false"),
    # who wrote the words down: the supervisor, or the procuratorate recording an oral opinion (0006; NULL before)
    Column("source", Text, nullable=True),
    Column("version", Integer, nullable=False, server_default="1"),
    CheckConstraint("source IN ('supervisor', 'procuratorate_record')", name="source_valid"),
)

# R16.1: every version of every opinion, append-only (trigger): nothing a supervisor wrote is ever lost
opinion_version = Table(
    "opinion_version", metadata,
    Column("activity_id", Uuid, ForeignKey("activity.id"), primary_key=True),
    Column("supervisor_id", Uuid, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    Column("source", Text, nullable=True),
    Column("recorded_by", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("source IN ('supervisor', 'procuratorate_record')", name="source_valid"),
)

# R17.1: the feedback form; content + hash frozen at the first signature (trigger)
feedback_form = Table(
    "feedback_form", metadata,
    Column("id", Uuid, primary_key=True),
    Column("activity_id", Uuid, ForeignKey("activity.id"), nullable=False, unique=True),
    Column("request_id", Uuid, nullable=False),
    Column("content", JSONB, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("frozen_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    # R17.1: 编号 威检监反〔年〕n号, given with the last signature (completed_at), never changed (0010)
    Column("number", Text, nullable=True),
)

# R17.1: one signature per participant: who, when, how, hash of exactly what was signed
signature = Table(
    "signature", metadata,
    Column("form_id", Uuid, ForeignKey("feedback_form.id"), primary_key=True),
    Column("supervisor_id", Uuid, primary_key=True),
    Column("signed_by", Text, nullable=False),
    Column("signed_at", DateTime(timezone=True), nullable=False),
    Column("method", Text, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("signature_hash", Text, nullable=False),
    Column("image", LargeBinary, nullable=True),
    Column("image_sha256", Text, nullable=True),
)

# R18.1: adoption decision per opinion (never an edit of the signed form)
adoption = Table(
    "adoption", metadata,
    Column("activity_id", Uuid, ForeignKey("activity.id"), primary_key=True),
    Column("supervisor_id", Uuid, primary_key=True),
    Column("adopted", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("decided_by", Text, nullable=False),
    Column("notified_at", DateTime(timezone=True), nullable=False),
)

# R19.1: bureau staff and shadowing supervisors (not paid)
observer = Table(
    "observer", metadata,
    Column("id", Uuid, primary_key=True),
    Column("activity_id", Uuid, ForeignKey("activity.id"), nullable=False, index=True),
    Column("kind", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("organization", Text, nullable=True),
    Column("supervisor_id", Uuid, nullable=True),
    Column("recorded_by", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    CheckConstraint("kind IN ('bureau_staff', 'shadowing_supervisor')", name="kind_valid"),
)

# R20.1: participation report per activity
participation_report = Table(
    "participation_report", metadata,
    Column("activity_id", Uuid, ForeignKey("activity.id"), primary_key=True),
    Column("due_on", Date, nullable=False),
    Column("reported_by", Text, nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("note", Text, nullable=False, server_default=""),
)

# R20.2: monthly transmittal of last month's forms, per office
transmittal = Table(
    "transmittal", metadata,
    Column("id", Uuid, primary_key=True),
    Column("office", Text, nullable=False),
    Column("month", Date, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("form_ids", JSONB, nullable=False),
    Column("sent_by", Text, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    UniqueConstraint("office", "month", name="uq_transmittal_office_month"),
)

# R20.2: each signature goes in exactly one transmittal (one signed after a transmittal goes in the next, 0006)
transmittal_item = Table(
    "transmittal_item", metadata,
    Column("form_id", Uuid, ForeignKey("feedback_form.id"), primary_key=True),
    Column("supervisor_id", Uuid, primary_key=True),
    Column("transmittal_id", Uuid, ForeignKey("transmittal.id"), nullable=False, index=True),
)

# Idempotency-Key of external clients' POSTs (claimed in the effect's transaction)
idempotency_key = Table(
    "idempotency_key", metadata,
    Column("subject", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("method", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", JSONB, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

