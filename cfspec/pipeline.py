"""`cfspec run`: the stages in order, what each is given from run's options, and when the run
stops. The command line only maps each stage's name to its command; the order and the rules
live here, so `run` and the separate commands cannot drift apart.

    (device) -> compile -> (preflight) -> generate -> evaluate -> filter -> export -> report
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfspec.cli.common import EXIT_ERRORS, EXIT_OK, EXIT_USAGE
from cfspec.workspace.layout import DATASET_DIR, PAIRS_FILE

STAGES = ("compile", "generate", "evaluate", "filter", "export", "report")
# The stages whose flags `cfspec run` takes, declared on their commands only (run borrows
# them: cli.options.borrow_flags), and the flags of theirs it does not take: OUT is run's
# --out, the stages' diagnostics are shown as text, --quiet is run's own, and a shard of a
# whole run would evaluate and export a part of the data (run `generate --shard` per job, then
# run on the whole).
FLAG_STAGES = ("generate", "evaluate", "filter")
NOT_RUN_FLAGS = frozenset({"out", "fmt", "no_color", "quiet", "shard"})


@dataclass(frozen=True)
class RunOptions:
    """What `cfspec run` was given: the specs, OUT, and each flag of generate, evaluate and
    filter it took, by the name of the commands' parameter (`flags`; absent: the command's
    default)."""

    paths: tuple[str, ...]
    out: Path
    flags: Mapping[str, Any] = field(default_factory=dict)
    quiet: bool = False
    images: str | None = None  # --images DIR: compile's, where the specs' photos are


def arguments(stage: str, options: RunOptions, takes: Collection[str]
              ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The positional and keyword arguments `run` gives the command of `stage`, whose
    parameters are `takes`: of run's flags, those it declares."""
    o = options
    shown = {"quiet": o.quiet}
    if stage == "compile":  # every spec without errors: one bad spec must not stop a dataset
        return (list(o.paths), o.out), {"keep_going": True, "fmt": "text", "tokenizer": None,
                                        "no_color": False, "images": o.images, **shown}
    flags = {name: value for name, value in o.flags.items()
             if name in takes and name not in NOT_RUN_FLAGS}
    if stage == "generate":
        return (o.out,), {**flags, **shown}
    later = {"fmt": "text", "no_color": False, **shown}
    if stage in ("evaluate", "filter"):
        return (o.out,), {**flags, **later}
    if stage == "export":
        return (o.out,), {"to": "hf", "output": o.out / DATASET_DIR, **later}
    if stage == "report":
        return (o.out,), {"max_pairs": 200, **later}
    raise ValueError(f"unknown stage {stage!r}; the stages are {', '.join(STAGES)}")


def stop_after(stage: str, status: int, out: Path,
               earlier: Mapping[str, int] | None = None) -> int | None:
    """The exit status to stop the run with after `stage` ended with `status`; None: go on.

    Any stage that could not run at all (usage, I/O: status 2) stops the run, with 2, unless
    generate had already failed pairs (1): a later stage that finds no images then is the
    failed generation showing, and run exits as generate. After compile, having nothing to
    generate (every spec has errors) stops the run too. Errors in some specs or some pairs
    (status 1) do not: the rest still becomes a dataset, and run exits 1 at the end."""
    if status == EXIT_USAGE:
        failed_pairs = (earlier or {}).get("generate") == EXIT_ERRORS
        if stage not in ("compile", "generate") and failed_pairs:
            return EXIT_ERRORS
        return EXIT_USAGE
    if stage == "compile":
        pairs = out / PAIRS_FILE
        if not pairs.is_file() or not pairs.read_text(encoding="utf-8").strip():
            return status or EXIT_ERRORS
    return None


def final_status(statuses: dict[str, int], nothing_exported: bool = False) -> int:
    """As compile and generate ended: the stages after them report on what those made. But a
    run that exported nothing (every pair left out: none generated, or the filter kept none)
    made no dataset, and exits 1 as `cfspec export` alone does."""
    made = max(statuses.get("compile", EXIT_OK), statuses.get("generate", EXIT_OK))
    return max(made, EXIT_ERRORS) if nothing_exported else made


def nothing_exported(out: Path) -> bool:
    """Whether the export found nothing to export in OUT (as `cfspec export` judges it)."""
    from cfspec.stages.selection import select

    return not select(out).candidates
