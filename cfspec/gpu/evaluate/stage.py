"""`evaluate()`: per-pair and set-level metrics for what `cfspec generate` left in OUT.

Reads OUT/pairs.jsonl (validated, `cfspec.workspace.pairs.read_pairs`) and OUT/manifest.jsonl
(validated line by line against pairs.jsonl and the files on disk, `workspace.manifest_lines`), then
for every (pair, seed), in batches of `batch_size` (pair, seed)s:

* CLIP (`gpu.evaluate.clip.ClipScorer`): both images in one `embed_images` call per batch, every
  distinct prompt once; `clip_score_0`/`_1` (each image with its own prompt),
  `directional_similarity` (+ `directional_defined`), `image_image_similarity`, `effective` and
  `effectiveness_margin` (`cfspec.gpu.evaluate.metrics.pair_metrics`).
* Latent divergence of the two final latents: `latent_l2_per_dim`, `latent_cosine_distance`
  (how much changed, wherever it changed).
* The edit region: the changed words' cross-attention (the .npz `attention`), each map
  rescaled to its own range and thresholded at 0.5 by `changed_region`. Inside/outside it:
  the minimality score `latent_l2_outside_edit` (latent change the edit does not explain),
  `latent_l2_inside_edit`, `latent_change_share_outside_edit`, `edit_area_outside`
  (`cfspec.gpu.evaluate.latents.edit_locality`); and background preservation `background_ssim`,
  `background_psnr`, and `background_lpips` when LPIPS' backbone weights are available locally
  (else skipped, and the summary says why).
* Pairs with a photo (`generate --inversion`): the factual image against the photo beside it,
  `reconstruction_psnr` and `reconstruction_ssim` (the registry's `per_seed` functions) and,
  with LPIPS as above, `reconstruction_lpips` (`gpu.evaluate.perceptual`); null for the others.
* With >= 20 seeds for a pair, CLD's ingredients per seed: `cld_d`, `cld_p_cf`, `cld_p_f`,
  `cld_n_seeds`, `latent_change_vs_reseed`. `cld` itself is null with `cld_reason`: both
  images of a pair share their noise, which makes the published CLD a constant.

Set level, only with Inception weights (a local file, `--inception-weights`): KID, and FID
(refused below 50 images, warned below 2048), of the counterfactual images against the factual
ones (identical factual images shared by several pairs counted once), each with N, the feature
size and a noise floor at the candidate's size (see `SetDistance`). Means are over pairs (each
pair's seeds averaged first), with a studentized two-stage cluster-bootstrap 95% interval
(`cluster_bootstrap_ci`), none below 5 pairs.

Sharded (`shard`, `--shard I/N`, for SLURM arrays and separate machines): only the pairs of
shard I (`cfspec.workspace.shards`, the split generate --shard uses) are evaluated, and their
rows go to their own file, OUT/metrics.shard-I-of-N.jsonl (atomic), never to metrics.jsonl; each
row carries `inputs_sha256`, the digest of what it was computed from (both PNGs, the .npz, the
photo, the manifest line, the pair's prompts, the CLIP model, its dtype, whether LPIPS ran, the
metric registry and cfspec's version). The set-level metrics (KID/FID need every image) are skipped.
Every run, sharded or not, reuses a shard file's row whose digest still matches instead of
recomputing it: the unsharded `evaluate OUT` after the shards computes only what is missing or
stale (an image regenerated, another CLIP model), then CLD (it spans a pair's seeds, so it is
always recomputed from the .npz files: cheap, no model) and the set-level metrics, and writes
metrics.jsonl and the summary as one unsharded run does. A reused row holds the very numbers
the shard computed. Recomputed ones are the same numbers too: every CLIP call has one shape
(`fixed_shape`: image batches padded to 2 x batch_size, text batches to TEXT_BATCH prompts of 77
tokens), because matrix products may round a row differently in a batch of another size; so a
(pair, seed) gets the same bits whichever rows share its batch, as long as shards and merge use
the same --batch-size, device and dtype (tested on the CPU; LPIPS, when its weights are
present, still runs on the batch as it comes).

Damaged files (a truncated or garbage PNG, a truncated .npz: `cfspec.workspace.integrity`, the
check export and report share) are `damaged-file` errors; those (pair, seed)s are not scored,
the others are, and the command exits 1.

Writes OUT/metrics.jsonl (one row per (pair, seed), pairs.jsonl order then seed; atomic), then
OUT/metrics_summary.json, computed from exactly the rows written and carrying their SHA-256
(`metrics_sha256`): a run killed between the two files leaves a summary that readers see does
not belong to the rows (`workspace.metrics_rows.read_summary` then ignores it), and the next run
rewrites both. Neither file holds timings (the run's duration is only on the result, and
printed), so a re-run after a kill gives the same bytes as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cfspec import __version__
from cfspec.diagnostics.records import Diagnostic
from cfspec.gpu.evaluate.perceptual import (
    Lpips,
    lpips_available,
    masked_lpips,
    reconstruction_lpips,
)
from cfspec.gpu.evaluate.summary import (
    SetFeatures,
    dumps_summary,
    make_summary,
)
from cfspec.gpu.evaluate.vqa import VqaLoadError
from cfspec.gpu.evaluate.vqa_stage import add_question_metrics, load_vqa, write_answers
from cfspec.stages.options import EvaluateOptions, OptionError
from cfspec.stages.progress import progress
from cfspec.workspace.atomic import write_text_atomic
from cfspec.workspace.batching import group_key
from cfspec.workspace.integrity import NPZ_ERRORS, Damage, check_generated
from cfspec.workspace.layout import METRICS_FILE, SUMMARY_FILE, metrics_shard_file
from cfspec.workspace.manifest_lines import Generated, read_manifest
from cfspec.workspace.metrics import METRICS
from cfspec.workspace.metrics_rows import INPUTS_KEY, MetricsRow, metrics_digest, read_metric_shards
from cfspec.workspace.pairs import Pair
from cfspec.workspace.provenance import file_sha256
from cfspec.workspace.reading import StageError, json_line, read_pair_file
from cfspec.workspace.shards import ALL, Shard

TEXT_BATCH = 32  # prompts per CLIP text call, padded: one shape for every call


class EvaluateError(StageError):
    """Nothing can be evaluated (missing files, an unloadable model): a usage error. With
    `diagnostics` (every (pair, seed) had damaged files), what was found wrong: exit 1."""

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.diagnostics = list(diagnostics)


@dataclass
class EvaluateResult:
    out_dir: Path
    metrics_path: Path  # metrics.jsonl, or a sharded run's metrics.shard-I-of-N.jsonl
    summary_path: Path | None  # None: a sharded run writes no summary
    rows: list[MetricsRow]  # as written to metrics.jsonl and read back
    summary: dict[str, Any]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    not_generated: list[str] = field(default_factory=list)  # pair ids with no images
    damaged: list[Damage] = field(default_factory=list)  # files of (pair, seed)s not scored
    notes: list[str] = field(default_factory=list)  # what was skipped and why
    seconds: float = 0.0  # how long it took (kept out of the files: re-runs give equal bytes)
    shard: Shard = ALL
    reused: int = 0  # rows taken from shard files (their inputs unchanged), not recomputed
    shard_files: list[Path] = field(default_factory=list)  # the shard files read

    @property
    def ok(self) -> bool:
        from cfspec.diagnostics.records import has_errors

        return not has_errors(self.diagnostics)


def evaluate(out_dir: str | Path, options: EvaluateOptions | None = None,
             **settings: Any) -> EvaluateResult:
    """Evaluate every generated (pair, seed) of OUT; write metrics.jsonl and the summary.
    `options` (stages.options.EvaluateOptions) or its fields as keywords
    (`evaluate(out, clip_model="tiny")`), not both. With `shard` (I of N > 1): only that
    shard's pairs, to OUT/metrics.shard-I-of-N.jsonl, no set-level metrics and no summary file
    (see the module docstring).

    `feature_extractor` (uint8 images -> (N, F)) replaces the Inception network for the set
    metrics (tests, custom feature spaces); give at most one of it and `inception_weights`.
    Raises EvaluateError when nothing can be evaluated; problems with single lines or files are
    returned as diagnostics (the command then exits 1)."""
    started = time.perf_counter()
    out = Path(out_dir)
    if options is not None and settings:
        raise TypeError("evaluate() takes options or keyword settings, not both")
    try:  # 1. Every option, then every input, before any model loads.
        opts = (EvaluateOptions(**settings) if options is None else options).check()
    except OptionError as error:
        raise EvaluateError(str(error)) from None
    work = _Inputs.read(out, opts.shard)
    # 2. Models.
    scorer, extractor, lpips, notes = _load_models(opts, work)
    try:  # --vqa-model's scorer (none for a shard: the unsharded run asks the questions)
        vqa = load_vqa(opts, work.sharded, work.out, scorer.device, notes)
    except VqaLoadError as error:
        raise EvaluateError(str(error)) from None
    # 3. Rows the shard files already hold for these very inputs are reused.
    setting = _setting_key(opts, scorer, lpips is not None)
    digests, reused, shard_files = _reusable(work, setting)
    # 4. Texts once, then the (pair, seed)s in batches. The set-level features need every
    # image, reused or not, in the one order: then every job is read, and only CLIP skipped.
    todo = [g for g in work.jobs if (g.id, g.seed) not in reused]
    features = SetFeatures(extractor) if extractor is not None else None
    computed = _score(work.jobs if features is not None else todo, todo, work.by_id, scorer,
                      lpips, features, set(reused), opts)
    rows = [reused[key] if key in reused else computed[key]
            for key in ((g.id, g.seed) for g in work.jobs)]
    # 5. CLD for pairs with enough seeds (always recomputed: it spans a pair's seeds).
    notes += _add_cld(rows, work.generated)
    answers: list[dict[str, Any]] = []
    if vqa is not None:  # 5b. The spec's questions (gpu.evaluate.vqa_stage).
        answers, asked = add_question_metrics(out, rows, work.jobs, work.by_id, vqa, _load_png,
                                              opts.quiet)
        notes += asked
    # 6. Write the rows, then the summary of exactly those rows (their bytes, read back).
    normal = [MetricsRow.from_json(r).to_json() for r in rows]
    text = "".join(json_line(r) for r in normal)
    # split("\n"): a prompt may hold U+2028, U+2029 or U+0085 unescaped (ensure_ascii=False).
    written = [MetricsRow.from_json(json.loads(line)) for line in text.split("\n") if line]
    summary_path: Path | None = None
    if work.sharded:
        notes.append(f"KID/FID skipped: shard {opts.shard} sees part of the images; `cfspec "
                     f"evaluate {out}` without --shard, after every shard, computes them")
        metrics_path = out / metrics_shard_file(opts.shard.index, opts.shard.count)
        write_text_atomic(metrics_path, "".join(
            json_line({**r, INPUTS_KEY: digests[(r["id"], r["seed"])]}) for r in normal))
        summary = make_summary(written, work.mine, scorer.name, str(scorer.device), None,
                               notes, opts.bootstrap_resamples, work.not_generated,
                               set_skipped=notes[-1])
    else:
        metrics_path, summary_path = out / METRICS_FILE, out / SUMMARY_FILE
        write_answers(out, vqa, answers)
        write_text_atomic(metrics_path, text)
        summary = make_summary(written, work.pairs, scorer.name, str(scorer.device), features,
                               notes, opts.bootstrap_resamples, work.not_generated)
        if vqa is not None:
            summary["vqa_model"] = vqa.name
        summary["metrics_sha256"] = metrics_digest(text.encode("utf-8"))
        write_text_atomic(summary_path, dumps_summary(summary))
    return EvaluateResult(out, metrics_path, summary_path, written, summary, work.diagnostics,
                          work.not_generated, work.check.damage, notes,
                          time.perf_counter() - started, opts.shard, len(reused), shard_files)


@dataclass
class _Inputs:
    """What OUT holds to evaluate: the pairs, the finished (pair, seed)s of this shard whose
    files are whole, and what was found wrong on the way."""

    out: Path
    pairs: list[Pair]
    by_id: dict[str, Pair]
    mine: list[Pair]  # this shard's pairs (all of them unsharded)
    sharded: bool
    generated: dict[str, dict[int, Generated]]
    jobs: list[Generated]
    not_generated: list[str]
    check: Any  # workspace.integrity's check of the files
    diagnostics: list[Diagnostic]

    @classmethod
    def read(cls, out: Path, shard: Shard) -> _Inputs:
        pairs, diagnostics = read_pair_file(out)
        by_id = {p.id: p for p in pairs}
        generated, problems = read_manifest(out, by_id)
        diagnostics = [*diagnostics, *problems]
        sharded = shard.count > 1
        mine = shard.select(pairs) if sharded else pairs
        if sharded and not mine:
            groups = len({group_key(p) for p in pairs})
            raise EvaluateError(f"--shard {shard}: holds no pair (shards split by factual "
                                f"prompt, and pairs.jsonl has {groups}); use at most {groups} "
                                "shard(s)")
        generated = {p.id: generated[p.id] for p in mine if p.id in generated}
        jobs = [g for p in mine for g in generated.get(p.id, {}).values()]
        not_generated = [p.id for p in mine if not generated.get(p.id)]
        if not jobs:
            where = f"shard {shard} of {out}" if sharded else str(out)
            raise EvaluateError(f"{where}: no finished images to evaluate (run `cfspec "
                                f"generate {out}` first)")
        # A (pair, seed) with a damaged image or .npz is reported and not scored (nor in CLD).
        check = check_generated(out, jobs, "not scored: no metrics.jsonl row")
        diagnostics += check.diagnostics
        if check.damage:
            jobs = [g for g in jobs if check.ok(g)]
            generated = {pid: kept for pid, seeds in generated.items()
                         if (kept := {s: g for s, g in seeds.items() if check.ok(g)})}
            if not jobs:
                raise EvaluateError(f"{out}: every finished (pair, seed) has a damaged file; "
                                    "nothing to evaluate", diagnostics)
        return cls(out, pairs, by_id, mine, sharded, generated, jobs, not_generated, check,
                   diagnostics)


def _load_models(opts: EvaluateOptions, work: _Inputs
                 ) -> tuple[Any, torch.nn.Module | None, Lpips | None, list[str]]:
    """CLIP, the set-level feature extractor (none for a shard), LPIPS (None: it does not
    run), and the notes on what is skipped."""
    from cfspec.gpu.device import DeviceError, pick
    from cfspec.gpu.evaluate.clip import ClipLoadError, ClipScorer

    try:
        torch_device = torch.device(pick(opts.device))
        scorer = ClipScorer.load(opts.clip_model, device=torch_device)
    except (DeviceError, ClipLoadError) as error:
        raise EvaluateError(str(error)) from None
    extractor = None if work.sharded else opts.feature_extractor
    if opts.inception_weights is not None and not work.sharded:
        from cfspec.gpu.evaluate.set_distances import inception_extractor

        extractor = inception_extractor(opts.inception_weights).to(scorer.device)
    notes: list[str] = []
    if work.check.damage:
        notes.append(f"{len(work.check.keys())} (pair, seed)(s) not scored: damaged files "
                     "(see the damaged-file diagnostics)")
    why = "turned off" if not opts.lpips else lpips_available()[1]
    if why is not None:
        photos = any(g.photo is not None for g in work.jobs)
        notes.append(f"background_lpips{' and reconstruction_lpips' if photos else ''} "
                     f"skipped: {why}")
    lpips = Lpips(device=scorer.device) if why is None else None
    return scorer, extractor, lpips, notes


def _reusable(work: _Inputs, setting: str) -> tuple[
        dict[tuple[str, int], str], dict[tuple[str, int], dict[str, Any]], list[Path]]:
    """The inputs' digests (the ones needed), the shard files' rows for unchanged inputs, and
    the shard files read; their problems join `work.diagnostics`."""
    shard_rows, shard_files, problems = read_metric_shards(work.out, work.by_id)
    work.diagnostics += problems
    # Hashing an image costs a read of it: only for a shard file's rows, or a row it may reuse.
    digests = {(g.id, g.seed): _inputs_digest(g, work.by_id[g.id], setting) for g in work.jobs
               if work.sharded or (g.id, g.seed) in shard_rows}
    reused: dict[tuple[str, int], dict[str, Any]] = {}
    for key, digest in digests.items():
        row = shard_rows.get(key, {}).get(digest)
        if row is not None:
            reused[key] = _without_cld(row.to_json())
    return digests, reused, shard_files


def _score(walk: list[Generated], todo: list[Generated], by_id: dict[str, Pair], scorer: Any,
           lpips: Lpips | None, features: SetFeatures | None, reused: set[tuple[str, int]],
           opts: EvaluateOptions) -> dict[tuple[str, int], dict[str, Any]]:
    """The rows of `todo`, batch by batch over `walk` (every job when set features are
    wanted: their images are read, only CLIP skipped for reused rows)."""
    prompts = list(dict.fromkeys(t for g in todo for t in _prompts(by_id[g.id])))
    text_emb = (dict(zip(prompts, scorer.embed_texts(prompts, TEXT_BATCH, fixed_shape=True),
                         strict=True)) if prompts else {})
    computed: dict[tuple[str, int], dict[str, Any]] = {}
    with progress(len(walk), "evaluating", opts.quiet) as advance:
        for start in range(0, len(walk), opts.batch_size):
            batch = walk[start : start + opts.batch_size]
            computed.update(_evaluate_batch(batch, by_id, scorer, text_emb, lpips,
                                            features, reused, opts.batch_size))
            advance(len(batch))
    return computed


# --- reuse across shards -------------------------------------------------------------------------

# What CLD writes into a row (`_add_cld`): dropped from a reused row and recomputed, since it
# depends on every seed of the pair.
_CLD_KEYS = ("cld", "cld_d", "cld_p_cf", "cld_p_f", "cld_n_seeds", "latent_change_vs_reseed",
             "cld_reason")


def _without_cld(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in _CLD_KEYS}


def _setting_key(opts: EvaluateOptions, scorer: Any, use_lpips: bool) -> str:
    """What besides the images decides a row's numbers: the options' (opts.manifest_params:
    the CLIP model, the batch size, as a row's last bits follow the batch shape, LPIPS), as
    resolved here (the model's name, its dtype and device type, whether LPIPS could run), the
    metric registry, cfspec's version."""
    return json.dumps({**opts.manifest_params(), "clip_model": scorer.name,
                       "clip_dtype": str(scorer.dtype),
                       "device": torch.device(scorer.device).type, "lpips": use_lpips,
                       "metrics": [m.name for m in METRICS], "cfspec": __version__},
                      sort_keys=True)


def _inputs_digest(job: Generated, pair: Pair, setting: str) -> str:
    """The SHA-256 of everything a (pair, seed)'s row is computed from."""
    digest = hashlib.sha256()
    about = [pair.spec, pair.counterfactual, pair.prompt_0, pair.prompt_1]
    for part in (setting, json.dumps(about, ensure_ascii=False),
                 json.dumps(job.line.to_json(), sort_keys=True, ensure_ascii=False)):
        digest.update(part.encode("utf-8") + b"\0")
    for path in (job.image_0, job.image_1, job.extras, job.photo):
        found = None if path is None else file_sha256(path)
        digest.update(b"no file\0" if found is None else bytes.fromhex(found))
    return digest.hexdigest()


def _prompts(pair: Pair) -> tuple[str, str]:
    return pair.prompt_0, pair.prompt_1


# --- one batch ---------------------------------------------------------------------------------


@dataclass
class Sample:
    """One (pair, seed) as read from OUT: what a registry metric's `per_seed` function gets."""

    job: Generated  # id, seed, the manifest line and the file paths
    image_0: np.ndarray  # (H, W, 3) uint8
    image_1: np.ndarray
    latents: np.ndarray | None  # (2, C, h, w)
    attention: np.ndarray | None  # (2, h', w')
    note: str | None = None

    def shape_key(self) -> tuple[Any, ...]:
        return (self.image_0.shape, self.image_1.shape,
                None if self.latents is None else self.latents.shape,
                None if self.attention is None else self.attention.shape)


def _load_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _load(job: Generated) -> Sample:
    image_0, image_1 = _load_png(job.image_0), _load_png(job.image_1)
    latents = attention = None
    note = None
    if job.extras is not None:
        try:
            with np.load(job.extras, allow_pickle=False) as extras:
                latents = np.asarray(extras["latents"], dtype=np.float32)
                attention = np.asarray(extras["attention"], dtype=np.float32)
        except NPZ_ERRORS as error:  # changed since it was checked
            note = f"{job.extras}: unreadable ({type(error).__name__}: {error})"
            latents = attention = None
        else:
            if latents.ndim != 4 or latents.shape[0] != 2:
                note = f"{job.extras}: latents of shape {latents.shape}, expected (2, C, h, w)"
                latents = None
            if attention.ndim != 3 or attention.shape[0] != 2:
                note = f"{job.extras}: attention of shape {attention.shape}, expected (2, h, w)"
                attention = None
    if image_0.shape != image_1.shape:
        note = f"the two images differ in size ({image_0.shape} vs {image_1.shape})"
        attention = None
    return Sample(job, image_0, image_1, latents, attention, note)


def _evaluate_batch(batch: Sequence[Generated], pairs: dict[str, Pair],
                    scorer: Any, text_emb: dict[str, torch.Tensor], lpips: Lpips | None,
                    features: SetFeatures | None, reused: set[tuple[str, int]] | None = None,
                    batch_size: int = 32) -> dict[tuple[str, int], dict[str, Any]]:
    """(id, seed) -> row for the batch's jobs not in `reused`; every job's images go to the
    set-level `features`."""
    from cfspec.gpu.evaluate.metrics import pair_metrics

    reused = reused or set()
    loaded = [_load(job) for job in batch]
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    # Tensors must share a shape: one group per shape (normally the whole batch).
    groups: dict[tuple[Any, ...], list[Sample]] = {}
    for item in loaded:
        groups.setdefault(item.shape_key(), []).append(item)
    for whole in groups.values():
        if features is not None:
            features.add(whole, torch.from_numpy(np.stack([g.image_0 for g in whole])),
                         torch.from_numpy(np.stack([g.image_1 for g in whole])))
        group = [g for g in whole if (g.job.id, g.job.seed) not in reused]
        if not group:
            continue
        im0 = torch.from_numpy(np.stack([g.image_0 for g in group]))
        im1 = torch.from_numpy(np.stack([g.image_1 for g in group]))
        # One shape per call (the batch's both images, padded): a row's numbers do not
        # depend on which other (pair, seed)s share its batch, so shards and one run agree.
        emb = scorer.embed_images(torch.cat([im0, im1]), 2 * batch_size, fixed_shape=True)
        n = len(group)
        t0 = torch.stack([text_emb[pairs[g.job.id].prompt_0] for g in group])
        t1 = torch.stack([text_emb[pairs[g.job.id].prompt_1] for g in group])
        latents = _stack([g.latents for g in group])
        changed = _stack([g.attention for g in group])
        metrics = pair_metrics(
            emb[:n], emb[n:], t0, t1,
            images_0=im0 if changed is not None else None,
            images_1=im1 if changed is not None else None,
            changed=changed,
            latents_0=latents[:, 0] if latents is not None else None,
            latents_1=latents[:, 1] if latents is not None else None,
        )
        if lpips is not None:
            if changed is not None:
                for row, score in zip(metrics, masked_lpips(im0, im1, changed, lpips=lpips),
                                      strict=True):
                    row["background_lpips"] = score.value
                    if score.reason is not None:
                        row["background_lpips_reason"] = score.reason
            for row, made in zip(metrics, reconstruction_lpips(group, lpips), strict=True):
                row["reconstruction_lpips"] = made.value
                if made.reason is not None:
                    row["reconstruction_lpips_reason"] = made.reason
        for item, values in zip(group, metrics, strict=True):
            rows[(item.job.id, item.job.seed)] = _row(item, pairs[item.job.id], values)
    for item in loaded:
        if (item.job.id, item.job.seed) in rows:
            _add_per_seed(rows[(item.job.id, item.job.seed)], item)
    return rows


def _add_per_seed(row: dict[str, Any], sample: Sample) -> None:
    """The registry's metrics that come with their own function, one (pair, seed) at a time;
    one that fails is null with its reason, and the others still go on."""
    for metric in METRICS:
        if metric.per_seed is None:
            continue
        try:
            value = metric.per_seed(sample)
        except Exception as error:  # noqa: BLE001 - a user's metric must not stop the run
            row[metric.name] = None
            row[f"{metric.name}_reason"] = f"{type(error).__name__}: {error}"
            continue
        row[metric.name] = None if value is None else _finite(float(value))


def _stack(arrays: list[np.ndarray | None]) -> torch.Tensor | None:
    """The arrays stacked, or None when any is missing (a group shares one shape key, so
    either all or none are)."""
    present = [a for a in arrays if a is not None]
    if len(present) != len(arrays):
        return None
    return torch.from_numpy(np.stack(present))


def _row(item: Sample, pair: Pair, values: dict[str, Any]) -> dict[str, Any]:
    job = item.job
    row: dict[str, Any] = {
        "id": job.id, "seed": job.seed, "spec": pair.spec,
        "counterfactual": pair.counterfactual, "prompt_0": pair.prompt_0,
        "prompt_1": pair.prompt_1, "model": job.line.text("model"),
        "height": int(item.image_0.shape[0]), "width": int(item.image_0.shape[1]),
    }
    for key, value in values.items():
        row[key] = _finite(value)
    if item.latents is None:
        row["latent_reason"] = item.note or "no .npz beside the images"
    if item.attention is None:
        row["background_reason"] = item.note or "no .npz beside the images"
    return row


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- CLD ---------------------------------------------------------------------------------------


def _add_cld(rows: list[dict[str, Any]], generated: dict[str, dict[int, Generated]]
             ) -> list[str]:
    """CLD per (pair, seed) for the pairs with >= CLD_MIN_SEEDS seeds with latents."""
    from cfspec.gpu.evaluate.latents import CLD_MIN_SEEDS, SHARED_NOISE, cld_from_latents

    by_key = {(r["id"], r["seed"]): r for r in rows}
    computed, most = 0, 0
    for pair_id, seeds in generated.items():
        usable = [g for g in seeds.values() if g.extras is not None]
        most = max(most, len(usable))
        if len(usable) < CLD_MIN_SEEDS:
            continue
        stacks = []
        for job in usable:
            try:
                with np.load(job.extras, allow_pickle=False) as extras:  # type: ignore[arg-type]
                    stacks.append(np.asarray(extras["latents"], dtype=np.float32))
            except NPZ_ERRORS:  # changed since it was checked
                stacks = []
                break
        if not stacks or len({s.shape for s in stacks}) != 1:
            continue
        latents = torch.from_numpy(np.stack(stacks))  # (K, 2, C, h, w)
        for index, job in enumerate(usable):
            # Both images of a (pair, seed) start from that seed's noise (Prompt-to-Prompt).
            result = cld_from_latents(latents[:, 0], latents[:, 1], index, shared_noise=True)
            row = by_key.get((pair_id, job.seed))
            if row is not None:
                row.update(cld=result.cld, cld_d=result.d, cld_p_cf=result.p_cf,
                           cld_p_f=result.p_f, cld_n_seeds=result.n_seeds,
                           latent_change_vs_reseed=_finite(result.d_vs_reseed))
                if result.reason is not None:
                    row["cld_reason"] = result.reason
        computed += 1
    notes = []
    if computed:
        notes.append(f"cld not reported (null, see cld_reason): {SHARED_NOISE}; its "
                     "ingredients cld_d, cld_p_cf, cld_p_f and latent_change_vs_reseed are "
                     "reported")
    if computed < len(generated):
        notes.append(f"cld ingredients computed for {computed} of {len(generated)} pair(s): "
                     f"they need >= {CLD_MIN_SEEDS} seeds per pair (most seeds of a pair here: "
                     f"{most}); latent_l2_outside_edit is the per-seed minimality score")
    return notes
