"""Pure rules of the appraisal work list and deadlines: the step each state waits for (R34.1), who acts in it,
the public notice's end (R34.1(5)), the entry and report of (6), and when an annual round is due (R29.1)."""

from datetime import date

from services.appraisal import rules


def test_r34_1_every_state_before_finalizing_waits_for_its_next_step() -> None:
    for state, nxt in rules.TRANSITIONS.items():
        step = rules.pending_step(state, notice_end=None, entered_done=False, reported_done=False)
        assert step is not None and step.action == nxt and rules.BUREAU in step.roles


def test_r34_1_who_acts_in_each_step() -> None:
    assert rules.pending_step("opened", notice_end=None, entered_done=False, reported_done=False).roles == (
        rules.SUPERVISOR, rules.BUREAU)
    assert rules.PROCURATORATE in rules.PENDING_IN["self_summaries"].roles
    assert rules.DISTRICT in rules.PENDING_IN["reviewed"].roles
    assert rules.states_awaiting(rules.DISTRICT) == ["reviewed"]
    assert rules.states_awaiting(rules.SUPERVISOR) == ["opened"]
    assert rules.states_awaiting(rules.BUREAU) == [*rules.STATES[:-1], "finalized"]
    assert rules.states_awaiting("finance") == []


def test_r34_1_5_finalizing_waits_for_the_day_after_the_notice() -> None:
    step = rules.pending_step("public_notice", notice_end=date(2025, 12, 9), entered_done=False, reported_done=False)
    assert (step.action, step.not_before) == ("finalized", date(2025, 12, 10))
    assert rules.finalize_not_before(date(2025, 12, 31)) == date(2026, 1, 1)


def test_r34_1_6_a_finalized_round_waits_for_entry_then_report_then_nothing() -> None:
    def pending(entered: bool, reported: bool):
        step = rules.pending_step("finalized", notice_end=None, entered_done=entered, reported_done=reported)
        return step and step.action

    assert pending(False, False) == "entered"
    assert pending(True, False) == "reported"
    assert pending(False, True) == "entered"
    assert pending(True, True) is None


def test_r29_1_annual_round_due_by_early_next_year() -> None:
    assert rules.annual_round_due_by(2025) == date(2026, 1, 31)
    assert rules.annual_round_due_by(2025, (2, 28)) == date(2026, 2, 28)
