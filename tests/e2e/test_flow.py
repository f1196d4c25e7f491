"""The whole flow across agencies (Art. 10–20, R28.1, R42.1): registry, selection, casework, finance, appraisal,
in-process, connected only through the real broker (their consumers and outbox relays run in their lifespans).

procuratorate creates an activity 6 working days ahead → the draw protocol of DRAW.md (casework commits,
selection accepts and commits, casework reveals, selection draws, casework checks the receipt) → a supervisor
declines, the next in order confirms → the procuratorate sees the confirmed roster (names + phones from the
registry) → a party's recusal application replaces one → the activity is held → opinions recorded → all sign →
FeedbackSigned reaches finance (one subsidy line each) → adoption notice. Also: a request 2 working days
ahead is refused at once with the earliest allowed date; a request sent twice creates one draw; a
procuratorate token cannot create a request in selection.
"""

import contextlib
import uuid
from datetime import date, time, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from services.appraisal.app import create_app as appraisal_app
from services.appraisal.config import AppraisalSettings
from services.appraisal.models import ledger_entry
from services.casework.app import create_app as casework_app
from services.casework.config import CaseworkSettings
from services.casework.models import activity as casework_activity
from services.casework.models import platform as casework_platform
from services.finance.app import create_app as finance_app
from services.finance.config import FinanceSettings
from services.finance.models import subsidy_line
from services.notify import service as notify_service
from services.notify.app import create_app as notify_app
from services.notify.app import deadline_fetch, phone_lookup
from services.notify.config import NotifySettings
from services.notify.models import delivery as notify_delivery
from services.registry.app import create_app as registry_app
from services.registry.config import RegistrySettings
from services.selection.app import build as selection_app
from services.selection.app import registry_lookups
from services.selection.config import SelectionSettings
from services.selection.models import request as selection_request
from services.selection.models import supervisor as pool_supervisor
from shared.db.migrations import service_migrations, upgrade
from tests.support import registry_helpers as reg
from tests.support.apps import bearer, running, service_settings
from tests.support.casework_helpers import activity_body, during, proc, supervisor
from tests.support.eventing import wait_until

ADMIN = bearer("bureau_admin", subject="bureau-e2e")
SERVICE = bearer("service", subject="selection")
FINANCE = bearer("finance", subject="finance-e2e")
HOME = "环翠区"
OTHERS = ["文登区", "荣成市", "乳山市"]
TIMEOUT = 30


@pytest.fixture(scope="module")
def migrated(database_url: str) -> None:
    for name in ("registry", "selection", "casework", "finance", "appraisal", "notify"):
        upgrade(service_migrations(name), database_url)


