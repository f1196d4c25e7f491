"""`python -m bench [--quick] [--only NAME]`: run every bench/bench_*.py, print a table, write JSON.

Exit code 0 whatever the numbers are (targets are reported as text); 1 only if a benchmark crashed.
"""

import argparse
import asyncio
import importlib
import json
import logging
import sys
import time
import traceback
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"


def available() -> list[str]:
    """Names of the benchmarks: bench/bench_<name>.py, in name order."""
    return sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts (a quick look, noisier)")
    parser.add_argument("--only", metavar="NAME", action="append", choices=available(),
                        help="run only this benchmark (repeatable); one of: " + ", ".join(available()))
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="where <name>.json goes (default: bench/results)")
    return parser.parse_args(argv)


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render(name: str, result: dict) -> str:
    """The rows of one benchmark as an aligned text table."""
    header = ("metric", "value", "unit", "baseline", "ratio", "target", "met")
    lines = [
        (
            row.get("metric", ""), fmt(row.get("value")), row.get("unit", ""),
            fmt(row.get("baseline")), (fmt(row["ratio"]) + "x") if row.get("ratio") is not None else "-",
            row.get("target") or "-", fmt(row.get("ok")) if "ok" in row else "-",
        )
        for row in result.get("rows", [])
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *lines, strict=False)]
    out = [f"== {name} =="]
    for i, line in enumerate([header, *lines]):
        out.append("  ".join(str(c).rjust(w) if 0 < j < 5 else str(c).ljust(w)
                             for j, (c, w) in enumerate(zip(line, widths, strict=True))).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    out.extend(f"  {note}" for note in result.get("notes", []))
    return "\n".join(out)


def run_one(name: str, args: argparse.Namespace) -> dict:
    module = importlib.import_module(f"bench.bench_{name}")
    started = time.monotonic()
    result = asyncio.run(module.main(args))
    result.setdefault("name", name)
    result["quick"] = args.quick
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    names = args.only or available()
    crashed: list[str] = []
    for name in names:
        print(f"-- running {name}{' (quick)' if args.quick else ''} ...", file=sys.stderr, flush=True)
        try:
            result = run_one(name, args)
        except Exception:
            traceback.print_exc()
            crashed.append(name)
            continue
        args.results_dir.mkdir(parents=True, exist_ok=True)
        path = args.results_dir / f"{name}.json"
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(render(name, result))
        print(f"  ({result['wall_seconds']} s; results in {path})\n", flush=True)
    if crashed:
        print(f"crashed: {', '.join(crashed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
