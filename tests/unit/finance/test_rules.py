"""Pure finance rules: N-RATE, R41.1, R42.1, R43.1 and money formatting."""

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.finance import rules
from services.finance.config import DEFAULT_TRAVEL_CAPS_FEN
from shared import activity_types as at

RATES = [
    rules.Rate(1, "public_hearing", 40_000, date(2024, 12, 1)),
    rules.Rate(2, "other", 15_000, date(2024, 12, 1)),
    rules.Rate(3, "public_hearing", 50_000, date(2026, 3, 16)),
    rules.Rate(4, "public_hearing", 45_000, date(2026, 3, 16)),  # same day, newer id wins
]


def test_n_rate_rate_in_force_is_latest_effective_on_or_before_the_date() -> None:
    assert rules.rate_in_force(RATES, "public_hearing", date(2026, 3, 15)).id == 1
    assert rules.rate_in_force(RATES, "public_hearing", date(2026, 3, 16)).id == 4
    assert rules.rate_in_force(RATES, "public_hearing", date(2030, 1, 1)).amount_fen == 45_000


def test_n_rate_before_the_first_rate_is_an_error() -> None:
    with pytest.raises(rules.NoRateError):
        rules.rate_in_force(RATES, "public_hearing", date(2024, 11, 30))
    with pytest.raises(rules.NoRateError):
        rules.rate_in_force(RATES, "court_support", date(2026, 1, 1))


def test_n_rate_mid_month_rate_change_prices_by_activity_date() -> None:
    before, _ = rules.price_line(RATES, "public_hearing", date(2026, 3, 10))
    after, _ = rules.price_line(RATES, "public_hearing", date(2026, 3, 20))
    assert (before.amount_fen, after.amount_fen) == (40_000, 45_000)


def test_r42_1_unknown_activity_type_is_priced_by_other_and_flagged() -> None:
    rate, known = rules.price_line(RATES, "some_new_type", date(2026, 1, 5))
    assert (rate.activity_type, rate.amount_fen, known) == ("other", 15_000, False)
    assert rules.pricing_type("some_new_type") == at.OTHER
    assert at.label("public_hearing") == "公开听证/公开审查"
    assert "未知" in at.label("some_new_type")


def test_r41_1_budget_estimate_is_supervisor_activities_times_rate_on_the_first_plus_travel_allowance() -> None:
    rows = [rules.PlanRow(3, "public_hearing", 2, seats=3), rules.PlanRow(4, "public_hearing", 1),
            rules.PlanRow(4, "other", 3, seats=2), rules.PlanRow(5, "other", 0, seats=5)]

    def price(activity_type: str, day: date) -> int:
        return rules.rate_in_force(RATES, activity_type, day).amount_fen

    months = rules.budget_estimate(rows, 2026, price, 5_000)
    # March priced on 2026-03-01 (old rate) although the new one starts mid-March; 2 hearings × 3 supervisors
    assert months[3] == 6 * (40_000 + 5_000)
    assert months[4] == (45_000 + 5_000) + 6 * (15_000 + 5_000)
    assert months[5] == 0 and set(months) == set(range(1, 13))
    with pytest.raises(ValueError):
        rules.budget_estimate([rules.PlanRow(1, "other", 1, seats=0)], 2026, price, 0)


def test_r41_1_an_approval_over_the_budget_needs_another_users_excess_approval() -> None:
    assert rules.check_budget(budget_fen=100, spent_fen=40, amount_fen=60, approver="a", excess_approved_by=None) == 0
    with pytest.raises(rules.RuleViolation) as refused:
        rules.check_budget(budget_fen=100, spent_fen=40, amount_fen=61, approver="a", excess_approved_by=None)
    assert (refused.value.status, refused.value.code) == (409, "R41.1") and "剩余0.60元" in refused.value.detail
    with pytest.raises(rules.SelfApproval):
        rules.check_budget(budget_fen=0, spent_fen=0, amount_fen=1, approver="a", excess_approved_by="a")
    assert rules.check_budget(budget_fen=0, spent_fen=0, amount_fen=5, approver="a", excess_approved_by="b") == -5


def test_r41_1_budget_refuses_bad_rows_and_missing_rates() -> None:
    with pytest.raises(ValueError):
        rules.budget_estimate([rules.PlanRow(13, "other", 1)], 2026, lambda t, d: 1, 0)
    with pytest.raises(rules.NoRateError):
        rules.budget_estimate([rules.PlanRow(1, "court_support", 1)], 2026,
                              lambda t, d: rules.rate_in_force(RATES, t, d).amount_fen, 0)


