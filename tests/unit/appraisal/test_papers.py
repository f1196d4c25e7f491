"""Issue 18: the appraisal's papers (R35.1, R38.1, R39.1, R34.1(5), R28.1) printed by the document layer: the
GB/T 9704 layout (版头, 文号, title, addressee, body, signature and date in Arabic numerals, page numbers — 1 —),
every field, fonts embedded, golden page 1."""

from datetime import date
from types import SimpleNamespace

from services.appraisal import papers, rules
from shared.documents import official, tables
from tests.support import pdf as read

ON = date(2026, 11, 30)


def _defence() -> bytes:
    doc = rules.defence_notice_document(
        name="王建国", period_label="2026年度", reasons="全年无正当理由三次缺席已确认参加的监督办案活动。",
        basis="经提醒教育后仍未改正", grounds=[2], window_end=date(2026, 12, 10), bureau="威海市司法局", on=ON)
    data = papers.official_data(papers.jsonable(doc), authority="威海市司法局")
    return official.render({**data, "number": "威司〔2026〕12号"})


def test_r35_1_defence_notice_in_the_official_layout_with_every_field() -> None:
    document = _defence()
    text = read.text(document)
    for field in ("威海市司法局", "威司〔2026〕12号", "人民监督员考核拟确定不合格等次告知书", "王建国：",
                  "一、理由：全年无正当理由三次缺席", "二、依据：经提醒教育后仍未改正", "第三十二条第（2）项",
                  "三、你享有陈述和申辩的权利", "2026年12月10日二十四时前", "2026年11月30日", "— 1 —",
                  "《威海市人民监督员履职管理实施办法》"):
        assert field in text, field
    assert "2026-" not in text  # no ISO dates on paper
    assert all(read.fonts(document).values())
    read.assert_golden(document, "defence_notice")


def test_r39_1_r38_1_result_notice_and_commendation_name_the_measures_and_the_grade() -> None:
    notice = rules.result_notice_document(recipient="employer", addressee="威海市某单位", name="李四",
                                          period_label="2026年度", grade=rules.EXCELLENT, bureau="威海市司法局", on=ON)
    text = read.text(official.render(papers.official_data(papers.jsonable(notice), authority="威海市司法局")))
    assert "威海市某单位：" in text and "考核等次为“优秀”，并予以通报表扬。" in text and "特此通知。" in text
    assert "关于人民监督员李四2026年度考核结果的通知" in text and "2026年11月30日" in text
    commendation = rules.commendation_document(period_label="2026年度", names=["李四", "张三"], bureau="威海市司法局",
                                               on=ON)
    document = official.render({**papers.official_data(papers.jsonable(commendation), authority="威海市司法局"),
                                "number": "威司〔2026〕13号"})
    text = read.text(document)
    assert "关于对2026年度考核优秀人民监督员予以通报表扬的决定" in text and "李四、张三等2名" in text
    read.assert_golden(document, "commendation")


def test_r28_1_person_ledger_in_chinese_with_figures_and_entries() -> None:
    entry = SimpleNamespace(occurred_on=date(2026, 3, 5), kind="activity", subkind="public_hearing", adopted=True,
                            hours=None, attended=None, ground=None, details={"text": "公开听证，意见被采纳"})
    figures = rules.Figures(activities=1, adopted=1)
    data = papers.person_ledger_document(person={"name": "王建国", "district": "环翠区", "employer": "某单位"},
                                         year=2026, figures=figures, rows=[entry] * 60)
    document = tables.render(data, dated=ON)
    pages = read.page_texts(document)
    text = "".join(pages)
    for field in ("人民监督员履职工作台账（2026年度）", "姓名：王建国", "区市：环翠区", "参加监督办案活动（次）",
                  "2026年3月5日", "监督办案活动", "公开听证/公开审查", "采纳", "公开听证，意见被采纳"):
        assert field in text, field
    assert len(pages) >= 2 and all("说明" in p and f"共 {len(pages)} 页" in p for p in pages[1:])  # header repeats
    read.assert_golden(document, "ledger_person")


def test_r28_1_district_ledger_lists_everyone_landscape() -> None:
    rows = [[i + 1, f"王{i}", "环翠区", "某单位", 3, 1, 8, 2, "是", 0, 1, 0, 0, 0] for i in range(30)]
    document = tables.render(papers.district_ledger_document(year=2026, district="环翠区", rows=rows), dated=ON)
    text = "".join(read.page_texts(document))
    assert "人民监督员履职工作台账汇总（2026年度）" in text and "范围：环翠区" in text and "人数：30" in text
    assert "王29" in text and "缺席监督办案活动" in "".join(text.split())
