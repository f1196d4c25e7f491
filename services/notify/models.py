"""Tables of the notify schema: messages (the in-app inbox), their deliveries per channel, read receipts,
and a projection of the supervision requests (what an activity notice needs to say: when, where, what)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)

from shared.db import service_metadata
from shared.db.platform import define_platform_tables

SCHEMA = "notify"
metadata = service_metadata(SCHEMA)
platform = define_platform_tables(metadata)
NOW = func.now()

CHANNELS = ("inbox", "sms")
DELIVERY_STATES = ("queued", "held", "retrying", "sent", "failed")

# One message to one audience: a supervisor (self only) or a staff role (optionally of one district).
message = Table(
    "message", metadata,
    Column("id", Uuid, primary_key=True),
    # what makes it one message: "event:<event id>:<recipient>" or "deadline:<service>:<rule>:…:<stage>:<role>"
    Column("dedupe_key", Text, nullable=False),
    Column("kind", Text, nullable=False),  # stable code, e.g. supervisor_drawn, recusal_to_decide
    Column("rule", Text, nullable=True),  # the rule the message is about (R12.1, R13.2, …)
    Column("urgent", Boolean, nullable=False),  # urgent SMS go out in quiet hours too
    Column("supervisor_id", Uuid, nullable=True),
    Column("role", Text, nullable=True),
    Column("district", Text, nullable=True),  # for a role: that district's staff only (None: city-wide)
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("subject_type", Text, nullable=False),
    Column("subject_id", Text, nullable=False),
    Column("source", Text, nullable=False),  # the producing service (event) or deadline service
    Column("event_id", Uuid, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    UniqueConstraint("dedupe_key", name="uq_message_dedupe_key"),
    CheckConstraint("(supervisor_id IS NULL) <> (role IS NULL)", name="one_audience"),
)
Index("ix_message_supervisor", message.c.supervisor_id, message.c.created_at.desc(), message.c.id.desc(),
      postgresql_where=message.c.supervisor_id.is_not(None))
Index("ix_message_role", message.c.role, message.c.created_at.desc(), message.c.id.desc(),
      postgresql_where=message.c.role.is_not(None))

# Who read a message (a supervisor reads their own; staff each mark what they read).
message_read = Table(
    "message_read", metadata,
    Column("message_id", Uuid, ForeignKey("message.id", ondelete="CASCADE"), primary_key=True),
    Column("reader", Text, primary_key=True),  # the token's subject
    Column("read_at", DateTime(timezone=True), nullable=False),
)

# One row per message and channel: the inbox row is sent when the message is stored; an SMS is queued,
# held for quiet hours, retried with backoff, sent or (after the last attempt) failed.
delivery = Table(
    "delivery", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("message_id", Uuid, ForeignKey("message.id", ondelete="CASCADE"), nullable=False),
    Column("channel", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("provider", Text, nullable=True),  # tencent | log
    Column("provider_ref", Text, nullable=True),  # the gateway's serial number
    # the recipient's phone when the event carried it (SupervisorDrawn), AES-GCM sealed; else looked up
    Column("phone_sealed", Text, nullable=True),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    UniqueConstraint("message_id", "channel", name="uq_delivery_message_channel"),
    CheckConstraint(f"channel IN {CHANNELS}", name="channel"),
    CheckConstraint(f"status IN {DELIVERY_STATES}", name="status"),
)
Index("ix_delivery_due", delivery.c.next_attempt_at, postgresql_where=delivery.c.status.in_(("queued", "held",
                                                                                               "retrying")))

# What the activity notices need of a supervision request (casework's SupervisionRequested)
request_info = Table(
    "request_info", metadata,
    Column("request_id", Uuid, primary_key=True),
    Column("activity_id", Uuid, nullable=False),
    Column("activity_type", Text, nullable=False),
    Column("office", Text, nullable=False),
    Column("district", Text, nullable=False),
    Column("place", Text, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)
Index("ix_request_info_activity", request_info.c.activity_id, request_info.c.received_at.desc())
