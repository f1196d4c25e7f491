"""schemathesis over the finance API: no generated request gets a 5xx (runs last: it creates random rates)."""

from services.finance.app import create_app
from tests.support.apps import bearer
from tests.support.fuzz import assert_no_server_errors


def test_schemathesis_as_finance_finds_no_server_errors(finance_settings) -> None:
    assert assert_no_server_errors(create_app(finance_settings), bearer("finance", subject="fuzz")) > 0


def test_schemathesis_as_supervisor_finds_no_server_errors(finance_settings) -> None:
    token = bearer("supervisor", subject="fuzz-sup", supervisor_id="00000000-0000-0000-0000-000000000001")
    assert assert_no_server_errors(create_app(finance_settings), token, max_examples=10) > 0


def test_schemathesis_as_procuratorate_finds_no_server_errors(finance_settings) -> None:
    token = bearer("procuratorate", subject="fuzz-proc", district="环翠区", office="fuzz-检察院")
    assert assert_no_server_errors(create_app(finance_settings), token, max_examples=10) > 0
