"""Pure rules of the appraisal service (R29.1–R39.1), no I/O."""

import io
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
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
def test_r30_1_excellent_cap_at_boundaries_is_a_flag(appraised: int, allowed: int) -> None:
    assert rules.excellent_allowed(appraised) == allowed
    assert not rules.CapStatus(appraised, allowed).exceeded  # exactly the cap is fine
    over = rules.CapStatus(appraised, allowed + 1)
    assert over.exceeded and over.allowed == allowed
    rules.ensure_cap_justified(rules.CapStatus(appraised, allowed), justified_count=None, justified_by=None,
                               approved_by=None)


def test_r30_1_above_the_cap_goes_on_with_a_justification_approved_by_a_second_user() -> None:
    over = rules.CapStatus(10, 2)
    for justified, by, approved in [(None, None, None), (1, "a", "b"), (2, "a", None), (2, "a", "a")]:
        with pytest.raises(RuleViolation) as refused:
            rules.ensure_cap_justified(over, justified_count=justified, justified_by=by, approved_by=approved)
        assert refused.value.code == "R30.1"
    rules.ensure_cap_justified(over, justified_count=2, justified_by="a", approved_by="b")
    rules.ensure_cap_justified(over, justified_count=3, justified_by="a", approved_by="b")  # covers more
    # groups too small for one excellent (under 7) follow the same path
    rules.ensure_cap_justified(rules.CapStatus(5, 1), justified_count=1, justified_by="a", approved_by="b")
    with pytest.raises(RuleViolation):
        rules.ensure_second_user("a", "a")
    with pytest.raises(RuleViolation):
        rules.ensure_second_user(None, "a")
    rules.ensure_second_user("a", "b")


@given(st.integers(min_value=0, max_value=100_000))
def test_r30_1_cap_never_exceeds_fifteen_percent(n: int) -> None:
    allowed = rules.excellent_allowed(n)
    assert allowed * 100 <= 15 * n < (allowed + 1) * 100


class RoundMachine(RuleBasedStateMachine):
    """R30.1: a model of the round's moves; from every state reached, some move leads out, and the end
    (finalized) stays reachable — no state without an exit, whatever the sequence of moves."""

    @initialize()
    def opened(self) -> None:
        self.state, self.version = "opened", 0

    @precondition(lambda self: self.state in rules.TRANSITIONS)
    @rule()
    def forward(self) -> None:
        wanted = rules.TRANSITIONS[self.state]
        self.state = rules.next_state(self.state, wanted)
        if self.state == "finalized":
            self.version = 1

    @precondition(lambda self: self.state in rules.BACK)
    @rule()
    def back(self) -> None:
        before = self.state
        self.state = rules.previous_state(self.state)
        assert rules.STATES.index(self.state) == rules.STATES.index(before) - 1

    @precondition(lambda self: self.state == "finalized")
    @rule()
    def correct(self) -> None:
        rules.ensure_editable(self.state, "result_correction")
        self.version += 1

    @precondition(lambda self: self.state in rules.EDITABLE_IN["grade_correction"])
    @rule()
    def correct_grade(self) -> None:
        if rules.STATES.index(self.state) > rules.STATES.index(rules.CORRECTION_RESTARTS_AT):
            self.state = rules.CORRECTION_RESTARTS_AT

    @invariant()
    def has_an_exit_and_the_end_is_reachable(self) -> None:
        assert rules.exits(self.state)
        seen, todo = {self.state}, [self.state]
        while todo:
            s = todo.pop()
            for nxt in (rules.TRANSITIONS.get(s), rules.BACK.get(s)):
                if nxt and nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert "finalized" in seen
        for illegal in set(rules.STATES) - {rules.TRANSITIONS.get(self.state)}:
            with pytest.raises(RuleViolation):
                rules.next_state(self.state, illegal)


test_r30_1_round_machine_never_reaches_a_state_without_exit = RoundMachine.TestCase


def test_r30_1_every_state_has_a_way_forward_or_back() -> None:
    for state in rules.STATES:
        assert rules.exits(state), state
    assert rules.exits("finalized") == {"correct"}
    assert rules.exits("opened") == {"forward"}
    with pytest.raises(RuleViolation) as refused:
        rules.previous_state("finalized")
    assert refused.value.code == "invalid_transition"


# --- R29.1 ---------------------------------------------------------------------------------------


def test_r29_1_annual_rounds_open_at_the_year_end_or_early_next_year() -> None:
    with pytest.raises(RuleViolation) as refused:
        rules.ensure_annual_round_due(2025, date(2025, 11, 30))
    assert refused.value.code == "R29.1"
    rules.ensure_annual_round_due(2025, date(2025, 12, 1))
    rules.ensure_annual_round_due(2025, date(2026, 2, 15))
    assert rules.appraisal_year(date(2025, 12, 1)) == 2025 and rules.appraisal_year(date(2026, 3, 1)) == 2025
    rules.ensure_term_annuals_finalized({"张三": []})
    with pytest.raises(RuleViolation) as refused:
        rules.ensure_term_annuals_finalized({"张三": [2025, 2024]})
    assert refused.value.code == "R29.1" and "2024、2025年度" in refused.value.detail


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
                        ("finalized", "grade_correction"), ("public_notice", "result_correction"),
                        ("district_proposed", "consultation"), ("bureau_proposed", "opinion")]:
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
    assert "张三、李四" in text and "2026年1月12日" in text and "2026-01" not in text and "公示" in text


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


