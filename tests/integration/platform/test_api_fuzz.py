"""schemathesis against a service's OpenAPI: whatever it sends, the answer is never a 5xx."""

from shared.db.migrations import upgrade
from tests.support.apps import bearer, service_settings
from tests.support.fuzz import assert_no_server_errors
from tests.support.sample_service import app as sample_app
from tests.support.sample_service import migrations_dir


def test_the_sample_service_answers_no_5xx_to_generated_requests(database_url, settings_env):
    upgrade(migrations_dir, database_url)
    app = sample_app.build(service_settings(settings_env))
    calls = assert_no_server_errors(app, bearer("bureau_admin"), skip=("/boom",))
    assert calls > 50


def test_the_fuzzer_does_catch_a_5xx(database_url, settings_env):
    """Proof that the check bites: the sample's deliberate crash endpoint is found."""
    upgrade(migrations_dir, database_url)
    app = sample_app.build(service_settings(settings_env))
    try:
        assert_no_server_errors(app, bearer("bureau_admin"), max_examples=3)
    except AssertionError as exc:
        assert "/boom -> 500" in str(exc)
    else:
        raise AssertionError("the fuzzer missed the 500 of /boom")
