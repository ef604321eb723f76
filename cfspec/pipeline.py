"""`cfspec run`: the stages in order, what each is given from run's options, and when the run
stops. The command line only maps each stage's name to its command; the order and the rules
live here, so `run` and the separate commands cannot drift apart.

    (device) -> compile -> (preflight) -> generate -> evaluate -> filter -> export -> report
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfspec.cli.common import EXIT_ERRORS, EXIT_OK, EXIT_USAGE
from cfspec.gpu.models import DEFAULT_CLIP, DEFAULT_MODEL
from cfspec.stages.options import EvaluateOptions, GenerateOptions
from cfspec.workspace.layout import DATASET_DIR, PAIRS_FILE

STAGES = ("compile", "generate", "evaluate", "filter", "export", "report")


@dataclass(frozen=True)
class RunOptions:
    """Every option of `cfspec run`: those of generate and evaluate, and the filter's gates."""

    paths: tuple[str, ...]
    out: Path
    model: str = DEFAULT_MODEL
    seeds: int = 1
    steps: int = 50
    device: str = "auto"
    batch_pairs: int = 1
    guidance: float | str = 7.5  # a number or "uniform(lo, hi)" (generate parses it)
    height: int | None = None
    width: int | None = None
    scheduler: str = "ddim"
    dtype: str = "auto"
    seed_base: int = 0
    blend_start: float | None = None
    p2p_compat: str = "cfspec"
    overwrite: bool = False  # generate may replace images made with other settings
    compile_unet: bool = False  # generate --compile
    clip_model: str = DEFAULT_CLIP
    vqa_model: str | None = None  # evaluate --vqa-model: the spec's questions
    inception_weights: Path | None = None
    batch_size: int = 32  # evaluate's (pair, seed)s per CLIP batch
    min_clip: float | None = None
    min_directional: float | None = None
    min_image_similarity: float | None = None
    gates: tuple[str, ...] = field(default_factory=tuple)
    keep: int = 1  # filter's seeds kept per pair
    quiet: bool = False


def arguments(stage: str, options: RunOptions) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The positional and keyword arguments `run` gives the command of `stage`."""
    o = options
    shown = {"quiet": o.quiet}
    if stage == "compile":  # every spec without errors: one bad spec must not stop a dataset
        return (list(o.paths), o.out), {"keep_going": True, "fmt": "text", "tokenizer": None,
                                        "no_color": False, **shown}
    if stage == "generate":  # every flag of generate that run has (all but --shard)
        return (o.out,), {**_shared(GenerateOptions, o), **shown}
    later = {"fmt": "text", "no_color": False, **shown}
    if stage == "evaluate":
        return (o.out,), {**_shared(EvaluateOptions, o), **later}
    if stage == "filter":
        return (o.out,), {"min_clip": o.min_clip, "min_directional": o.min_directional,
                          "min_image_similarity": o.min_image_similarity,
                          "gate": list(o.gates), "keep": o.keep, **later}
    if stage == "export":
        return (o.out,), {"to": "hf", "output": o.out / DATASET_DIR, **later}
    if stage == "report":
        return (o.out,), {"max_pairs": 200, **later}
    raise ValueError(f"unknown stage {stage!r}; the stages are {', '.join(STAGES)}")


def _shared(options: type[GenerateOptions] | type[EvaluateOptions], run: RunOptions
            ) -> dict[str, Any]:
    """The fields of a stage's options class that are flags of its command and of run (a
    new option of the stage reaches run's call when RunOptions has it)."""
    names = {f.name for f in dataclasses.fields(options)} - options.API_ONLY
    return {name: getattr(run, name) for name in sorted(names) if hasattr(run, name)}


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
