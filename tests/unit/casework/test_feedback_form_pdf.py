"""R17.1/R18.1: the printed 《威海市人民监督员履职情况反馈表》 (typst, shared/documents): every field, an opinion of
20 000 characters whole across pages, a readable signature block, fonts embedded, page numbers, golden page 1."""

import io
import random
from datetime import datetime

import pdfplumber
from PIL import Image

from services.casework import pdf
from shared.clock import SHANGHAI
from tests.support import pdf as read

ALPHABET = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午申酉亥"  # characters the form prints nowhere else
HASH_A = "a5da058dfda3a411" + "0" * 48


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 50), "white").save(out, format="PNG")
    return out.getvalue()


def _content(opinion_b: str = "同意。") -> dict:
    return {
        "activity": {"activity_type_label": "公开听证/公开审查", "other_description": None,
                     "case_ref": "威检刑诉〔2026〕123号", "office": "文登区人民检察院", "district": "文登区",
                     "starts_at": "2026-11-30T09:00:00+08:00", "ends_at": "2026-11-30T11:30:00+08:00",
                     "place": "文登区人民检察院听证室"},
        "summary": "对一起故意伤害案拟作不起诉决定进行公开听证，听取人民监督员意见。",
        "participants": [
            {"supervisor_id": "a", "name": "张三", "opinion": "同意检察机关拟作出的不起诉决定。",
             "adoption": "pending"},
            {"supervisor_id": "b", "name": "李四", "opinion": opinion_b, "adoption": "pending"}],
    }


def _form(opinion_b: str = "同意。", *, annex: bool = True) -> bytes:
    signatures = [
        {"supervisor_id": "a", "signed_at": datetime(2026, 11, 30, 11, 35, tzinfo=SHANGHAI),
         "method": "on_site_token", "signature_hash": HASH_A, "image": _png()},
        {"supervisor_id": "b", "signed_at": datetime(2026, 11, 30, 11, 40, tzinfo=SHANGHAI),
         "method": "on_site_token", "signature_hash": "b" * 64, "image": None}]
    decisions = [{"supervisor_id": "a", "name": "张三", "adopted": True,
                  "reason": "检察机关采纳该意见，依法作出不起诉决定。", "decided_by": "文登区人民检察院 王检察官",
                  "decided_at": datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)}]
    completed = datetime(2026, 11, 30, 11, 40, tzinfo=SHANGHAI)
    data = pdf.form_document(_content(opinion_b), signatures, procuratorate="文登区人民检察院",
                             content_hash="f" * 64, annex=decisions if annex else [], completed_at=completed)
    data["number"] = "威检监反〔2026〕3号"
    return pdf.render(data, dated=pdf.document_day(_content(), completed, decisions if annex else []))


def test_r17_1_form_prints_every_field_and_the_signature_block_in_chinese() -> None:
    document = _form()
    text = read.text(document)
    for field in ("编号：威检监反〔2026〕3号", "《威海市人民监督员履职情况反馈表》", "填报单位：文登区人民检察院",
                  "威检刑诉〔2026〕123号", "公开听证/公开审查", "文登区人民检察院（文登区）",
                  "2026年11月30日 09:00 至 2026年11月30日 11:30", "文登区人民检察院听证室",
                  "对一起故意伤害案拟作不起诉决定",
                  "张三", "同意检察机关拟作出的不起诉决定。", "李四", "签字人：张三", "签字时间：2026年11月30日 11:35",
                  "签字方式：现场扫码签字确认（一次性签字令牌）", "签字指纹：A5DA 058D FDA3 A411",
                  f"反馈表内容哈希（SHA-256）：{'f' * 64}", "承办人（签字）：", "日期：2026年11月30日",
                  "采纳（2026年12月2日作出决定，详见附页“监督意见采纳情况”）", "附页：监督意见采纳情况",
                  "检察机关采纳该意见，依法作出不起诉决定。", "2026年12月2日 10:00（文登区人民检察院 王检察官）",
                  "第 1 页", "共 2 页"):
        assert field in text, field
    assert "on_site_token" not in text and "待定" not in text
    assert pdf.UNDECIDED in text  # 李四: not decided yet, and the form says so
    fonts = read.fonts(document)
    assert fonts and all(fonts.values()), fonts


def test_r17_1_signature_image_and_fingerprint_do_not_overlap() -> None:
    with pdfplumber.open(io.BytesIO(_form())) as doc:
        page = doc.pages[0]
        [image] = page.images
        block = [w for w in page.extract_words() if w["text"].startswith(("签字", "A5DA"))]
    assert block
    for word in block:
        assert word["x1"] <= image["x0"] or word["bottom"] <= image["top"] or word["top"] >= image["bottom"], word


def test_r17_1_opinion_of_20000_characters_is_printed_whole_across_pages() -> None:
    rng = random.Random(17)
    opinion = "".join(rng.choice(ALPHABET) for _ in range(20_000))
    document = _form(opinion, annex=False)
    pages = read.page_texts(document)
    assert len(pages) >= 8
    printed = "".join(c for c in "".join(pages) if c in ALPHABET)
    assert printed == opinion  # every character, in order, nothing cut
    continued = "（李四 的监督意见较长，跨页续印；续页页首重复本行）"
    assert all(continued in p for p in pages[1:-1])  # says where it continues
    assert all(f"共 {len(pages)} 页" in p for p in pages)


def test_r17_1_form_is_deterministic_and_matches_the_golden_page() -> None:
    document = _form()
    assert document == _form()
    read.assert_golden(document, "feedback_form")
