"""The platform tables every service has in its own schema: outbox, inbox, audit log, calendar, audit witness."""

from dataclasses import dataclass

from sqlalchemy import MetaData, Table

from shared.audit import define_audit_table
from shared.audit_watch import define_witness_table
from shared.calendar import define_calendar_table
from shared.events.inbox import define_inbox_table
from shared.events.outbox import define_outbox_table


@dataclass(frozen=True)
class PlatformTables:
    outbox: Table
    inbox: Table
    audit: Table
    calendar: Table
    witness: Table  # the other services' audit heads (shared/audit_watch.py)


def define_platform_tables(metadata: MetaData) -> PlatformTables:
    """Add the platform tables to a service's metadata (its migrations create them)."""
    return PlatformTables(
        outbox=define_outbox_table(metadata),
        inbox=define_inbox_table(metadata),
        audit=define_audit_table(metadata),
        calendar=define_calendar_table(metadata),
        witness=define_witness_table(metadata),
    )
