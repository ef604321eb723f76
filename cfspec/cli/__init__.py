"""The `cfspec` command line: one Typer app (app.py) and the commands it registers; the plain
forms of `cfspec lint` skip Typer (fast.py)."""

from __future__ import annotations

import sys


def main() -> None:
    from cfspec.cli.fast import try_fast

    status = try_fast(sys.argv[1:])
    if status is not None:
        sys.exit(status)
    from cfspec.cli.app import main as typer_main

    typer_main()


__all__ = ["main"]
