"""Pure rules of the appraisal service (R30.1–R36.1), no I/O."""

import io
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from services.appraisal import ledger, rules
from services.appraisal.config import AppraisalSettings
from services.appraisal.rules import BASIC, EXCELLENT, QUALIFIED, UNQUALIFIED, Figures, RuleViolation, Thresholds
from shared.calendar import WorkingCalendar

CAL = WorkingCalendar()


def add_wd(d: date, n: int) -> date:
    return CAL.add_working_days(d, n).value


# --- R30.1 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("appraised", "allowed"), [(0, 0), (1, 0), (6, 0), (7, 1), (13, 1), (14, 2), (20, 3),
                                                    (99, 14), (100, 15), (101, 15)])
def test_r30_1_excellent_cap_at_boundaries(appraised: int, allowed: int) -> None:
    assert rules.excellent_allowed(appraised) == allowed
    rules.ensure_excellent_cap(allowed, appraised)  # exactly the cap is fine
    with pytest.raises(RuleViolation) as refused:
        rules.ensure_excellent_cap(allowed + 1, appraised)
    assert refused.value.code == "R30.1"


@given(st.integers(min_value=0, max_value=100_000))
def test_r30_1_cap_never_exceeds_fifteen_percent(n: int) -> None:
    allowed = rules.excellent_allowed(n)
    assert allowed * 100 <= 15 * n < (allowed + 1) * 100


# --- R34.1: state machine, notice, deadlines -----------------------------------------------------


def test_r34_1_transitions_follow_the_procedure_in_order() -> None:
    state = "opened"
    for wanted in rules.STATES[1:]:
        state = rules.next_state(state, wanted)
    assert state == "finalized"
    for current, wanted in [("opened", "reviewed"), ("opened", "finalized"), ("reviewed", "self_summaries"),
                            ("public_notice", "opened"), ("finalized", "finalized"), ("bureau_proposed", "finalized")]:
        with pytest.raises(RuleViolation) as refused:
            rules.next_state(current, wanted)
        assert refused.value.code == "invalid_transition"


def test_r34_1_inputs_only_in_their_step() -> None:
    rules.ensure_editable("opened", "self_summary")
    rules.ensure_editable("reviewed", "district_grade")
    for state, what in [("reviewed", "self_summary"), ("opened", "district_grade"), ("finalized", "bureau_grade"),
                        ("finalized", "defence"), ("bureau_proposed", "opinion")]:
        with pytest.raises(RuleViolation) as refused:
            rules.ensure_editable(state, what)
        assert refused.value.code == "R34.1"


def test_r34_1_cannot_finalize_before_the_notice_period_ends() -> None:
    end = rules.notice_period(date(2026, 1, 5), 5, add_wd)
    assert end == date(2026, 1, 12)
    for today in (date(2026, 1, 5), end):
        with pytest.raises(RuleViolation) as refused:
            rules.ensure_notice_over(today, end)
        assert refused.value.code == "R34.1"
    with pytest.raises(RuleViolation):
        rules.ensure_notice_over(date(2030, 1, 1), None)  # no notice at all
    rules.ensure_notice_over(date(2026, 1, 13), end)
    text = rules.public_notice_text(year_label="2025年度", names=["张三", "李四"], start=date(2026, 1, 5), end=end,
                                    bureau="威海市司法局")
    assert "张三、李四" in text and "2026-01-12" in text and "公示" in text


def test_r34_1_deadlines_five_and_ten_working_days_across_national_day() -> None:
    # 2025: Oct 1–8 off, Sat Oct 11 is a make-up working day
    entered, reported = rules.result_deadlines(date(2025, 9, 30), add_wd)
    assert (entered, reported) == (date(2025, 10, 14), date(2025, 10, 21))
    assert not rules.overdue(entered, False, date(2025, 10, 14))
    assert rules.overdue(entered, False, date(2025, 10, 15))
    assert not rules.overdue(entered, True, date(2025, 12, 1))


# --- R31.1 / R33.1 -------------------------------------------------------------------------------


def test_r33_1_thresholds_propose_qualified_or_basically_qualified() -> None:
    t = Thresholds(qualified_min_activities=2)
    good = Figures(activities=2, attended_annual_training=True)
    assert rules.propose_grade(good, t) == QUALIFIED
    assert rules.propose_grade(Figures(activities=1, attended_annual_training=True), t) == BASIC
    assert rules.propose_grade(Figures(activities=5, attended_annual_training=False), t) == BASIC
    assert rules.propose_grade(Figures(activities=5, attended_annual_training=True, late_change_reports=1), t) == BASIC
    relaxed = Thresholds(qualified_min_activities=0, qualified_requires_annual_training=False)
    assert rules.propose_grade(Figures(), relaxed) == QUALIFIED


def test_r33_1_thresholds_come_from_settings(monkeypatch) -> None:
    monkeypatch.setenv("QUALIFIED_MIN_ACTIVITIES", "4")
    monkeypatch.setenv("EXCELLENT_MIN_TRAINING_HOURS", "12.5")
    settings = AppraisalSettings(database_url="postgresql+asyncpg://x/y", kafka_bootstrap_servers="k:9092",
                                 field_encryption_key="a" * 44, field_hash_key="b" * 44)
    t = settings.thresholds()
    assert t.qualified_min_activities == 4 and t.excellent_min_training_hours == 12.5
    assert rules.propose_grade(Figures(activities=3, attended_annual_training=True), t) == BASIC


