"""schemathesis over the whole casework API with a procuratorate token: no answer is a 5xx."""

from tests.support.apps import bearer
from tests.support.casework_helpers import DISTRICT, OFFICE
from tests.support.fuzz import assert_no_server_errors


async def test_schemathesis_finds_no_server_errors(cw):
    app, _ = cw
    calls = assert_no_server_errors(app, bearer("procuratorate", district=DISTRICT, office=OFFICE),
                                    max_examples=15)
    assert calls > 0
