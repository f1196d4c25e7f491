"""`python -m shared.serve SERVICE`: serve services/SERVICE/app.py (its create_app factory) with uvicorn."""

import argparse
import sys

import uvicorn
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.db.migrations import SERVICES_DIR


class ServeSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")
    host: str = "0.0.0.0"
    port: int = 8000
    workers: int = 1


def available_services() -> list[str]:
    """Every services/<name>/app.py, in name order."""
    return sorted(p.parent.name for p in SERVICES_DIR.glob("*/app.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("service", choices=available_services() or None)
    args = parser.parse_args(argv)
    settings = ServeSettings()
    uvicorn.run(
        f"services.{args.service}.app:create_app", factory=True, host=settings.host, port=settings.port,
        workers=settings.workers, log_config=None, proxy_headers=True, server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