@pytest.mark.parametrize(("state", "action", "to"), [
    ("draft", "check", "checked"), ("checked", "approve", "approved"), ("approved", "pay", "paid"),
    ("draft", "reject", "rejected"), ("checked", "reject", "rejected"), ("approved", "reject", "rejected")])
def test_r42_1_allowed_transitions(state: str, action: str, to: str) -> None:
    assert rules.next_state(state, action) == to


@pytest.mark.parametrize(("state", "action"), [
    ("draft", "approve"), ("draft", "pay"), ("checked", "check"), ("checked", "pay"), ("approved", "check"),
    ("paid", "pay"), ("paid", "check"), ("approved", "approve"), ("draft", "delete"), ("paid", "reject"),
    ("rejected", "check"), ("rejected", "reject"), ("rejected", "pay")])
def test_r42_1_out_of_order_transitions_are_refused(state: str, action: str) -> None:
    with pytest.raises(rules.InvalidTransition):
        rules.next_state(state, action)


def test_r42_1_self_approval_is_refused() -> None:
    with pytest.raises(rules.SelfApproval):
        rules.ensure_not_self_approval("alice", checked_by="alice")
    with pytest.raises(rules.SelfApproval):
        rules.ensure_not_self_approval("bob", checked_by="alice", parties=["bob"])
    with pytest.raises(rules.SelfApproval):
        rules.ensure_not_self_approval("bob", checked_by="alice", approver_supervisor_id="s1",
                                       claimant_supervisor_id="s1")
    rules.ensure_not_self_approval("bob", checked_by="alice", parties=["carol", None],
                                   approver_supervisor_id=None, claimant_supervisor_id="s1")


def test_r42_1_signature_verified_needs_64_hex_and_a_time() -> None:
    good = "a" * 64
    assert rules.signature_verified(good, "2026-01-01T00:00:00Z")
    assert rules.signature_verified(good.upper(), "2026-01-01T00:00:00Z")
    assert not rules.signature_verified("a" * 63, "x")
    assert not rules.signature_verified("g" * 64, "x")
    assert not rules.signature_verified("", "x")
    assert not rules.signature_verified(good, None)


def test_r43_1_travel_caps_warn_but_do_not_refuse() -> None:
    caps = DEFAULT_TRAVEL_CAPS_FEN
    items = [rules.TravelItem("accommodation", 80_000, nights=2), rules.TravelItem("accommodation", 80_001, 2),
             rules.TravelItem("meal", 10_001), rules.TravelItem("transport", 100)]
    warnings = rules.travel_warnings(items, caps)
    assert [(w["item"], w["cap_fen"]) for w in warnings] == [(1, 80_000), (2, 10_000)]
    assert "住宿费" in warnings[0]["message"] and "800.01" in warnings[0]["message"]


@pytest.mark.parametrize(("fen", "text"), [(0, "0.00"), (5, "0.05"), (150, "1.50"), (40_000, "400.00"),
                                           (123_456_789, "1234567.89"), (-5, "-0.05")])
def test_yuan_formatting(fen: int, text: str) -> None:
    assert rules.yuan(fen) == text


