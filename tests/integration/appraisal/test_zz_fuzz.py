"""schemathesis over the appraisal API: no generated request gets a 5xx (runs last: it opens random rounds)."""

from services.appraisal.app import create_app
from tests.support.apps import bearer
from tests.support.fuzz import assert_no_server_errors


def test_schemathesis_as_bureau_admin_finds_no_server_errors(appraisal_settings) -> None:
    assert assert_no_server_errors(create_app(appraisal_settings), bearer("bureau_admin", subject="fuzz"),
                                   max_examples=15) > 0


def test_schemathesis_as_district_bureau_finds_no_server_errors(appraisal_settings) -> None:
    token = bearer("district_bureau", subject="fuzz-db", district="环翠区")
    assert assert_no_server_errors(create_app(appraisal_settings), token, max_examples=5) > 0
