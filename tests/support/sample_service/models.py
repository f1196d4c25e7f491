"""A pretend service used to test the platform: one table, the platform tables, one schema."""

from sqlalchemy import Column, Integer, Table, Text, UniqueConstraint

from shared.db import service_metadata
from shared.db.platform import define_platform_tables

SCHEMA = "sample"
metadata = service_metadata(SCHEMA)
platform = define_platform_tables(metadata)
note = Table(
    "note", metadata,
    Column("id", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    # deferred, so a violation surfaces only at COMMIT (lets tests prove the commit precedes the answer)
    UniqueConstraint("text", deferrable=True, initially="DEFERRED"),
)
