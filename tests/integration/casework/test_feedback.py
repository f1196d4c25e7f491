"""Materials (R15.1, R3.1), opinions (R16.1), the signed form (R17.1), adoption (R18.1), observers (R19.1)."""

import base64
import hashlib
import io
import re
import uuid
from datetime import datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from services.casework import pdf
from services.casework.models import documents, feedback_form, opinion, platform
from shared.clock import SHANGHAI
from tests.support import pdf as read
from tests.support.casework_helpers import during, proc, staffed_activity, supervisor

OPINION = "建议检察机关对本案作出不起诉决定，并加强释法说理。"
def _png() -> bytes:
    image = io.BytesIO()
    Image.new("RGB", (8, 4), "black").save(image, format="PNG")
    return image.getvalue()


PNG = base64.b64encode(_png()).decode()


async def _signed(client, producer, *, n: int = 2, **extra) -> dict:
    staffed = await staffed_activity(client, producer, n=n, **extra)
    aid = staffed["activity_id"]
    for i, sid in enumerate(staffed["supervisors"]):
        response = await client.put(f"/activities/{aid}/opinions/{sid}", headers=proc(),
                                    json={"text": OPINION if i == 0 else f"同意。第{i}号意见"})
        assert response.status_code == 200, response.text
    with during(staffed["activity"]):
        for sid in staffed["supervisors"]:
            response = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(sid),
                                         json={"method": "on_site_token", "signature_image_base64": PNG})
            assert response.status_code == 200, response.text
    return staffed


def _pdf_text(data: bytes) -> str:
    return read.text(data)


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
    # the confirmed supervisors are told (notify reads MaterialsShared): ids only, no title or content
    [shared] = [e for e in await _outbox(app, aid, "MaterialsShared") if e["data"]["material_id"] == mid]
    assert sorted(shared["data"]["supervisor_ids"]) == sorted([sid, other])
    assert "听证" not in str(shared) and "案情" not in str(shared)
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
    # R17.1: each is told their opinion was recorded on their behalf and the form waits for them (no text)
    recorded = {e["data"]["supervisor_id"]: e["data"] for e in await _outbox(app, aid, "OpinionRecorded")}
    assert set(recorded) == {sid, other}
    assert {d["source"] for d in recorded.values()} == {"procuratorate_record"} and "同意" not in str(recorded)
    with during(staffed["activity"]):
        for s in (sid, other):
            signed = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(s),
                                       json={})
            assert signed.status_code == 200, signed.text
            if s == sid:  # one who signed reads no more; the other, not yet signed, still does
                done = await client.get(f"/activities/{aid}/materials/{mid}", headers=supervisor(sid))
                assert done.status_code == 403 and done.json()["code"] == "R15.1"
                assert (await client.get(f"/activities/{aid}/materials/{mid}",
                                         headers=supervisor(other))).status_code == 200
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
    with during(staffed["activity"]):
        missing = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(a), json={})
        assert missing.status_code == 409 and missing.json()["code"] == "R16.1"
        for s in (a, b):
            await client.put(f"/activities/{aid}/opinions/{s}", headers=proc(), json={"text": "同意"})
        stranger = await client.post(f"/activities/{aid}/feedback-form/signatures",
                                     headers=supervisor(uuid.uuid4()), json={})
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


async def test_r17_1_signing_and_holding_refused_before_the_activity_starts(cw, producer):
    app, client = cw
    staffed = await staffed_activity(client, producer, n=1)
    aid, sid = staffed["activity_id"], staffed["supervisors"][0]
    assert (await client.put(f"/activities/{aid}/opinions/{sid}", headers=proc(), json={"text": "同意"})).is_success
    # a week before the hearing: no signature, no "held"
    early = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(sid), json={})
    assert early.status_code == 409 and early.json()["code"] == "R17.1", early.text
    held = await client.post(f"/activities/{aid}/hold", headers=proc())
    assert held.status_code == 409 and held.json()["code"] == "activity_not_started"
    form = (await client.get(f"/activities/{aid}/feedback-form", headers=proc())).json()
    assert form["status"] == "draft" and form["signatures"] == []  # nothing changed (not even frozen)
    assert await _outbox(app, aid, "FeedbackSigned") == []
    with during(staffed["activity"], after=timedelta(minutes=5)) as moment:
        assert (await client.post(f"/activities/{aid}/hold", headers=proc())).status_code == 200
        signed = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(sid), json={})
        assert signed.status_code == 200, signed.text
    assert datetime.fromisoformat(signed.json()["signatures"][0]["signed_at"]) == moment  # the server's clock


