"""Pure rules of casework's side of the draw protocol (DRAW.md protocol steps 1 and 5, R11.1), the lead-time
answer (R10.1, R10.2, R44.1), cancellation and the request's live state."""

import dataclasses
import hashlib
import secrets
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.casework import rules
from services.casework.rules import ExpectedReceipt, check_receipt
from shared.calendar import WorkingCalendar
from shared.lead_time import check_lead_time

ALL_CHECKS = ["receipt_verifies", "receipt_hash", "request", "bureau_commitment", "procuratorate_commitment",
              "procuratorate_nonce_in_seed", "snapshot_hash", "params_hash", "beacon"]


def ok(receipt) -> dict:
    return {"ok": True, "checks": {}}


def _case(round_no: int = 1) -> tuple[dict, ExpectedReceipt]:
    """A faithful receipt and what casework expects of it."""
    n_b, n_p = secrets.token_hex(32), secrets.token_hex(32)
    snapshot_hash, params_hash, receipt_hash = (secrets.token_hex(32) for _ in range(3))
    request_id = "7d1c3a52-9f7e-4d8e-b1c2-0a9b8c7d6e5f"
    receipt = {
        "alg": "people-supervisor-draw/4", "draw_id": "d", "request_id": request_id, "round": round_no,
        "snapshot_hash": snapshot_hash, "params_hash": params_hash,
        "commitments": {"bureau": rules.commitment(n_b), "procuratorate": rules.commitment(n_p)},
        "nonces": {"bureau": n_b, "procuratorate": n_p}, "procuratorate_nonce_reason": None, "beacon": None,
        "receipt_hash": receipt_hash,
    }
    expected = ExpectedReceipt(request_id=request_id, round=round_no, receipt_hash=receipt_hash,
                               bureau_commitment=rules.commitment(n_b), procuratorate_commitment=rules.commitment(n_p),
                               procuratorate_nonce=n_p, snapshot_hash=snapshot_hash, params_hash=params_hash)
    return receipt, expected


def _with(receipt: dict, path: tuple[str, ...], value) -> dict:
    out = {**receipt, **{k: dict(v) for k, v in receipt.items() if isinstance(v, dict)}}
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


def test_r11_1_commitment_is_sha256_of_the_raw_nonce_bytes():
    assert rules.commitment("00" * 32) == "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
    nonce = secrets.token_hex(32)
    assert rules.commitment(nonce) == hashlib.sha256(bytes.fromhex(nonce)).hexdigest()


def test_r11_1_faithful_receipt_passes_every_check():
    receipt, expected = _case()
    assert check_receipt(receipt, expected=expected, verify=ok) == []


@pytest.mark.parametrize(("path", "value", "failed"), [
    (("nonces", "bureau"), "11" * 32, ["bureau_commitment"]),  # n_B does not match the commitment received
    (("commitments", "bureau"), "22" * 32, ["bureau_commitment"]),  # not the commitment of the acceptance
    (("nonces", "bureau"), "not hex", ["bureau_commitment"]),
    (("commitments", "procuratorate"), "33" * 32, ["procuratorate_commitment"]),
    (("nonces", "procuratorate"), None, ["procuratorate_nonce_in_seed"]),  # null after we revealed
    (("nonces", "procuratorate"), "44" * 32, ["procuratorate_nonce_in_seed"]),
    (("request_id",), "00000000-0000-4000-8000-000000000000", ["request"]),
    (("receipt_hash",), "55" * 32, ["receipt_hash"]),
    (("snapshot_hash",), "66" * 32, ["snapshot_hash"]),
    (("params_hash",), "77" * 32, ["params_hash"]),
])
def test_r11_1_each_fault_names_its_check(path, value, failed):
    receipt, expected = _case()
    assert check_receipt(_with(receipt, path, value), expected=expected, verify=ok) == failed


def test_r11_1_later_rounds_have_their_own_snapshot_and_params():
    receipt, expected = _case(round_no=2)
    changed = _with(_with(receipt, ("snapshot_hash",), "66" * 32), ("params_hash",), "77" * 32)
    assert check_receipt(changed, expected=expected, verify=ok) == []


def test_r11_1_the_beacon_is_the_one_named_at_acceptance():
    receipt, expected = _case()
    named = ExpectedReceipt(**{**expected.__dict__, "beacon": {"source": "福彩双色球", "round": "2026140"}})
    used = {"source": "福彩双色球", "round": "2026140", "value": "03 07 12 19 25 31 + 09"}
    assert check_receipt(_with(receipt, ("beacon",), used), expected=named, verify=ok) == []
    for wrong in (None, {**used, "round": "2026141"}, {**used, "source": "other"}, {**used, "value": None}):
        assert check_receipt(_with(receipt, ("beacon",), wrong), expected=named, verify=ok) == ["beacon"]
    assert check_receipt(_with(receipt, ("beacon",), used), expected=expected, verify=ok) == ["beacon"]
    later, expected_later = _case(round_no=2)
    assert check_receipt(_with(later, ("beacon",), used), expected=expected_later, verify=ok) == []


