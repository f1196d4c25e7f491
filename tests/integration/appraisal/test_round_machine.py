"""R30.1: no appraisal round can reach a state it cannot leave. An exhaustive walk: for every state of the
round machine, a round is driven there through the HTTP API (a hard round: 5 people, so no excellent is
within the cap; one automatic term excellent under R36.1; one unqualified with a defence window), and from
there an entitled user moves it forward, back, or (finalized) corrects its result."""

from datetime import date

from services.appraisal import rules
from shared import clock
from tests.integration.appraisal.flow import (
    NOTE,
    annual_history,
    back,
    consult,
    defence,
    grade,
    justify,
    open_term,
    people,
    remind,
    step,
)
from tests.integration.appraisal.helpers import ADMIN, at

START, END = date(2021, 1, 1), date(2025, 12, 31)
TODAY, LATER = at(2025, 12, 2), at(2025, 12, 15)  # the notice (to Dec 9) and the defence window (to Dec 12) over


async def enter(client, round_id: str, state: str, auto, weak, others) -> dict:
    """One step forward into `state`, doing first what that step needs (as a clerk would)."""
    if state == "district_proposed":
        await consult(client, round_id, "环翠区")
    if state == "bureau_proposed":
        assert (await grade(client, round_id, weak, "unqualified", [2])).status_code == 200
        for sid in (auto, *others):
            assert (await grade(client, round_id, sid, "qualified")).status_code == 200
        await defence(client, round_id, weak)
        await justify(client, round_id, "任期内四次年度考核优秀，依 R36.1 应当确定为优秀")
    with clock.frozen(LATER if state == "finalized" else TODAY):
        return await step(client, round_id, state, **({"note": NOTE} if state == "bureau_proposed" else {}))


async def test_r30_1_every_state_of_the_round_has_a_way_forward_or_back(fresh) -> None:
    app, client = fresh
    with clock.frozen(TODAY):
        auto, weak, *others = await people(app, 5, term_start=START, term_end=END)
        await annual_history(app, list(range(2021, 2026)), {auto: ["excellent"] * 4 + ["qualified"]})
        await remind(client, weak, date(2025, 3, 1), 2, uncorrected_on=date(2025, 6, 1))
        walked = []
        for target in rules.STATES:
            round_id = await open_term(client, [auto, weak, *others], START, END)
            for state in rules.STATES[1:rules.STATES.index(target) + 1]:
                await enter(client, round_id, state, auto, weak, others)
            assert (await client.get(f"/rounds/{round_id}", headers=ADMIN)).json()["state"] == target
            ways = set()
            if target in rules.BACK:  # back one step with a reason, and forward again
                assert (await back(client, round_id, f"退回：{target}"))["state"] == rules.BACK[target]
                assert (await enter(client, round_id, target, auto, weak, others))["state"] == target
                ways.add("back")
            if target in rules.TRANSITIONS:
                forward = await enter(client, round_id, rules.TRANSITIONS[target], auto, weak, others)
                assert forward["state"] == rules.TRANSITIONS[target]
                ways.add("forward")
            if target == "finalized":  # the way out after finalizing: a recorded correction, a new version
                r = await client.post(f"/rounds/{round_id}/participants/{others[0]}/result-correction",
                                      headers=ADMIN, json={"grade": "basically_qualified", "reason": "复核更正"})
                assert r.status_code == 200 and r.json()["result_version"] == 2, r.text
                ways.add("correct")
            assert ways == rules.exits(target) and ways, target
            walked.append(target)
    assert walked == list(rules.STATES)
