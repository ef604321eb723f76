"""The `cfspec` command line: one Typer app (app.py) and the commands it registers; the plain
forms of `cfspec lint` skip Typer (fast.py)."""

from __future__ import annotations

import sys


def main() -> None:
    from cfspec.cli.fast import try_fast

    try:
        status = try_fast(sys.argv[1:])
    except BrokenPipeError:  # `cfspec lint ... | head`: as click does, quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("Aborted!\n")
        sys.exit(1)
    if status is not None:
        sys.exit(status)
    from cfspec.cli.app import main as typer_main

    typer_main()


__all__ = ["main"]
