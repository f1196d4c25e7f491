"""Materials (R15.1, R3.1), opinions (R16.1), the signed form (R17.1), adoption (R18.1), observers (R19.1)."""

import base64
import uuid

import pymupdf
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from services.casework.models import feedback_form, opinion, platform
from tests.support.casework_helpers import proc, staffed_activity, supervisor

OPINION = "建议检察机关对本案作出不起诉决定，并加强释法说理。"
PNG = base64.b64encode(pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 8, 4), 0).tobytes("png")).decode()


async def _signed(client, producer, *, n: int = 2, **extra) -> dict:
    staffed = await staffed_activity(client, producer, n=n, **extra)
    aid = staffed["activity_id"]
    for i, sid in enumerate(staffed["supervisors"]):
        response = await client.put(f"/activities/{aid}/opinions/{sid}", headers=proc(),
                                    json={"text": OPINION if i == 0 else f"同意。第{i}号意见"})
        assert response.status_code == 200, response.text
    for sid in staffed["supervisors"]:
        response = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(sid),
                                     json={"method": "on_site_token", "signature_image_base64": PNG})
        assert response.status_code == 200, response.text
    return staffed


async def _outbox(app, subject: str, event_type: str) -> list[dict]:
    outbox = platform.outbox
    async with app.state.db.transaction() as session:
        return list((await session.execute(select(outbox.c.envelope).where(
            outbox.c.key == subject, outbox.c.event_type == event_type))).scalars().all())


async def test_r15_1_r3_1_materials_only_for_confirmed_supervisors_until_signed_and_audited(cw, producer):
    app, client = cw
    staffed = await staffed_activity(client, producer, n=2)
    aid, (sid, other) = staffed["activity_id"], staffed["supervisors"]
    response = await client.post(f"/activities/{aid}/materials", headers=proc(),
                                 json={"title": "听证案件材料", "text": "案情摘要：某某涉嫌盗窃。"})
    assert response.status_code == 201, response.text
    mid = response.json()["id"]
    stranger = await client.get(f"/activities/{aid}/materials/{mid}", headers=supervisor(uuid.uuid4()))
    assert stranger.status_code == 403 and stranger.json()["code"] == "R15.1"
    assert (await client.get(f"/activities/{aid}/materials", headers=supervisor(uuid.uuid4()))).status_code == 403
    mine = await client.get(f"/activities/{aid}/materials/{mid}", headers=supervisor(sid))
    assert mine.status_code == 200 and mine.text == "案情摘要：某某涉嫌盗窃。"
    async with app.state.db.transaction() as session:
        reads = await session.scalar(select(func.count()).select_from(platform.audit).where(
            platform.audit.c.subject == f"material:{mid}", platform.audit.c.action == "material.read"))
    assert reads == 1
    for s in (sid, other):
        assert (await client.put(f"/activities/{aid}/opinions/{s}", headers=proc(), json={"text": "同意"})).is_success
    for s in (sid, other):
        signed = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(s), json={})
        assert signed.status_code == 200, signed.text
    after = await client.get(f"/activities/{aid}/materials/{mid}", headers=supervisor(sid))
    assert after.status_code == 403 and after.json()["code"] == "R15.1"
    assert (await client.get(f"/activities/{aid}/materials/{mid}", headers=proc())).status_code == 200


async def test_r16_1_opinion_stored_verbatim_only_for_participants(cw, producer):
    _, client = cw
    staffed = await staffed_activity(client, producer, n=1)
    aid, sid = staffed["activity_id"], staffed["supervisors"][0]
    verbatim = "  意见：\n一、程序合法；\n二、建议从宽处理。  "
    response = await client.put(f"/activities/{aid}/opinions/{sid}", headers=supervisor(sid), json={"text": verbatim})
    assert response.status_code == 200 and response.json()["text"] == verbatim
    outsider = await client.put(f"/activities/{aid}/opinions/{uuid.uuid4()}", headers=proc(), json={"text": "x"})
    assert outsider.status_code == 409 and outsider.json()["code"] == "R16.1"
    listed = (await client.get(f"/activities/{aid}/opinions", headers=proc())).json()
    assert listed[0]["text"] == verbatim


async def test_r17_1_all_sign_publishes_feedback_signed_per_supervisor(cw, producer):
    app, client = cw
    staffed = await _signed(client, producer, n=2)
    aid = staffed["activity_id"]
    form = (await client.get(f"/activities/{aid}/feedback-form", headers=proc())).json()
    assert form["status"] == "signed" and len(form["signatures"]) == 2
    assert {s["content_hash"] for s in form["signatures"]} == {form["content_hash"]}
    assert all(s["has_image"] and s["method"] == "on_site_token" for s in form["signatures"])
    events = await _outbox(app, aid, "FeedbackSigned")
    assert sorted(e["data"]["supervisor_id"] for e in events) == sorted(staffed["supervisors"])
    data = events[0]["data"]
    assert data["adopted"] is None and data["activity_type"] == "public_hearing" and data["district"] == "环翠区"
    assert data["request_id"] == staffed["request_id"] and len(data["signature_hash"]) == 64
    assert data["activity_date"] == staffed["activity"]["starts_at"][:10]