def test_r31_1_candidates_ranked_by_ledger_figures() -> None:
    t = Thresholds()
    figures = {
        "a": Figures(activities=3, adopted=1, training_hours=8, attended_annual_training=True),
        "b": Figures(activities=6, adopted=3, training_hours=16, attended_annual_training=True),
        "c": Figures(activities=6, adopted=3, training_hours=16, attended_annual_training=True, reminders=1),
        "d": Figures(activities=2, adopted=2, training_hours=40, attended_annual_training=True),
        "e": Figures(activities=9, adopted=0, training_hours=40, attended_annual_training=True),
        "f": Figures(activities=3, adopted=1, training_hours=8, attended_annual_training=True),
    }
    ranked = rules.rank_candidates(figures, t)
    assert [k for k, _ in ranked] == ["b", "a", "f"]  # c reminded, d too few activities, e no adopted opinion
    assert ranked[0][1] == 6 * 3 + 3 * 5 + 16 * 0.5


# --- R32.1 ---------------------------------------------------------------------------------------


def test_r32_1_unqualified_needs_grounds_with_reminders() -> None:
    rules.ensure_unqualified_grounds([1], [1, 2])
    rules.ensure_unqualified_grounds([1, 2], [2, 1])
    for grounds, reminded in [([], [1]), ([3], [1]), ([1, 3], [1]), ([6], [6])]:
        with pytest.raises(RuleViolation) as refused:
            rules.ensure_unqualified_grounds(grounds, reminded)
        assert refused.value.code == "R32.1"
    assert rules.flagged_grounds([5, 1, 1, 9]) == [1, 5]


# --- R35.1 ---------------------------------------------------------------------------------------


def test_r35_1_defence_window() -> None:
    sent = date(2026, 3, 2)
    end = rules.defence_window_end(sent, 10)
    assert end == date(2026, 3, 12)
    kwargs = dict(sent_on=sent, window_end=end, statement_final=False)
    with pytest.raises(RuleViolation) as refused:
        rules.ensure_defence_closed("x", **kwargs, today=date(2026, 3, 11))
    assert refused.value.code == "R35.1"
    rules.ensure_defence_closed("x", **kwargs, today=end)  # the window has closed on its end day
    rules.ensure_defence_closed("x", sent_on=sent, window_end=end, statement_final=True, today=sent)
    with pytest.raises(RuleViolation):  # never notified: never finalizable, whatever the date
        rules.ensure_defence_closed("x", sent_on=None, window_end=None, statement_final=True, today=date(2099, 1, 1))


# --- R36.1 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("history", "eligible", "automatic"), [
    ([], False, False),
    ([QUALIFIED] * 5, False, False),
    ([EXCELLENT, QUALIFIED, QUALIFIED], True, False),
    ([EXCELLENT, EXCELLENT, EXCELLENT], True, False),  # exactly three: not "more than three"
    ([EXCELLENT] * 4, True, True),
    ([EXCELLENT] * 4 + [QUALIFIED], True, True),
    ([EXCELLENT] * 4 + [BASIC], False, False),
    ([EXCELLENT] * 3 + [UNQUALIFIED], False, False),
    ([EXCELLENT, BASIC], False, False),
])
def test_r36_1_term_rules_on_constructed_histories(history, eligible, automatic) -> None:
    standing = rules.term_standing(history)
    assert (standing.eligible, standing.automatic) == (eligible, automatic)
    if automatic:
        assert rules.term_grade(QUALIFIED, standing) == EXCELLENT  # whatever is proposed
    if eligible:
        assert rules.term_grade(EXCELLENT, standing) == EXCELLENT
    else:
        with pytest.raises(RuleViolation) as refused:
            rules.term_grade(EXCELLENT, standing)
        assert refused.value.code == "R36.1"
        assert rules.term_grade(QUALIFIED, standing) == QUALIFIED


# --- R38.1 / R39.1 -------------------------------------------------------------------------------


def test_r39_1_notices_for_four_recipients_and_r38_1_commendation() -> None:
    texts = {r: rules.result_notice_text(recipient=r, addressee=rules.RECIPIENT_ZH[r], name="王五",
                                         period_label="2026年度", grade=EXCELLENT, bureau="威海市司法局",
                                         on=date(2027, 1, 20)) for r in rules.RECIPIENTS}
    assert len(texts) == 4 and all("王五" in t and "优秀" in t and "通报表扬" in t for t in texts.values())
    assert "通报" in texts["procuratorate"]
    text = rules.commendation_text(period_label="2026年度", names=["王五", "赵六"], bureau="威海市司法局",
                                   on=date(2027, 1, 20))
    assert "王五、赵六" in text and "2 名" in text


def test_r28_1_xlsx_export_drops_control_characters() -> None:
    content = ledger.export_xlsx(person={"name": "王\x0b五", "district": "环翠区"}, year=2026, figures=Figures(),
                                 rows=[])
    rows = list(load_workbook(io.BytesIO(content), read_only=True)["台账汇总"].iter_rows(values_only=True))
    assert ("姓名", "王五") in rows