@pytest.fixture(scope="module")
async def stack(migrated, settings_env):
    """The five services and notify, each in its own consumer group for this run (a shared group stalls the
    dev broker)."""
    run = uuid.uuid4().hex[:8]

    def settings(cls, name: str, **extra):
        return service_settings(settings_env, cls, consumer_group=f"{name}-e2e-{run}",
                                **extra)

    registry = registry_app(settings(RegistrySettings, "registry"))
    selection_settings = settings(SelectionSettings, "selection", registry_url="http://registry",
                                  service_token=SERVICE["Authorization"].removeprefix("Bearer "))
    selection = selection_app(selection_settings)
    casework = casework_app(settings(CaseworkSettings, "casework", receipt_check_seconds=0.2))
    finance = finance_app(settings(FinanceSettings, "finance"))
    appraisal = appraisal_app(settings(AppraisalSettings, "appraisal"))
    # no quiet hours here (an empty window), so the SMS go at any hour of the run (quiet hours: notify/test_sms)
    notify_settings = settings(NotifySettings, "notify", sms_dispatch_seconds=0.3, reminder_job_seconds=3600,
                               quiet_hours_start=time(0, 0), quiet_hours_end=time(0, 0),
                               service_token=bearer("service", subject="notify")["Authorization"].removeprefix(
                                   "Bearer "))
    notify = notify_app(notify_settings)
    async with contextlib.AsyncExitStack() as stack:
        apps = {}
        for name, app in (("registry", registry), ("selection", selection), ("casework", casework),
                          ("finance", finance), ("appraisal", appraisal), ("notify", notify)):
            apps[name] = await stack.enter_async_context(running(app))
        # notify reads phones from the registry app and every service's GET /deadlines with its own client code
        notify.state.phone_lookup = phone_lookup(notify_settings, transport=httpx.ASGITransport(app=registry))
        notify.state.service_transports = {name: httpx.ASGITransport(app=apps[name][0]) for name in
                                           ("registry", "selection", "casework", "appraisal", "finance")}
        notify.state.deadline_fetch = deadline_fetch(notify, notify_settings)

        # selection asks the registry app for phones (R12.1) with its own client code and the service token
        selection.state.contact_lookup, selection.state.masked_contact_lookup = registry_lookups(
            selection_settings, transport=httpx.ASGITransport(app=registry))
        selection_client = apps["selection"][1]

        async def receipt_fetch(draw_id: uuid.UUID) -> dict | None:
            """casework fetches each receipt from the selection app (DRAW.md protocol step 5)."""
            response = await selection_client.get(f"/draws/{draw_id}/receipt", headers=SERVICE)
            response.raise_for_status()
            return response.json()

        casework.state.receipt_fetch = receipt_fetch
        yield {name: pair[1] for name, pair in apps.items()} | {"apps": {n: p[0] for n, p in apps.items()}}


async def _appoint_pool(registry: httpx.AsyncClient, specialty: str) -> dict[str, dict]:
    """~15 eligible supervisors (appointed, initial exam passed) with this run's specialty."""
    response = await registry.post("/specialties", headers=ADMIN, json={"name": specialty})
    assert response.status_code == 201, response.text
    session_id = await reg.session(registry)
    people = {}
    for i in range(15):
        district = HOME if i < 8 else OTHERS[i % len(OTHERS)]
        sup = await reg.appointed(registry, district=district, specialties=[specialty])
        response = await reg.record(registry, session_id, sup["id"])
        assert response.status_code == 200, response.text
        people[sup["id"]] = sup
    return people


async def _wait_for_pool(selection_app, specialty: str, n: int) -> None:
    """Until selection's pool has the n eligible people of this specialty (the registry's events applied)."""

    async def pool_ready() -> bool:
        async with selection_app.state.db.transaction() as session:
            found = await session.scalar(select(func.count()).select_from(pool_supervisor).where(
                pool_supervisor.c.specialties.contains([specialty]), pool_supervisor.c.eligible))
        return found == n

    await wait_until(pool_ready, timeout=TIMEOUT)


async def _selection_view(selection: httpx.AsyncClient, request_id: str) -> dict:
    response = await selection.get(f"/requests/{request_id}", headers=ADMIN)
    return response.json() if response.status_code == 200 else {}


def _pending(view: dict) -> list[str]:
    return [c["supervisor_id"] for c in sorted(view.get("candidates", []), key=lambda c: (c["group"], c["position"]))
            if c["status"] == "pending"]


async def _wait_for_message(notify: httpx.AsyncClient, supervisor_id: str, kind: str, subject_id: str) -> dict:
    """The supervisor's own inbox message of this kind about this subject, once notify has made it."""
    found: list[dict] = []

    async def arrived() -> bool:
        page = (await notify.get("/inbox", params={"kind": kind}, headers=supervisor(supervisor_id))).json()
        found[:] = [m for m in page.get("items", []) if m["subject_id"] == subject_id]
        return len(found) == 1

    await wait_until(arrived, timeout=TIMEOUT)
    return found[0]


async def _wait_for_sms_sent(notify_app, message_id: str) -> None:
    async def sent() -> bool:
        async with notify_app.state.db.transaction() as session:
            status = await session.scalar(select(notify_delivery.c.status).where(
                notify_delivery.c.message_id == uuid.UUID(message_id), notify_delivery.c.channel == "sms"))
        return status == "sent"

    await wait_until(sent, timeout=TIMEOUT)


