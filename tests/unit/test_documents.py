"""The one document layer (issue 18): capital numerals, document dates and numbers, deterministic typst PDFs with
embedded fonts and no system font."""

import json
import os
import subprocess
import sys
import textwrap
from datetime import date, datetime
from pathlib import Path

import pytest

from shared.documents import engine
from shared.documents.words import amount_in_words, document_date, document_number, yuan
from tests.support import pdf as read

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("fen", "words"), [
    (0, "零元整"), (5, "伍分"), (50, "伍角整"), (100, "壹元整"), (150, "壹元伍角整"), (105, "壹元零伍分"),
    (1000, "壹拾元整"), (1944404, "壹万玖仟肆佰肆拾肆元零肆分"), (101000, "壹仟零壹拾元整"),
    (100100, "壹仟零壹元整"), (1005000, "壹万零伍拾元整"), (10000000, "壹拾万元整"),
    (100000100, "壹佰万零壹元整"), (10001000000, "壹亿零壹万元整"), (10000100000, "壹亿零壹仟元整"),
    (12345678912, "壹亿贰仟叁佰肆拾伍万陆仟柒佰捌拾玖元壹角贰分"), (-150, "负壹元伍角整"),
    (1100000, "壹万壹仟元整"), (20000000000, "贰亿元整"),
])
def test_r42_1_amount_in_capital_numerals(fen, words) -> None:
    assert amount_in_words(fen) == words


def test_r42_1_amount_in_words_takes_integer_fen_only() -> None:
    for bad in (1.5, True, "100"):
        with pytest.raises(TypeError):
            amount_in_words(bad)
    assert yuan(1944404) == "19444.04" and yuan(-5) == "-0.05"


def test_gbt9704_document_date_and_number() -> None:
    assert document_date(date(2026, 11, 30)) == "2026年11月30日"
    assert document_date(datetime(2026, 1, 5, 9, 0)) == "2026年1月5日"  # no leading zeros
    assert document_number("威司", 2026, 12) == "威司〔2026〕12号"
    with pytest.raises(ValueError):
        document_number("威司", 2026, 0)


SAMPLE = ROOT / "tests" / "unit" / "sample_document.typ"


def _sample() -> bytes:
    return engine.render_pdf(SAMPLE, {"title": "关于表彰的通知", "body": ["正文第一段。" * 30, "第二段。"]},
                             dated=date(2026, 11, 30))


def test_render_is_deterministic_pdfa_with_every_font_embedded_and_subset() -> None:
    first, again = _sample(), _sample()
    assert first == again  # the same data and date: the same bytes (the archive serves them again)
    assert b"pdfaid:part" in first and b"2026-11-30" in first.replace(b"\x00", b"")  # PDF/A-2b, the document's date
    fonts = read.fonts(first)
    assert fonts and all(fonts.values()), fonts
    assert all("+" in name for name in fonts), fonts  # subset prefix (ABCDEF+NotoSerifSC-Regular)
    assert {name.split("+")[1].split("-Identity")[0] for name in fonts} == {"NotoSerifSC-Regular", "NotoSansSC-Regular"}
    text = read.text(first)
    assert "关于表彰的通知" in text and "— 1 —" in text


def test_render_reads_no_system_font_same_bytes_with_an_empty_fontconfig(tmp_path) -> None:
    """A machine with no fonts at all: FONTCONFIG_FILE names an empty config; the PDF is byte-identical."""
    config = tmp_path / "fonts.conf"
    config.write_text('<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig></fontconfig>')
    script = textwrap.dedent(f"""
        import sys
        from datetime import date
        from shared.documents import engine
        data = {json.dumps({"title": "关于表彰的通知", "body": ["正文第一段。" * 30, "第二段。"]}, ensure_ascii=False)}
        sys.stdout.buffer.write(engine.render_pdf({str(SAMPLE)!r}, data, dated=date(2026, 11, 30)))
    """)
    env = {**os.environ, "FONTCONFIG_FILE": str(config), "FONTCONFIG_PATH": str(tmp_path), "HOME": str(tmp_path),
           "XDG_DATA_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, check=True, cwd=tmp_path)
    assert out.stdout == _sample()


def test_render_error_names_the_template() -> None:
    with pytest.raises(engine.RenderError, match=r"sample_document\.typ"):
        engine.render_pdf(SAMPLE, {"title": 1}, dated=date(2026, 1, 1))


def test_a_character_no_font_has_prints_as_the_missing_glyph_mark_never_dropped_or_an_error() -> None:
    printed = engine.printable({"a": ["张\U00098f3a三\x00", "abc"], "n": [1, 2]})
    assert printed == {"a": ["张〓三〓", "abc"], "n": [1, 2]}
    assert engine.printable("中文、ａｂ 123\n") == "中文、ａｂ 123\n"
    document = engine.render_pdf(SAMPLE, {"title": "通知\U00098f3a", "body": ["正文😀"]}, dated=date(2026, 11, 30))
    text = read.text(document)
    assert "通知〓" in text and "正文〓" in text


def test_fit_predicts_lines_only_where_certain() -> None:
    """shared/documents/fit.py: ideographs are 1 em each and break anywhere; text that fits is one line; anything
    else (punctuation, spaces, 〓, a cell within 2 % of a whole number of characters) is left to typst."""
    from shared.documents import fit

    assert 0.7 < fit.cap_height() < 0.75  # Noto Serif SC: 729 / 1000
    assert fit.lines("", 40, 9) == 1
    assert fit.lines("王建国", 37, 9) == 1 and fit.lines("欧阳建国", 37, 9) == 1  # 4 × 9 pt = 36 pt ≤ 37 pt
    assert fit.lines("欧阳建国华", 37, 9) == 2 and fit.lines("甲" * 60, 149, 9) == 4  # 16 a line
    assert fit.lines("6222********0001", 120, 9) == 1 and fit.lines("6222********0001", 60, 9) is None
    assert fit.lines("甲" * 8, 36.1, 9) is None  # 4.01 characters a line: too close to call
    for text in ("含未知活动类型（按“其他”标准）", "王 建国", "张〓三", "阿依古丽·买买提"):
        assert fit.lines(text, 40, 9) is None, text
    assert fit.lines("第3支行", 40, 9) == 1 and fit.lines("第3支行", 30, 9) is None  # mixed: one line or typst's
