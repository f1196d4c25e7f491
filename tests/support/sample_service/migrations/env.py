from shared.db.migrations import run_env
from tests.support.sample_service.models import metadata

run_env(metadata)
