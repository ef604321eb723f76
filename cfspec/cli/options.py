"""The Typer option types the stage commands share, `flag_values` (a command's flags to its
stage's options class, by name) and `borrow_flags` (`cfspec run` taking the stages' flags as
they declare them)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
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
# lint, compile and run: where a spec's `image "..."` is looked for.
ImagesOption = Annotated[str | None, typer.Option(
    "--images", metavar="DIR",
    help="Look for the specs' relative `image` paths in DIR instead of beside each spec.")]
# generate, evaluate, plan, run and doctor: checked by cfspec.gpu.device before any work.
DeviceOption = Annotated[str, typer.Option(
    metavar="DEVICE",
    help="auto (CUDA when there is a GPU, else MPS, else the CPU), cpu, cuda, cuda:N or mps.")]


def flag_values(command: Callable[..., Any], values: dict[str, Any],
                skip: tuple[str, ...] = ("out",)) -> dict[str, Any]:
    """Each parameter of `command` but `skip`, from its `locals()`: the fields of the stage's
    options class (stages.options), so a new flag reaches the stage without another list."""
    return {name: values[name] for name in inspect.signature(command).parameters
            if name not in skip}


def borrow_flags(*commands: Callable[..., Any], skip: Collection[str]
                 ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give the decorated command every parameter of `commands` but `skip`, as they are
    declared there (name, type, default, help); it takes them as `**flags`. Typer reads the
    command's `__signature__`, so `--help` and parsing see one list. A flag two commands share
    (`--device`) comes from the first; the command's own parameters win over any of theirs.

    This is how `cfspec run` takes the options of generate, evaluate and filter without
    declaring them again: a new flag of a stage is a flag of run."""

    def borrow(command: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values()
               if p.kind is not inspect.Parameter.VAR_KEYWORD]
        taken = {p.name for p in own} | set(skip)
        borrowed: list[inspect.Parameter] = []
        for source in commands:
            for parameter in inspect.signature(source, eval_str=True).parameters.values():
                if parameter.name not in taken:
                    taken.add(parameter.name)
                    borrowed.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))
        # The command's required parameters, then the borrowed flags, then its own optional
        # ones (run: PATHS and --out first, --quiet last, as in the help before).
        required = [p for p in own if p.default is inspect.Parameter.empty]
        optional = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own
                    if p.default is not inspect.Parameter.empty]
        command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [*required, *borrowed, *optional])
        return command

    return borrow
