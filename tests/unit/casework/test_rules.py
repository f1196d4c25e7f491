"""Pure casework rules: N-ACT, N-MUST, R16.1 opinions, R17.1 canonical content + hashes + signing time,
R20.1/R20.2 deadlines, domain errors mapped at the edge, idempotency."""

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.casework import rules
from services.casework.edge import problem
from services.casework.idempotency import fingerprint
from shared import activity_types, clock
from shared.calendar import WorkingCalendar

ACT = {"id": "a", "case_ref": "威检〔2026〕1号", "activity_type": "public_hearing"}


def test_n_act_one_list_with_a_chinese_label_per_code():
    assert set(activity_types.LABELS) == set(activity_types.ACTIVITY_TYPES)
    assert all(activity_types.LABELS[code] for code in activity_types.ACTIVITY_TYPES)


@pytest.mark.parametrize("code", activity_types.ACTIVITY_TYPES[:-1])
def test_n_act_known_types_accepted(code):
    rules.check_activity_type(code, None)


def test_n_act_other_needs_description():
    with pytest.raises(rules.RuleViolation) as exc:
        rules.check_activity_type("other", "  ")
    assert exc.value.code == "N-ACT" and exc.value.kind == "invalid"
    rules.check_activity_type("other", "案件回访")


def test_n_act_unknown_type_refused():
    with pytest.raises(rules.RuleViolation) as exc:
        rules.check_activity_type("picnic", None)
    assert exc.value.code == "N-ACT"


def test_n_must_mandatory_needs_a_supervisor():
    with pytest.raises(rules.RuleViolation) as exc:
        rules.check_can_close(True, 0)
    assert exc.value.code == "N-MUST" and exc.value.kind == "conflict"
    rules.check_can_close(True, 1)
    rules.check_can_close(False, 0)


def test_r17_1_frozen_content_refused():
    with pytest.raises(rules.RuleViolation) as exc:
        rules.check_not_frozen(True)
    assert exc.value.code == "R17.1" and exc.value.kind == "conflict"
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


def test_r20_2_due_on_the_5th_inclusive_when_it_is_a_working_day():
    calendar = WorkingCalendar()
    # 2026-02-05 is a Thursday (working day): due that day
    assert rules.transmittal_due(date(2026, 1, 1), calendar) == (date(2026, 2, 5), False)
    assert rules.previous_month(date(2027, 1, 3)) == date(2026, 12, 1)
    assert rules.previous_month(date(2026, 11, 29)) == date(2026, 10, 1)
    assert rules.next_month(date(2026, 12, 1)) == date(2027, 1, 1)


def test_r20_2_october_national_day_moves_the_due_date_to_the_next_working_day():
    calendar = WorkingCalendar()
    # September 2026's forms: 2026-10-05 falls in the National Day holiday (1–7 October) → Thursday 8 October
    assert not calendar.is_working_day(date(2026, 10, 5)).value
    due, provisional = rules.transmittal_due(date(2026, 9, 1), calendar)
    assert due == date(2026, 10, 8) and not provisional
    assert not rules.is_overdue(due, date(2026, 10, 8), date(2026, 10, 8))  # sent on the 8th: on time
    assert rules.is_overdue(due, None, date(2026, 10, 9))
    # a Saturday 5th (December 2026) moves to Monday the 7th
    assert rules.transmittal_due(date(2026, 11, 1), calendar)[0] == date(2026, 12, 7)


def test_r20_2_a_form_signed_after_the_months_transmittal_goes_in_the_next_one():
    october, november, december = date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)
    # signed in its own month: that month's transmittal
    assert rules.transmittal_period(date(2026, 10, 20), date(2026, 10, 30), set()) == october
    # signed on 2 November, October not yet sent: still October's
    assert rules.transmittal_period(date(2026, 10, 20), date(2026, 11, 2), set()) == october
    # signed after October's transmittal went: carried into November's
    assert rules.transmittal_period(date(2026, 10, 20), date(2026, 11, 10), {october}) == november
    assert rules.transmittal_period(date(2026, 10, 20), date(2026, 11, 10), {october, november}) == december
    # signed long after: never owed in a month before the one preceding its signature
    assert rules.transmittal_period(date(2026, 6, 20), date(2026, 12, 10), set()) == november


def test_r20_1_overdue_cutoff_is_the_latest_end_whose_report_is_late():
    calendar = WorkingCalendar()
    for as_of in (date(2025, 10, 1) + timedelta(days=k) for k in range(0, 60)):
        cutoff = rules.report_overdue_cutoff(as_of, calendar)
        assert rules.report_due(cutoff, calendar)[0] < as_of
        later = cutoff + timedelta(days=1)
        assert all(rules.report_due(later + timedelta(days=k), calendar)[0] >= as_of for k in range(10))
    # Friday 2025-09-26 → due Tue 30 (make-up Sunday counts): overdue from 1 October on, not on 30 September
    assert rules.report_overdue_cutoff(date(2025, 10, 1), calendar) >= date(2025, 9, 26)
    assert rules.report_overdue_cutoff(date(2025, 9, 30), calendar) < date(2025, 9, 26)


