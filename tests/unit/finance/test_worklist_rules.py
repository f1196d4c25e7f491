"""Pure rules of the finance work lists and deadlines: an item's next step and the four-eyes flag (R42.1,
R43.1), and the day a month's disbursement table is due (R42.1, configured)."""

from datetime import date

from services.finance import rules


def test_r42_1_next_step_of_each_state() -> None:
    assert rules.waiting_for("draft", in_issued_table=False) == "check"
    assert rules.waiting_for("checked", in_issued_table=False) == "approve"
    assert rules.waiting_for("approved", in_issued_table=False) == "issue"
    assert rules.waiting_for("approved", in_issued_table=True) == "pay"
    assert rules.waiting_for("paid", in_issued_table=True) is None
    assert rules.waiting_for("rejected", in_issued_table=False) is None


def test_r42_1_four_eyes_the_checker_may_not_approve() -> None:
    assert rules.may_act("approve", actor="alice", checked_by="bob", can_act=True)
    assert not rules.may_act("approve", actor="alice", checked_by="alice", can_act=True)
    assert rules.may_act("pay", actor="alice", checked_by="alice", can_act=True)
    assert not rules.may_act("check", actor="auditor", checked_by=None, can_act=False)
    assert not rules.may_act(None, actor="alice", checked_by=None, can_act=True)


def test_r42_1_table_due_on_the_configured_day_of_the_next_month() -> None:
    assert rules.table_due_on(2026, 3, 10) == date(2026, 4, 10)
    assert rules.table_due_on(2026, 12, 10) == date(2027, 1, 10)
    assert rules.table_due_on(2026, 1, 31) == date(2026, 2, 28)  # a shorter month: its last day
    assert rules.table_due_on(2028, 1, 30) == date(2028, 2, 29)
    assert rules.table_due_on(2026, 3, 1) == date(2026, 4, 1)
