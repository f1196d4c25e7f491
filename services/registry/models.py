"""Tables of the registry schema: supervisors, appointments, change reports, resignations, dismissals, training."""

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
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from shared.db import service_metadata
from shared.db.platform import define_platform_tables
from shared.documents.archive import define_document_tables

SCHEMA = "registry"
metadata = service_metadata(SCHEMA)
platform = define_platform_tables(metadata)
# R5.1, R9.1: issued certificates, dismissal notices and announcements + their 文号 sequences (0008, issue 18)
documents = define_document_tables(metadata)

NOW = func.now()

supervisor = Table(
    "supervisor", metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("gender", Text, nullable=False),
    # R3.1: no longer kept (NULL since migration 0006): digits 7-14 of the id beside its masked form rebuild it;
    # an unmasked (audited) read derives it from the decrypted id number
    Column("birth_date", Date),
    # R3.1: never plaintext; the hash is a keyed blind index for exact lookup, the masked form is for lists
    Column("id_number_encrypted", Text, nullable=False),
    Column("id_number_hash", Text, nullable=False, unique=True),
    Column("id_number_masked", Text, nullable=False),
    Column("phone_encrypted", Text, nullable=False),
    Column("phone_hash", Text, nullable=False, index=True),
    Column("phone_masked", Text, nullable=False),
    Column("district", Text, nullable=False),
    Column("employer", Text, nullable=False),
    Column("recommending_body", Text, nullable=False),
    Column("specialties", ARRAY(Text), nullable=False, server_default="{}"),
    Column("status", Text, nullable=False),
    Column("decision_no", Text),
    Column("decision_date", Date),
    Column("term_start", Date),
    Column("term_end", Date),
    Column("certificate_no", Text),
    Column("work_card_no", Text),
    Column("initial_training_due", Date),
    Column("initial_passed_on", Date),
    Column("excluded_ground", Text),
    Column("permanent_ban", Boolean, nullable=False, server_default="false"),
    Column("eligible", Boolean, nullable=False, server_default="false"),
    Column("eligibility_reasons", ARRAY(Text), nullable=False, server_default="{}"),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    CheckConstraint("status IN ('candidate','active','resigned','dismissed','term_ended')", name="status"),
    CheckConstraint("gender IN ('male','female')", name="gender"),
    Index("ix_supervisor_name_order", "name", "id"),
    Index("ix_supervisor_name_prefix", "name", postgresql_ops={"name": "text_pattern_ops"}),
    Index("ix_supervisor_district_name", "district", "name", "id"),
    Index("ix_supervisor_district_name_prefix", "district", "name", postgresql_ops={"name": "text_pattern_ops"}),
    Index("ix_supervisor_status_name", "status", "name", "id"),
    Index("ix_supervisor_specialties", "specialties", postgresql_using="gin"),
    Index("ix_supervisor_term_end", "term_end"),  # terms ending in a range (0007)
    Index("ix_supervisor_term_end_order", text("coalesce(term_end, DATE '2999-12-31')"), "id"),  # sort=term_end
)

# Exact counts per (district, status, eligible), kept by triggers (migration 0002): the roster's page
# totals for those filters come from here instead of counting every row on every request.
supervisor_tally = Table(
    "supervisor_tally", metadata,
    Column("district", Text, primary_key=True),
    Column("status", Text, primary_key=True),
    Column("eligible", Boolean, primary_key=True),
    Column("n", BigInteger, nullable=False),
)

