"""GET /calendar/earliest-activity-date: the R10.1/R10.2 earliest activity date, as shared.lead_time counts it."""

from datetime import date, datetime

import pytest

from shared.calendar import WorkingCalendar
from shared.clock import SHANGHAI
from shared.db.migrations import upgrade
from shared.lead_time import earliest_activity_date
from tests.support.apps import bearer, running, service_settings
from tests.support.sample_service import app as sample_app
from tests.support.sample_service import migrations_dir

URL = "/calendar/earliest-activity-date"
PROCURATORATE = bearer("procuratorate", subject="p1", office="市人民检察院", district="环翠区")


@pytest.fixture(scope="module")
def migrated(database_url: str) -> None:
    upgrade(migrations_dir, database_url)


def app_for(settings_env: dict[str, str]):
    return running(sample_app.build(service_settings(settings_env)))


async def test_r10_1_r10_2_earliest_activity_date_on_a_known_2026_date(migrated, settings_env):
    async with app_for(settings_env) as (_, client):
        # Wed 2026-09-30 1; 10-01..07 off; 10-08 2, 10-09 3, Sat 10-10 (调休上班) 4, Mon 10-12 5
        five = await client.get(URL, params={"notified": "2026-09-30", "lead": 5}, headers=PROCURATORATE)
        assert five.status_code == 200
        assert five.json() == {"notified": "2026-09-30", "lead": 5, "earliest_activity_date": "2026-10-13",
                               "calendar_provisional": False, "provisional_years": [], "note": None}
        assert earliest_activity_date(WorkingCalendar(), date(2026, 9, 30), 5).value == date(2026, 10, 13)
        three = await client.get(URL, params={"notified": "2026-09-30", "lead": 3}, headers=PROCURATORATE)
        assert three.json()["earliest_activity_date"] == "2026-10-10"
        assert earliest_activity_date(WorkingCalendar(), date(2026, 9, 30), 3).value == date(2026, 10, 10)


async def test_r10_1_lead_other_than_5_or_3_is_a_422(migrated, settings_env):
    async with app_for(settings_env) as (_, client):
        for lead in ("4", "0", "-5", "five", ""):
            refused = await client.get(URL, params={"notified": "2026-09-30", "lead": lead}, headers=PROCURATORATE)
            assert refused.status_code == 422 and refused.json()["code"] == "validation_error"
            assert refused.headers["content-type"] == "application/problem+json"
        missing = await client.get(URL, params={"notified": "2026-09-30"}, headers=PROCURATORATE)
        assert missing.status_code == 422


async def test_r10_1_a_2027_date_is_provisional(migrated, settings_env):
    async with app_for(settings_env) as (app, client):
        assert app.state.calendar.year_status(2027) == "provisional"  # no 2027 notice published yet
        answer = (await client.get(URL, params={"notified": "2027-03-01", "lead": 5}, headers=PROCURATORATE)).json()
        assert answer["calendar_provisional"] is True and answer["provisional_years"] == [2027]
        assert answer["note"] == "calendar: provisional"
        assert answer["earliest_activity_date"] == "2027-03-06"  # Mon 03-01..Fri 03-05 (weekends only)


async def test_r10_1_notified_defaults_to_todays_shanghai_date(migrated, settings_env):
    async with app_for(settings_env) as (_, client):
        before = datetime.now(SHANGHAI).date()
        answer = (await client.get(URL, params={"lead": 5}, headers=PROCURATORATE)).json()
        after = datetime.now(SHANGHAI).date()
        assert answer["notified"] in {before.isoformat(), after.isoformat()}
        notified = date.fromisoformat(answer["notified"])
        expected = earliest_activity_date(WorkingCalendar(), notified, 5).value
        assert answer["earliest_activity_date"] == expected.isoformat()


async def test_r10_1_a_result_past_9999_12_31_is_a_422_and_a_token_is_needed(migrated, settings_env):
    async with app_for(settings_env) as (_, client):
        refused = await client.get(URL, params={"notified": "9999-12-30", "lead": 5}, headers=PROCURATORATE)
        assert refused.status_code == 422 and refused.json()["code"] == "date_out_of_range"
        assert refused.headers["content-type"] == "application/problem+json"
        anonymous = await client.get(URL, params={"notified": "2026-09-30", "lead": 5})
        assert anonymous.status_code == 401
        supervisor = bearer("supervisor", subject="s1", supervisor_id="00000000-0000-0000-0000-000000000001")
        allowed = await client.get(URL, params={"notified": "2026-09-30", "lead": 5}, headers=supervisor)
        assert allowed.status_code == 200
