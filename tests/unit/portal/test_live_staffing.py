"""The request page's live staffing line (R12.1): counts from selection's request detail, and a version that
changes exactly when the state or someone's status changes (then the open page offers a reload)."""

import copy

from services.portal.console import staffing_of

A, B, C = ("00000000-0000-4000-8000-00000000000" + n for n in "abc")


def detail(status: str = "drawn", **statuses: str) -> dict:
    people = {A: "confirmed", B: "pending", C: "queued", **statuses}
    return {"status": status, "seats": 2, "shortfall": {},
            "candidates": [{"supervisor_id": sid, "group": "local", "position": i, "round": 1, "status": st}
                           for i, (sid, st) in enumerate(people.items())]}


def test_r12_1_the_line_counts_confirmed_and_pending_seats_of_the_request() -> None:
    line = staffing_of(detail())
    assert (line["confirmed"], line["pending"], line["seats"], line["shortfall"]) == (1, 1, 2, 0)
    assert line["status_label"] == "已抽选，联络中"
    assert staffing_of({**detail(), "shortfall": {"local": 1, "cross": 1}})["shortfall"] == 2


def test_r12_1_the_version_changes_when_anyone_answers_and_not_otherwise() -> None:
    before = staffing_of(detail())["version"]
    assert staffing_of(copy.deepcopy(detail()))["version"] == before  # same facts, same version
    answered = staffing_of(detail(**{B: "confirmed"}))
    assert answered["version"] != before and answered["confirmed"] == 2
    assert staffing_of(detail(**{B: "declined", C: "pending"}))["version"] != before  # the next one is asked
    assert staffing_of(detail(status="staffed"))["version"] != before
    reordered = detail()
    reordered["candidates"].reverse()  # the order selection lists them in is not a change
    assert staffing_of(reordered)["version"] == before
