"""Selection service: requests, the verifiable balanced draw, contact, recusal, re-draw (Art. 10–14)."""

from pathlib import Path

migrations_dir = Path(__file__).parent / "migrations"
