"""A pretend service that exercises the platform in tests (not part of the product)."""

from pathlib import Path

migrations_dir = Path(__file__).parent / "migrations"
