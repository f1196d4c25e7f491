"""Issue 18: registry's papers — the selection certificate (R5.1), a dismissal notice and the announcement (R9.1)
from the records rules.dismissal_documents writes — every field, golden page 1."""

from datetime import date

from services.registry import papers, rules
from shared.documents import official
from tests.support import pdf as read

ON = date(2026, 11, 30)


def test_r5_1_certificate_names_the_person_term_and_numbers() -> None:
    data = papers.certificate_document(name="王建国", bureau="威海市司法局", appointment={
        "term_start": date(2026, 1, 5), "term_end": date(2031, 1, 4), "decision_date": date(2026, 1, 5),
        "certificate_no": "威监证〔2026〕0001", "work_card_no": "WH-GZ-2026-0001", "decision_no": "威司任〔2026〕1号"})
    document = papers.render_certificate(data)
    text = "".join(read.text(document).split())
    for field in ("人民监督员选任证书", "王建国同志", "任期2026年1月5日至2031年1月4日", "威监证〔2026〕0001",
                  "WH-GZ-2026-0001", "威司任〔2026〕1号", "威海市司法局2026年1月5日"):
        assert field in text, field
    read.assert_golden(document, "certificate")


def test_r9_1_dismissal_notice_and_announcement_in_the_official_layout() -> None:
    docs = rules.dismissal_documents(name="王建国", employer="某单位", recommending_body="某社区",
                                     procuratorate="威海市人民检察院", bureau="威海市司法局", ground=2, decided_on=ON,
                                     certificate_no="威监证〔2026〕0001", work_card_no="WH-GZ-2026-0001")
    person = next(n for n in docs.notices if n.recipient_kind == "person")
    document = official.render(papers.dismissal_notice_document(person.as_record(), authority="威海市司法局"))
    text = read.text(document)
    for field in ("威海市司法局", "免除人民监督员资格通知书", "王建国同志：", "第八条第（2）项", "威监证〔2026〕0001",
                  "特此通知。", "2026年11月30日", "— 1 —"):
        assert field in text, field
    read.assert_golden(document, "dismissal_notice")
    announcement = official.render(papers.announcement_document(docs.announcement, authority="威海市司法局", on=ON))
    text = read.text(announcement)
    assert "关于免除王建国人民监督员资格的公告" in text and "特此公告。" in text and text.count("关于免除王建国") == 1
