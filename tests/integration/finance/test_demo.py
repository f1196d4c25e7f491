"""The demo data: default rates and 2026/2027 plans; re-running adds nothing."""

from sqlalchemy import func, select

from services.finance.demo import DEFAULT_RATES_FEN, OFFICES, YEARS, seed
from services.finance.models import plan
from tests.integration.finance.helpers import FIN_A


async def test_demo_seeds_once_and_is_idempotent(finance_settings, app, client) -> None:
    await seed(finance_settings)
    again = await seed(finance_settings)
    assert again == {"rates_created": 0, "plans_created": 0,
                     "skipped": len(DEFAULT_RATES_FEN) + len(YEARS) * len(OFFICES)}
    async with app.state.db.transaction() as session:
        plans = await session.scalar(select(func.count()).select_from(plan).where(plan.c.submitted_by == "demo"))
    assert plans == len(YEARS) * len(OFFICES)
    budget = await client.get("/plans/2027/budget", headers=FIN_A, params={"office": "威海市人民检察院"})
    assert budget.status_code == 200 and budget.json()["total_budget_fen"] > 0
