"""Official documents in the GB/T 9704-2012 layout (notices, 告知书, 公示, 通报, 公告): one template for all
(templates/notice.typ); each service says what its document says with `notice(...)`."""

import re
from datetime import date
from typing import Any

from shared.documents.engine import TEMPLATES, render_pdf
from shared.documents.words import document_date

TEMPLATE = TEMPLATES / "notice.typ"
HEADING = re.compile(r"^[一二三四五六七八九十]+、")  # 一、 headings print in 黑体 (§7.3.3)


def is_heading(paragraph: str) -> bool:
    """一、 starts a heading (黑体) when it is one: short, no sentence after it (一、理由：… is body text)."""
    return bool(HEADING.match(paragraph)) and len(paragraph) <= 30 and not any(c in paragraph for c in "：。；")


def notice(*, authority: str, title: str, paragraphs: list[str], issuer: str, on: date,
           addressee: str | None = None, attachments: list[str] | None = None, copies: str | None = None) -> dict:
    """The words of an official document: issuing authority (版头), title, addressee (主送), body paragraphs,
    attachments, signature and date (Arabic numerals, 2026年11月30日), 版记 (copies); its 文号 is given when it
    is issued (`data["number"]`, shared/documents/archive.py)."""
    return {"authority": authority, "title": title, "addressee": (addressee or "").rstrip("：:") or None,
            "paragraphs": [{"text": p, "heading": is_heading(p)} for p in paragraphs],
            "attachments": attachments or [], "issuer": issuer, "date": document_date(on), "copies": copies,
            "on": on.isoformat()}


def render(data: dict[str, Any]) -> bytes:
    return render_pdf(TEMPLATE, data, dated=date.fromisoformat(data["on"]))
