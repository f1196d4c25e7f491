"""Tables of the finance schema: rates, plans, supervisors (projection + bank), forms, lines, travel claims."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
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

from shared.db import service_metadata
from shared.db.platform import define_platform_tables
from shared.documents.archive import define_document_tables

SCHEMA = "finance"
metadata = service_metadata(SCHEMA)
platform = define_platform_tables(metadata)
documents = define_document_tables(metadata)  # issued documents + 文号 sequences (issue 18)
NOW = func.now()
STATE_CHECK = "status IN ('draft', 'checked', 'approved', 'paid', 'rejected')"
ALL_DISTRICTS = "全市"  # the scope of a citywide disbursement table

# N-RATE: append-only; the rate in force on d = greatest effective_from ≤ d
rate = Table(
    "rate", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("activity_type", Text, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("effective_from", Date, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    # N-RATE: a rate effective on a past date waits for a second finance user (issue 12)
    Column("status", Text, nullable=False, server_default="approved"),
    Column("approved_by", Text, nullable=True),
    Column("approved_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("amount_fen >= 0", name="amount_nonnegative"),
    CheckConstraint("status IN ('pending', 'approved')", name="status_valid"),
    Index("ix_rate_type_from", "activity_type", "effective_from"),
)

# R41.1: one plan per (year, office); rows = planned activities per month and type
plan = Table(
    "plan", metadata,
    Column("id", Uuid, primary_key=True),
    Column("year", Integer, nullable=False),
    Column("office", Text, nullable=False),
    Column("district", Text, nullable=True),
    Column("submitted_by", Text, nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    UniqueConstraint("year", "office", name="uq_plan_year_office"),
)
plan_row = Table(
    "plan_row", metadata,
    Column("plan_id", Uuid, ForeignKey("plan.id", ondelete="CASCADE"), primary_key=True),
    Column("month", Integer, primary_key=True),
    Column("activity_type", Text, primary_key=True),
    Column("count", Integer, nullable=False),
    Column("seats", Integer, nullable=False, server_default="1"),  # supervisors per activity (R41.1)
    CheckConstraint("month BETWEEN 1 AND 12", name="month_range"),
    CheckConstraint("count >= 0", name="count_nonnegative"),
    CheckConstraint("seats >= 1", name="seats_positive"),
)

# projection of registry events + bank details entered by finance staff (encrypted, masked copy)
supervisor = Table(
    "supervisor", metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=True),
    Column("district", Text, nullable=True),
    Column("bank_name", Text, nullable=True),
    Column("bank_account_encrypted", Text, nullable=True),
    Column("bank_account_masked", Text, nullable=True),
    Column("bank_updated_by", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

# R42.1: every FeedbackSigned received (the basis of reconciliation): one per (form, signer)
feedback_form = Table(
    "feedback_form", metadata,
    Column("form_id", Uuid, primary_key=True),
    Column("supervisor_id", Uuid, primary_key=True),
    Column("activity_id", Uuid, nullable=False),
    Column("request_id", Uuid, nullable=False),
    Column("activity_type", Text, nullable=False),
    Column("activity_date", Date, nullable=False, index=True),
    Column("district", Text, nullable=False),
    Column("signature_hash", Text, nullable=False),
    Column("signed_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Index("ix_feedback_form_supervisor_activity", "supervisor_id", "activity_id"),
    Index("ix_feedback_form_signature_hash", "signature_hash"),
)

# R42.1: the monthly table as issued (a document of record): frozen rows, batch number, versions
disbursement_table = Table(
    "disbursement_table", metadata,
    Column("id", Uuid, primary_key=True),
    Column("year", Integer, nullable=False),
    Column("month", Integer, nullable=False),
    Column("scope", Text, nullable=False),  # a district, or ALL_DISTRICTS
    Column("batch_no", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("supersedes_id", Uuid, ForeignKey("disbursement_table.id"), nullable=True),
    Column("correction_reason", Text, nullable=True),
    Column("issued_by", Text, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("superseded_at", DateTime(timezone=True), nullable=True),
    Column("row_count", Integer, nullable=False, server_default="0"),
    Column("total_activities", Integer, nullable=False, server_default="0"),
    Column("total_subsidy_fen", BigInteger, nullable=False, server_default="0"),
    Column("total_travel_fen", BigInteger, nullable=False, server_default="0"),
    Column("total_fen", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("batch_no", "version", name="uq_disbursement_table_batch_version"),
    CheckConstraint("status IN ('issued', 'superseded')", name="status_valid"),
    CheckConstraint("month BETWEEN 1 AND 12", name="month_range"),
    Index("uq_disbursement_table_current", "year", "month", "scope", unique=True,
          postgresql_where=text("status = 'issued'")),
)
disbursement_row = Table(
    "disbursement_row", metadata,
    Column("table_id", Uuid, ForeignKey("disbursement_table.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("supervisor_id", Uuid, nullable=False),
    Column("name", Text, nullable=False),
    Column("district", Text, nullable=False),
    Column("activities", Integer, nullable=False),
    Column("subsidy_fen", BigInteger, nullable=False),
    Column("travel_fen", BigInteger, nullable=False),
    Column("total_fen", BigInteger, nullable=False),
    Column("bank_name", Text, nullable=False),
    Column("bank_account_masked", Text, nullable=False),
    Column("bank_account_encrypted", Text, nullable=True),
    Column("remark", Text, nullable=False),
)
disbursement_item = Table(
    "disbursement_item", metadata,
    Column("table_id", Uuid, ForeignKey("disbursement_table.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("item_id", Uuid, primary_key=True),
    Column("supervisor_id", Uuid, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    CheckConstraint("kind IN ('line', 'claim')", name="kind_valid"),
)

# R42.1: the procuratorate's covering letter (履职情况反馈函) of a month; district NULL = the whole city
covering_letter = Table(
    "covering_letter", metadata,
    Column("id", Uuid, primary_key=True),
    Column("year", Integer, nullable=False),
    Column("month", Integer, nullable=False),
    Column("district", Text, nullable=True),
    Column("reference", Text, nullable=False),
    Column("recorded_by", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("month BETWEEN 1 AND 12", name="month_range"),
    Index("ix_covering_letter_period", "year", "month"),
)

def payment_columns() -> list[Column]:
    """R42.1/R43.1: who paid and when (server clock), or who rejected it and why; R41.1: who approved going
    over the budget, and why."""
    return [Column("paid_by", Text, nullable=True), Column("paid_at", DateTime(timezone=True), nullable=True),
            Column("rejected_by", Text, nullable=True), Column("rejected_at", DateTime(timezone=True), nullable=True),
            Column("reject_reason", Text, nullable=True),
            Column("excess_approved_by", Text, nullable=True),
            Column("excess_approved_at", DateTime(timezone=True), nullable=True),
            Column("excess_reason", Text, nullable=True)]

# R42.1: one line per supervisor per activity; amount and rate fixed at creation (never repriced)
subsidy_line = Table(
    "subsidy_line", metadata,
    Column("id", Uuid, primary_key=True),
    Column("supervisor_id", Uuid, nullable=False),
    Column("activity_id", Uuid, nullable=False),
    Column("form_id", Uuid, nullable=True),  # no FK on purpose: reconciliation finds orphans
    Column("activity_type", Text, nullable=False),
    Column("type_known", Boolean, nullable=False, server_default="true"),
    Column("activity_date", Date, nullable=False),
    Column("district", Text, nullable=True),
    Column("rate_id", BigInteger, ForeignKey("rate.id"), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("status", Text, nullable=False, server_default="draft"),
    Column("checked_by", Text, nullable=True),
    Column("checked_at", DateTime(timezone=True), nullable=True),
    Column("approved_by", Text, nullable=True),
    Column("approved_at", DateTime(timezone=True), nullable=True),
    Column("paid_on", Date, nullable=True),
    Column("payment_reference", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    *payment_columns(),
    Column("table_id", Uuid, ForeignKey("disbursement_table.id"), nullable=True, index=True),
    UniqueConstraint("supervisor_id", "activity_id", name="uq_subsidy_line_supervisor_activity"),
    CheckConstraint("amount_fen >= 0", name="amount_nonnegative"),
    CheckConstraint(STATE_CHECK, name="status_valid"),
    Index("ix_subsidy_line_date_status", "activity_date", "status"),
)

# R43.1: travel claims of activities, training and meetings
travel_claim = Table(
    "travel_claim", metadata,
    Column("id", Uuid, primary_key=True),
    Column("supervisor_id", Uuid, nullable=False, index=True),
    Column("purpose_kind", Text, nullable=False),
    Column("purpose_ref", Text, nullable=False),
    Column("travel_date", Date, nullable=False),
    Column("total_fen", BigInteger, nullable=False),
    Column("status", Text, nullable=False, server_default="draft"),
    Column("created_by", Text, nullable=False),
    Column("checked_by", Text, nullable=True),
    Column("checked_at", DateTime(timezone=True), nullable=True),
    Column("approved_by", Text, nullable=True),
    Column("approved_at", DateTime(timezone=True), nullable=True),
    Column("paid_on", Date, nullable=True),
    Column("payment_reference", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    *payment_columns(),
    Column("approved_fen", BigInteger, nullable=True),  # R43.1: approved in part (NULL: as claimed)
    Column("approval_note", Text, nullable=True),
    Column("activity_id", Uuid, nullable=True),  # R43.1: the attended activity of an 'activity' claim
    Column("district", Text, nullable=True),
    Column("table_id", Uuid, ForeignKey("disbursement_table.id"), nullable=True, index=True),
    CheckConstraint("purpose_kind IN ('activity', 'training', 'meeting')", name="purpose_kind_valid"),
    CheckConstraint(STATE_CHECK, name="status_valid"),
    Index("ix_travel_claim_date_status", "travel_date", "status"),
)
travel_item = Table(
    "travel_item", metadata,
    Column("id", Uuid, primary_key=True),
    Column("claim_id", Uuid, ForeignKey("travel_claim.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("category", Text, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("nights", Integer, nullable=False, server_default="1"),
    Column("description", Text, nullable=True),
    CheckConstraint("amount_fen >= 0", name="amount_nonnegative"),
    CheckConstraint("category IN ('transport', 'accommodation', 'meal', 'other')", name="category_valid"),
)
receipt = Table(
    "receipt", metadata,
    Column("id", Uuid, primary_key=True),
    Column("item_id", Uuid, ForeignKey("travel_item.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("content_type", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("uploaded_by", Text, nullable=False),
    Column("uploaded_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)
