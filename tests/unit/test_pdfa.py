"""Issue 18: every kind of paper of record the system issues is PDF/A-2b (ISO 19005-2, level B) as far as a reader
of the file can tell — no PDF/A validator installs from a wheel (veraPDF is Java; the PyPI wrappers download its
jar at run time), so tests/support/pdf.pdfa_2b_problems checks with pypdf: header and binary comment, trailer /ID,
no encryption, XMP pdfaid:part=2 conformance=B agreeing with the Info dictionary, a GTS_PDFA1 output intent with
its ICC profile, every font embedded, no LZW/Crypt filter, external stream, forbidden action, image alternate,
unprintable annotation or embedded file."""

import io
import uuid
from collections.abc import Callable
from datetime import date, datetime
from types import SimpleNamespace

import pytest
from PIL import Image

from services.appraisal import papers as appraisal_papers
from services.appraisal import rules as appraisal_rules
from services.casework import pdf as form_pdf
from services.casework.reports import service as reports
from services.finance import disbursement as d
from services.registry import papers as registry_papers
from services.registry import rules as registry_rules
from shared import clock
from shared.documents import official, tables
from tests.support import pdf as read

ON = date(2026, 11, 30)
BUREAU = "威海市司法局"


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 50), "white").save(out, format="PNG")
    return out.getvalue()


def feedback_form() -> bytes:  # R17.1, with a signature image and the adoption annex (R18.1)
    at = datetime(2026, 11, 30, 11, 35, tzinfo=clock.SHANGHAI)
    content = {"activity": {"activity_type_label": "公开听证/公开审查", "other_description": None,
                            "case_ref": "威检刑诉〔2026〕123号", "office": "文登区人民检察院", "district": "文登区",
                            "starts_at": "2026-11-30T09:00:00+08:00", "ends_at": "2026-11-30T11:30:00+08:00",
                            "place": "文登区人民检察院听证室"}, "summary": "公开听证。",
               "participants": [{"supervisor_id": "a", "name": "张三", "opinion": "同意。", "adoption": "pending"}]}
    signatures = [{"supervisor_id": "a", "signed_at": at, "method": "on_site_token", "signature_hash": "a" * 64,
                   "image": _png()}]
    annex = [{"supervisor_id": "a", "name": "张三", "adopted": True, "reason": "采纳。", "decided_by": "王检察官",
              "decided_at": at}]
    data = form_pdf.form_document(content, signatures, procuratorate="文登区人民检察院", content_hash="f" * 64,
                                  annex=annex, completed_at=at)
    return form_pdf.render({**data, "number": "威检监反〔2026〕3号"}, dated=ON)


def transmittal_letter() -> bytes:  # R20.2
    row = SimpleNamespace(month=date(2026, 11, 1), form_ids=[uuid.uuid4(), uuid.uuid4()], office="文登区人民检察院",
                          sent_at=datetime(2026, 12, 1, 9, 0, tzinfo=clock.SHANGHAI))
    return official.render({**reports.transmittal_letter(row, signatures=3, bureau=BUREAU),
                            "number": "威检监函〔2026〕3号"})


def _table(status: str) -> d.Table:
    rows = [d.Row(i + 1, uuid.UUID(int=i + 1), f"王建国{i}", "环翠区", 1, 40_000, 0, 40_000,
                  "中国工商银行股份有限公司威海分行", f"6222********{i:04d}", "", 0, "未支付") for i in range(30)]
    issued = datetime(2026, 12, 8, 10, 0, tzinfo=clock.SHANGHAI) if status == "issued" else None
    return d.Table(2026, 11, True, rows, status=status, batch_no="202611-001" if issued else None,
                   version=1 if issued else None, issued_at=issued)


def disbursement_table() -> bytes:  # R42.1, issued
    return d.to_pdf(_table("issued"), unit=BUREAU)


def disbursement_draft() -> bytes:  # R42.1, the draft (its 草稿 watermark is grey text, no transparency)
    with clock.frozen(datetime(2026, 12, 3, 9, 0, tzinfo=clock.SHANGHAI)):
        return d.to_pdf(_table("draft"), unit=BUREAU)


def _notice(doc: dict, number: str | None = "威司〔2026〕12号") -> bytes:
    data = appraisal_papers.official_data(appraisal_papers.jsonable(doc), authority=BUREAU)
    return official.render({**data, "number": number} if number else data)


def defence_notice() -> bytes:  # R35.1
    return _notice(appraisal_rules.defence_notice_document(
        name="王建国", period_label="2026年度", reasons="三次缺席。", basis="经提醒教育后仍未改正", grounds=[2],
        window_end=date(2026, 12, 10), bureau=BUREAU, on=ON))


def result_notice() -> bytes:  # R39.1
    return _notice(appraisal_rules.result_notice_document(
        recipient="employer", addressee="威海市某单位", name="李四", period_label="2026年度",
        grade=appraisal_rules.EXCELLENT, bureau=BUREAU, on=ON))


def commendation() -> bytes:  # R38.1
    return _notice(appraisal_rules.commendation_document(period_label="2026年度", names=["李四", "张三"],
                                                         bureau=BUREAU, on=ON))


