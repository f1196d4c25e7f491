"""Registry's papers of record as PDF (issue 18): the selection certificate (R5.1), the four dismissal notices and
the public announcement (R9.1) in the GB/T 9704 layout. Each is rendered from what was recorded when it was
decided (appointment row, dismissal notices and announcement) and archived once issued (shared/documents/archive.py:
content hash, who, when; served again byte-identical); a notice and an announcement get a 文号 of their own kind's
per-year sequence (威司免〔2026〕3号, 威司公告〔2026〕1号), given by the decision (dismissals/service.py)."""

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.models import documents
from shared.documents import archive, official
from shared.documents.engine import render_pdf
from shared.documents.words import document_date, document_number

CERTIFICATE = Path(__file__).with_name("certificate.typ")

# Kinds of issued paper (issued_document.kind) and the 发文机关代字 of those with a 文号: a sequence per kind and
# year, a code per kind, so no two of the bureau's registry papers share a number.
CERTIFICATE_KIND = "registry_certificate"  # R5.1: numbered by its certificate no., no 文号
NOTICE_KIND = "registry_dismissal_notice"  # R9.1: the four written notices
ANNOUNCEMENT_KIND = "registry_dismissal_announcement"  # R9.1: the public announcement
NUMBER_CODES = {NOTICE_KIND: "威司免", ANNOUNCEMENT_KIND: "威司公告"}


def certificate_document(*, name: str, appointment: dict[str, Any], bureau: str) -> dict:
    """R5.1: the selection certificate of one appointment: who, term, certificate and work card numbers, decision."""
    term = f"{document_date(appointment['term_start'])}至{document_date(appointment['term_end'])}"
    return {"title": "人民监督员选任证书", "issuer": bureau, "date": document_date(appointment["decision_date"]),
            "addressee": f"{name}同志：",
            "body": f"经{bureau}依法选任，任命你为威海市人民监督员，任期{term}。特发此证。",
            "certificate_no": appointment["certificate_no"], "work_card_no": appointment["work_card_no"],
            "decision_no": appointment["decision_no"], "term": term,
            "on": appointment["decision_date"].isoformat()}


def render_certificate(data: dict) -> bytes:
    return render_pdf(CERTIFICATE, data, dated=date.fromisoformat(data["on"]))


def _from_text(text: str, *, title: str, authority: str, on: date) -> dict:
    """A notice recorded as text (addressee：, paragraphs, issuer, date — rules.dismissal_documents) in the
    official layout."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    addressee = lines[0] if lines[0].endswith("：") else None
    body = lines[1 if addressee else 0:-2]
    if body and body[0] == title:
        body = body[1:]
    return official.notice(authority=authority, title=title, paragraphs=body, issuer=lines[-2], on=on,
                           addressee=addressee)


def dismissal_notice_document(record: dict[str, Any], *, authority: str) -> dict:
    """R9.1: one of the four written notices as recorded at the decision."""
    return _from_text(record["text"], title=record["title"], authority=authority,
                      on=date.fromisoformat(record["issued_on"]))


def announcement_document(text: str, *, authority: str, on: date) -> dict:
    """R9.1: the public announcement as recorded at the decision (its first line is its title)."""
    title = text.split("\n", 1)[0].strip()
    return _from_text(text, title=title, authority=authority, on=on)


async def next_number(session: AsyncSession, kind: str, year: int) -> str:
    """R9.1: the next 文号 of `kind` in `year` (gap-free: the sequence row stays locked until the caller commits);
    taken by the decision that issues the paper, never by a read of it."""
    return document_number(NUMBER_CODES[kind], year, await archive.next_sequence(session, documents, kind, year))


async def issue(session: AsyncSession, *, kind: str, subject: str, data: dict[str, Any], actor: str,
                number: str | None = None) -> archive.Issued:
    """R5.1/R9.1: the archived paper of this content (stored once: sha256, who, when), or a new one; a dismissal
    notice or announcement carries the 文号 its decision gave it (`number`). One decided before numbers were given
    at the decision (and not numbered by migration 0009) takes the next of its kind's year here."""
    render: Callable[[dict[str, Any]], bytes] = render_certificate if kind == CERTIFICATE_KIND else official.render
    code = NUMBER_CODES.get(kind)
    numbered = (code, date.fromisoformat(data["on"]).year) if code and number is None else None
    return await archive.issue(session, documents, kind=kind, subject=subject, data=data, render=render,
                               actor=actor, numbered=numbered, number=number)
