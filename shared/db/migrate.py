"""`python -m shared.db.migrate [SERVICE ...]`: upgrade every (or the named) service's schema to head."""

import argparse
import sys

from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.db.migrations import new_revision, service_migrations, services_with_migrations, upgrade


class MigrationSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")
    database_url: str


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("services", nargs="*", help="services to migrate (default: all)")
    parser.add_argument("--new-revision", metavar="MESSAGE",
                        help="autogenerate a new revision for the one named service (review it by hand)")
    args = parser.parse_args(argv)
    known = services_with_migrations()
    names = args.services or known
    unknown = sorted(set(names) - set(known))
    if unknown:
        print(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    url = MigrationSettings().database_url
    if args.new_revision:
        if len(args.services) != 1:
            print("--new-revision needs exactly one service", file=sys.stderr)
            return 2
        new_revision(service_migrations(args.services[0]), url, args.new_revision)
        return 0
    for name in names:
        upgrade(service_migrations(name), url)
        print(f"migrated {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
