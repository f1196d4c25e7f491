"""Tables of the appraisal schema: supervisor projection, ledger, rounds, steps, participants, notices."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata
from shared.db.platform import define_platform_tables
from shared.documents.archive import define_document_tables

SCHEMA = "appraisal"
metadata = service_metadata(SCHEMA)
platform = define_platform_tables(metadata)
documents = define_document_tables(metadata)  # issued documents + 文号 sequences (issue 18)
NOW = func.now()
GRADE_CHECK = "IN ('excellent', 'qualified', 'basically_qualified', 'unqualified')"

# projection of registry.supervisors events
supervisor = Table(
    "supervisor", metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=True),
    Column("district", Text, nullable=True, index=True),
    Column("employer", Text, nullable=True),
    Column("recommending_body", Text, nullable=True),
    Column("term_start", Date, nullable=True),
    Column("term_end", Date, nullable=True),
    Column("status", Text, nullable=False, server_default="active"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

# R28.1 履职工作台账: one row per fact; source_key makes every event and replay idempotent
ledger_entry = Table(
    "ledger_entry", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("supervisor_id", Uuid, nullable=False),
    Column("year", Integer, nullable=False),
    Column("kind", Text, nullable=False),
    Column("subkind", Text, nullable=True),  # activity type / training kind / conduct kind
    Column("occurred_on", Date, nullable=False),
    Column("ref_id", Uuid, nullable=True),  # activity id / training session id
    Column("adopted", Boolean, nullable=True),
    Column("hours", Float, nullable=True),
    Column("attended", Boolean, nullable=True),
    Column("ground", SmallInteger, nullable=True),  # R32.1 ground a reminder addresses
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("source_key", Text, nullable=False, unique=True),
    Column("recorded_by", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    CheckConstraint("kind IN ('activity', 'training', 'conduct', 'other', 'late_change_report', 'absence')",
                    name="kind_valid"),
    CheckConstraint("ground IS NULL OR ground BETWEEN 1 AND 5", name="ground_range"),
    Index("ix_ledger_entry_supervisor_year", "supervisor_id", "year"),
    Index("ix_ledger_entry_year", "year"),
    Index("ix_ledger_entry_activity", "ref_id", "supervisor_id"),
)

# R18.1 adoption facts, kept so the order of FeedbackSigned / OpinionAdoptionNotified does not matter
opinion_adoption = Table(
    "opinion_adoption", metadata,
    Column("activity_id", Uuid, primary_key=True),
    Column("supervisor_id", Uuid, primary_key=True),
    Column("adopted", Boolean, nullable=False),
    Column("notified_at", DateTime(timezone=True), nullable=False),
)

# R29.1 / R34.1: an annual or term round
appraisal_round = Table(
    "appraisal_round", metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("year", Integer, nullable=True),  # annual
    Column("term_start", Date, nullable=True),  # term
    Column("term_end", Date, nullable=True),
    Column("state", Text, nullable=False, server_default="opened"),
    Column("consultation_note", Text, nullable=True),  # R34.1(4) city procuratorate consulted
    Column("notice_text", Text, nullable=True),
    Column("notice_document", JSONB, nullable=True),  # R34.1(5): the 公示 as a document (0006, issue 18)
    Column("notice_number", Text, nullable=True),  # its 文号, taken when the public notice first begins (0008)
    Column("notice_start", Date, nullable=True),
    Column("notice_end", Date, nullable=True),
    Column("finalized_on", Date, nullable=True),
    Column("entered_by", Date, nullable=True),  # R34.1(6) +5 working days
    Column("entered_done_at", DateTime(timezone=True), nullable=True),
    Column("entered_done_by", Text, nullable=True),
    Column("reported_by", Date, nullable=True),  # R34.1(6) +10 working days
    Column("reported_done_at", DateTime(timezone=True), nullable=True),
    Column("reported_done_by", Text, nullable=True),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    # R30.1 "一般不超过": more than floor(15 %) excellent goes on with a justification approved by a second user
    Column("cap_justification", Text, nullable=True),
    Column("cap_justified_count", Integer, nullable=True),
    Column("cap_justified_by", Text, nullable=True),
    Column("cap_justified_at", DateTime(timezone=True), nullable=True),
    Column("cap_approved_by", Text, nullable=True),
    Column("cap_approved_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("kind IN ('annual', 'term')", name="kind_valid"),
    CheckConstraint("(kind = 'annual' AND year IS NOT NULL) OR (kind = 'term' AND term_start IS NOT NULL "
                    "AND term_end IS NOT NULL AND term_start < term_end)", name="period_valid"),
    Index("uq_appraisal_round_annual_year", "year", unique=True, postgresql_where=text("kind = 'annual'")),
)

# R34.1: who moved the round to each step, and when
round_step = Table(
    "round_step", metadata,
    Column("round_id", Uuid, ForeignKey("appraisal_round.id", ondelete="CASCADE"), primary_key=True),
    Column("state", Text, primary_key=True),
    Column("actor", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("note", Text, nullable=True),
)

# one appraised person in a round: summary, opinions, proposals, defence, final grade
participant = Table(
    "participant", metadata,
    Column("round_id", Uuid, ForeignKey("appraisal_round.id", ondelete="CASCADE"), primary_key=True),
    Column("supervisor_id", Uuid, primary_key=True),
    Column("district", Text, nullable=True, index=True),
    Column("self_summary", Text, nullable=True),
    Column("self_summary_at", DateTime(timezone=True), nullable=True),
    Column("procuratorate_opinion", Text, nullable=True),
    Column("procuratorate_opinion_by", Text, nullable=True),
    Column("community_opinion", Text, nullable=True),  # employer / residence community (R34.1(2)3)
    Column("community_opinion_by", Text, nullable=True),
    Column("district_grade", Text, nullable=True),
    Column("district_by", Text, nullable=True),
    Column("district_at", DateTime(timezone=True), nullable=True),
    Column("bureau_grade", Text, nullable=True),
    Column("grounds", JSONB, nullable=False, server_default=text("'[]'::jsonb")),  # R32.1
    Column("bureau_by", Text, nullable=True),
    Column("bureau_at", DateTime(timezone=True), nullable=True),
    Column("defence_sent_on", Date, nullable=True),  # R35.1
    Column("defence_reasons", Text, nullable=True),
    Column("defence_basis", Text, nullable=True),
    Column("defence_window_end", Date, nullable=True),
    Column("statement", Text, nullable=True),
    Column("statement_at", DateTime(timezone=True), nullable=True),
    Column("statement_final", Boolean, nullable=False, server_default="false"),
    Column("final_grade", Text, nullable=True),
    Column("excellent_criteria", JSONB, nullable=True),  # R31.1: the five conditions with their evidence
    Column("defence_notice_text", Text, nullable=True),  # R35.1: the 告知书's text
    Column("defence_number", Text, nullable=True),  # R35.1: its 文号, taken when first sent (0008)
    Column("statement_by", Text, nullable=True),
    Column("statement_received_on", Date, nullable=True),  # R35.1: date of a statement received on paper
    Column("result_version", Integer, nullable=True),  # the current version of the finalized result
    CheckConstraint(f"district_grade IS NULL OR district_grade {GRADE_CHECK}", name="district_grade_valid"),
    CheckConstraint(f"bureau_grade IS NULL OR bureau_grade {GRADE_CHECK}", name="bureau_grade_valid"),
    CheckConstraint(f"final_grade IS NULL OR final_grade {GRADE_CHECK}", name="final_grade_valid"),
)

# R38.1 / R39.1: stored notice texts
notice = Table(
    "notice", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("round_id", Uuid, ForeignKey("appraisal_round.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("supervisor_id", Uuid, nullable=True),  # null: the round's public commendation
    Column("kind", Text, nullable=False),  # result | commendation
    Column("recipient", Text, nullable=False),  # person | employer | recommending_body | procuratorate | public
    Column("text", Text, nullable=False),
    Column("document", JSONB, nullable=True),  # the notice as a document: title, addressee, paragraphs (0006)
    Column("number", Text, nullable=True),  # its 文号, given when it was issued (0007; before: at its first print)
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

# R30.1/R34.1: every move of a round (forward, back with a reason, corrections): the full history
round_history = Table(
    "round_history", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("round_id", Uuid, ForeignKey("appraisal_round.id", ondelete="CASCADE"), nullable=False),
    Column("supervisor_id", Uuid, nullable=True),
    Column("action", Text, nullable=False),
    Column("from_state", Text, nullable=True),
    Column("to_state", Text, nullable=True),
    Column("reason", Text, nullable=True),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("actor", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_round_history_round", "round_id", "id"),
)

# R37.1: each version of a finalized result (a correction adds a version; the old ones are kept)
result = Table(
    "result", metadata,
    Column("round_id", Uuid, ForeignKey("appraisal_round.id", ondelete="CASCADE"), primary_key=True),
    Column("supervisor_id", Uuid, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("grade", Text, nullable=False),
    Column("grounds", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("decided_by", Text, nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=True),
    CheckConstraint(f"grade {GRADE_CHECK}", name="grade_valid"),
    CheckConstraint("version >= 1", name="version_positive"),
)

# R34.1(3): each district bureau consulted its procuratorate before proposing grades
district_consultation = Table(
    "district_consultation", metadata,
    Column("round_id", Uuid, ForeignKey("appraisal_round.id", ondelete="CASCADE"), primary_key=True),
    Column("district", Text, primary_key=True),
    Column("note", Text, nullable=False),
    Column("recorded_by", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)
