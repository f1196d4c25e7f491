"""Benchmarks (`make bench` = `python -m bench`): each measures its own baseline in the same run.

Every `bench/bench_<name>.py` module defines `async def main(args) -> dict`; `python -m bench`
finds it by name, runs it, prints its rows and writes `bench/results/<name>.json`.
Benchmarks are never timed assertions in the test suite: they report numbers, ratios to their
baseline and pass/fail against their targets as text.

A benchmark's result dict has `rows` (what the table shows), each a dict with
`metric`, `value`, `unit` and optionally `baseline`, `ratio`, `target`, `ok`; anything else in the
dict is written to the JSON file only.
"""

import math
from collections.abc import Iterable, Sequence


def percentile(values: Iterable[float], p: float) -> float:
    """The p-th percentile (0..100) with linear interpolation between closest ranks.

    The same definition as numpy's default ("linear") and `statistics.quantiles(method="inclusive")`.
    """
    data: Sequence[float] = sorted(values)
    if not data:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} outside 0..100")
    rank = (len(data) - 1) * p / 100
    lo = math.floor(rank)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (rank - lo)


def summarize_ms(seconds: Iterable[float]) -> dict[str, float]:
    """n, p50, p90, p99, max and mean of durations given in seconds, reported in milliseconds."""
    ms = [s * 1000 for s in seconds]
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3),
        "mean_ms": round(sum(ms) / len(ms), 3),
    }


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, or None when either is missing or the baseline is zero."""
    if value is None or not baseline:
        return None
    return round(value / baseline, 2)
