"""Registry service: the roster of people's supervisors (Chapters 2 and 4 of the measures)."""

from pathlib import Path

migrations_dir = Path(__file__).parent / "migrations"