def test_n_must_flag_follows_the_matter_the_measures_name():
    for matter in rules.MANDATORY_MATTERS:
        assert rules.mandatory_invitation("public_hearing", matter, None) is True
        assert rules.mandatory_invitation("public_hearing", matter, True) is True
        with pytest.raises(rules.RuleViolation) as exc:
            rules.mandatory_invitation("public_hearing", matter, False)
        assert exc.value.code == "N-MUST" and exc.value.kind == "invalid"
    assert rules.mandatory_invitation("public_hearing", "other_hearing", None) is False
    assert rules.mandatory_invitation("public_hearing", None, True) is True  # the office may add the flag
    assert rules.mandatory_invitation("work_briefing", None, None) is False
    with pytest.raises(rules.RuleViolation) as exc:
        rules.mandatory_invitation("work_briefing", "intended_non_prosecution", None)
    assert exc.value.code == "N-MUST"


def test_r17_1_signing_and_holding_only_once_the_activity_has_begun():
    starts = datetime(2026, 12, 10, 1, 0, tzinfo=UTC)
    with pytest.raises(rules.RuleViolation) as exc:
        rules.check_started(starts, starts - timedelta(days=7), code="R17.1")
    assert exc.value.code == "R17.1" and exc.value.kind == "conflict" and "2026年12月10日 09:00" in exc.value.detail
    with pytest.raises(rules.RuleViolation) as exc:
        rules.check_started(starts, starts - timedelta(seconds=1), code="activity_not_started")
    assert exc.value.code == "activity_not_started"
    rules.check_started(starts, starts, code="R17.1")


def test_r16_1_procuratorate_never_overwrites_what_the_supervisor_wrote():
    rules.check_opinion_write("procuratorate_record", supervisor_wrote=False)
    rules.check_opinion_write("supervisor", supervisor_wrote=True)  # the supervisor revises their own words
    with pytest.raises(rules.RuleViolation) as exc:
        rules.check_opinion_write("procuratorate_record", supervisor_wrote=True)
    assert exc.value.code == "R16.1" and exc.value.kind == "conflict"
    with pytest.raises(rules.RuleViolation):
        rules.check_opinion_text(" \n\t ")
    rules.check_opinion_text("  同意。  ")


def test_activity_cancel_and_reschedule_only_while_open_and_unsigned():
    rules.check_activity_changeable("open", form_exists=False)
    for status, form, code in (("held", False, "activity_held"), ("cancelled", False, "activity_cancelled"),
                               ("open", True, "R17.1")):
        with pytest.raises(rules.RuleViolation) as exc:
            rules.check_activity_changeable(status, form_exists=form)
        assert exc.value.code == code and exc.value.kind == "conflict"


def test_rule_violations_are_mapped_to_problems_at_the_edge():
    conflict = problem(rules.RuleViolation("R17.1", "标题", "说明", kind="conflict"))
    assert (conflict.status, conflict.code, conflict.title, conflict.detail) == (409, "R17.1", "标题", "说明")
    invalid = problem(rules.RuleViolation("R10.1", "标题", "说明", earliest_allowed_date="2026-12-10"))
    assert invalid.status == 422 and invalid.extra == {"earliest_allowed_date": "2026-12-10"}


def _content(opinion="同意", order=("b", "a")):
    return rules.form_content(activity=ACT, summary="摘要", participants=[
        {"supervisor_id": sid, "name": f"n{sid}", "opinion": opinion, "adopted": None} for sid in order])


def test_r17_1_canonical_content_is_order_independent_and_hash_stable():
    one, two = _content(order=("b", "a")), _content(order=("a", "b"))
    assert rules.canonical(one) == rules.canonical(two)
    assert rules.content_hash(one) == rules.content_hash(two)
    assert one["title"] == "威海市人民监督员履职情况反馈表"
    assert [p["adoption"] for p in one["participants"]] == ["pending", "pending"]
    assert one["version"] == 2 and [p["opinion_source"] for p in one["participants"]] == [None, None]
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
    assert clock.local_date(datetime(2026, 12, 1, 17, 0, tzinfo=UTC)) == date(2026, 12, 2)


def test_idempotency_fingerprint_same_for_same_request_different_otherwise():
    a = fingerprint("post", "/activities", {"b": 1, "a": [1, 2]})
    assert a == fingerprint("POST", "/activities", {"a": [1, 2], "b": 1})
    assert a != fingerprint("POST", "/activities", {"a": [2, 1], "b": 1})
    assert a != fingerprint("POST", "/other", {"a": [1, 2], "b": 1})
    assert fingerprint("POST", "/x", {"t": datetime(2026, 1, 1, tzinfo=UTC)}) == fingerprint(
        "POST", "/x", {"t": "2026-01-01T00:00:00+00:00"})


def test_r15_1_materials_due_on_the_activity_day_and_r17_1_signatures_on_its_last_day_in_shanghai():
    late_evening_utc = datetime(2026, 12, 9, 17, 30, tzinfo=UTC)  # 01:30 on 10 December in Shanghai
    assert rules.materials_due(late_evening_utc) == date(2026, 12, 10)
    assert rules.signature_due(datetime(2026, 12, 10, 15, 59, tzinfo=UTC)) == date(2026, 12, 10)
    assert rules.signature_due(datetime(2026, 12, 10, 16, 0, tzinfo=UTC)) == date(2026, 12, 11)


def test_activities_work_list_renders_every_field_of_activity_read_in_its_order():
    from services.casework.activities.service import ACTIVITY_FIELDS, activities_query
    from services.casework.schemas import ActivityRead

    assert list(ACTIVITY_FIELDS) == list(ActivityRead.model_fields)
    sql, args = activities_query(statuses=["open"], activity_types=[], case_ref="案'; DROP", since=None, until=None,
                                 district=None, office=None, descending=True, limit=50, after=None)
    assert "DROP" not in sql and args == [["open"], "案'; DROP", 51]  # values only as $n parameters
