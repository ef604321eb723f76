"""`cfspec plan OUT`: what `cfspec generate` would do, before any GPU time is spent.

A job is one (pair, seed). Generate makes sets (`cfspec.workspace.batching`): per group (the pairs
that share a factual prompt) and seed, one factual row and one row per pending counterfactual,
K + 1 rows for K pairs; twice that with classifier-free guidance (guidance > 1, or sampled: an
unconditional and a conditional row each). A UNet call holds up to 2 x `--batch-pairs` image
rows: whole sets are packed while they fit, and a larger set is cut into chunks that each
repeat the factual row, exactly as generate packs them. With the it/s a GPU shows for one such
call (`--its`, e.g. from a short `cfspec generate` run's progress bar), calls / it/s estimates
the time. Pairs whose spec names a photo add its inversion's UNet calls first
(`stages.inversion_cost`; counted in the estimate). Images already in the manifest count as
done when their files are there and their line was made for the pair as it now is, with these
settings (`store.finished` on `GenerateOptions.manifest_params`, exactly as generate judges:
model, scheduler, steps, guidance, dtype, size, LocalBlend start, compat profile); those made
with other settings are counted as replacements, which generate makes only with
`--overwrite`. Torch-free."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cfspec.diagnostics.records import Diagnostic
from cfspec.gpu.models import DEFAULT_INVERSION
from cfspec.stages.inversion_cost import inversion_cost
from cfspec.stages.options import GenerateOptions
from cfspec.workspace import store
from cfspec.workspace.batching import batches, group_key, guided
from cfspec.workspace.layout import MANIFEST_FILE
from cfspec.workspace.reading import read_pair_file


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
    rows_per_call: int  # UNet batch rows per call, at most
    unet_calls: int
    unet_rows: int
    its: float | None  # UNet calls per second, as given
    hours: float | None  # the estimate, when `its` is given
    groups: int = 0  # pairs that share a factual prompt, in this shard
    sets: int = 0  # pending (group, seed)s: one factual row each (more where a set is cut)
    replace: int = 0  # pending jobs whose images exist, made with other settings
    changes: tuple[str, ...] = ()  # what differs for those, `name: old -> new`
    # Pairs with a photo: the inversions' extra UNet work (stages.inversion_cost), at most.
    inversion: str = DEFAULT_INVERSION
    photos: int = 0  # distinct (photo, factual prompt)s of the pending jobs
    inversion_calls: int = 0
    inversion_rows: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def its_from_bench(path: Path, batch_pairs: int) -> float:
    """The it/s (UNet calls per second, text encoding and decoding included) a
    `benchmarks/generate_bench.py --json` report measured at this batch size (or the nearest
    one it ran): its compiled engine's time where it timed one, else the eager one's. The file
    may also be a gpu_check results.jsonl (its first generate benchmark). ValueError saying
    why when the file holds no such measurement."""
    import json

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"--its {path}: cannot read it ({error})") from None
    reports: list[Any] = []
    for line in text.splitlines() if "\n" in text.strip() else [text]:
        try:
            record = json.loads(line) if line.strip() else None
        except ValueError:
            raise ValueError(f"--its {path}: not a number, nor a generate_bench.py --json "
                             "report or a gpu_check results.jsonl") from None
        if isinstance(record, dict):
            reports.append(record.get("result") if "step" in record else record)
    report = next((r for r in reports if isinstance(r, dict)
                   and r.get("benchmark") == "generate" and r.get("results")), None)
    if report is None:
        raise ValueError(f"--its {path}: no generate_bench.py result in it")
    rows = [r for r in report["results"] if "ours" in r or "ours_compiled" in r]
    if not rows:
        raise ValueError(f"--its {path}: no timing of `ours` (cfspec's engine) in it")
    row = min(rows, key=lambda r: (abs(int(r["batch_pairs"]) - batch_pairs),
                                   -int(r["batch_pairs"])))
    timed = row.get("ours_compiled") or row["ours"]
    return float(report["steps"]) / float(timed["seconds"])


def make_plan(out: Path, options: GenerateOptions | None = None, its: float | None = None
              ) -> tuple[Plan, list[Diagnostic]]:
    """The plan for `cfspec generate OUT` with these options (default: generate's), whose
    `device` is the one generate will run on, as `cfspec.gpu.device.pick` names it (for what
    `--dtype auto` means). StageError without pairs.jsonl; ValueError (an OptionError naming
    the flag) for a setting out of range."""
    if its is not None and not (math.isfinite(its) and its > 0):
        raise ValueError(f"--its must be a positive number, got {its}")
    options = (options or GenerateOptions()).check()
    # What a manifest line records, exactly as generate builds it (resume compares these).
    params = options.manifest_params()
    setting = options.guidance_setting
    seeds, steps, batch_pairs = options.seeds, options.steps, options.batch_pairs
    shard, seed_base = options.shard, options.seed_base
    branches = 2 if guided(setting) else 1  # no unconditional pass at 1
    pairs, diagnostics = read_pair_file(out)
    mine = shard.select(pairs)
    # Done and replaced exactly as generate judges them (store.finished, store.replaced_by).
    last = store.latest(store.read_records(out / MANIFEST_FILE))
    done = store.finished(out, last, {p.id: p for p in mine}, params)
    jobs = [(p, seed_base + k) for p in mine for k in range(seeds)]
    todo = [(p, seed) for p, seed in jobs if (p.id, seed) not in done]
    replaced = store.replaced_by(out, last, ((p.id, seed) for p, seed in todo), params)
    pending = len(todo)
    groups = {p.id: group_key(p) for p in mine}
    batched = batches(todo, lambda job: groups[job[0].id], lambda job: job[1], batch_pairs,
                      options.per_pair)
    image_rows = sum(len(piece) + 1 for batch in batched for piece in batch)
    calls = len(batched) * steps
    rows = image_rows * branches * steps
    # Each photo is inverted once per factual prompt, whatever the seeds (kept in OUT: a
    # resumed run may have some already, which this does not see: an upper bound).
    method = options.inversion
    photos = {(p.image.sha256, p.prompt_0) for p, _ in todo if p.image is not None}
    cost = inversion_cost(method, steps, len(photos), batch_pairs)
    hours = None if its is None else (calls + cost.unet_calls) / its / 3600
    return Plan(str(shard), len(mine), seeds, len(jobs), len(jobs) - pending, pending, steps,
                batch_pairs, 2 * batch_pairs * branches, calls, rows, its, hours,
                groups=len(set(groups.values())),
                sets=len({(groups[p.id], seed) for p, seed in todo}), replace=len(replaced),
                changes=tuple(store.describe_replacements(replaced)), inversion=method,
                photos=cost.photos, inversion_calls=cost.unet_calls,
                inversion_rows=cost.unet_rows), diagnostics


def describe(plan: Plan) -> str:
    where = "all pairs" if plan.shard == "0/1" else f"shard {plan.shard}"
    lines = [
        f"{where}: {plan.pairs} pair(s) x {plan.seeds} seed(s) = {plan.jobs} job(s); "
        f"{plan.done} done, {plan.pending} to generate",
    ]
    if plan.replace:
        lines.append(f"replace: {plan.replace} of those have images made with other settings "
                     f"({'; '.join(plan.changes)}): generate replaces them only with "
                     "--overwrite")
    lines += [
        f"sets: {plan.groups} factual prompt(s); {plan.sets} (factual, seed) set(s) to "
        "generate, each one factual row and one row per counterfactual",
        f"UNet: {plan.unet_calls} call(s) of at most {plan.rows_per_call} row(s) "
        f"({plan.batch_pairs} pair(s)' worth per call, {plan.steps} steps), "
        f"{plan.unet_rows} row(s)",
    ]
    if plan.photos:
        lines.append(f"inversion ({plan.inversion}): {plan.photos} photo(s), at most "
                     f"{plan.inversion_calls} more call(s) of at most {plan.batch_pairs} row(s), "
                     f"{plan.inversion_rows} row(s)")
    if plan.hours is None:
        lines.append("estimate: pass --its (the it/s a GPU shows for one call of this size) "
                     "for the GPU-hours")
    else:
        lines.append(f"estimate: {plan.hours:.3g} GPU-hour(s) at {plan.its:g} it/s")
    return "\n".join(lines) + "\n"