def public_notice() -> bytes:  # R34.1(5)
    return _notice(appraisal_rules.public_notice_document(year_label="2026年度", names=["李四"],
                                                          start=date(2026, 12, 2), end=date(2026, 12, 9),
                                                          bureau=BUREAU, on=date(2026, 12, 2)))


def person_ledger() -> bytes:  # R28.1
    entry = SimpleNamespace(occurred_on=date(2026, 3, 5), kind="activity", subkind="public_hearing", adopted=True,
                            hours=None, attended=None, ground=None, details={"text": "公开听证"})
    data = appraisal_papers.person_ledger_document(
        person={"name": "王建国", "district": "环翠区", "employer": "某单位"}, year=2026,
        figures=appraisal_rules.Figures(activities=1, adopted=1), rows=[entry] * 5)
    return tables.render(data, dated=ON)


def district_ledger() -> bytes:  # R28.1
    rows = [[i + 1, f"王{i}", "环翠区", "某单位", 3, 1, 8, 2, "是", 0, 1, 0, 0, 0] for i in range(5)]
    return tables.render(appraisal_papers.district_ledger_document(year=2026, district="环翠区", rows=rows),
                         dated=ON)


def certificate() -> bytes:  # R5.1
    return registry_papers.render_certificate(registry_papers.certificate_document(
        name="王建国", bureau=BUREAU, appointment={
            "term_start": date(2026, 1, 5), "term_end": date(2031, 1, 4), "decision_date": date(2026, 1, 5),
            "certificate_no": "威监证〔2026〕0001", "work_card_no": "WH-GZ-2026-0001",
            "decision_no": "威司任〔2026〕1号"}))


def _dismissal():
    return registry_rules.dismissal_documents(
        name="王建国", employer="某单位", recommending_body="某社区", procuratorate="威海市人民检察院", bureau=BUREAU,
        ground=2, decided_on=ON, certificate_no="威监证〔2026〕0001", work_card_no="WH-GZ-2026-0001")


def dismissal_notice() -> bytes:  # R9.1
    person = next(n for n in _dismissal().notices if n.recipient_kind == "person")
    data = registry_papers.dismissal_notice_document(person.as_record(), authority=BUREAU)
    return official.render({**data, "number": "威司免〔2026〕1号"})


def dismissal_announcement() -> bytes:  # R9.1
    data = registry_papers.announcement_document(_dismissal().announcement, authority=BUREAU, on=ON)
    return official.render({**data, "number": "威司公告〔2026〕1号"})


KINDS: dict[str, Callable[[], bytes]] = {
    "R17.1 feedback form": feedback_form, "R20.2 transmittal letter": transmittal_letter,
    "R42.1 disbursement table": disbursement_table, "R42.1 disbursement draft": disbursement_draft,
    "R35.1 defence notice": defence_notice, "R39.1 result notice": result_notice,
    "R38.1 commendation": commendation, "R34.1 public notice": public_notice,
    "R28.1 person ledger": person_ledger, "R28.1 district ledger": district_ledger,
    "R5.1 certificate": certificate, "R9.1 dismissal notice": dismissal_notice,
    "R9.1 dismissal announcement": dismissal_announcement,
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_paper_of_record_carries_the_pdf_a_2b_requirements(kind: str) -> None:
    """The papers of R5.1, R9.1, R17.1, R20.2, R28.1, R34.1, R35.1, R38.1, R39.1 and R42.1, one kind each."""
    document = KINDS[kind]()
    assert read.pdfa_2b_problems(document) == [], kind
    fonts = read.fonts(document)
    assert fonts and all(fonts.values()), fonts


def test_the_pdf_a_check_finds_what_breaks_pdf_a() -> None:
    """The checker is not a rubber stamp: a plain PDF (no XMP, no output intent, a font not embedded) and a
    document whose XMP claims another part both fail, for the reasons given."""
    import pypdf

    writer = pypdf.PdfWriter()
    page = writer.add_blank_page(200, 200)
    font = writer._add_object(pypdf.generic.DictionaryObject({
        pypdf.generic.NameObject("/Type"): pypdf.generic.NameObject("/Font"),
        pypdf.generic.NameObject("/Subtype"): pypdf.generic.NameObject("/Type1"),
        pypdf.generic.NameObject("/BaseFont"): pypdf.generic.NameObject("/Helvetica")}))
    page[pypdf.generic.NameObject("/Resources")] = pypdf.generic.DictionaryObject({
        pypdf.generic.NameObject("/Font"): pypdf.generic.DictionaryObject({pypdf.generic.NameObject("/F1"): font})})
    plain = io.BytesIO()
    writer.write(plain)
    problems = " | ".join(read.pdfa_2b_problems(plain.getvalue()))
    for clause in ("6.6.2 no XMP", "6.2.3 no /GTS_PDFA1", "6.2.11.4 font /Helvetica not embedded"):
        assert clause in problems, problems
    claimed = certificate().replace(b'pdfaid:part="2"', b'pdfaid:part="3"').replace(
        b"<pdfaid:part>2</pdfaid:part>", b"<pdfaid:part>3</pdfaid:part>")
    assert any("6.6.4" in p for p in read.pdfa_2b_problems(claimed))
