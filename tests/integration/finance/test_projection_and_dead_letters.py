"""The registry projection finance keeps for the table, bank details, and refused FeedbackSigned events."""

import uuid
from datetime import date

from sqlalchemy import select

from services.finance.models import platform, supervisor
from shared.events.contracts import SupervisorAppointed, SupervisorUpdated
from tests.integration.finance.helpers import FIN_A, deliver, feedback, line_of
from tests.support.apps import bearer


async def test_registry_events_keep_name_and_district_current(app, client) -> None:
    supervisor_id = uuid.uuid4()
    await deliver(app, SupervisorAppointed(
        supervisor_id=supervisor_id, name="孙丽", gender="female", district="乳山市", specialties=[],
        employer="某单位", recommending_body="某社区", term_start=date(2025, 1, 1), term_end=date(2029, 12, 31),
        certificate_no="C2", work_card_no="W2", eligible=True))
    await deliver(app, SupervisorUpdated(supervisor_id=supervisor_id, changed={"name": "孙丽华", "employer": "x"}))
    r = await client.get(f"/supervisors/{supervisor_id}", headers=FIN_A)
    assert r.status_code == 200 and (r.json()["name"], r.json()["district"]) == ("孙丽华", "乳山市")


async def test_bank_account_is_encrypted_and_masked_and_self_visible(app, client) -> None:
    supervisor_id = uuid.uuid4()
    account = "6228480000123456789"
    put = await client.put(f"/supervisors/{supervisor_id}/bank-account", headers=FIN_A,
                           json={"bank_name": "中国农业银行威海分行", "account_number": account})
    assert put.status_code == 200 and put.json()["bank_account_masked"] == "*" * 15 + "6789"
    me = bearer("supervisor", subject="sup-bank", supervisor_id=str(supervisor_id))
    assert (await client.get(f"/supervisors/{supervisor_id}", headers=me)).json()["bank_account_masked"].endswith(
        "6789")
    assert (await client.get(f"/supervisors/{uuid.uuid4()}", headers=me)).status_code == 403
    assert (await client.put(f"/supervisors/{supervisor_id}/bank-account", headers=me,
                             json={"bank_name": "x", "account_number": "12345678"})).status_code == 403
    async with app.state.db.transaction() as session:
        stored = (await session.execute(select(supervisor.c.bank_account_encrypted)
                                        .where(supervisor.c.id == supervisor_id))).scalar_one()
    assert account not in stored and stored.startswith("v1.")


async def test_r42_1_unsigned_feedback_is_dead_lettered_by_the_inbox(app, client) -> None:
    event = feedback(activity_date=date(2026, 3, 14), signature_hash="unsigned")
    envelope = await deliver(app, event)
    inbox = platform.inbox
    async with app.state.db.transaction() as session:
        status = (await session.execute(select(inbox.c.status, inbox.c.error)
                                        .where(inbox.c.event_id == envelope.id))).one()
    assert status.status == "dead_lettered" and "R42.1" in status.error
    assert await line_of(client, event.supervisor_id) == []
