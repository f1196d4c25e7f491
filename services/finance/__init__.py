"""Finance service: subsidy rates, annual plan and budget, subsidies, travel claims, disbursement (Art. 41–43)."""

from pathlib import Path

migrations_dir = Path(__file__).parent / "migrations"