def test_yuan_refuses_floats() -> None:
    with pytest.raises(TypeError):
        rules.yuan(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rules.yuan(True)


@given(st.integers(min_value=-10**15, max_value=10**15))
def test_yuan_round_trips_exactly(fen: int) -> None:
    text = rules.yuan(fen)
    sign = -1 if text.startswith("-") else 1
    whole, cents = text.lstrip("-").split(".")
    assert sign * (int(whole) * 100 + int(cents)) == fen


def test_mask_account_keeps_last_four() -> None:
    assert rules.mask_account("6222021234567890123") == "*" * 15 + "0123"
    assert rules.mask_account("123") == "***"


def test_month_bounds() -> None:
    assert rules.month_bounds(2026, 12) == (date(2026, 12, 1), date(2027, 1, 1))
    with pytest.raises(ValueError):
        rules.month_bounds(2026, 0)


@given(st.lists(st.tuples(st.sampled_from(["public_hearing", "other"]), st.integers(0, 10**6),
                          st.dates(date(2024, 12, 1), date(2030, 12, 31))), min_size=1, max_size=20),
       st.dates(date(2024, 1, 1), date(2031, 12, 31)))
def test_n_rate_rate_in_force_matches_the_definition(raw, on) -> None:
    rates = [rules.Rate(i, t, amount, day) for i, (t, amount, day) in enumerate(raw)]
    eligible = [r for r in rates if r.activity_type == "other" and r.effective_from <= on]
    if not eligible:
        with pytest.raises(rules.NoRateError):
            rules.rate_in_force(rates, "other", on)
        return
    latest = max(r.effective_from for r in eligible)
    expected = max((r for r in eligible if r.effective_from == latest), key=lambda r: r.id)
    assert rules.rate_in_force(rates, "other", on) == expected


def test_n_rate_a_pending_rate_is_not_in_force_and_past_dates_need_a_second_user() -> None:
    rates = [*RATES, rules.Rate(9, "public_hearing", 99_000, date(2026, 3, 20), approved=False)]
    assert rules.rate_in_force(rates, "public_hearing", date(2026, 3, 25)).id == 4
    assert rules.rate_needs_second_approval(date(2026, 3, 1), date(2026, 3, 2))
    assert not rules.rate_needs_second_approval(date(2026, 3, 2), date(2026, 3, 2))
    with pytest.raises(rules.SelfApproval):
        rules.ensure_second_user("alice", "alice")
    rules.ensure_second_user("bob", "alice")


def test_r42_1_signature_checks_finance_can_make() -> None:
    now = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    skew = timedelta(minutes=5)
    good = "A" * 64
    assert rules.check_signature(good, now, activity_date=date(2026, 3, 10), signed_on=date(2026, 3, 10), now=now,
                                 skew=skew) == "a" * 64
    for kwargs in ({"signature_hash": "x"}, {"signed_at": now + timedelta(minutes=6)},
                   {"activity_date": date(2026, 3, 11)}):
        args = {"signature_hash": good, "signed_at": now, "activity_date": date(2026, 3, 10), **kwargs}
        with pytest.raises(rules.SignatureRefused, match=r"R42\.1"):
            rules.check_signature(args["signature_hash"], args["signed_at"], activity_date=args["activity_date"],
                                  signed_on=date(2026, 3, 10), now=now, skew=skew)


def test_r42_1_expected_signature_hash_is_casework_s_formula() -> None:
    from services.casework import rules as casework_rules  # read-only: the formula finance mirrors

    fields = {"form_id": "f", "supervisor_id": "s", "content_hash": "c" * 64,
              "signed_at": datetime(2026, 3, 10, 2, 0, 1, 123, tzinfo=UTC), "method": "on_site_token",
              "image_sha256": None}
    assert rules.expected_signature_hash(**fields) == casework_rules.signature_hash(**fields)


def test_r42_1_issue_period_in_order_and_not_before_the_month() -> None:
    today = date(2026, 4, 8)
    rules.check_issue_period(2026, 4, today=today, last_issued=(2026, 3))
    for year, month, last, status in ((2026, 5, None, 422), (2026, 3, (2026, 3), 409), (2026, 2, (2026, 3), 409)):
        with pytest.raises(rules.RuleViolation) as refused:
            rules.check_issue_period(year, month, today=today, last_issued=last)
        assert (refused.value.status, refused.value.code) == (status, "R42.1")
    assert rules.batch_number(2026, 3, 7) == "202603-007"
    assert [rules.payment_status(100, p) for p in (0, 40, 100)] == ["未支付", "部分支付（已付0.40元）", "已支付"]


def test_r43_1_claim_period_activity_window_and_approval_in_part() -> None:
    rules.check_claim_window(date(2026, 1, 8), today=date(2026, 4, 8), deadline_days=90)
    for day in (date(2026, 1, 7), date(2026, 4, 9)):
        with pytest.raises(rules.RuleViolation, match=r"R43\.1"):
            rules.check_claim_window(day, today=date(2026, 4, 8), deadline_days=90)
    rules.check_claim_activity(date(2026, 3, 19), date(2026, 3, 20), window_days=1)
    with pytest.raises(rules.RuleViolation, match=r"R43\.1"):
        rules.check_claim_activity(date(2026, 3, 18), date(2026, 3, 20), window_days=1)
    assert rules.approved_amount(100, None, None) == (100, None)
    assert rules.approved_amount(100, 60, "超标准") == (60, "超标准")
    for approved, reason, code in ((60, None, "reason_required"), (101, "x", "R43.1"), (0, "x", "R43.1")):
        with pytest.raises(rules.RuleViolation) as refused:
            rules.approved_amount(100, approved, reason)
        assert refused.value.code == code
