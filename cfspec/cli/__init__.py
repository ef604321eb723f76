"""The `cfspec` command line: one Typer app (app.py) and the commands it registers."""

from cfspec.cli.app import main

__all__ = ["main"]
