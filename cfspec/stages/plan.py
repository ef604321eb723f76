"""`cfspec plan OUT`: what `cfspec generate` would do, before any GPU time is spent.

A job is one (pair, seed). Each denoising step runs the UNet on 2 rows per job (the factual and
the counterfactual image), twice that with classifier-free guidance (guidance > 1: an
unconditional and a conditional row each), and `--batch-pairs` jobs share one UNet call. With
the it/s a GPU shows for one such call (`--its`, e.g. from a short `cfspec generate` run's
progress bar), calls / it/s estimates the time. Images already in the manifest are counted as
done; generate re-checks their settings and redoes those made with other ones. Torch-free."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cfspec.diagnostics.records import Diagnostic
from cfspec.workspace import store
from cfspec.workspace.layout import MANIFEST_FILE, image_paths
from cfspec.workspace.records import read_pair_file
from cfspec.workspace.shards import ALL, Shard


@dataclass(frozen=True)
class Plan:
    shard: str
    pairs: int  # in this shard
    seeds: int
    jobs: int  # (pair, seed)s
    done: int  # already with images and a manifest line
    pending: int
    steps: int
    batch_pairs: int
    rows_per_call: int  # UNet batch rows per call
    unet_calls: int
    unet_rows: int
    its: float | None  # UNet calls per second, as given
    hours: float | None  # the estimate, when `its` is given

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_plan(out: Path, seeds: int = 1, steps: int = 50, batch_pairs: int = 1,
              guidance: float = 7.5, seed_base: int = 0, shard: Shard = ALL,
              its: float | None = None) -> tuple[Plan, list[Diagnostic]]:
    """The plan for `cfspec generate OUT` with these settings. StageError without pairs.jsonl;
    ValueError for a setting out of range."""
    for name, value in (("--seeds", seeds), ("--steps", steps), ("--batch-pairs", batch_pairs)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if its is not None and not (math.isfinite(its) and its > 0):
        raise ValueError(f"--its must be a positive number, got {its}")
    pairs, diagnostics = read_pair_file(out)
    mine = shard.select(pairs)
    last = store.latest(store.read_records(out / MANIFEST_FILE))
    jobs = [(p.id, seed_base + k) for p in mine for k in range(seeds)]
    done = sum(1 for key in jobs if key in last and not last[key].superseded
               and all(path.is_file() for path in image_paths(out, *key)))
    pending = len(jobs) - done
    rows_per_job = 4 if guidance > 1.0 else 2  # as the engine: no unconditional pass at 1
    calls = math.ceil(pending / batch_pairs) * steps
    rows = pending * rows_per_job * steps
    hours = None if its is None else calls / its / 3600
    return Plan(str(shard), len(mine), seeds, len(jobs), done, pending, steps, batch_pairs,
                rows_per_job * batch_pairs, calls, rows, its, hours), diagnostics


def describe(plan: Plan) -> str:
    where = "all pairs" if plan.shard == "0/1" else f"shard {plan.shard}"
    lines = [
        f"{where}: {plan.pairs} pair(s) x {plan.seeds} seed(s) = {plan.jobs} job(s); "
        f"{plan.done} done, {plan.pending} to generate",
        f"UNet: {plan.unet_calls} call(s) of {plan.rows_per_call} row(s) "
        f"({plan.batch_pairs} pair(s) per call, {plan.steps} steps), {plan.unet_rows} row(s)",
    ]
    if plan.hours is None:
        lines.append("estimate: pass --its (the it/s a GPU shows for one call of this size) "
                     "for the GPU-hours")
    else:
        lines.append(f"estimate: {plan.hours:.3g} GPU-hour(s) at {plan.its:g} it/s")
    return "\n".join(lines) + "\n"
