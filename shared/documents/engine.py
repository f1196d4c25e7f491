"""Templates + data → PDF with typst (one engine for every document of record, issue 18).

A template is a `.typ` file beside the code that prints it; the data goes in as JSON (`sys.inputs.data`), already
in the words and figures the paper shows (the rules format it, the template only lays it out). The fonts are the
Noto Serif SC / Noto Sans SC files of the `pylopdf-fonts-zh-cn` wheel (SIL OFL 1.1), embedded and subset by typst;
the machine's fonts are never read (`ignore_system_fonts`). Output is PDF/A-2b and deterministic: the same
template, data and document date give the same bytes (the PDF's dates are the document's date, not the clock).
"""

from __future__ import annotations

import json
import re
import struct
import threading
from datetime import UTC, date, datetime, time
from functools import cache, lru_cache
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
# No tagged PDF: PDF/A-2b does not ask for it, and tags made the 10 000-line table 14× larger and 2× slower.

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


MISSING_GLYPH = "〓"  # 缺字符号: the printers' mark for a character the fonts do not have


def _cmap_ranges(path: Path) -> list[tuple[int, int]]:
    """The code point ranges an OpenType font maps (its cmap format 12 subtable, else format 4)."""
    font = path.read_bytes()
    tables = {font[12 + 16 * i:16 + 16 * i]: struct.unpack(">II", font[20 + 16 * i:28 + 16 * i])
              for i in range(struct.unpack(">H", font[4:6])[0])}
    base = tables[b"cmap"][0]
    subtables = {}
    for i in range(struct.unpack(">H", font[base + 2:base + 4])[0]):
        platform, encoding, offset = struct.unpack(">HHI", font[base + 4 + 8 * i:base + 12 + 8 * i])
        subtables[(platform, encoding)] = base + offset
    if (3, 10) in subtables:
        at = subtables[(3, 10)]
        count = struct.unpack(">I", font[at + 12:at + 16])[0]
        return [struct.unpack(">II", font[at + 16 + 12 * i:at + 24 + 12 * i]) for i in range(count)]
    at = subtables[(3, 1)]
    segments = struct.unpack(">H", font[at + 6:at + 8])[0] // 2
    ends = struct.unpack(f">{segments}H", font[at + 14:at + 14 + 2 * segments])
    starts = struct.unpack(f">{segments}H", font[at + 16 + 2 * segments:at + 16 + 4 * segments])
    return [(a, b) for a, b in zip(starts, ends, strict=True) if a != 0xFFFF]


@cache
def _missing() -> re.Pattern[str]:
    """Every character no embedded font can print (controls other than tab and line breaks included)."""
    covered = sorted(r for path in FONT_DIR.glob("*.otf") for r in _cmap_ranges(path))
    covered += [(0x09, 0x0A), (0x0D, 0x0D)]
    merged: list[list[int]] = []
    for a, b in sorted(covered):
        if merged and a <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    gaps, start = [], 0
    for a, b in merged:
        if a > start:
            gaps.append((start, a - 1))
        start = b + 1
    gaps.append((start, 0x10FFFF))
    return re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in gaps) + "]")


@lru_cache(maxsize=65536)  # a table repeats its districts, banks and states
def _printable(text: str) -> str:
    return _missing().sub(MISSING_GLYPH, text)


def printable(value: Any) -> Any:
    """`value` with every character the fonts lack shown as 〓 (strings inside lists and dicts too): a document
    never drops a character silently, and PDF/A allows no glyph-less text."""
    if isinstance(value, str):
        return value if value.isascii() and value.isprintable() else _printable(value)
    if isinstance(value, dict):
        return {k: printable(v) for k, v in value.items()}
    if isinstance(value, list) and value and not isinstance(value[0], int):
        return [printable(v) for v in value]
    return value


def render_pdf(template: str | Path, data: dict[str, Any], *, dated: date | datetime) -> bytes:
    """The PDF of `template` (a .typ path) filled with `data` (JSON-able); `dated`: the document's date, written as
    the PDF's creation date (so a document rendered again is byte-identical)."""
    inputs = {"data": json.dumps(printable(data), ensure_ascii=False, default=str)}
    with _lock:  # the compiler holds its state between compiles; one at a time
        try:
            return _typst().compile(input=str(template), sys_inputs=inputs, pdf_standards=[PDF_STANDARD],
                                    timestamp=_timestamp(dated), pdf_tags=False)
        except typst.TypstError as error:
            raise RenderError(f"{Path(template).name}: {error}") from error


def image_bytes(data: bytes | None) -> list[int] | None:
    """An image for a template (`bytes(data.image)` in typst): JSON carries it as a list of byte values."""
    return list(data) if data else None
