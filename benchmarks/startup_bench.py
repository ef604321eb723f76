"""Start-up of `cfspec lint one.scm` against `python -c "import lark, networkx"` (the floor: the
two libraries the linter cannot do without), measured in the same run.

    python benchmarks/startup_bench.py [--repeats 15]

Prints the median wall time of each command and its ratio to the floor. The goal (issue 12) is
at most 1.5x; `typer path` is the same lint through the Typer app, as before the fast path."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = str(ROOT / "specs" / "cake.scm")
THROUGH_TYPER = ("import sys; from cfspec.cli.app import main; "
                 "sys.argv = ['cfspec', 'lint', sys.argv[1]]; main()")
COMMANDS = {
    "import lark, networkx": [sys.executable, "-c", "import lark, networkx"],
    "cfspec lint (fast path)": [sys.executable, "-m", "cfspec", "lint", SPEC],
    "cfspec lint (typer path)": [sys.executable, "-c", THROUGH_TYPER, SPEC],
}


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    repeats = parser.parse_args().repeats
    for command in COMMANDS.values():  # warm the file cache and .pyc files
        wall(command)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(repeats):  # interleaved, so load changes hit every command alike
        for name, command in COMMANDS.items():
            times[name].append(wall(command))
    floor = statistics.median(times["import lark, networkx"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:28s} {median * 1000:7.1f} ms  {median / floor:5.2f}x")


if __name__ == "__main__":
    main()
