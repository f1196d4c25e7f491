"""The appraisal benchmark's generated data is what it claims (no timing here: see bench/)."""

import uuid
from datetime import UTC, datetime

from bench import bench_appraisal


def test_each_person_gets_thirty_ledger_entries_with_unique_keys() -> None:
    now = datetime.now(UTC)
    keys: set[str] = set()
    for i in range(60):
        rows = list(bench_appraisal.entries_of(i, uuid.uuid4(), now))
        assert len(rows) == bench_appraisal.PER_PERSON
        assert all(len(r) == len(bench_appraisal.COLUMNS) for r in rows)
        assert {r[2] for r in rows} <= {"activity", "training", "conduct", "other", "late_change_report"}
        keys.update(r[11] for r in rows)
    assert len(keys) == 60 * bench_appraisal.PER_PERSON
