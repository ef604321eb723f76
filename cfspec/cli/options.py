"""The Typer option types the stage commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