appointment = Table(
    "appointment", metadata,
    Column("id", Uuid, primary_key=True),
    Column("supervisor_id", Uuid, ForeignKey("supervisor.id"), nullable=False, index=True),
    Column("person_hash", Text, nullable=False, index=True),  # N-TERM history per person
    Column("decision_no", Text, nullable=False),
    Column("decision_date", Date, nullable=False),
    Column("term_start", Date, nullable=False),
    Column("term_end", Date, nullable=False),
    Column("certificate_no", Text, nullable=False, unique=True),  # R5.1
    Column("work_card_no", Text, nullable=False, unique=True),
    Column("appointed_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    # N-TERM: the procuratorate level of the term; N-BAN: how the term ended early (resigned / dismissed) or
    # at its end (term_ended); the effective end is coalesce(ended_on, term_end)
    Column("level", Text, nullable=False, server_default="city"),
    Column("ended_on", Date),
    Column("end_reason", Text),
    CheckConstraint("level IN ('provincial','city')", name="level"),
    CheckConstraint("end_reason IN ('term_ended','resigned','dismissed')", name="end_reason"),
)

# N-BAN: keyed by the person's id-number blind index, so it holds across records
ban = Table(
    "ban", metadata,
    Column("person_hash", Text, primary_key=True),
    Column("supervisor_id", Uuid, nullable=False),
    Column("dismissal_id", Uuid, nullable=False),
    Column("ground", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

# N-EXCL: each recorded exclusion with its note; lifted with a reason, never deleted
exclusion = Table(
    "exclusion", metadata,
    Column("id", Uuid, primary_key=True),
    Column("supervisor_id", Uuid, ForeignKey("supervisor.id"), nullable=False, index=True),
    Column("person_hash", Text, nullable=False, index=True),
    Column("ground", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("recorded_by", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("lifted_by", Text),
    Column("lifted_at", DateTime(timezone=True)),
    Column("lift_reason", Text),
    # at most one exclusion in force per person record
    Index("uq_exclusion_in_force", "supervisor_id", unique=True, postgresql_where=text("lifted_at IS NULL")),
)

# R8.1(5), R37.1: the AppraisalFinalized results received from appraisal.results, one per (round, person)
appraisal_result = Table(
    "appraisal_result", metadata,
    Column("round_id", Uuid, primary_key=True),
    Column("supervisor_id", Uuid, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("grade", Text, nullable=False),
    Column("finalized_at", DateTime(timezone=True), nullable=False),
    Column("event_id", Uuid),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

number_counter = Table(
    "number_counter", metadata,
    Column("kind", Text, primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("last", Integer, nullable=False),
)

specialty = Table(
    "specialty", metadata,
    Column("name", Text, primary_key=True),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

change_report = Table(
    "change_report", metadata,
    Column("id", Uuid, primary_key=True),
    Column("supervisor_id", Uuid, ForeignKey("supervisor.id"), nullable=False, index=True),
    Column("changes", JSONB, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("changed_on", Date, nullable=False),
    Column("reported_on", Date, nullable=False),
    Column("late", Boolean, nullable=False),
    Column("status", Text, nullable=False),  # pending / applied / rejected
    Column("filed_by", Text, nullable=False),
    Column("decided_by", Text),
    Column("decided_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

resignation = Table(
    "resignation", metadata,
    Column("id", Uuid, primary_key=True),
    Column("supervisor_id", Uuid, ForeignKey("supervisor.id"), nullable=False, index=True),
    Column("reason_kind", Text, nullable=False),  # job_change / health / other
    Column("reason", Text, nullable=False),
    Column("applied_on", Date, nullable=False),
    Column("status", Text, nullable=False),  # pending / approved / rejected
    Column("filed_by", Text, nullable=False),
    Column("decided_by", Text),
    Column("decided_at", DateTime(timezone=True)),
    Column("decision_note", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

dismissal = Table(
    "dismissal", metadata,
    Column("id", Uuid, primary_key=True),
    Column("supervisor_id", Uuid, ForeignKey("supervisor.id"), nullable=False, index=True),
    Column("ground", Integer, nullable=False),
    Column("evidence_note", Text, nullable=False),
    Column("status", Text, nullable=False),  # pending / confirmed / rejected
    Column("source", Text, nullable=False),  # bureau / resignation / appraisal
    Column("appraisal_round_id", Uuid),
    Column("permanent_ban", Boolean, nullable=False, server_default="false"),
    Column("notices", JSONB),
    Column("announcement", Text),
    Column("announcement_number", Text),  # R9.1: its 文号 威司公告〔年〕n号, given by the decision (0009)
    Column("recall", JSONB),
    Column("opened_by", Text, nullable=False),
    Column("decided_by", Text),
    Column("decided_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    CheckConstraint("ground BETWEEN 1 AND 6", name="ground"),
    # R37.1: one case per appraisal round and person
    UniqueConstraint("supervisor_id", "appraisal_round_id", name="uq_dismissal_round"),
)

training_session = Table(
    "training_session", metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("format", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("held_on", Date, nullable=False),
    Column("hours", Numeric(5, 1), nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Index("ix_training_session_held_on", "held_on"),
)

training_record = Table(
    "training_record", metadata,
    Column("session_id", Uuid, ForeignKey("training_session.id"), primary_key=True),
    Column("supervisor_id", Uuid, ForeignKey("supervisor.id"), primary_key=True),
    Column("attended", Boolean, nullable=False),
    Column("exam_passed", Boolean),
    Column("recorded_by", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Index("ix_training_record_supervisor", "supervisor_id"),
)
