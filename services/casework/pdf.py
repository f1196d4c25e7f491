"""R17.1: the printable 《威海市人民监督员履职情况反馈表》 (pymupdf, built-in CJK font "china-s" embedded).

The signed content is printed as it was signed; an adoption decided later (R18.1) is printed as a dated annex
after it, and the form's 采纳情况 row points to that annex, so a decided opinion never reads 待定.
"""

from datetime import datetime
from typing import Any

import pymupdf

from services.casework import rules

FONT = "cjk"
_FONT_BUFFER: bytes | None = None
A4 = pymupdf.paper_rect("a4")
MARGIN = 50
ADOPTION_ZH = {"adopted": "采纳", "not_adopted": "未采纳", "pending": "待定"}


def _font_buffer() -> bytes:
    """The CJK font that ships inside pymupdf (Droid Sans Fallback, "china-s"), embedded into the PDF."""
    global _FONT_BUFFER
    if _FONT_BUFFER is None:
        _FONT_BUFFER = pymupdf.Font("china-s").buffer
    return _FONT_BUFFER


def _new_page(doc: pymupdf.Document) -> pymupdf.Page:
    page = doc.new_page(width=A4.width, height=A4.height)
    page.insert_font(fontname=FONT, fontbuffer=_font_buffer())
    return page


def _dt(value: str) -> str:
    return datetime.fromisoformat(value).strftime("%Y年%m月%d日 %H:%M")


def _day(value: str) -> str:
    return datetime.fromisoformat(value).strftime("%Y年%m月%d日")


def _lines(text: str) -> int:
    return len(text) // 38 + text.count("\n") + 2


def adoption_row(signed: str, decision: dict[str, Any] | None) -> str:
    """R17.1/R18.1: the 采纳情况 row: the decision (with its date and a pointer to the annex) once made."""
    if decision is None:
        return ADOPTION_ZH.get(signed, signed)
    return (f"{'采纳' if decision['adopted'] else '未采纳'}（{_day(decision['decided_at'])}作出决定，"
            "详见附页“监督意见采纳情况”）")


def render(content: dict[str, Any], signatures: list[dict[str, Any]], *, procuratorate: str,
           annex: list[dict[str, Any]] | None = None) -> bytes:
    """The form in the official layout: title, activity facts table, summary, one block per supervisor, then the
    annex of adoption decisions (`annex`: [{supervisor_id, name, adopted, reason, decided_by, decided_at (ISO)}])."""
    doc = pymupdf.open()
    page = _new_page(doc)
    width = A4.width - 2 * MARGIN
    y = MARGIN

    def new_page_if(needed: float) -> None:
        nonlocal page, y
        if y + needed > A4.height - MARGIN:
            page = _new_page(doc)
            y = MARGIN

    def row(label: str, text: str, height: float = 28, size: float = 10.5) -> None:
        nonlocal y
        new_page_if(height)
        label_rect = pymupdf.Rect(MARGIN, y, MARGIN + 110, y + height)
        text_rect = pymupdf.Rect(MARGIN + 110, y, MARGIN + width, y + height)
        page.draw_rect(label_rect, width=0.6)
        page.draw_rect(text_rect, width=0.6)
        page.insert_textbox(label_rect + pymupdf.Rect(4, 5, -4, -2), label, fontname=FONT, fontsize=size, align=1)
        page.insert_textbox(text_rect + pymupdf.Rect(6, 5, -6, -2), text, fontname=FONT, fontsize=size)
        y += height

    title = f"《{rules.FORM_TITLE}》"
    page.insert_textbox(pymupdf.Rect(MARGIN, y, MARGIN + width, y + 30), title, fontname=FONT, fontsize=16,
                        align=1)
    y += 36
    page.insert_text((MARGIN, y), f"填报单位：{procuratorate}", fontname=FONT, fontsize=10)
    y += 12
    act = content["activity"]
    kind = act["activity_type_label"] + (f"（{act['other_description']}）" if act.get("other_description") else "")
    row("案号", act["case_ref"])
    row("活动类型", kind)
    row("承办单位", f"{act['office']}（{act['district']}）")
    row("活动时间", f"{_dt(act['starts_at'])} 至 {_dt(act['ends_at'])}")
    row("活动地点", act["place"])
    summary = content["summary"] or "（无）"
    row("办案活动简要情况", summary, height=max(60, 16 * (len(summary) // 38 + 2)))
    signed = {s["supervisor_id"]: s for s in signatures}
    decisions = {a["supervisor_id"]: a for a in annex or []}
    for p in content["participants"]:
        opinion = p["opinion"] or ""
        height = max(50, 16 * _lines(opinion))
        new_page_if(height + 72)
        row("人民监督员", p["name"])
        row("监督意见", opinion, height=height)
        row("采纳情况", adoption_row(p["adoption"], decisions.get(p["supervisor_id"])))
        sig = signed.get(p["supervisor_id"])
        text = (f"已现场签字确认  {_dt(sig['signed_at'])}  方式：{sig['method']}\n签署哈希：{sig['signature_hash']}"
                if sig else "（未签字）")
        rect = pymupdf.Rect(MARGIN + 110, y, MARGIN + width, y + 40)
        row("签字", text, height=40, size=8)
        if sig and sig.get("image"):
            page.insert_image(pymupdf.Rect(rect.x1 - 90, rect.y0 + 2, rect.x1 - 4, rect.y1 - 2), stream=sig["image"])
    y += 16
    new_page_if(20)
    page.insert_text((MARGIN, y), f"反馈表内容哈希（SHA-256）：{rules.content_hash(content)}", fontname=FONT,
                     fontsize=6.5)
    if annex:
        y += 24
        new_page_if(60)
        page.insert_textbox(pymupdf.Rect(MARGIN, y, MARGIN + width, y + 24), "附页：监督意见采纳情况", fontname=FONT,
                            fontsize=13, align=1)
        y += 26
        page.insert_text((MARGIN, y), "（签字后依据 R18.1 告知人民监督员，不属于签字内容，签字内容及其哈希不变）",
                         fontname=FONT, fontsize=8)
        y += 10
        for a in annex:
            reason = a["reason"]
            height = max(40, 16 * _lines(reason))
            new_page_if(height + 84)
            row("人民监督员", a["name"])
            row("采纳决定", "采纳" if a["adopted"] else "未采纳")
            row("理由", reason, height=height)
            row("决定日期", f"{_dt(a['decided_at'])}（{a['decided_by']}）")
    doc.subset_fonts()
    data = doc.tobytes(garbage=3, deflate=True)
    doc.close()
    return data