async def test_r17_1_one_missing_signature_does_not_hold_back_the_others(cw, producer):
    app, client = cw
    staffed = await staffed_activity(client, producer, n=3)
    aid, (a, b, c) = staffed["activity_id"], staffed["supervisors"]
    for s in (a, b, c):
        assert (await client.put(f"/activities/{aid}/opinions/{s}", headers=supervisor(s),
                                 json={"text": f"{s} 的意见"})).is_success
    with during(staffed["activity"]):
        first = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(a), json={})
        assert first.status_code == 200 and first.json()["status"] == "signing"
        # a's FeedbackSigned is out at once, without waiting for b and c
        assert [e["data"]["supervisor_id"] for e in await _outbox(app, aid, "FeedbackSigned")] == [a]
        second = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(b), json={})
        assert second.status_code == 200 and second.json()["status"] == "signing"
    events = await _outbox(app, aid, "FeedbackSigned")
    assert sorted(e["data"]["supervisor_id"] for e in events) == sorted([a, b])  # c never signed: not held back
    signatures = {s["supervisor_id"]: s for s in second.json()["signatures"]}
    for e in events:
        assert e["data"]["signature_hash"] == signatures[e["data"]["supervisor_id"]]["signature_hash"]


async def test_r16_1_opinions_verbatim_with_history_supervisor_words_never_overwritten(cw, producer):
    _, client = cw
    staffed = await staffed_activity(client, producer, n=2)
    aid, (a, b) = staffed["activity_id"], staffed["supervisors"]
    url = f"/activities/{aid}/opinions"
    # the procuratorate records b's oral opinion, then b writes their own words: both versions kept
    recorded = await client.put(f"{url}/{b}", headers=proc(), json={"text": "口头意见：同意。"})
    assert recorded.status_code == 200 and recorded.json()["source"] == "procuratorate_record"
    own = await client.put(f"{url}/{b}", headers=supervisor(b), json={"text": "本人意见：同意，但建议补充证据。"})
    assert own.status_code == 200 and own.json()["source"] == "supervisor" and own.json()["version"] == 2
    # a writes, revises; the procuratorate may not overwrite it
    assert (await client.put(f"{url}/{a}", headers=supervisor(a), json={"text": "初稿"})).is_success
    assert (await client.put(f"{url}/{a}", headers=supervisor(a), json={"text": "  定稿：\n同意。 "})).is_success
    overwrite = await client.put(f"{url}/{a}", headers=proc(), json={"text": "检察院改写的意见"})
    assert overwrite.status_code == 409 and overwrite.json()["code"] == "R16.1"
    blank = await client.put(f"{url}/{a}", headers=supervisor(a), json={"text": "   "})
    assert blank.status_code == 422
    current = {o["supervisor_id"]: o for o in (await client.get(url, headers=proc())).json()}
    assert current[a]["text"] == "  定稿：\n同意。 " and current[a]["version"] == 2
    history = (await client.get(f"{url}/{a}/history", headers=supervisor(a))).json()
    assert [(h["version"], h["text"], h["source"]) for h in history] == [
        (1, "初稿", "supervisor"), (2, "  定稿：\n同意。 ", "supervisor")]
    history_b = (await client.get(f"{url}/{b}/history", headers=proc())).json()
    assert [h["source"] for h in history_b] == ["procuratorate_record", "supervisor"]
    # the form shows each opinion with who wrote it down
    form = (await client.get(f"/activities/{aid}/feedback-form", headers=proc())).json()
    assert {p["supervisor_id"]: p["opinion_source"] for p in form["content"]["participants"]} == {
        a: "supervisor", b: "supervisor"}
    outsider = await client.get(f"{url}/{a}/history", headers=supervisor(uuid.uuid4()))
    assert outsider.status_code == 403