async def _confirm_all_pending(selection: httpx.AsyncClient, request_id: str) -> None:
    for sid in _pending(await _selection_view(selection, request_id)):
        response = await selection.post(f"/assignments/{request_id}/confirm", headers=supervisor(sid))
        assert response.status_code == 200, response.text


async def test_flow_request_draw_decline_roster_recusal_sign_subsidy_adoption(stack):
    registry, selection, casework, finance = (stack[n] for n in ("registry", "selection", "casework", "finance"))
    apps = stack["apps"]
    specialty = "e2e" + uuid.uuid4().hex[:6]
    people = await _appoint_pool(registry, specialty)
    await _wait_for_pool(apps["selection"], specialty, len(people))
    # finance prices the subsidy (N-RATE)
    response = await finance.post("/rates", headers=FINANCE, json={
        "activity_type": "public_hearing", "amount_fen": 40_000, "effective_from": "2024-12-01"})
    assert response.status_code == 201, response.text

    # 1. the procuratorate creates an activity 6 working days ahead and asks for 3 supervisors — twice (retry)
    body = activity_body(6, mandatory_invitation=True, summary="对拟不起诉案件举行公开听证，听取各方意见。")
    activity = (await casework.post("/activities", headers=proc(), json=body)).json()
    aid = activity["id"]
    retry = {**proc(), "Idempotency-Key": f"case-system-{uuid.uuid4()}"}
    ask = {"seats": 3, "specialty": specialty}
    first = await casework.post(f"/activities/{aid}/supervision-requests", headers=retry, json=ask)
    second = await casework.post(f"/activities/{aid}/supervision-requests", headers=retry, json=ask)
    assert first.status_code == second.status_code == 201, first.text
    assert second.headers.get("Idempotent-Replayed") == "true"
    rid = first.json()["request_id"]
    assert second.json()["request_id"] == rid

    assert first.json()["status"] == "requested" and first.json()["procuratorate_commitment"]

    # 2. the protocol: selection accepts (its commitment, frozen inputs), casework reveals, selection draws
    async def drawn() -> bool:
        return len(_pending(await _selection_view(selection, rid))) == 3

    await wait_until(drawn, timeout=TIMEOUT)
    view = await _selection_view(selection, rid)
    assert len(view["draws"]) == 1  # the request sent twice made one draw
    assert view["procuratorate_nonce_revealed"] and view["procuratorate_commitment"] == first.json()[
        "procuratorate_commitment"]
    receipt = (await selection.get(f"/draws/{view['draws'][0]['draw_id']}/receipt", headers=ADMIN)).json()
    assert receipt["alg"] == "people-supervisor-draw/4" and receipt["nonces"]["procuratorate"]
    assert receipt["procuratorate_nonce_reason"] is None

    async def receipt_checked() -> bool:
        r = (await casework.get(f"/supervision-requests/{rid}", headers=proc())).json()
        return [c["status"] for c in r["receipt_checks"]] == ["ok"]

    await wait_until(receipt_checked, timeout=TIMEOUT)  # casework checked the receipt against what it stored
    checked = (await casework.get(f"/supervision-requests/{rid}", headers=proc())).json()
    assert checked["acceptance"]["bureau_commitment"] == receipt["commitments"]["bureau"]
    assert checked["acceptance"]["snapshot_hash"] == receipt["snapshot_hash"] and not checked["receipt_mismatch"]

    # 3. one supervisor declines, the next in order enters; everyone pending confirms
    decliner = _pending(view)[0]
    response = await selection.post(f"/assignments/{rid}/decline", headers=supervisor(decliner),
                                    json={"reason": "出差在外"})
    assert response.status_code == 200, response.text
    before = {c["supervisor_id"]: c for c in view["candidates"]}
    group = before[decliner]["group"]
    last = max(c["position"] for c in view["candidates"] if c["group"] == group and c["status"] == "pending")
    after = await _selection_view(selection, rid)
    entered = [c for c in after["candidates"] if c["status"] == "pending" and c["supervisor_id"] not in
               {s for s, c0 in before.items() if c0["status"] == "pending"}]
    assert [(c["group"], c["position"]) for c in entered] == [(group, last + 1)]  # the next in draw order
    # the call list (R12.1): everyone in draw order with the registry's masked phone, read in one batch
    listed = (await selection.get(f"/requests/{rid}/call-list", headers=ADMIN)).json()
    assert listed["phones_available"] is True
    callable_lines = [line for line in listed["items"] if line["status"] in ("pending", "confirmed", "queued")]
    assert len(callable_lines) >= 3
    for line in callable_lines:  # a person who declined is not called again: no phone shown
        person = (await registry.get(f"/supervisors/{line['supervisor_id']}", headers=ADMIN)).json()
        assert line["phone_masked"] == person["phone"] and "****" in line["phone_masked"]
    await _confirm_all_pending(selection, rid)

    # 4. casework shows the confirmed roster with names and phones that came from the registry
    async def staffed() -> bool:
        r = (await casework.get(f"/supervision-requests/{rid}", headers=proc())).json()
        return r["status"] == "staffed" and len(r["roster"]) == 3

    await wait_until(staffed, timeout=TIMEOUT)
    roster = (await casework.get(f"/supervision-requests/{rid}", headers=proc())).json()["roster"]
    assert decliner not in {m["supervisor_id"] for m in roster}
    for member in roster:
        contact = (await registry.get(f"/supervisors/{member['supervisor_id']}/contact", headers=SERVICE)).json()
        assert member["name"] == contact["name"] and member["phone"] == contact["phone"]

    # 4b. every confirmed supervisor is told "you were drawn" (R12.1): in their own inbox, and by SMS (in
    # development the SMS goes to the log, recorded as sent by provider "log")
    notify = stack["notify"]
    for member in roster:
        # first asked when their turn came (SupervisorAsked), then told they are on the roster (SupervisorDrawn)
        asked = await _wait_for_message(notify, member["supervisor_id"], "supervisor_asked", rid)
        assert asked["rule"] == "R12.1" and "请确认能否参加" in asked["title"]
        drawn = await _wait_for_message(notify, member["supervisor_id"], "supervisor_drawn", rid)
        assert drawn["rule"] == "R12.1" and "确认参加" in drawn["body"] and not drawn["read"]
        await _wait_for_sms_sent(apps["notify"], drawn["id"])
    # the decliner was asked too (and declined): asked, never drawn
    await _wait_for_message(notify, decliner, "supervisor_asked", rid)
    assert decliner not in {m["supervisor_id"] for m in roster}

    # 5. a party's recusal application: bureau grants it, the next in order confirms and replaces
    recused = roster[0]["supervisor_id"]
    response = await casework.post(f"/supervision-requests/{rid}/recusals", headers=proc(),
                                   json={"supervisor_id": recused, "source": "party", "ground": "与当事人系同学关系"})
    assert response.status_code == 201, response.text

    async def recusal_arrived() -> list:
        return (await selection.get(f"/requests/{rid}/recusals", headers=ADMIN)).json()

    await wait_until(lambda: _truthy(recusal_arrived), timeout=TIMEOUT)
    [pending_recusal] = await recusal_arrived()
    response = await selection.post(f"/recusals/{pending_recusal['recusal_id']}/decision", headers=ADMIN,
                                    json={"granted": True, "reason": "当事人申请符合回避条件"})
    assert response.status_code == 200, response.text
    await _confirm_all_pending(selection, rid)

    async def replaced() -> bool:
        r = (await casework.get(f"/supervision-requests/{rid}", headers=proc())).json()
        return (r["status"] == "staffed" and len(r["roster"]) == 3
                and recused not in {m["supervisor_id"] for m in r["roster"]}
                and r["recusals"][0]["status"] == "granted")

    await wait_until(replaced, timeout=TIMEOUT)
    final = (await casework.get(f"/supervision-requests/{rid}", headers=proc())).json()
    # the recused supervisor is told the bureau's decision (R13.2); its SMS finds the phone in the registry
    decided = await _wait_for_message(notify, recused, "recusal_decided", rid)
    await _wait_for_sms_sent(apps["notify"], decided["id"])
    released = {m["supervisor_id"]: m for m in final["released"]}
    assert released[recused]["release_reason"] == "recused" and released[recused]["replaced_by"]
    participants = [m["supervisor_id"] for m in final["roster"]]

    # 6. materials before, the activity is held, opinions recorded, everyone signs on site
    mat = await casework.post(f"/activities/{aid}/materials", headers=proc(),
                              json={"title": "案件基本情况", "text": "犯罪嫌疑人某某，涉嫌危险驾驶。"})
    assert mat.status_code == 201
    assert (await casework.get(f"/activities/{aid}/materials/{mat.json()['id']}",
                               headers=supervisor(participants[0]))).status_code == 200
    assert (await casework.get(f"/activities/{aid}/materials/{mat.json()['id']}",
                               headers=supervisor(recused))).status_code == 403
    # holding and signing happen on site, once the activity has begun (R17.1): the server's clock (every app's in
    # this process) stands there until finance and appraisal have taken the signatures (they refuse a future one)
    with during(activity):
        assert (await casework.post(f"/activities/{aid}/hold", headers=proc())).status_code == 200
        for i, sid in enumerate(participants):
            response = await casework.put(f"/activities/{aid}/opinions/{sid}", headers=proc(),
                                          json={"text": f"第{i + 1}位监督员意见：同意不起诉，建议加强释法说理。"})
            assert response.status_code == 200, response.text
        for sid in participants:
            response = await casework.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(sid),
                                           json={"method": "on_site_token"})
            assert response.status_code == 200, response.text
        assert response.json()["status"] == "signed"

        # 7. FeedbackSigned reaches finance: one subsidy line per signed supervisor
        async def subsidy_lines() -> bool:
            async with apps["finance"].state.db.transaction() as session:
                n = await session.scalar(select(func.count()).select_from(subsidy_line).where(
                    subsidy_line.c.activity_id == uuid.UUID(aid)))
            return n == 3

        await wait_until(subsidy_lines, timeout=TIMEOUT)
        async with apps["finance"].state.db.transaction() as session:
            lines = (await session.execute(select(subsidy_line).where(
                subsidy_line.c.activity_id == uuid.UUID(aid)))).all()
        assert {str(line.supervisor_id) for line in lines} == set(participants)
        assert all(line.amount_fen == 40_000 and line.activity_date == date.fromisoformat(body["starts_at"][:10])
                   for line in lines)

        # ... and reaches appraisal: one ledger activity per signed supervisor (R28.1)
        async def ledger_activities() -> bool:
            async with apps["appraisal"].state.db.transaction() as session:
                rows = (await session.execute(select(ledger_entry.c.supervisor_id).where(
                    ledger_entry.c.kind == "activity", ledger_entry.c.ref_id == uuid.UUID(aid)))).scalars().all()
            return sorted(str(s) for s in rows) == sorted(participants)

        await wait_until(ledger_activities, timeout=TIMEOUT)

    # every participant was told the materials were provided (R15.1) and that the form waited for them (R17.1)
    for sid in participants:
        await _wait_for_message(notify, sid, "materials_shared", aid)
        await _wait_for_message(notify, sid, "opinion_recorded", aid)

    # 8. adoption notice (R18.1), published
    response = await casework.put(f"/activities/{aid}/adoptions/{participants[0]}", headers=proc(),
                                  json={"adopted": True, "reason": "已采纳，作出不起诉决定"})
    assert response.status_code == 200, response.text
    outbox = casework_platform.outbox

    async def adoption_published() -> bool:
        async with apps["casework"].state.db.transaction() as session:
            return bool(await session.scalar(select(func.count()).select_from(outbox).where(
                outbox.c.event_type == "OpinionAdoptionNotified", outbox.c.key == aid,
                outbox.c.published_at.is_not(None))))

    await wait_until(adoption_published, timeout=TIMEOUT)
    adoption = await _wait_for_message(notify, participants[0], "opinion_adoption", aid)
    assert "已被采纳" in adoption["body"]

    # 9. reminders read the real GET /deadlines of all five services (none skipped, none failing)
    made = await notify_service.remind(apps["notify"].state.db, fetch=apps["notify"].state.deadline_fetch,
                                       settings=apps["notify"].state.settings, cipher=apps["notify"].state.cipher)
    assert set(made) == {"registry", "selection", "casework", "appraisal", "finance"}
    pdf = await casework.get(f"/activities/{aid}/feedback-form.pdf", headers=proc())
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


