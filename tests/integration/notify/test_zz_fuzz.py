"""schemathesis over the notify API: no generated request gets a 5xx (its own consumer group: the session's
notify app keeps the `notify` group to itself)."""

import uuid

from services.notify.app import create_app
from tests.integration.notify.conftest import notify_settings, supervisor_token
from tests.support.apps import bearer
from tests.support.fuzz import assert_no_server_errors


def test_schemathesis_finds_no_server_errors(notify_migrated, settings_env) -> None:
    settings = notify_settings(settings_env, consumer_group="notify-fuzz-" + uuid.uuid4().hex[:8])
    assert assert_no_server_errors(create_app(settings), bearer("bureau_admin", subject="fuzz"), max_examples=15) > 0
    token = bearer("district_bureau", subject="fuzz-db", district="环翠区")
    assert assert_no_server_errors(create_app(settings), token, max_examples=5) > 0
    assert assert_no_server_errors(create_app(settings), supervisor_token(uuid.uuid4()), max_examples=5) > 0