async def test_r17_1_only_participants_sign_once_and_content_hash_must_match(cw, producer):
    _, client = cw
    staffed = await staffed_activity(client, producer, n=2)
    aid, (a, b) = staffed["activity_id"], staffed["supervisors"]
    missing = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(a), json={})
    assert missing.status_code == 409 and missing.json()["code"] == "R16.1"
    for s in (a, b):
        await client.put(f"/activities/{aid}/opinions/{s}", headers=proc(), json={"text": "同意"})
    stranger = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(uuid.uuid4()),
                                 json={})
    assert stranger.status_code == 403 and stranger.json()["code"] == "R17.1"
    wrong = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(a),
                              json={"content_hash": "0" * 64})
    assert wrong.status_code == 409 and wrong.json()["code"] == "R17.1"
    draft = (await client.get(f"/activities/{aid}/feedback-form", headers=supervisor(a))).json()
    ok = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(a),
                           json={"content_hash": draft["content_hash"]})
    assert ok.status_code == 200 and ok.json()["status"] == "signing"
    twice = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(a), json={})
    assert twice.status_code == 409


async def test_r17_1_signed_form_cannot_be_edited_api_and_database_refuse(cw, producer):
    app, client = cw
    staffed = await staffed_activity(client, producer, n=2)
    aid, (a, b) = staffed["activity_id"], staffed["supervisors"]
    for s in (a, b):
        await client.put(f"/activities/{aid}/opinions/{s}", headers=proc(), json={"text": "原始意见"})
    await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(a), json={})
    # API: frozen after the first signature
    edit = await client.put(f"/activities/{aid}/opinions/{a}", headers=proc(), json={"text": "改过的意见"})
    assert edit.status_code == 409 and edit.json()["code"] == "R17.1"
    summary = await client.put(f"/activities/{aid}/summary", headers=proc(), json={"summary": "改"})
    assert summary.status_code == 409 and summary.json()["code"] == "R17.1"
    # database: the triggers refuse even direct SQL
    activity_id = uuid.UUID(aid)
    for stmt in (update(opinion).where(opinion.c.activity_id == activity_id).values(text="篡改"),
                 update(feedback_form).where(feedback_form.c.activity_id == activity_id).values(content={}),
                 text("UPDATE casework.activity SET summary = '篡改' WHERE id = :id").bindparams(id=activity_id),
                 text("DELETE FROM casework.signature WHERE form_id IN (SELECT id FROM casework.feedback_form "
                      "WHERE activity_id = :id)").bindparams(id=activity_id)):
        with pytest.raises(DBAPIError, match=r"R17\.1"):
            async with app.state.db.transaction() as session:
                await session.execute(stmt)
    view = (await client.get(f"/activities/{aid}/opinions", headers=proc())).json()
    assert {o["text"] for o in view} == {"原始意见"}


async def test_r17_1_pdf_has_chinese_title_and_opinion_and_renders(cw, producer):
    _, client = cw
    staffed = await _signed(client, producer, n=2)
    response = await client.get(f"/activities/{staffed['activity_id']}/feedback-form.pdf", headers=proc())
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    doc = pymupdf.open(stream=response.content, filetype="pdf")
    content = "".join(page.get_text() for page in doc)
    assert "《威海市人民监督员履职情况反馈表》" in content
    assert OPINION in content.replace("\n", "")
    assert "已现场签字确认" in content
    fonts = doc[0].get_fonts()
    assert any(f[1] == "ttf" for f in fonts), fonts  # the CJK font is embedded
    png = doc[0].get_pixmap(dpi=72).tobytes("png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


async def test_r18_1_adoption_notice_after_signing_does_not_edit_the_form(cw, producer):
    app, client = cw
    staffed = await _signed(client, producer, n=1)
    aid, sid = staffed["activity_id"], staffed["supervisors"][0]
    before = (await client.get(f"/activities/{aid}/feedback-form", headers=proc())).json()
    response = await client.put(f"/activities/{aid}/adoptions/{sid}", headers=proc(),
                                json={"adopted": True, "reason": "意见已被采纳，作出不起诉决定"})
    assert response.status_code == 200, response.text
    [event] = await _outbox(app, aid, "OpinionAdoptionNotified")
    assert event["data"]["adopted"] is True and event["data"]["supervisor_id"] == sid
    notices = (await client.get(f"/supervisors/{sid}/adoption-notices", headers=supervisor(sid))).json()
    assert notices[0]["reason"] == "意见已被采纳，作出不起诉决定"
    after = (await client.get(f"/activities/{aid}/feedback-form", headers=proc())).json()
    assert after["content_hash"] == before["content_hash"]
    other = await client.get(f"/supervisors/{sid}/adoption-notices", headers=supervisor(uuid.uuid4()))
    assert other.status_code == 403


async def test_r19_1_observers_recorded_not_participants(cw, producer):
    _, client = cw
    staffed = await staffed_activity(client, producer, n=1)
    aid = staffed["activity_id"]
    shadow = str(uuid.uuid4())
    r1 = await client.post(f"/activities/{aid}/observers", headers=proc(),
                           json={"kind": "bureau_staff", "name": "司法局李某", "organization": "威海市司法局"})
    r2 = await client.post(f"/activities/{aid}/observers", headers=proc(),
                           json={"kind": "shadowing_supervisor", "name": "跟案者", "supervisor_id": shadow})
    assert r1.status_code == r2.status_code == 201 and r2.json()["paid"] is False
    # a shadowing supervisor is not a participant: cannot sign, cannot read materials
    denied = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(shadow), json={})
    assert denied.status_code == 403
    form = (await client.get(f"/activities/{aid}/feedback-form", headers=proc())).json()
    assert shadow not in {p["supervisor_id"] for p in form["content"]["participants"]}
    assert len((await client.get(f"/activities/{aid}/observers", headers=proc())).json()) == 2