async def test_r17_1_signed_form_cannot_be_edited_api_and_database_refuse(cw, producer):
    app, client = cw
    staffed = await staffed_activity(client, producer, n=2)
    aid, (a, b) = staffed["activity_id"], staffed["supervisors"]
    for s in (a, b):
        await client.put(f"/activities/{aid}/opinions/{s}", headers=proc(), json={"text": "原始意见"})
    with during(staffed["activity"]):
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
    app, client = cw
    staffed = await _signed(client, producer, n=2)
    url = f"/activities/{staffed['activity_id']}/feedback-form.pdf"
    response = await client.get(url, headers=proc())
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    content = _pdf_text(response.content)
    assert "《威海市人民监督员履职情况反馈表》" in content
    assert OPINION in content
    assert "签字方式：现场扫码签字确认（一次性签字令牌）" in content and "on_site_token" not in content
    assert pdf.UNDECIDED in content and "附页：" not in content  # nothing decided yet: said so, not a bare 待定
    year = datetime.now(SHANGHAI).year
    assert f"编号：威检监反〔{year}〕" in content and "承办人（签字）：" in content and "第 1 页" in content
    form = (await client.get(f"/activities/{staffed['activity_id']}/feedback-form", headers=proc())).json()
    for sig in form["signatures"]:
        assert f"签字指纹：{pdf.fingerprint(sig['signature_hash'])}" in content
    fonts = read.fonts(response.content)
    assert fonts and all(fonts.values()), fonts  # every font embedded
    png = read.png(response.content)
    assert png.size[0] > 500
    # issued once: asked again, the same bytes from the archive (hash, who, when)
    again = await client.get(url, headers=proc())
    assert again.content == response.content
    assert again.headers["x-document-sha256"] == hashlib.sha256(response.content).hexdigest()
    async with app.state.db.transaction() as session:
        stored = (await session.execute(select(documents.document).where(
            documents.document.c.subject == staffed["activity_id"]))).all()
    assert [(r.kind, r.content, r.sha256) for r in stored] == [
        ("feedback_form", response.content, again.headers["x-document-sha256"])]


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
    assert after["content_hash"] == before["content_hash"] and after["content"] == before["content"]
    assert [(a["supervisor_id"], a["adopted"], a["at_signing"]) for a in after["adoption_annex"]] == [
        (sid, True, "pending")]
    other = await client.get(f"/supervisors/{sid}/adoption-notices", headers=supervisor(uuid.uuid4()))
    assert other.status_code == 403


async def test_r17_1_r18_1_printed_form_shows_the_decision_as_a_dated_annex_never_pending(cw, producer):
    _, client = cw
    staffed = await _signed(client, producer, n=1)
    aid, sid = staffed["activity_id"], staffed["supervisors"][0]
    url = f"/activities/{aid}/feedback-form.pdf"
    first = (await client.get(url, headers=proc())).content
    before = _pdf_text(first)
    assert pdf.UNDECIDED in before
    reason = "检察机关采纳该意见，依法作出不起诉决定"
    response = await client.put(f"/activities/{aid}/adoptions/{sid}", headers=proc(),
                                json={"adopted": True, "reason": reason})
    assert response.status_code == 200, response.text
    day = datetime.fromisoformat(response.json()["notified_at"]).astimezone(SHANGHAI)
    printed = _pdf_text((await client.get(url, headers=proc())).content)
    assert pdf.UNDECIDED not in printed and "待定" not in printed  # the decision, once decided
    assert f"采纳（{day.year}年{day.month}月{day.day}日作出决定" in printed
    assert "附页：监督意见采纳情况" in printed and reason in printed
    form = (await client.get(f"/activities/{aid}/feedback-form", headers=proc())).json()
    assert f"反馈表内容哈希（SHA-256）：{form['content_hash']}" in printed  # the signed content is unchanged
    assert form["content"]["participants"][0]["adoption"] == "pending"
    # a later change of mind is printed with its own date, still no 待定
    changed = await client.put(f"/activities/{aid}/adoptions/{sid}", headers=proc(),
                               json={"adopted": False, "reason": "复议后未采纳"})
    assert changed.status_code == 200
    again = _pdf_text((await client.get(url, headers=proc())).content)
    assert "未采纳（" in again and "复议后未采纳" in again and pdf.UNDECIDED not in again
    # each version is its own archived document; the form keeps its number
    numbers = {t[t.index("编号："):t.index("号", t.index("编号：")) + 1] for t in (before, printed, again)}
    assert len(numbers) == 1, numbers
    assert (await client.get(url, headers=proc())).content != first


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


