"""What every command shares: the exit codes, the one way to fail, the common options, and how
diagnostics reach stdout. Imports only typer, so registering a command stays cheap."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from cfspec.diagnostics.records import Diagnostic

# ../shared/CONTRACT.md: 0 clean; 1 errors were found (in the input, or some pairs failed);
# 2 cfspec could not do what was asked (usage, a missing input, I/O).
EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2

OutArgument = Annotated[
    Path, typer.Argument(help="The output folder of `cfspec compile` and `cfspec generate`.")
]
FormatOption = Annotated[
    str, typer.Option("--format", help="Diagnostics as text, concise, json, sarif or github.",
                      metavar="FORMAT"),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar and no summary on stderr.")
]
NoColorOption = Annotated[bool, typer.Option("--no-color", help="Never colour the output.")]


def fail(message: str) -> typer.Exit:
    """`cfspec: error: message` on stderr; raise the returned Exit (status 2)."""
    typer.echo(f"cfspec: error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def io_fail(error: OSError) -> typer.Exit:
    """An I/O failure as a message naming the path and a way out (exit 2), not a traceback."""
    from cfspec.workspace.outdir import describe_os_error

    return fail(describe_os_error(error))


def check_format(fmt: str) -> None:
    from cfspec.diagnostics.views import FORMATS

    if fmt not in FORMATS:
        raise fail(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")


def check_out(out: Path, writes: bool = True) -> None:
    """OUT exists and, when the stage `writes` into it, can be written (checked before any
    model loads or work starts)."""
    from cfspec.workspace.outdir import prepare_out

    if not out.is_dir():
        raise fail(f"{out}: not a folder (run `cfspec compile SPECS -o {out}` first)")
    if not writes:
        return
    try:
        prepare_out(out)
    except OSError as error:
        raise io_fail(error) from None


def use_color(no_color: bool) -> bool:
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


def emit(diagnostics: Sequence[Diagnostic], fmt: str, no_color: bool) -> int:
    """Diagnostics on stdout; the exit status they call for."""
    from cfspec.diagnostics.records import has_errors
    from cfspec.diagnostics.views import render

    sys.stdout.write(render(list(diagnostics), fmt, color=use_color(no_color)))
    return EXIT_ERRORS if has_errors(list(diagnostics)) else EXIT_OK


def say(message: str, quiet: bool) -> None:
    if not quiet:
        typer.echo(message, err=True)
