"""schemathesis over the whole casework API with a procuratorate token: no answer is a 5xx."""

from tests.support.apps import bearer
from tests.support.casework_helpers import DISTRICT, OFFICE
from tests.support.fuzz import assert_no_server_errors


def _answered(app) -> dict[str, float]:
    """Requests the app answered so far, per route (its own latency histogram counts every answer)."""
    counts: dict[str, float] = {}
    for metric in app.state.metrics.http_latency.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                route = sample.labels["route"]
                counts[route] = counts.get(route, 0.0) + sample.value
    return counts


async def test_schemathesis_finds_no_server_errors(cw):
    app, _ = cw
    before = _answered(app)
    assert_no_server_errors(app, bearer("procuratorate", district=DISTRICT, office=OFFICE), max_examples=15)
    after = _answered(app)
    reached = {route for route, n in after.items() if n > before.get(route, 0.0)}
    # the requests really reached the app: every operation of the schema got at least one (not the budget counted)
    paths = set(app.openapi()["paths"])
    assert "/activities/{activity_id}/reschedule" in paths and len(paths) > 30
    assert paths <= reached, sorted(paths - reached)
    assert sum(after.values()) - sum(before.values()) >= len(paths)
