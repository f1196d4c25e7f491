"""Personal data at rest in selection's outbox: a confirmed supervisor's SupervisorDrawn (name and
phone, R12.1) is stored sealed for the retention period and goes on the bus decrypted and signed."""

from sqlalchemy import Text, cast, select

from services.selection.models import platform
from tests.integration.selection.conftest import appoint, new_request
from tests.integration.selection.test_contact import contact, order_of


async def test_r3_1_supervisor_drawn_is_sealed_in_the_outbox_after_a_confirmation(svc, events, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 2)  # named 张三; the contact lookup gives 13800000000
    view = await new_request(svc, unique_name, unique_name, seats=1, seats_local=1)
    order = await order_of(client, view)
    view = await contact(client, view, order[0], "confirmed")
    [sent] = await events.wait(view["request_id"], "SupervisorDrawn")
    assert sent.data["phone"] == "13800000000" and sent.data["name"] == "张三"  # what the procuratorate gets

    outbox = platform.outbox
    async with app.state.db.transaction() as session:
        rows = (await session.execute(select(outbox.c.event_type, cast(outbox.c.envelope, Text)).where(
            outbox.c.key == view["request_id"]))).all()
    stored = {event_type: text for event_type, text in rows}
    assert "SupervisorDrawn" in stored and "SupervisionStaffed" in stored
    drawn = stored["SupervisorDrawn"]
    assert "13800000000" not in drawn and "张三" not in drawn and '"sealed"' in drawn
    assert '"sealed"' not in stored["SupervisionStaffed"]  # no personal data: the plain fast path
