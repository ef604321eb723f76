"""The Typer option types the stage commands share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

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
# generate, plan and run: a scale, or a range drawn per factual image and seed.
GuidanceOption = Annotated[str, typer.Option(
    metavar="G|uniform(LO,HI)",
    help="Classifier-free guidance scale: a number, or uniform(LO, HI) drawn per factual "
         "image and seed (1 < LO <= HI).")]
NoColorOption = Annotated[bool, typer.Option("--no-color", help="Never colour the output.")]
# lint and compile: which checks run.
SelectOption = Annotated[list[str] | None, typer.Option(
    help="Only these codes, names or prefixes (SCM2, cycle, ALL).")]
IgnoreOption = Annotated[list[str] | None, typer.Option(help="Skip these codes or names.")]
# generate, evaluate, plan, run and doctor: checked by cfspec.gpu.device before any work.
DeviceOption = Annotated[str, typer.Option(
    metavar="DEVICE",
    help="auto (CUDA when there is a GPU, else MPS, else the CPU), cpu, cuda, cuda:N or mps.")]


def flag_values(command: Callable[..., Any], values: dict[str, Any],
                skip: tuple[str, ...] = ("out",)) -> dict[str, Any]:
    """Each parameter of `command` but `skip`, from its `locals()`: the fields of the stage's
    options class (stages.options), so a new flag reaches the stage without another list."""
    import inspect

    return {name: values[name] for name in inspect.signature(command).parameters
            if name not in skip}
