"""R30.1 on the console's round page, against the real appraisal service: more excellent than floor(15 %) of the
appraised is flagged; a bureau user records why, and a second bureau user (never the author) approves it; only
then may the round go on to the bureau's proposal. Every answer is appraisal's own."""

from __future__ import annotations

import re

from shared import clock
from tests.integration.appraisal.flow import grade, open_round, people, step, to_district_proposed, to_notice
from tests.integration.appraisal.helpers import ADMIN, at
from tests.integration.portal.helpers import csrf_of, signed_in


async def signed_in_as_supervisor(client, supervisor_id: str) -> None:
    token = csrf_of((await client.get("/sign-in")).text)
    r = await client.post("/sign-in", data={"persona": "dev-supervisor", "supervisor_id": supervisor_id,
                                            "next": "/me/record", "csrf_token": token})
    assert r.status_code == 303, r.text


async def test_r30_1_the_round_page_records_the_justification_and_a_second_user_approves_it(live):
    appraisal_client = live.appraisal_api
    with clock.frozen(at(2025, 12, 2)):
        ids = await people(live.appraisal, 10)  # floor(15 % x 10) = 1 excellent allowed
        round_id = await open_round(appraisal_client, ids)
        await to_district_proposed(appraisal_client, round_id)
        for sid in ids[:2]:
            assert (await grade(appraisal_client, round_id, sid, "excellent")).status_code == 200
        for sid in ids[2:]:
            await grade(appraisal_client, round_id, sid, "qualified")

        await signed_in(live, "dev-bureau-admin")
        page = await live.get(f"/console/appraisal/{round_id}")
        assert page.status_code == 200 and 'id="cap-missing"' in page.text and 'id="cap-justify-button"' in page.text
        assert re.search(r'id="cap-count">2<', page.text)
        token = csrf_of(page.text)
        empty = await live.post(f"/console/appraisal/{round_id}/cap-justification", data={"csrf_token": token})
        assert empty.status_code == 422 and "请填写理由" in empty.text
        r = await live.post(f"/console/appraisal/{round_id}/cap-justification",
                            data={"csrf_token": token, "text": "两人全年参加活动十次以上，意见多次被采纳",
                                  "excellent_count": "2"})
        assert r.status_code == 303
        page = await live.get(r.headers["location"])
        assert "两人全年参加活动十次以上" in page.text and 'id="cap-four-eyes"' in page.text
        assert 'id="cap-approve-button"' not in page.text  # the author never approves (four eyes shown)
        own = await live.post(f"/console/appraisal/{round_id}/cap-approval", data={"csrf_token": csrf_of(page.text)})
        assert own.status_code == 409 and "不能批准本人的说明" in own.text  # and appraisal refuses it anyway

        await signed_in(live, "dev-bureau-reviewer")
        page = await live.get(f"/console/appraisal/{round_id}")
        assert 'id="cap-approve-button"' in page.text
        r = await live.post(f"/console/appraisal/{round_id}/cap-approval", data={"csrf_token": csrf_of(page.text)})
        assert r.status_code == 303
        rnd = (await appraisal_client.get(f"/rounds/{round_id}", headers=ADMIN)).json()
        assert (rnd["cap_justified_by"], rnd["cap_approved_by"]) == ("dev-bureau-admin", "dev-bureau-reviewer")
        page = await live.get(r.headers["location"])
        assert "dev-bureau-reviewer 已批准" in page.text and 'data-approved="true"' in page.text

        await to_notice(appraisal_client, round_id)
    with clock.frozen(at(2025, 12, 10)):
        await step(appraisal_client, round_id, "finalized")
        # R38.1: the person's page and the supervisor's own record show the final grade
        await signed_in_as_supervisor(live, str(ids[1]))
        mine = await live.get("/me/record")
        assert mine.status_code == 200
        assert re.search(rf'data-round-id="{round_id}" data-grade="excellent">2025 年度考核：<strong>优秀', mine.text)
        # the papers one click away (issue 18): my result notices to each recipient (R39.1), as PDFs of record
        links = re.findall(r'class="result-notice" href="([^"]+)"', mine.text)
        assert len(links) == 4, links  # person, employer, recommending body, procuratorate
        pdf = await live.get(links[0])
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and pdf.headers["x-document-number"]
        await signed_in_as_supervisor(live, str(ids[5]))
        assert "<strong>合格</strong>" in (await live.get("/me/record")).text
        # the round's 通报表扬 (R38.1) on its page for the city bureau
        await signed_in(live, "dev-bureau-admin")
        page = await live.get(f"/console/appraisal/{round_id}")
        commendation = re.findall(r'class="commendation" href="([^"]+)"', page.text)
        assert len(commendation) == 1 and (await live.get(commendation[0])).content.startswith(b"%PDF")
