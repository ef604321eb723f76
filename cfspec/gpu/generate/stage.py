"""`generate()`: images for every pair in OUT/pairs.jsonl, resumable, on one or many processes.

Pairs that share a factual image (a group: same spec, spec_name and prompt_0) are generated
as sets: per seed, the factual row once and every counterfactual of the group edited against it
(`cfspec.workspace.batching`, `Engine.run_sets`). `per_pair=True` keeps the per-pair layout (each
pair its own factual row) for benchmarks and checks; both give the same images.

Under `torchrun --nproc_per_node N` (or `accelerate launch`) each process takes a share of the
groups through accelerate's `PartialState`; all of them append to the one manifest under a file
lock, and the main process compacts it when every process is done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfspec import __version__
from cfspec.stages.options import GenerateOptions, OptionError
from cfspec.stages.progress import progress
from cfspec.workspace import store
from cfspec.workspace.batching import Draws
from cfspec.workspace.layout import MANIFEST_FILE, PAIRS_FILE, image_paths, photo_path
from cfspec.workspace.manifest_lines import ManifestLine
from cfspec.workspace.pairs import Pair


class GenerateError(RuntimeError):
    """Nothing could be generated (bad OUT, unreadable pairs, unloadable model)."""


class WouldReplace(GenerateError):
    """The run would overwrite images made with other settings, and was not told to
    (`overwrite`): nothing was touched. `str()` says how many and what differs."""

    def __init__(self, out: Path, replaced: dict[tuple[str, int], dict[str, Any]]) -> None:
        self.replaced = replaced
        pairs = len({pair_id for pair_id, _ in replaced})
        lines = "".join(f"\n  {line}" for line in store.describe_replacements(replaced))
        super().__init__(
            f"{out} holds {len(replaced)} image pair(s) of {pairs} pair(s) made with other "
            f"settings, which this run would replace:{lines}\n"
            "  = help: pass --overwrite to replace them, or run with the settings they were made "
            "with (or into another folder) to keep them")


@dataclass(frozen=True)
class FailedJob:
    id: str
    seed: int
    error: str


@dataclass
class GenerateResult:
    out_dir: Path
    manifest: Path
    total: int  # (pair, seed) jobs asked for
    generated: int  # finished by this run (every process)
    skipped: int  # already in the manifest
    failed: list[FailedJob] = field(default_factory=list)
    world_size: int = 1
    seconds: float = 0.0
    invalid: list[str] = field(default_factory=list)  # pairs.jsonl lines that were skipped

    @property
    def ok(self) -> bool:
        return not self.failed and not self.invalid


def generate(out_dir: str | Path, options: GenerateOptions | None = None,
             **settings: Any) -> GenerateResult:
    """Generate `options.seeds` candidate image pairs for every pair of OUT/pairs.jsonl.

    `options` (stages.options.GenerateOptions) or its fields as keywords
    (`generate(out, seeds=2)`), not both. Seeds are `seed_base .. seed_base + seeds - 1`; each
    (group, seed) draws its noise from its own CPU generator. `guidance` is a number or
    `uniform(lo, hi)` (a string or a `batching.Uniform`), drawn per (group, seed); a pair's
    `edit.sample` draws its windows per (pair, seed). `only` restricts the run to these pair
    ids, `shard` to one of N disjoint parts of pairs.jsonl, whole groups at a time
    (workspace.shards). `per_pair` generates each pair with its own factual row (the layout
    before sets; the same images, 2K rows for K counterfactuals instead of K + 1).
    `p2p_compat="published"` reproduces google/prompt-to-prompt's behaviour where cfspec
    deliberately differs (README, "Differences from the published Prompt-to-Prompt");
    `blend_start` None takes that profile's default (0.2 for cfspec, 0 for published).
    `device`: auto, cpu, cuda, cuda:N or mps (`cfspec.gpu.device`). `compile_unet` runs the
    UNet through torch.compile (`engine.CompileOptions`: the same images within the dtype's
    rounding, faster after a one-time compile per batch shape, cached on disk). Images
    already made for these pairs and seeds with other settings are replaced only with
    `overwrite`; without it the run raises WouldReplace before anything is written. Raises
    GenerateError (usage problems: every option is checked first, before anything is read),
    DeviceError or ModelLoadError; per-pair failures are returned in `GenerateResult.failed`.
    """
    import torch
    from accelerate import PartialState

    from cfspec.gpu.device import pick
    from cfspec.gpu.generate.weights import resolve_dtype
    from cfspec.workspace.batching import group_key
    from cfspec.workspace.pairs import read_pairs

    started = time.perf_counter()
    out = Path(out_dir)
    if options is not None and settings:
        raise TypeError("generate() takes options or keyword settings, not both")
    try:
        opts = GenerateOptions(**settings) if options is None else options
    except TypeError as error:  # a misspelt keyword: say which options there are
        raise TypeError(f"{error}; the options are GenerateOptions' fields") from None
    device = pick(opts.device)  # DeviceError (one line) when it is not here
    try:
        opts = opts.check(device)
    except OptionError as error:
        raise GenerateError(str(error)) from None
    # What the manifest records and resume compares.
    params = opts.manifest_params(device)
    pairs_path = out / PAIRS_FILE
    if not pairs_path.is_file():
        raise GenerateError(f"{pairs_path}: not found (run `cfspec compile SPECS -o {out}` first)")
    pairs, diagnostics = read_pairs(pairs_path)
    # Lines that break the schema are skipped, and reported: the run then exits 1.
    invalid = [f"{pairs_path}: {d.message}" for d in diagnostics]
    order = [p.id for p in pairs]  # the manifest follows pairs.jsonl's order
    pairs = opts.shard.select(pairs)  # by position in the whole file: the same split every run
    if opts.only is not None:
        wanted = set(opts.only)
        pairs = [p for p in pairs if p.id in wanted]

    # 1. One process or many: a CPU run uses gloo, a CUDA run one GPU per process.
    state = PartialState(cpu=device == "cpu")
    dev = torch.device(device)
    if state.num_processes > 1 and dev.type == "cuda":
        dev = state.device
    torch_dtype = resolve_dtype(opts.dtype, dev)

    # 2. What is left to do: every process reads the manifest before anyone appends to it.
    manifest = out / MANIFEST_FILE
    by_id = {p.id: p for p in pairs}
    last = store.latest(store.read_records(manifest))
    done = store.finished(out, last, by_id, params)
    jobs = [(p.id, opts.seed_base + k) for p in pairs for k in range(opts.seeds)]
    # Images of these jobs made with other settings: replaced only when asked to.
    other = store.replaced_by(out, last, (job for job in jobs if job not in done), params)
    if other and not opts.overwrite:
        raise WouldReplace(out, other)
    # Lines (of other parameters) that this run's files will replace: tombstoned first.
    replaced = {key: record for key, record in last.items() if key not in done
                and not record.superseded}
    state.wait_for_everyone()
    todo = [job for job in jobs if job not in done]
    total = len(pairs) * opts.seeds
    # Processes split by group: a group's factual rows are computed by one process.
    group_of = {p.id: group_key(p) for p in pairs}
    pending_groups = list(dict.fromkeys(group_of[pair_id] for pair_id, _ in todo))
    with state.split_between_processes(pending_groups) as mine:
        my_groups = set(mine)
    my_jobs = [(pair_id, seed) for pair_id, seed in todo if group_of[pair_id] in my_groups]

    generated, failed = _run(out, my_jobs, by_id, opts, dev, torch_dtype, params,
                             opts.quiet or not state.is_main_process, state, replaced)

    # 3. Gather every process's counts; the main process compacts the manifest.
    if state.num_processes > 1:
        from accelerate.utils import gather_object

        state.wait_for_everyone()
        generated = sum(gather_object([generated]))
        failed = [FailedJob(*f) for f in gather_object([(f.id, f.seed, f.error) for f in failed])]
    # Other shards may be appending to this manifest right now, and compacting replaces the
    # file: a sharded run leaves it as it is (readers take the last line per image; an
    # unsharded run afterwards compacts).
    if state.is_main_process and manifest.exists() and opts.shard.count == 1:
        store.compact(manifest, order)
    state.wait_for_everyone()
    return GenerateResult(
        out_dir=out, manifest=manifest, total=total, generated=generated,
        skipped=total - len(todo), failed=failed, world_size=state.num_processes,
        seconds=time.perf_counter() - started, invalid=invalid,
    )


def _run(out: Path, jobs: list[tuple[str, int]], pairs: dict[str, Pair], opts: GenerateOptions,
         device: Any, dtype: Any, params: dict[str, Any], quiet: bool, state: Any,
         replaced: dict[tuple[str, int], Any]) -> tuple[int, list[FailedJob]]:
    import dataclasses
    import functools

    from cfspec.gpu.generate.edit_plan import PlanError, PromptTokenizer, build_plan
    from cfspec.gpu.generate.engine import CompileOptions, Engine, Job, Settings
    from cfspec.gpu.generate.weights import load_components
    from cfspec.gpu.generate.writer import Writer
    from cfspec.workspace.batching import batches, draws, group_key

    failed: list[FailedJob] = []
    if not jobs:
        return 0, failed
    comps = load_components(opts.model, device, dtype)
    # Sampled: every job carries its own guidance (all above 1, as the range's low end).
    settings = Settings(**opts.engine_settings())
    engine = Engine(comps, device, dtype, settings,
                    compile=CompileOptions() if opts.compile_unet else None)
    guidance = opts.guidance_setting
    params = {**params, "height": engine.height, "width": engine.width}
    words = PromptTokenizer(comps.tokenizer, comps.tokenizer_2)

    # Plans are per pair; a pair whose edit map cannot be applied fails all its seeds. Sampled
    # settings are per (pair, seed): the guidance its group drew, the windows it drew.
    ready: list[Job] = []
    drawn: dict[tuple[str, int], Draws] = {}
    plans: dict[str, Any] = {}
    for pair_id, seed in jobs:
        if pair_id not in plans:
            try:
                plans[pair_id] = build_plan(pairs[pair_id], words, settings.compat)
            except PlanError as error:
                plans[pair_id] = error
        plan = plans[pair_id]
        if isinstance(plan, PlanError):
            failed.append(FailedJob(pair_id, seed, str(plan)))
            continue
        got = drawn[pair_id, seed] = draws(pairs[pair_id], seed, guidance)
        if got.cross_replace is not None:
            plan = dataclasses.replace(plan, cross_default=(0.0, got.cross_replace))
        if got.self_replace is not None:
            plan = dataclasses.replace(plan, self_window=(0.0, got.self_replace))
        ready.append(Job(pair_id, seed, plan, got.guidance))

    # Pairs with a photo start from its inversion (inverted once per photo, kept in OUT).
    if any(pairs[job.pair_id].image is not None for job in ready):
        from cfspec.gpu.generate.inversion_runs import attach_starts

        ready, refused = attach_starts(out, engine, ready, pairs, opts.inversion, opts.model,
                                       opts.batch_pairs)
        failed += [FailedJob(job.pair_id, job.seed, error) for job, error in refused]

    groups = {pair_id: group_key(pairs[pair_id]) for pair_id in plans}
    batched = batches(ready, lambda job: groups[job.pair_id], lambda job: job.seed,
                      opts.batch_pairs, opts.per_pair)

    generated = 0
    label = "generating" if state.num_processes == 1 else (
        f"generating (process {state.process_index + 1}/{state.num_processes})")
    # PNGs, .npz files and manifest lines are written on the writer thread while the next
    # batch runs (writer.py: same order, same kill safety); at most two batches' pairs wait.
    with progress(len(jobs), label, quiet) as advance, Writer(2 * opts.batch_pairs) as writer:
        advance(len(jobs) - len(ready))
        for batch in batched:
            for outcome in _run_batch(engine, batch):
                if isinstance(outcome, FailedJob):
                    failed.append(outcome)
                else:
                    job = outcome.job
                    writer.submit(functools.partial(_save, out, outcome, pairs[job.pair_id],
                                                    params, replaced,
                                                    drawn[job.pair_id, job.seed],
                                                    opts.inversion))
                    generated += 1
                advance(1)
    engine.close()
    return generated, failed


def _run_batch(engine: Any, batch: list[list[Any]]) -> list[Any]:
    """Outputs or FailedJobs for a batch of sets; a failing batch is retried one set at a time,
    a failing set one job at a time, to find the culprit."""
    try:
        return list(engine.run_sets(batch))
    except Exception as error:
        if len(batch) == 1 and len(batch[0]) == 1:
            job = batch[0][0]
            return [FailedJob(job.pair_id, job.seed, f"{type(error).__name__}: {error}")]
    parts = [[members] for members in batch] if len(batch) > 1 else [
        [[job]] for job in batch[0]]
    results: list[Any] = []
    for part in parts:
        results += _run_batch(engine, part)
    return results


def _save(out: Path, output: Any, pair: Pair, params: dict[str, Any],
          replaced: dict[tuple[str, int], Any], drawn: Draws | None = None,
          inversion: str | None = None) -> None:
    import numpy as np

    job = output.job
    png_0, png_1, extras = image_paths(out, job.pair_id, job.seed)
    store.remove_stale_temps(store.pair_folder(out, job.pair_id), job.seed)
    previous = replaced.get((job.pair_id, job.seed))
    if previous is not None:
        store.append_record(out / MANIFEST_FILE, store.tombstone(previous).to_json())
    store.save_png(png_0, output.images[0])
    store.save_png(png_1, output.images[1])
    plan = job.plan
    photo: dict[str, Any] = {}
    if job.start is not None:  # the photo beside its reconstruction, as it was inverted
        from PIL import Image

        from cfspec.gpu.generate.inversion_runs import photo_pixels

        pixels = photo_pixels(out, job.start.key)
        photo_png = photo_path(out, job.pair_id)
        store.save_png(photo_png, Image.fromarray(pixels))
        photo = {"photo": photo_png.relative_to(out).as_posix(),
                 "inversion": {"method": inversion, "key": job.start.key,
                               "source": pair.image.path if pair.image else None}}
    store.save_npz(extras, {
        "latents": output.latents.astype(np.float32),
        "attention": output.attention.astype(np.float32),
        "mask": output.mask.astype(np.uint8),
        "tokens_0": np.array(plan.pieces_0),
        "tokens_1": np.array(plan.pieces_1),
        "blend_0": np.array(plan.blend_0, dtype=np.int64),
        "blend_1": np.array(plan.blend_1, dtype=np.int64),
    })
    # The manifest line comes last: once it exists, so do the files it names.
    line = ManifestLine(job.pair_id, job.seed, {
        "image_0": png_0.relative_to(out).as_posix(),
        "image_1": png_1.relative_to(out).as_posix(),
        "extras": extras.relative_to(out).as_posix(),
        "prompt_0": pair.prompt_0,
        "prompt_1": pair.prompt_1,
        **params,
        **_sampled(params, drawn),
        "edit": pair.edit,
        "tokens_0": list(plan.pieces_0),
        "tokens_1": list(plan.pieces_1),
        "notes": list(plan.notes),
        **photo,
        "cfspec": __version__,
    })
    store.append_record(out / MANIFEST_FILE, line.to_json())


def _sampled(params: dict[str, Any], drawn: Draws | None) -> dict[str, Any]:
    """The line's effective `guidance`, and `drawn` when anything was sampled for it."""
    found = {} if drawn is None else drawn.to_json()
    guidance = found.get("guidance", params.get("guidance"))
    return {"guidance": guidance, **({"drawn": found} if found else {})}
