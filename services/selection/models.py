"""Tables of the selection schema: pool, requests, chain, draws, candidates, contact log, bookings, recusals."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
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
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from shared.db import service_metadata
from shared.db.platform import define_platform_tables

SCHEMA = "selection"
metadata = service_metadata(SCHEMA)
platform = define_platform_tables(metadata)
NOW = func.now()

# Projection of registry.supervisors (kept current by consumers.py); the name is needed for R12.1.
supervisor = Table(
    "supervisor", metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("district", Text, nullable=False),
    Column("specialties", ARRAY(Text), nullable=False),  # sorted, unique
    Column("eligible", Boolean, nullable=False),
    Column("dismissed", Boolean, nullable=False, server_default=text("false")),
    Column("term_start", Date, nullable=True),  # eligibility is judged on the activity's date (R4.1)
    Column("term_end", Date, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Index("ix_supervisor_drawable", "district", postgresql_where=text("eligible AND NOT dismissed")),
)

# Relations a supervisor declared (party names), checked against a request's conflict list (R13.1).
declared_relation = Table(
    "declared_relation", metadata,
    Column("supervisor_id", Uuid, primary_key=True),
    Column("party_name", Text, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

request = Table(
    "request", metadata,
    Column("id", Uuid, primary_key=True),  # the casework request_id: replay-safe natural key
    Column("activity_id", Uuid, nullable=False),
    Column("case_ref", Text, nullable=False),
    Column("activity_type", Text, nullable=False),
    Column("office", Text, nullable=False),
    Column("district", Text, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("year", Integer, nullable=False),
    Column("place", Text, nullable=False),
    Column("seats", Integer, nullable=False),
    Column("seats_local", Integer, nullable=False),
    Column("seats_cross", Integer, nullable=False),
    Column("specialty", Text, nullable=True),
    Column("conflict_parties", JSONB, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),  # server clock (or the stated claim)
    Column("received_claim", JSONB, nullable=True),  # {at, by, recorded_at}: a bureau user stated the receipt time
    Column("short_notice", JSONB, nullable=True),  # {reason}: the procuratorate asked for R10.2
    Column("short_notice_decision", JSONB, nullable=True),  # {granted, by, at, reason}: a bureau user decided
    Column("procuratorate_commitment", Text, nullable=True),  # sha256 of n_P (DRAW.md protocol step 1)
    Column("procuratorate_nonce", Text, nullable=True),  # n_P once revealed and matching (step 3)
    Column("procuratorate_nonce_reason", Text, nullable=True),  # why the draw ran without n_P
    Column("bureau_nonce", Text, nullable=True),  # revealed in the receipt once drawn
    Column("bureau_commitment", Text, nullable=True),
    Column("accepted_at", DateTime(timezone=True), nullable=True),
    Column("reveal_deadline", DateTime(timezone=True), nullable=True),  # DRAW_REVEAL_TIMEOUT after acceptance
    Column("snapshot", JSONB, nullable=True),  # the pool manifest frozen at acceptance
    Column("params", JSONB, nullable=True),  # the params of round 1, frozen at acceptance
    Column("snapshot_hash", Text, nullable=True),
    Column("params_hash", Text, nullable=True),
    Column("beacon", JSONB, nullable=True),  # {source, round} named at acceptance; + value, entered_by, entered_at
    Column("cancellation", JSONB, nullable=True),  # {reason, by, at}
    Column("balance_mode", Text, nullable=False),
    # awaiting_consent | accepted | drawn | staffed | refused | cancelled
    Column("status", Text, nullable=False),
    Column("refusal_code", Text, nullable=True),
    Column("refusal_detail", Text, nullable=True),
    Column("earliest_allowed_date", Date, nullable=True),
    Column("calendar_provisional", Boolean, nullable=False, server_default=text("false")),
    Column("shortfall", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("via", Text, nullable=False),  # event | http
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    CheckConstraint("seats >= 1 AND seats_local >= 0 AND seats_cross >= 0", name="seats"),
    CheckConstraint("ends_at > starts_at", name="window"),
    # one live request per activity: another needs this one refused or cancelled (0005)
    Index("uq_request_live_activity", "activity_id", unique=True,
          postgresql_where=text("status NOT IN ('refused', 'cancelled')")),
    Index("ix_request_reveal_due", "reveal_deadline", postgresql_where=text("status = 'accepted'")),
    Index("ix_request_starts_at", "starts_at", "id"),  # the work list (0009)
)

# The one hash chain of the draw protocol: every acceptance, draw receipt and cancellation (0005).
# A draw's entry hash is its receipt hash (the receipt names prev_hash as prev_receipt_hash); the
# others hash their body, which names prev_hash.
chain_entry = Table(
    "chain_entry", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", Text, nullable=False),
    Column("request_id", Uuid, nullable=False),
    Column("draw_id", Uuid, nullable=True),
    Column("hash", Text, nullable=False, unique=True),
    Column("prev_hash", Text, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    CheckConstraint("kind IN ('acceptance', 'draw', 'cancellation')", name="kind"),
    Index("ix_chain_entry_request", "request_id"),
)

draw = Table(
    "draw", metadata,
    Column("id", Uuid, primary_key=True),
    Column("request_id", Uuid, nullable=False),
    Column("round", Integer, nullable=False),
    Column("chain_seq", BigInteger, nullable=False, unique=True),  # global receipt chain position
    Column("receipt", LargeBinary, nullable=False),  # zlib(canonical JSON of the receipt, buckets not included)
    Column("receipt_hash", Text, nullable=False, unique=True),
    Column("prev_receipt_hash", Text, nullable=False),
    Column("need", JSONB, nullable=False),  # seats this round must fill per group ({"local": n, "cross": m})
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    UniqueConstraint("request_id", "round"),
)

# The pool as content-addressed buckets (draw algorithm v2, pool/snapshot.py; triggers in migration 0002).
pool_bucket = Table(
    "pool_bucket", metadata,
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("prefix", Text, primary_key=True),  # first two hex characters of the supervisor id
    Column("hash", Text, nullable=False),  # sha256 of the bucket's canonical JSON, "[]" when empty
)

pool_blob = Table(
    "pool_blob", metadata,
    Column("hash", Text, primary_key=True),
    Column("body", Text, nullable=False),  # canonical JSON of the bucket; never changed once written
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

# Buckets changed since the last draw (prefix, year; NULL year = every year), written by triggers.
pool_change = Table(
    "pool_change", metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("prefix", Text, nullable=False),
    Column("year", Integer, nullable=True),
)

# Every person put in order for a request (all rounds): their place and contact state.
candidate = Table(
    "candidate", metadata,
    Column("request_id", Uuid, primary_key=True),
    Column("supervisor_id", Uuid, primary_key=True),
    Column("draw_id", Uuid, nullable=False),
    Column("round", Integer, nullable=False),
    Column("group", Text, nullable=False),
    Column("position", Integer, nullable=False),  # 1-based draw order within the group, across rounds
    # pending | confirmed | declined | unreachable | recused | dismissed | ineligible | cancelled
    Column("status", Text, nullable=False),
    Column("confirmed_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    UniqueConstraint("request_id", "group", "position"),
    Index("ix_candidate_draw", "draw_id", "group"),
    Index("ix_candidate_supervisor", "supervisor_id"),
)

contact_log = Table(
    "contact_log", metadata,
    Column("draw_id", Uuid, primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("entry", JSONB, nullable=False),  # includes prev_hash; personal data never (reason hashed)
    Column("reason", Text, nullable=True),  # the reason text stays here, outside the public receipt
    Column("hash", Text, nullable=False),
    Column("actor", Text, nullable=True),  # the user who recorded it (auditors' report), not in the entry
)

# What was recorded for a supervisor by someone else (DRAW.md "Contact"): their inbox until the
# notification path of the operations issue exists.
notice = Table(
    "notice", metadata,
    Column("id", Uuid, primary_key=True),
    Column("supervisor_id", Uuid, nullable=False),
    Column("request_id", Uuid, nullable=False),
    Column("kind", Text, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("read_at", DateTime(timezone=True), nullable=True),
    Index("ix_notice_supervisor", "supervisor_id", "created_at"),
)

# A confirmed seat; `active` false once released. Overlap and cap are checked under a per-person lock.
booking = Table(
    "booking", metadata,
    Column("supervisor_id", Uuid, primary_key=True),
    Column("request_id", Uuid, primary_key=True),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("year", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("confirmed_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("released_at", DateTime(timezone=True), nullable=True),
    Index("ix_booking_served", "year", "supervisor_id", postgresql_where=text("active")),
    Index("ix_booking_active_ends_at", "ends_at", postgresql_where=text("active")),  # overlaps (0003)
)

# A confirmed supervisor who did not attend, recorded by the bureau after the activity began (0006).
absence = Table(
    "absence", metadata,
    Column("request_id", Uuid, primary_key=True),
    Column("supervisor_id", Uuid, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("recorded_by", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

recusal = Table(
    "recusal", metadata,
    Column("id", Uuid, primary_key=True),
    Column("request_id", Uuid, nullable=False, index=True),
    Column("supervisor_id", Uuid, nullable=False),
    Column("source", Text, nullable=False),  # self | procuratorate | party | conflict_list
    Column("ground", Text, nullable=False),
    Column("status", Text, nullable=False),  # pending | granted | rejected
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", Text, nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("decision_reason", Text, nullable=True),
    # one pending request per (request, supervisor, source): a redelivered or concurrent one is the same (0004)
    Index("uq_recusal_pending", "request_id", "supervisor_id", "source", unique=True,
          postgresql_where=text("status = 'pending'")),
    Index("ix_recusal_inbox", "requested_at", "id", postgresql_where=text("status = 'pending'")),  # (0009)
)
