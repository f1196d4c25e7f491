"""Pure casework rules: N-ACT, N-MUST, R17.1 canonical content + hashes, R20.1/R20.2 deadlines, idempotency."""

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.casework import rules
from services.casework.idempotency import fingerprint
from shared import activity_types
from shared.calendar import WorkingCalendar
from shared.errors import ProblemError

ACT = {"id": "a", "case_ref": "威检〔2026〕1号", "activity_type": "public_hearing"}


def test_n_act_one_list_with_a_chinese_label_per_code():
    assert set(activity_types.LABELS) == set(activity_types.ACTIVITY_TYPES)
    assert all(activity_types.LABELS[code] for code in activity_types.ACTIVITY_TYPES)


@pytest.mark.parametrize("code", activity_types.ACTIVITY_TYPES[:-1])
def test_n_act_known_types_accepted(code):
    rules.check_activity_type(code, None)


def test_n_act_other_needs_description():
    with pytest.raises(ProblemError) as exc:
        rules.check_activity_type("other", "  ")
    assert exc.value.code == "N-ACT" and exc.value.status == 422
    rules.check_activity_type("other", "案件回访")


def test_n_act_unknown_type_refused():
    with pytest.raises(ProblemError) as exc:
        rules.check_activity_type("picnic", None)
    assert exc.value.code == "N-ACT"


def test_n_must_mandatory_needs_a_supervisor():
    with pytest.raises(ProblemError) as exc:
        rules.check_can_close(True, 0)
    assert exc.value.code == "N-MUST" and exc.value.status == 409
    rules.check_can_close(True, 1)
    rules.check_can_close(False, 0)


def test_r17_1_frozen_content_refused():
    with pytest.raises(ProblemError) as exc:
        rules.check_not_frozen(True)
    assert exc.value.code == "R17.1" and exc.value.status == 409
    rules.check_not_frozen(False)


def test_r20_1_report_due_three_working_days_after_the_end():
    calendar = WorkingCalendar()
    # Friday 2025-09-26 → Sun 28 (make-up working day), Mon 29, Tue 30, then the National Day holiday
    due, provisional = rules.report_due(date(2025, 9, 26), calendar)
    assert due == calendar.add_working_days(date(2025, 9, 26), 3).value
    assert due == date(2025, 9, 30) and not provisional
    due, _ = rules.report_due(date(2025, 11, 7), calendar)  # Friday → Mon, Tue, Wed
    assert due == date(2025, 11, 12)


def test_r20_1_overdue_reading():
    assert rules.is_overdue(date(2026, 1, 5), None, date(2026, 1, 6))
    assert not rules.is_overdue(date(2026, 1, 5), None, date(2026, 1, 5))
    assert rules.is_overdue(date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 6))
    assert not rules.is_overdue(date(2026, 1, 5), date(2026, 1, 5), date(2026, 3, 1))


def test_r20_2_transmittal_due_by_the_4th_of_next_month():
    assert rules.transmittal_due(date(2026, 10, 1)) == date(2026, 11, 4)
    assert rules.transmittal_due(date(2026, 12, 1)) == date(2027, 1, 4)
    assert rules.previous_month(date(2027, 1, 3)) == date(2026, 12, 1)
    assert rules.previous_month(date(2026, 11, 29)) == date(2026, 10, 1)


def _content(opinion="同意", order=("b", "a")):
    return rules.form_content(activity=ACT, summary="摘要", participants=[
        {"supervisor_id": sid, "name": f"n{sid}", "opinion": opinion, "adopted": None} for sid in order])


def test_r17_1_canonical_content_is_order_independent_and_hash_stable():
    one, two = _content(order=("b", "a")), _content(order=("a", "b"))
    assert rules.canonical(one) == rules.canonical(two)
    assert rules.content_hash(one) == rules.content_hash(two)
    assert one["title"] == "威海市人民监督员履职情况反馈表"
    assert [p["adoption"] for p in one["participants"]] == ["pending", "pending"]
    assert "威海" in rules.canonical(one).decode()  # UTF-8, not \\u escapes


@given(st.text(min_size=1), st.text(min_size=1))
def test_r17_1_any_change_of_an_opinion_changes_the_hash(a, b):
    if a != b:
        assert rules.content_hash(_content(a)) != rules.content_hash(_content(b))


def test_r17_1_signature_hash_binds_signer_time_method_and_image():
    at = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    base = dict(form_id="f", supervisor_id="s", content_hash="c" * 64, signed_at=at, method="on_site_token",
                image_sha256=None)
    h = rules.signature_hash(**base)
    assert len(h) == 64
    for change in ({"supervisor_id": "t"}, {"content_hash": "d" * 64}, {"image_sha256": "e" * 64},
                   {"signed_at": at.replace(minute=1)}):
        assert rules.signature_hash(**{**base, **change}) != h


def test_r17_1_activity_date_is_the_shanghai_date():
    assert rules.local_date(datetime(2026, 12, 1, 17, 0, tzinfo=UTC)) == date(2026, 12, 2)


def test_idempotency_fingerprint_same_for_same_request_different_otherwise():
    a = fingerprint("post", "/activities", {"b": 1, "a": [1, 2]})
    assert a == fingerprint("POST", "/activities", {"a": [1, 2], "b": 1})
    assert a != fingerprint("POST", "/activities", {"a": [2, 1], "b": 1})
    assert a != fingerprint("POST", "/other", {"a": [1, 2], "b": 1})
    assert fingerprint("POST", "/x", {"t": datetime(2026, 1, 1, tzinfo=UTC)}) == fingerprint(
        "POST", "/x", {"t": "2026-01-01T00:00:00+00:00"})
