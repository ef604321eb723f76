"""Import time per edge as LLM answers grow: linear means the same seconds per edge at every
size (issue 23: a 16,000-edge chain took 290 s and 23.8 GB before).

    python benchmarks/import_bench.py           # 1k, 4k, 16k edges per shape
    python benchmarks/import_bench.py --quick   # 1k, 4k
    python benchmarks/import_bench.py --json    # one JSON object on stdout

Each shape (tests/import_shapes.py) reaches one place where an importer could grow with the
square of the graph. Every size is timed in this run (best of three) and reported as a ratio
of its seconds per edge to the smallest size's: about 1 is linear, about 4 per quadrupling is
quadratic. The tests hold memory and report size to linear bounds; time is measured only here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for where in (ROOT, ROOT / "tests"):  # run as a script from a checkout
    if str(where) not in sys.path:
        sys.path.insert(0, str(where))

from import_shapes import SHAPES  # noqa: E402

from cfspec.diagnostics.source import SourceFile  # noqa: E402
from cfspec.diagnostics.views import render  # noqa: E402
from cfspec.importers import import_source  # noqa: E402

GOAL_RATIO = 2.0  # seconds per edge at the largest size over the smallest's: linear is ~1


def seconds(text: str, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        items = import_source(SourceFile("answer.json", text))
        render([d for item in items for d in item.diagnostics], "text")
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k and 4k edges only")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    sizes = (1000, 4000) if args.quick else (1000, 4000, 16000)
    results: dict[str, dict[str, float]] = {}
    for shape, make in SHAPES.items():
        per_edge = {n: seconds(make(n)) / n for n in sizes}
        base = per_edge[sizes[0]]
        results[shape] = {
            **{f"s_{n}": per_edge[n] * n for n in sizes},
            "ratio": per_edge[sizes[-1]] / base,
        }
    worst = max(r["ratio"] for r in results.values())
    if args.json:
        print(json.dumps({"sizes": sizes, "shapes": results, "worst_ratio": worst,
                          "goal_ratio": GOAL_RATIO}))
    else:
        print(f"{'shape':16}" + "".join(f"{n:>10,} edges" for n in sizes) + "   s/edge ratio")
        for shape, r in results.items():
            cells = "".join(f"{r[f's_{n}']:>14.3f} s" for n in sizes)
            print(f"{shape:16}{cells}   {r['ratio']:.2f}")
        verdict = "linear" if worst <= GOAL_RATIO else "NOT linear"
        print(f"worst seconds-per-edge ratio {worst:.2f} (goal <= {GOAL_RATIO}): {verdict}")
    return 0 if worst <= GOAL_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