def test_r11_1_not_revealed_means_no_procuratorate_nonce_in_the_seed():
    receipt, expected = _case()
    unrevealed = ExpectedReceipt(**{**expected.__dict__, "procuratorate_nonce": None})
    assert check_receipt(receipt, expected=unrevealed, verify=ok) == ["procuratorate_nonce_in_seed"]
    assert check_receipt(_with(receipt, ("nonces", "procuratorate"), None), expected=unrevealed, verify=ok) == []


def test_r11_1_without_a_stored_acceptance_nothing_can_match():
    receipt, expected = _case()
    none = ExpectedReceipt(**{**expected.__dict__, "bureau_commitment": None, "snapshot_hash": None,
                              "params_hash": None})
    assert check_receipt(receipt, expected=none, verify=ok) == ["bureau_commitment", "snapshot_hash", "params_hash"]


def test_r11_1_the_verifier_decides_receipt_verifies_and_its_errors_fail_it():
    receipt, expected = _case()
    assert check_receipt(receipt, expected=expected, verify=lambda r: {"ok": False}) == ["receipt_verifies"]

    def broken(r):
        raise ValueError("cannot read")

    assert check_receipt(receipt, expected=expected, verify=broken) == ["receipt_verifies"]


@pytest.mark.parametrize("garbage", [None, [], "receipt", 7, {}, {"commitments": "x", "nonces": []}])
def test_r11_1_a_malformed_receipt_fails_every_check_without_raising(garbage):
    _, expected = _case()
    assert check_receipt(garbage, expected=expected, verify=lambda r: {"ok": False}) == ALL_CHECKS


def test_r11_1_the_stand_alone_verifier_rejects_a_receipt_it_cannot_recompute():
    algorithm = pytest.importorskip("services.selection.draw.algorithm")
    receipt, expected = _case()
    assert "receipt_verifies" in check_receipt(receipt, expected=expected, verify=algorithm.verify_receipt)


@given(st.sampled_from(["receipt_hash", "request_id", "snapshot_hash", "params_hash", "bureau", "procuratorate"]),
       st.binary(min_size=32, max_size=32))
def test_r11_1_any_substituted_value_is_caught(field, raw):
    receipt, expected = _case()
    value = raw.hex()
    if field in ("bureau", "procuratorate"):
        changed = _with(receipt, ("nonces", field), value)
    else:
        changed = _with(receipt, (field,), value)
    if changed != receipt:
        assert check_receipt(changed, expected=expected, verify=ok) != []


def test_r11_1_receipt_retry_backs_off_and_is_capped():
    waits = [rules.receipt_retry_seconds(n) for n in range(1, 30)]
    assert waits[0] == 5 and waits[1] == 10 and waits == sorted(waits)
    assert max(waits) == rules.RECEIPT_RETRY_MAX_SECONDS


# --- lead time (R10.1, R10.2, R44.1) ------------------------------------------------------------------

CAL = WorkingCalendar()
MONDAY = date(2025, 11, 3)


def test_r10_1_enough_lead_time_is_requested():
    decision = check_lead_time(CAL, notified_on=MONDAY, activity_on=MONDAY + timedelta(days=7), short_notice=False)
    assert rules.check_lead_time_answer(decision) == "requested"


def test_r10_2_short_notice_waits_for_the_bureau():
    decision = check_lead_time(CAL, notified_on=MONDAY, activity_on=MONDAY + timedelta(days=3), short_notice=True)
    assert rules.check_lead_time_answer(decision) == "awaiting_consent"


@pytest.mark.parametrize(("days", "short", "code", "title"), [
    (3, False, "R10.1", "提前通知不足五个工作日"),
    (2, True, "R10.2", "提前通知不足三个工作日"),
])
def test_r10_1_r10_2_refusal_is_422_with_the_earliest_date(days, short, code, title):
    decision = check_lead_time(CAL, notified_on=MONDAY, activity_on=MONDAY + timedelta(days=days),
                               short_notice=short)
    with pytest.raises(rules.RuleViolation) as exc:
        rules.check_lead_time_answer(decision)
    assert exc.value.kind == "invalid" and exc.value.code == code and exc.value.title == title
    assert exc.value.detail == decision.detail
    assert exc.value.extra == {"earliest_allowed_date": decision.earliest_allowed_date.isoformat(),
                               "calendar_provisional": False}


def test_r44_1_and_too_far_are_refused_with_their_codes():
    before = check_lead_time(CAL, notified_on=MONDAY, activity_on=date(2024, 11, 1), short_notice=False)
    far = check_lead_time(CAL, notified_on=MONDAY, activity_on=date(2030, 1, 1), short_notice=False)
    for decision, code in ((before, "R44.1"), (far, "activity_too_far")):
        with pytest.raises(rules.RuleViolation) as exc:
            rules.check_lead_time_answer(decision)
        assert exc.value.code == code and exc.value.kind == "invalid"
    assert exc.value.extra["earliest_allowed_date"] is None


# --- cancellation and live state --------------------------------------------------------------------

