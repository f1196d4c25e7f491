"""The session results form of the console (R22.1, R22.2, R23.1): the rows the clerk filled in, and nothing else."""

import pytest

from services.portal.console import training_results
from services.portal.web import PageError

A, B, C = ("00000000-0000-4000-8000-00000000000" + n for n in "abc")


def test_r22_2_only_rows_with_an_attendance_are_sent_with_their_exam() -> None:
    form = {"csrf_token": "x", f"attended-{A}": "yes", f"exam-{A}": "pass", f"attended-{B}": "no", f"exam-{B}": "",
            f"attended-{C}": "", f"exam-{C}": "fail"}
    assert training_results(form) == [{"supervisor_id": A, "attended": True, "exam_passed": True},
                                      {"supervisor_id": B, "attended": False, "exam_passed": None}]
    failed = training_results({f"attended-{A}": "yes", f"exam-{A}": "fail"})
    assert failed == [{"supervisor_id": A, "attended": True, "exam_passed": False}]
    assert training_results({f"attended-{A}": "yes"})[0]["exam_passed"] is None  # a session without an exam


@pytest.mark.parametrize("form", [
    {},
    {f"attended-{A}": ""},
    {f"attended-{A}": "maybe"},
    {f"attended-{A}": "yes", f"exam-{A}": "excellent"},
    {"attended-not-an-id": "yes"},
])
def test_r22_2_a_form_with_nothing_to_record_or_a_value_outside_its_choices_is_refused(form) -> None:
    with pytest.raises(PageError) as refused:
        training_results(form)
    assert refused.value.status in (404, 422)