async def _counter(app, year: int) -> int:
    async with app.state.db.transaction() as session:
        return await session.scalar(select(documents.number.c.last).where(
            documents.number.c.kind == pdf.KIND, documents.number.c.year == year)) or 0


async def _archived(app, activity_id: str) -> list:
    async with app.state.db.transaction() as session:
        return (await session.execute(select(documents.document).where(
            documents.document.c.kind == pdf.KIND, documents.document.c.subject == activity_id))).all()


async def test_r17_1_the_form_is_numbered_by_its_last_signature_never_by_a_read(cw, producer):
    """A read does not issue: the PDF of a form still being signed is an unnumbered working copy, not archived, and
    takes no number; the signature that completes the form gives it the next 编号 of the year it was completed."""
    app, client = cw
    staffed = await staffed_activity(client, producer, n=2)
    aid, (first, second) = staffed["activity_id"], staffed["supervisors"]
    year = datetime.fromisoformat(staffed["activity"]["starts_at"]).astimezone(SHANGHAI).year
    for sid in (first, second):
        assert (await client.put(f"/activities/{aid}/opinions/{sid}", headers=proc(),
                                 json={"text": OPINION})).status_code == 200
    url = f"/activities/{aid}/feedback-form.pdf"
    with during(staffed["activity"]):
        assert (await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(first),
                                  json={"method": "on_site_token"})).status_code == 200
        before = await _counter(app, year)
        form = (await client.get(f"/activities/{aid}/feedback-form", headers=proc())).json()
        assert form["status"] == "signing" and form["number"] is None
        working = await client.get(url, headers=proc())
        assert working.status_code == 200 and "x-document-number" not in working.headers
        assert "编号：（全部签字确认后编号）" in _pdf_text(working.content)
        assert await _archived(app, aid) == [] and await _counter(app, year) == before  # nothing issued
        done = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(second),
                                 json={"method": "on_site_token"})
    assert done.status_code == 200 and done.json()["status"] == "signed"
    number = done.json()["number"]
    assert number == f"威检监反〔{year}〕{before + 1}号" and await _counter(app, year) == before + 1
    printed = await client.get(url, headers=proc())
    assert f"编号：{number}" in _pdf_text(printed.content) and "全部签字确认后编号" not in _pdf_text(printed.content)
    assert read.pdfa_2b_problems(printed.content) == []
    [stored] = await _archived(app, aid)
    assert stored.number == number and stored.content == printed.content
    assert (await client.get(url, headers=proc())).content == printed.content
    assert await _counter(app, year) == before + 1
    with pytest.raises(DBAPIError, match=r"R17\.1"):  # the number is part of the signed form
        async with app.state.db.transaction() as session:
            await session.execute(update(feedback_form).where(feedback_form.c.activity_id == uuid.UUID(aid))
                                  .values(number=f"威检监反〔{year}〕999号"))


async def test_r17_1_forms_are_numbered_in_the_order_they_were_completed_not_printed(cw, producer):
    _, client = cw
    early, late = await _signed(client, producer, n=1), await _signed(client, producer, n=1)
    views = [(await client.get(f"/activities/{s['activity_id']}/feedback-form", headers=proc())).json()
             for s in (early, late)]
    assert all(v["status"] == "signed" for v in views)
    (year_a, seq_a), (year_b, seq_b) = [
        tuple(map(int, re.fullmatch(r"威检监反〔(\d{4})〕(\d+)号", v["number"]).groups())) for v in views]
    assert seq_b == seq_a + 1 or year_b != year_a  # the next number of the year (a new year starts again)
    # printed the other way round: each PDF carries the number of its completion
    for staffed, view in ((late, views[1]), (early, views[0])):
        text = _pdf_text((await client.get(f"/activities/{staffed['activity_id']}/feedback-form.pdf",
                                           headers=proc())).content)
        assert f"编号：{view['number']}" in text