def test_cancel_only_while_open_and_before_the_activity_begins():
    at = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    later = at + timedelta(days=3)
    for status in ("requested", "awaiting_consent", "accepted", "drawn", "short", "staffed"):
        rules.check_cancellable(status, activity_status="open", starts_at=later, at=at)
    for status in rules.CLOSED_STATUSES:
        with pytest.raises(rules.RuleViolation) as exc:
            rules.check_cancellable(status, activity_status="open", starts_at=later, at=at)
        assert exc.value.code == "request_closed" and exc.value.kind == "conflict"
    for activity_status, starts_at in (("open", at), ("open", at - timedelta(minutes=1)), ("held", later)):
        with pytest.raises(rules.RuleViolation) as exc:
            rules.check_cancellable("staffed", activity_status=activity_status, starts_at=starts_at, at=at)
        assert exc.value.code == "activity_started"


def test_live_state_transitions():
    assert [rules.status_after_drawn(s) for s in ("accepted", "drawn", "short", "staffed", "cancelled")] == [
        "drawn", "drawn", "short", "staffed", "cancelled"]
    assert rules.status_after_draw_completed("accepted", {}) == "drawn"
    assert rules.status_after_draw_completed("accepted", {"cross": 1}) == "short"
    assert rules.status_after_draw_completed("short", {"local": 0}) == "drawn"
    for kept in ("staffed", "cancelled", "refused"):
        assert rules.status_after_draw_completed(kept, {"cross": 2}) == kept
    assert rules.status_after_staffed("drawn") == "staffed" and rules.status_after_staffed("cancelled") == "cancelled"
    assert rules.status_after_released("staffed") == "drawn" and rules.status_after_released("short") == "short"
    assert rules.status_after_refused("awaiting_consent") == "refused"
    assert rules.status_after_refused("cancelled") == "cancelled"
    assert set(rules.REQUEST_STATUSES) == {"requested", "awaiting_consent", "accepted", "drawn", "short", "staffed",
                                           "refused", "cancelled"}


def test_r11_1_a_real_v4_receipt_passes_and_a_substituted_bureau_nonce_is_caught_by_the_real_verifier():
    """DRAW.md protocol step 5 with selection's own algorithm (not a stand-in verifier)."""
    import uuid as uuid_

    from services.selection.draw import algorithm as alg

    ours, bureau = secrets.token_hex(32), secrets.token_hex(32)
    rows = [{"id": str(uuid_.uuid4()), "district": "环翠区" if i % 2 else "文登区", "specialties": [], "served": 0}
            for i in range(12)]
    snapshot, buckets = alg.make_pool(rows, chain_head=alg.GENESIS_HASH, year=2026)
    params = {"request_id": "r1", "district": "环翠区", "need": {"local": 1, "cross": 1}, "alternates": 2}
    receipt = alg.build_receipt(
        draw_id="d1", request_id="r1", round_no=1, snapshot=snapshot, buckets=buckets, params=params,
        accepted_at="2026-12-01T00:00:00+00:00",
        commitments={"bureau": alg.commitment(bureau), "procuratorate": alg.commitment(ours)},
        bureau_nonce=bureau, procuratorate_nonce=ours, procuratorate_nonce_reason=None, beacon=None,
        prev_receipt_hash=alg.GENESIS_HASH, drawn_at="2026-12-01T00:00:01+00:00")
    receipt = {**receipt, "buckets": buckets, "contact_log": []}
    expected = ExpectedReceipt(
        request_id="r1", round=1, receipt_hash=receipt["receipt_hash"], bureau_commitment=alg.commitment(bureau),
        procuratorate_commitment=alg.commitment(ours), procuratorate_nonce=ours,
        snapshot_hash=receipt["snapshot_hash"], params_hash=receipt["params_hash"])
    assert check_receipt(receipt, expected=expected, verify=alg.verify_receipt) == []
    # the bureau swaps its nonce after the reveal and recomputes everything it can: its commitment no longer holds
    other = secrets.token_hex(32)
    rerolled = alg.build_receipt(
        draw_id="d1", request_id="r1", round_no=1, snapshot=snapshot, buckets=buckets, params=params,
        accepted_at="2026-12-01T00:00:00+00:00",
        commitments={"bureau": alg.commitment(other), "procuratorate": alg.commitment(ours)},
        bureau_nonce=other, procuratorate_nonce=ours, procuratorate_nonce_reason=None, beacon=None,
        prev_receipt_hash=alg.GENESIS_HASH, drawn_at="2026-12-01T00:00:01+00:00")
    rerolled = {**rerolled, "buckets": buckets, "contact_log": []}
    announced = dataclasses.replace(expected, receipt_hash=rerolled["receipt_hash"])
    failed = check_receipt(rerolled, expected=announced, verify=alg.verify_receipt)
    assert failed == ["bureau_commitment"]  # it verifies in itself, but not against the acceptance
    forged = {**receipt, "nonces": {**receipt["nonces"], "bureau": other}}  # nonce swapped, rest kept
    assert {"receipt_verifies", "bureau_commitment"} <= set(check_receipt(forged, expected=expected,
                                                                         verify=alg.verify_receipt))
