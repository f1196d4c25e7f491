"""Issued documents, each stored once and served again byte-identical; 文号 sequences per kind and year.

Every service that issues documents adds these two tables to its metadata (`define_document_tables`) and creates
them in its own migration. A document is keyed by (kind, subject, data hash): the same content asked for again is
the stored PDF (its hash, who issued it and when, its 文号); changed content (a signature added, a decision taken)
is a new document of the same subject, the earlier one kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.documents.words import document_number


@dataclass(frozen=True)
class DocumentTables:
    document: Table
    number: Table


@dataclass(frozen=True)
class Issued:
    pdf: bytes
    sha256: str
    number: str | None
    issued_by: str
    issued_at: datetime
    new: bool


def define_document_tables(metadata: MetaData) -> DocumentTables:
    document = Table(
        "issued_document", metadata,
        Column("id", Uuid, primary_key=True),
        Column("kind", Text, nullable=False),
        Column("subject", Text, nullable=False),
        Column("data_sha256", Text, nullable=False),
        Column("sha256", Text, nullable=False),
        Column("number", Text, nullable=True),
        Column("size", BigInteger, nullable=False),
        Column("content", LargeBinary, nullable=False),
        Column("issued_by", Text, nullable=False),
        Column("issued_at", DateTime(timezone=True), nullable=False),
        UniqueConstraint("kind", "subject", "data_sha256"),  # each content stored once
    )
    number = Table(
        "document_number", metadata,
        Column("kind", Text, primary_key=True),
        Column("year", Integer, primary_key=True),
        Column("last", Integer, nullable=False),
    )
    return DocumentTables(document, number)


def data_hash(data: dict[str, Any]) -> str:
    canonical = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def next_sequence(session: AsyncSession, tables: DocumentTables, kind: str, year: int) -> int:
    """The next number of `kind` in `year` (1, 2, …; gap-free within committed transactions: the row is locked
    until the caller commits)."""
    t = tables.number
    statement = insert(t).values(kind=kind, year=year, last=1).on_conflict_do_update(
        index_elements=[t.c.kind, t.c.year], set_={"last": t.c.last + 1}).returning(t.c.last)
    return int(await session.scalar(statement))


async def issue(session: AsyncSession, tables: DocumentTables, *, kind: str, subject: str, data: dict[str, Any],
                render: Callable[[dict[str, Any]], bytes], actor: str,
                numbered: tuple[str, int] | None = None, number: str | None = None) -> Issued:
    """The stored document for this content, or a new one: `numbered` = (authority code, year) gives it the next
    文号 of `kind` in that year, `number` the 文号 the act that issued it already gave it (a completed feedback form:
    numbered at its last signature, not when first read); either is in `data["number"]` for the template;
    `render(data)` makes the PDF."""
    digest = data_hash(data)
    t = tables.document
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"document:{kind}:{subject}"))))
    found = (await session.execute(select(t).where(t.c.kind == kind, t.c.subject == subject,
                                                   t.c.data_sha256 == digest))).first()
    if found is not None:
        return Issued(found.content, found.sha256, found.number, found.issued_by, found.issued_at, new=False)
    if number is None and numbered is not None:  # a subject keeps its 文号 through its versions
        number = await session.scalar(select(t.c.number).where(t.c.kind == kind, t.c.subject == subject,
                                                                t.c.number.is_not(None)).limit(1))
        if number is None:
            code, year = numbered
            number = document_number(code, year, await next_sequence(session, tables, kind, year))
    pdf = await asyncio.to_thread(render, {**data, "number": number} if number else data)  # CPU: off the loop
    sha = hashlib.sha256(pdf).hexdigest()
    at = clock.now()
    await session.execute(t.insert().values(id=uuid.uuid4(), kind=kind, subject=subject, data_sha256=digest,
                                            sha256=sha, number=number, size=len(pdf), content=pdf, issued_by=actor,
                                            issued_at=at))
    return Issued(pdf, sha, number, actor, at, new=True)


def headers(doc: Issued, filename: str, *, disposition: str = "inline") -> dict[str, str]:
    """HTTP headers of a served document: its name, content hash and 文号 (ASCII-safe)."""
    from urllib.parse import quote

    out = {"Content-Disposition": f'{disposition}; filename="{filename}"', "X-Document-SHA256": doc.sha256,
           "X-Document-Issued-At": doc.issued_at.isoformat()}
    if doc.number:
        out["X-Document-Number"] = quote(doc.number)
    return out


def create_tables_v1(op, schema: str) -> None:
    """The migration step that creates these tables in a service's schema (each service's migration calls it; a
    later change to the tables is a new function, so a migration once written keeps doing the same)."""
    import sqlalchemy as sa

    op.create_table(
        "issued_document",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("data_sha256", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("number", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("issued_by", sa.Text(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issued_document")),
        sa.UniqueConstraint("kind", "subject", "data_sha256", name=op.f("uq_issued_document_kind")),
        schema=schema,
    )
    op.create_table(
        "document_number",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "year", name=op.f("pk_document_number")),
        schema=schema,
    )


def drop_tables_v1(op, schema: str) -> None:
    op.drop_table("document_number", schema=schema)
    op.drop_table("issued_document", schema=schema)
