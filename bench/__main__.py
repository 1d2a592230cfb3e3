"""`make bench`: run every bench/bench_*.py and print one table (figure, measured, target, ratio)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import warnings

import bench
from bench.common import Figure


def main(selected: list[str]) -> int:
    # Metrics are disabled in the benchmarks; Powertools still warns about each empty flush.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    figures: list[Figure] = []
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    for name in names:
        if selected and not any(s in name for s in selected):
            continue
        started = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        produced = module.run()
        figures.extend(produced)
        print(f"# {name}: {len(produced)} figures in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    header = ["figure", "measured", "target", "ratio", "result"]
    rows = [header] + [f.row() for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    missed = [f.name for f in figures if not f.ok]
    if missed:
        print(f"\n{len(missed)} figure(s) missed their target: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
