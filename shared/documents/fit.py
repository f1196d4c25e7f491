"""How many lines typst breaks a table cell's text into, predicted from the font's own metrics (issue 18).

typst sizes an `auto` table row by laying out each of its cells twice (once to measure, once to place); a row
given its height is laid out once. The 10 000-row disbursement table (R42.1) therefore gives typst the height of
every row whose wrapping is certain, and leaves the others `auto`:

- text that fits on one line with room to spare (printable ASCII without spaces, CJK ideographs), or
- CJK ideographs only (U+4E00–U+9FFF: each one em wide in Noto Serif SC, a line break allowed between any two —
  UAX #14 class ID — and typst's first-fit breaking when the paragraph is not justified): ⌈n / per line⌉ lines.

Anything else — punctuation (kinsoku, punctuation compression), spaces, characters of another font (〓 included),
a width too close to a whole number of characters — is `None`: typst measures that row itself. A test renders
tables both ways and finds every character in the same place on the same page (tests/unit/test_documents.py).
"""

from __future__ import annotations

import struct
from functools import cache, lru_cache

from shared.documents.engine import FONT_DIR

SERIF_FILE = FONT_DIR / "NotoSerifSC-Regular.otf"  # the body font of the tables (engine.SERIF)
ASCII = range(0x21, 0x7F)  # printable, no space (a space is a break opportunity)
IDEOGRAPHS = range(0x4E00, 0xA000)
SLACK_PT = 0.5  # kerning, rounding: one line only when the text is this much narrower than the cell
MARGIN = 0.02  # of a character: a cell within 2 % of a whole number of ideographs is left to typst


@cache
def _metrics() -> tuple[dict[int, int], int, int]:
    """(advance width in font units of each predictable character the font maps, units per em, cap height)."""
    font = SERIF_FILE.read_bytes()
    tables = {font[12 + 16 * i:16 + 16 * i]: struct.unpack(">I", font[20 + 16 * i:24 + 16 * i])[0]
              for i in range(struct.unpack(">H", font[4:6])[0])}
    units_per_em = struct.unpack(">H", font[tables[b"head"] + 18:tables[b"head"] + 20])[0]
    cap_height = struct.unpack(">h", font[tables[b"OS/2"] + 88:tables[b"OS/2"] + 90])[0]  # OS/2 v2+: sCapHeight
    metrics_count = struct.unpack(">H", font[tables[b"hhea"] + 34:tables[b"hhea"] + 36])[0]
    hmtx = tables[b"hmtx"]
    base = tables[b"cmap"]
    subtables = {}
    for i in range(struct.unpack(">H", font[base + 2:base + 4])[0]):
        platform, encoding, offset = struct.unpack(">HHI", font[base + 4 + 8 * i:base + 12 + 8 * i])
        subtables[(platform, encoding)] = base + offset
    at = subtables[(3, 10)]  # format 12: groups of (first code point, last, first glyph)
    wanted = set(ASCII) | set(IDEOGRAPHS)
    advances: dict[int, int] = {}
    for i in range(struct.unpack(">I", font[at + 12:at + 16])[0]):
        first, last, glyph = struct.unpack(">III", font[at + 16 + 12 * i:at + 28 + 12 * i])
        for code in range(max(first, 0), last + 1):
            if code in wanted:
                gid = min(glyph + code - first, metrics_count - 1)  # glyphs past the last metric repeat it
                advances[code] = struct.unpack(">H", font[hmtx + 4 * gid:hmtx + 4 * gid + 2])[0]
    return advances, units_per_em, cap_height


def cap_height() -> float:
    """The font's cap height in em: typst's default top edge of a line (`text.top-edge: "cap-height"`)."""
    _, units_per_em, cap = _metrics()
    return cap / units_per_em


@lru_cache(maxsize=65536)  # a table repeats its districts, banks, states and amounts
def lines(text: str, width: float, size: float) -> int | None:
    """The number of lines `text` set in `size` pt takes in a cell `width` pt wide (inside its insets), when that
    is certain; None when typst must measure it."""
    if not text:
        return 1
    advances, units_per_em, _ = _metrics()
    units, ideographs_only = 0, True
    for char in text:
        code = ord(char)
        advance = advances.get(code)
        if advance is None:
            return None
        units += advance
        ideographs_only = ideographs_only and code in IDEOGRAPHS and advance == units_per_em
    if units * size / units_per_em <= width - SLACK_PT:
        return 1
    if not ideographs_only:
        return None
    per_line = width / size
    whole = int(per_line)
    if whole < 1 or per_line - whole < MARGIN:
        return None
    return -(-len(text) // whole)
