"""Templates + data → PDF with typst (one engine for every document of record, issue 18).

A template is a `.typ` file beside the code that prints it; the data goes in as JSON (`sys.inputs.data`), already
in the words and figures the paper shows (the rules format it, the template only lays it out). The fonts are the
Noto Serif SC / Noto Sans SC files of the `pylopdf-fonts-zh-cn` wheel (SIL OFL 1.1), embedded and subset by typst;
the machine's fonts are never read (`ignore_system_fonts`). Output is PDF/A-2b and deterministic: the same
template, data and document date give the same bytes (the PDF's dates are the document's date, not the clock).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pylopdf_fonts_zh_cn
import typst

ROOT = Path(__file__).resolve().parents[2]  # templates may import /shared/documents/templates/*.typ
TEMPLATES = Path(__file__).resolve().parent / "templates"
FONT_DIR = Path(pylopdf_fonts_zh_cn.serif_path()).parent
# The families the templates name: 宋体/仿宋/楷体/小标宋 → Noto Serif SC; 黑体 → Noto Sans SC.
SERIF, SANS = "Noto Serif SC", "Noto Sans SC"
PDF_STANDARD = "a-2b"

_compiler: typst.Compiler | None = None
_lock = threading.Lock()


class RenderError(RuntimeError):
    """The template could not be compiled with this data (a programming error, never the user's input)."""


def _typst() -> typst.Compiler:
    """One compiler for the process: the fonts are read once (a compile then takes milliseconds)."""
    global _compiler
    if _compiler is None:
        _compiler = typst.Compiler(root=str(ROOT), font_paths=[str(FONT_DIR)], ignore_system_fonts=True)
    return _compiler


def _timestamp(day: date | datetime) -> int:
    moment = day if isinstance(day, datetime) else datetime.combine(day, time(0), tzinfo=UTC)
    return int(moment.timestamp())


def render_pdf(template: str | Path, data: dict[str, Any], *, dated: date | datetime) -> bytes:
    """The PDF of `template` (a .typ path) filled with `data` (JSON-able); `dated`: the document's date, written as
    the PDF's creation date (so a document rendered again is byte-identical)."""
    inputs = {"data": json.dumps(data, ensure_ascii=False, default=str)}
    with _lock:  # the compiler holds its state between compiles; one at a time
        try:
            return _typst().compile(input=str(template), sys_inputs=inputs, pdf_standards=[PDF_STANDARD],
                                    timestamp=_timestamp(dated))
        except typst.TypstError as error:
            raise RenderError(f"{Path(template).name}: {error}") from error


def image_bytes(data: bytes | None) -> list[int] | None:
    """An image for a template (`bytes(data.image)` in typst): JSON carries it as a list of byte values."""
    return list(data) if data else None