async def test_flow_r10_1_two_working_days_ahead_refused_at_once_with_earliest_date(stack):
    casework, selection = stack["casework"], stack["selection"]
    aid = (await casework.post("/activities", headers=proc(), json=activity_body(2))).json()["id"]
    refused = await casework.post(f"/activities/{aid}/supervision-requests", headers=proc(), json={"seats": 2})
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "R10.1" and problem["earliest_allowed_date"] > activity_body(2)["starts_at"][:10]
    assert (await casework.get(f"/activities/{aid}/supervision-requests", headers=proc())).json() == []
    # one door: a procuratorate token cannot create a request in selection
    window = {k: activity_body(8)[k] for k in ("starts_at", "ends_at")}
    body = {"request_id": str(uuid.uuid4()), "activity_id": aid, "case_ref": "c", "activity_type": "public_hearing",
            "office": "威海市人民检察院", "district": HOME, **window, "place": "p", "seats": 1}
    assert (await selection.post("/requests", headers=proc(), json=body)).status_code == 403


async def _truthy(fn) -> bool:
    return bool(await fn())


async def test_flow_calendar_a_year_loaded_on_one_service_reaches_every_service(stack):
    """The bureau loads a year's notice once (on the registry); every other service applies it via the broker."""
    from services.selection.models import platform as selection_platform

    notice = {"holidays": [f"2088-10-0{d}" for d in range(1, 8)], "makeup_workdays": ["2088-10-09"],
              "source": "国办发明电（端到端测试）"}
    loaded = await stack["registry"].put("/calendar/years/2088", json=notice, headers=ADMIN)
    assert loaded.status_code == 200, loaded.text
    span = {"from": "2088-09-30", "to": "2088-10-08"}  # Oct 1-7 off, Oct 8 a Friday: one working day
    for name in ("selection", "casework", "finance", "appraisal"):
        client = stack[name]

        async def applied(client=client) -> bool:
            return (await client.get("/calendar/years/2088", headers=ADMIN)).json()["status"] == "loaded"

        await wait_until(applied, timeout=TIMEOUT)
        answer = (await client.get("/calendar/working-days-between", params=span, headers=ADMIN)).json()
        assert answer == {"value": 1, "provisional": False, "provisional_years": [], "note": None}, name
    # stored (a restart or another replica reads it) and audited where it was applied
    async with stack["apps"]["selection"].state.db.transaction() as session:
        stored = (await session.execute(select(selection_platform.calendar.c.loaded_by).where(
            selection_platform.calendar.c.year == 2088))).scalar_one()
        audited = await session.scalar(select(func.count()).select_from(selection_platform.audit).where(
            selection_platform.audit.c.action == "calendar.year_applied",
            selection_platform.audit.c.subject == "2088"))
    assert stored == "bureau-e2e" and audited >= 1


