"""`python -m shared.devstack.revision SERVICE "message"`: autogenerate a migration (scratch database).

Starts a throw-away PostgreSQL, upgrades the service to head, compares with its models and writes
services/SERVICE/migrations/versions/<rev>_<message>.py. Review the file by hand before committing.
"""

import sys
import tempfile
from pathlib import Path

from shared.db.migrations import new_revision, service_migrations
from shared.devstack import infra


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    service, message = argv
    postgres = infra.start_postgres(Path(tempfile.mkdtemp(prefix="revision-")) / "pg", cleanup="delete")
    try:
        new_revision(service_migrations(service), postgres.url, message)
    finally:
        postgres.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
