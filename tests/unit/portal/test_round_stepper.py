"""The portal's appraisal stepper over the whole state machine of R34.1: every state shows where it stands and
offers exactly the moves appraisal allows (forward to the next step; back one step with a reason, R30.1)."""

import pytest

from services.appraisal.rules import BACK, STATES, TRANSITIONS
from services.portal.console import cap_path, round_moves, stepper


@pytest.mark.parametrize("state", STATES)
def test_r34_1_every_state_of_a_round_shows_its_place_and_the_moves_appraisal_allows(state: str) -> None:
    steps = [{"state": s, "actor": f"user-{s}", "at": "2026-12-01T01:00:00Z", "note": None}
             for s in STATES[:STATES.index(state) + 1]]
    shown = stepper({"state": state, "steps": steps})
    here = STATES.index(state)
    assert [s["status"] for s in shown] == ["done"] * here + ["current"] + ["todo"] * (len(STATES) - here - 1)
    assert all(s["step"]["actor"] == f"user-{s['state']}" for s in shown[:here + 1])  # who and when, per step
    assert all(s["step"] is None for s in shown[here + 1:])
    forward, back = round_moves(state)
    assert forward == TRANSITIONS.get(state) and back == BACK.get(state)


def test_r30_1_no_state_without_an_exit_but_the_end() -> None:
    for state in STATES[:-1]:
        forward, back = round_moves(state)
        assert forward is not None, state  # every state before `finalized` moves on
        assert back is not None or state == STATES[0], state  # and can be sent back, but the first
    assert round_moves("finalized") == (None, None)


def test_a_step_redone_after_going_back_shows_its_latest_who_and_when() -> None:
    steps = [{"state": "opened", "actor": "a", "at": "1", "note": None},
             {"state": "self_summaries", "actor": "b", "at": "2", "note": None},
             {"state": "opened", "actor": "c", "at": "3", "note": "退回"},
             {"state": "self_summaries", "actor": "d", "at": "4", "note": None}]
    shown = {s["state"]: s for s in stepper({"state": "self_summaries", "steps": steps})}
    assert shown["self_summaries"]["step"]["actor"] == "d" and shown["opened"]["step"]["actor"] == "c"


@pytest.mark.parametrize("state", STATES)
def test_the_round_page_renders_in_every_state_with_the_allowed_buttons(state: str) -> None:
    from fastapi.templating import Jinja2Templates

    from services.appraisal.rules import STATE_ZH
    from services.portal.web import cn_date

    templates = Jinja2Templates(directory="services/portal/templates")
    templates.env.filters["cn_date"] = cn_date
    data = {"id": "r1", "kind": "annual", "year": 2026, "state": state, "appraised": 3, "excellent_count": 0,
            "excellent_allowed": 1, "cap_exceeded": False, "notice_start": None,
            "steps": [{"state": s, "actor": "a", "at": "2026-12-01T01:00:00Z", "note": None}
                      for s in STATES[:STATES.index(state) + 1]]}
    forward, back = round_moves(state)
    html = templates.env.get_template("console/round.html").render(
        round=data, stepper=stepper(data), forward_to=forward, back_to=back, labels=STATE_ZH, done=None,
        cap=cap_path(data, "a"),
        user={"roles": ["bureau_admin"], "name": "管理员"}, csrf="t", csrf_field_name="csrf_token", site_name="s",
        role_labels={}, state_labels={}, active="appraisal")
    assert ('id="forward-button"' in html) == (forward is not None)
    assert ('id="back-button"' in html) == (back is not None)
    assert f'data-state="{state}" data-status="current"' in html


@pytest.mark.parametrize("state", STATES)
def test_r30_1_the_cap_path_is_offered_exactly_where_appraisal_accepts_it_and_never_to_its_author(state) -> None:
    from services.appraisal.rules import EDITABLE_IN

    over = {"state": state, "excellent_count": 3, "excellent_allowed": 1, "cap_exceeded": True,
            "cap_justification": None, "cap_justified_by": None, "cap_approved_by": None, "cap_justified_count": None}
    editable = state in EDITABLE_IN["cap_justification"]
    assert cap_path(over, "me")["shown"] and cap_path(over, "me")["may_justify"] == editable
    justified = {**over, "cap_justification": "理由", "cap_justified_by": "me", "cap_justified_count": 3}
    assert not cap_path(justified, "me")["may_approve"]  # four eyes: never the author
    assert cap_path(justified, "me")["waiting_for_other"] == editable
    assert cap_path(justified, "other")["may_approve"] == editable
    assert cap_path({**justified, "excellent_count": 4}, "other")["covered"] is False  # a fourth is not covered
    approved = {**justified, "cap_approved_by": "other"}
    assert not cap_path(approved, "third")["may_approve"] and cap_path(approved, "third")["approved"]
    assert not cap_path({**over, "cap_exceeded": False}, "me")["shown"]
