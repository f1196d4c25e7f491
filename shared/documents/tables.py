"""Documents of tables (ledgers, lists) on one template (templates/table.typ): a title, a line of facts, sections
each with a header row repeated on every page, a footer line."""

from datetime import date
from typing import Any

from shared.documents.engine import TEMPLATES, render_pdf

TEMPLATE = TEMPLATES / "table.typ"


def section(headers: list[str], rows: list[list[Any]], *, heading: str | None = None,
            widths: list[int] | None = None, empty: str | None = "（无）") -> dict:
    """One table: `widths` in mm per column (0: the rest of the line), else sized to the content."""
    return {"heading": heading, "headers": headers, "rows": [["" if v is None else str(v) for v in r] for r in rows],
            "widths": widths, "empty": empty}


def table_document(*, title: str, lines: list[str], sections: list[dict], footer: str | None = None,
                   landscape: bool = False) -> dict:
    return {"title": title, "lines": lines, "sections": sections, "footer": footer, "flipped": landscape}


def render(data: dict[str, Any], *, dated: date) -> bytes:
    return render_pdf(TEMPLATE, data, dated=dated)