def test_r32_1_reminder_within_the_year_before_the_grade_and_conduct_after_it() -> None:
    year = dict(start=date(2025, 1, 1), end=date(2025, 12, 31))
    reminders = {1: [date(2025, 3, 1)], 2: [date(2025, 12, 2)], 3: [date(2026, 1, 2)], 4: [date(2025, 5, 1)]}
    conduct = {1: [date(2025, 2, 1), date(2025, 4, 1)], 2: [date(2025, 12, 3)], 3: [date(2026, 1, 3)]}
    supported = rules.supported_grounds(reminders, conduct, graded_on=date(2025, 12, 2), **year)
    # 1: reminded, went on after; 2: reminded on the grade's day; 3: after the year; 4: nothing after it
    assert supported == {1: (date(2025, 3, 1), date(2025, 4, 1))}
    later = rules.supported_grounds(reminders, conduct, graded_on=date(2026, 1, 10), **year)
    assert set(later) == {1, 2}  # graded later: 2 went on after its reminder; 3 is of the next year
    rules.ensure_unqualified_grounds([1], supported)
    for grounds in ([], [3], [1, 4], [6]):
        with pytest.raises(RuleViolation) as refused:
            rules.ensure_unqualified_grounds(grounds, supported)
        assert refused.value.code == "R32.1"
    assert rules.flagged_grounds({5: 0, 1: 0}) == [1, 5]


# --- R31.1 ---------------------------------------------------------------------------------------


def test_r31_1_excellent_needs_the_five_conditions_with_evidence() -> None:
    full = {k: {"met": True, "evidence": "依据"} for k in rules.EXCELLENT_CRITERIA}
    checklist = rules.ensure_excellent_criteria(full)
    assert list(checklist) == list(rules.EXCELLENT_CRITERIA) and checklist["ethics"]["label"] == "恪守职业道德"
    for broken in ({}, None, {**full, "training": {"met": False, "evidence": "x"}},
                   {**full, "activities": {"met": True, "evidence": "  "}}):
        with pytest.raises(RuleViolation) as refused:
            rules.ensure_excellent_criteria(broken)
        assert refused.value.code == "R31.1"
    hints = rules.suggested_evidence(Figures(activities=4, adopted=2, training_hours=8, trainings_attended=1))
    assert "4 次" in hints["activities"] and hints["political_quality"] == ""


# --- R35.1 ---------------------------------------------------------------------------------------


def test_r35_1_defence_window_counts_from_the_next_day_to_the_end_of_its_last_day() -> None:
    sent = date(2026, 3, 2)
    end = rules.defence_window_end(sent, 10, lambda d: add_wd(d, 0))
    assert end == date(2026, 3, 12)
    kwargs = dict(sent_on=sent, window_end=end, statement_final=False)
    for today in (sent, date(2026, 3, 11), end):  # open through its last day
        with pytest.raises(RuleViolation) as refused:
            rules.ensure_defence_closed("x", **kwargs, today=today)
        assert refused.value.code == "R35.1"
    rules.ensure_defence_closed("x", **kwargs, today=date(2026, 3, 13))
    rules.ensure_defence_closed("x", sent_on=sent, window_end=end, statement_final=True, today=sent)
    with pytest.raises(RuleViolation):  # never notified: never finalizable, whatever the date
        rules.ensure_defence_closed("x", sent_on=None, window_end=None, statement_final=True, today=date(2099, 1, 1))
    # a last day in the National Day holiday (2025: Oct 1-8 off) moves to the next working day (art. 203)
    assert rules.defence_window_end(date(2025, 9, 24), 10, lambda d: add_wd(d, 0)) == date(2025, 10, 9)


def test_r35_1_the_notice_document_names_reasons_basis_rights_and_the_title() -> None:
    doc = rules.defence_notice_document(name="王五", period_label="2025年度", reasons="长期失联", basis="第三十二条",
                                        grounds=[2], window_end=date(2025, 12, 12), bureau="威海市司法局",
                                        on=date(2025, 12, 2))
    text = rules.document_text(doc)
    assert doc["date_zh"] == "2025年12月2日" and doc["addressee"] == "王五："
    assert "《威海市人民监督员履职管理实施办法》" in text and "《威海市人民监督员管理办法》" not in text
    assert "长期失联" in text and "陈述和申辩的权利" in text and "2025年12月12日二十四时" in text
    assert "第三十二条第（2）项" in text


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
    assert "王五、赵六" in text and "等2名人民监督员" in text and "2027年1月20日" in text
    corrected = rules.result_notice_text(recipient="person", addressee="王五", name="王五", period_label="2026年度",
                                         grade=QUALIFIED, bureau="威海市司法局", on=date(2027, 2, 1),
                                         correction="复核")
    assert "更正" in corrected and "复核" in corrected


def test_r34_1_notices_cite_the_measures_by_their_title() -> None:
    text = rules.public_notice_text(year_label="2025年度", names=[], start=date(2025, 12, 2),
                                    end=date(2025, 12, 9), bureau="威海市司法局")
    assert "《威海市人民监督员履职管理实施办法》第三十四条" in text and "管理办法》" not in text
    with pytest.raises(RuleViolation) as refused:
        rules.ensure_notice_days(3, 5)
    assert refused.value.code == "R34.1"
    with pytest.raises(RuleViolation) as refused:
        rules.ensure_districts_consulted(["环翠区", "荣成市"], ["环翠区"])
    assert refused.value.code == "R34.1" and "荣成市" in refused.value.detail


def test_r28_1_xlsx_export_drops_control_characters() -> None:
    content = ledger.export_xlsx(person={"name": "王\x0b五", "district": "环翠区"}, year=2026, figures=Figures(),
                                 rows=[])
    rows = list(load_workbook(io.BytesIO(content), read_only=True)["台账汇总"].iter_rows(values_only=True))
    assert ("姓名", "王五") in rows
