"""The demo data: an open annual round of the year due (R29.1); re-running adds nothing."""

from services.appraisal.demo import demo_year, seed
from tests.integration.appraisal.helpers import ADMIN


async def test_demo_seeds_once_and_is_idempotent(appraisal_settings, client) -> None:
    first = await seed(appraisal_settings)
    again = await seed(appraisal_settings)
    assert first["rounds_created"] + first["skipped"] == 1
    assert again["rounds_created"] == 0 and again["skipped"] == 1
    rounds = (await client.get("/rounds", headers=ADMIN, params={"limit": 200})).json()["items"]
    year = demo_year(appraisal_settings)
    assert [r["state"] for r in rounds if r["kind"] == "annual" and r["year"] == year] == ["opened"]