async def test_flow_an_absence_recorded_after_the_start_feeds_the_ledger_not_the_roster(stack):
    """Time guards: once the activity began nobody declines; the bureau records an absence, the others sign,
    the absent person gets no subsidy, and the ledger counts the absence (R28.1, R32.1)."""
    registry, selection, casework = (stack[n] for n in ("registry", "selection", "casework"))
    apps = stack["apps"]
    specialty = "abs" + uuid.uuid4().hex[:6]
    people = await _appoint_pool(registry, specialty)
    await _wait_for_pool(apps["selection"], specialty, len(people))
    aid = (await casework.post("/activities", headers=proc(), json=activity_body(6))).json()["id"]
    rid = (await casework.post(f"/activities/{aid}/supervision-requests", headers=proc(),
                               json={"seats": 2, "specialty": specialty})).json()["request_id"]

    async def drawn() -> bool:
        return len(_pending(await _selection_view(selection, rid))) == 2

    await wait_until(drawn, timeout=TIMEOUT)
    await _confirm_all_pending(selection, rid)

    async def staffed() -> bool:
        return (await casework.get(f"/supervision-requests/{rid}", headers=proc())).json()["status"] == "staffed"

    await wait_until(staffed, timeout=TIMEOUT)
    present, absent = (await _selection_view(selection, rid))["roster"]
    early = await selection.post(f"/requests/{rid}/absences", headers=ADMIN,
                                 json={"supervisor_id": absent, "reason": "未到场"})
    assert early.status_code == 409 and early.json()["code"] == "activity_not_started"
    async with apps["selection"].state.db.transaction() as session:  # the activity has begun
        await session.execute(update(selection_request).where(selection_request.c.id == uuid.UUID(rid)).values(
            starts_at=func.now() - timedelta(minutes=30)))
    async with apps["casework"].state.db.transaction() as session:  # ...for casework too (holding, signing: R17.1)
        await session.execute(update(casework_activity).where(casework_activity.c.id == uuid.UUID(aid)).values(
            starts_at=func.now() - timedelta(minutes=30), ends_at=func.now() + timedelta(hours=2)))
    late = await selection.post(f"/assignments/{rid}/decline", headers=supervisor(absent), json={"reason": "有事"})
    assert late.status_code == 409 and late.json()["code"] == "activity_started"
    recorded = await selection.post(f"/requests/{rid}/absences", headers=ADMIN,
                                    json={"supervisor_id": absent, "reason": "未到场，事先未告知"})
    assert recorded.status_code == 201, recorded.text
    assert (await _selection_view(selection, rid))["roster"] == [present, absent]  # the roster is kept

    async def absent_in_casework() -> bool:
        view = (await casework.get(f"/supervision-requests/{rid}", headers=proc())).json()
        return [m["supervisor_id"] for m in view["absent"]] == [absent]

    await wait_until(absent_in_casework, timeout=TIMEOUT)
    assert (await casework.post(f"/activities/{aid}/hold", headers=proc())).status_code == 200
    response = await casework.put(f"/activities/{aid}/opinions/{present}", headers=proc(), json={"text": "同意。"})
    assert response.status_code == 200, response.text
    refused = await casework.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(absent),
                                  json={"method": "on_site_token"})
    assert refused.status_code == 403
    signed = await casework.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(present),
                                 json={"method": "on_site_token"})
    assert signed.status_code == 200 and signed.json()["status"] == "signed", signed.text

    async def ledger_of(kind: str) -> list[str]:
        async with apps["appraisal"].state.db.transaction() as session:
            return sorted(str(s) for s in (await session.execute(select(ledger_entry.c.supervisor_id).where(
                ledger_entry.c.kind == kind, ledger_entry.c.ref_id == uuid.UUID(aid)))).scalars().all())

    async def ledger_done() -> bool:
        return await ledger_of("activity") == [present] and await ledger_of("absence") == [absent]

    await wait_until(ledger_done, timeout=TIMEOUT)

    async def one_subsidy_line() -> bool:
        async with apps["finance"].state.db.transaction() as session:
            rows = (await session.execute(select(subsidy_line.c.supervisor_id).where(
                subsidy_line.c.activity_id == uuid.UUID(aid)))).scalars().all()
        return [str(s) for s in rows] == [present]

    await wait_until(one_subsidy_line, timeout=TIMEOUT)
