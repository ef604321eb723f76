"""`evaluate()`: per-pair and set-level metrics for what `cfspec generate` left in OUT.

Reads OUT/pairs.jsonl (validated, `cfspec.workspace.pairs.read_pairs`) and OUT/manifest.jsonl
(validated line by line against pairs.jsonl and the files on disk, `cfspec.workspace.records`), then
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
  (`cfspec.gpu.evaluate.metrics.edit_locality`); and background preservation `background_ssim`,
  `background_psnr`, and `background_lpips` when LPIPS' backbone weights are available locally
  (else skipped, and the summary says why).
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
manifest line, the pair's prompts, the CLIP model, its dtype, whether LPIPS ran, the metric
registry and cfspec's version). The set-level metrics (KID/FID need every image) are skipped.
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
not belong to the rows (`cfspec.workspace.records.read_summary` then ignores it), and the next run
rewrites both. Neither file holds timings (the run's duration is only on the result, and
printed), so a re-run after a kill gives the same bytes as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cfspec import __version__
from cfspec.diagnostics.records import Diagnostic
from cfspec.stages.progress import progress
from cfspec.workspace.atomic import write_text_atomic
from cfspec.workspace.batching import group_key
from cfspec.workspace.integrity import NPZ_ERRORS, Damage, check_generated
from cfspec.workspace.layout import METRICS_FILE, SUMMARY_FILE, metrics_shard_file
from cfspec.workspace.metrics import METRICS
from cfspec.workspace.pairs import Pair
from cfspec.workspace.provenance import file_sha256
from cfspec.workspace.records import (
    INPUTS_KEY,
    Generated,
    MetricsRow,
    StageError,
    json_line,
    metrics_digest,
    read_manifest,
    read_metric_shards,
    read_pair_file,
)
from cfspec.workspace.shards import ALL, Shard

BOOTSTRAP_RESAMPLES = 2000
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


def evaluate(  # noqa: C901
    out_dir: str | Path,
    clip_model: str = "openai/clip-vit-large-patch14",
    *,
    inception_weights: str | Path | None = None,
    feature_extractor: torch.nn.Module | None = None,
    device: str = "cpu",
    batch_size: int = 32,
    lpips: bool = True,
    quiet: bool = True,
    bootstrap_resamples: int = BOOTSTRAP_RESAMPLES,
    shard: Shard = ALL,
) -> EvaluateResult:
    """Evaluate every generated (pair, seed) of OUT; write metrics.jsonl and the summary.
    With `shard` (I of N > 1): only that shard's pairs, to OUT/metrics.shard-I-of-N.jsonl, no
    set-level metrics and no summary file (see the module docstring).

    `feature_extractor` (uint8 images -> (N, F)) replaces the Inception network for the set
    metrics (tests, custom feature spaces); give at most one of it and `inception_weights`.
    Raises EvaluateError when nothing can be evaluated; problems with single lines or files are
    returned as diagnostics (the command then exits 1)."""
    from cfspec.gpu.evaluate.clip import ClipLoadError, ClipScorer

    started = time.perf_counter()
    out = Path(out_dir)

    # 1. Check inputs before loading any model.
    if batch_size < 1:
        raise EvaluateError("--batch-size must be at least 1")
    if inception_weights is not None and feature_extractor is not None:
        raise EvaluateError("give --inception-weights or a feature extractor, not both")
    if inception_weights is not None and not Path(inception_weights).expanduser().is_file():
        raise EvaluateError(f"--inception-weights {inception_weights}: no such file (FID/KID "
                            "read torch-fidelity's pt_inception-2015-12-05-6726825d.pth from a "
                            "local file; nothing is downloaded)")
    pairs, diagnostics = read_pair_file(out)
    by_id = {p.id: p for p in pairs}
    generated, problems = read_manifest(out, by_id)
    diagnostics = [*diagnostics, *problems]
    sharded = shard.count > 1
    mine = shard.select(pairs) if sharded else pairs
    if sharded and not mine:
        groups = len({group_key(p) for p in pairs})
        raise EvaluateError(f"--shard {shard}: holds no pair (shards split by factual prompt, "
                            f"and pairs.jsonl has {groups}); use at most {groups} shard(s)")
    generated = {p.id: generated[p.id] for p in mine if p.id in generated}
    jobs = [g for p in mine for g in generated.get(p.id, {}).values()]
    not_generated = [p.id for p in mine if not generated.get(p.id)]
    if not jobs:
        where = f"shard {shard} of {out}" if sharded else str(out)
        raise EvaluateError(f"{where}: no finished images to evaluate (run `cfspec generate "
                            f"{out}` first)")
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

    # 2. Models.
    from cfspec.gpu.device import DeviceError, pick

    try:
        torch_device = torch.device(pick(device))
    except DeviceError as error:
        raise EvaluateError(str(error)) from None
    try:
        scorer = ClipScorer.load(clip_model, device=torch_device)
    except ClipLoadError as error:
        raise EvaluateError(str(error)) from None
    extractor = None if sharded else feature_extractor
    if inception_weights is not None and not sharded:
        from cfspec.gpu.evaluate.metrics import inception_extractor

        extractor = inception_extractor(inception_weights).to(scorer.device)
    notes: list[str] = []
    if check.damage:
        notes.append(f"{len(check.keys())} (pair, seed)(s) not scored: damaged files "
                     "(see the damaged-file diagnostics)")
    use_lpips = False
    if lpips:
        from cfspec.gpu.evaluate.metrics import lpips_available

        use_lpips, why = lpips_available()
        if not use_lpips:
            notes.append(f"background_lpips skipped: {why}")
    else:
        notes.append("background_lpips skipped: turned off")

    # 3. Rows the shard files already hold for these very inputs are reused.
    shard_rows, shard_files, problems = read_metric_shards(out, by_id)
    diagnostics += problems
    setting = _setting_key(scorer, use_lpips, batch_size)
    # Hashing an image costs a read of it: only for a shard file's rows, or a row it may reuse.
    digests = {(g.id, g.seed): _inputs_digest(g, by_id[g.id], setting) for g in jobs
               if sharded or (g.id, g.seed) in shard_rows}
    reused: dict[tuple[str, int], dict[str, Any]] = {}
    for key, digest in digests.items():
        row = shard_rows.get(key, {}).get(digest)
        if row is not None:
            reused[key] = _without_cld(row.to_json())
    todo = [g for g in jobs if (g.id, g.seed) not in reused]

    # 4. Texts once, then the (pair, seed)s in batches. The set-level features need every
    # image, reused or not, in the one order: then every job is read, and only CLIP skipped.
    prompts = list(dict.fromkeys(t for g in todo for t in _prompts(by_id[g.id])))
    text_emb = (dict(zip(prompts, scorer.embed_texts(prompts, TEXT_BATCH, fixed_shape=True),
                         strict=True)) if prompts else {})
    computed: dict[tuple[str, int], dict[str, Any]] = {}
    features: _SetFeatures | None = _SetFeatures(extractor) if extractor is not None else None
    walk = jobs if features is not None else todo
    with progress(len(walk), "evaluating", quiet) as advance:
        for start in range(0, len(walk), batch_size):
            batch = walk[start : start + batch_size]
            computed.update(_evaluate_batch(batch, by_id, scorer, text_emb, use_lpips,
                                            features, set(reused), batch_size))
            advance(len(batch))
    rows = [reused[(g.id, g.seed)] if (g.id, g.seed) in reused else computed[(g.id, g.seed)]
            for g in jobs]

    # 5. CLD for pairs with enough seeds (always recomputed: it spans a pair's seeds).
    notes += _add_cld(rows, generated)

    # 6. Write the rows, then the summary of exactly those rows (their bytes, read back).
    normal = [MetricsRow.from_json(r).to_json() for r in rows]
    text = "".join(json_line(r) for r in normal)
    # split("\n"): a prompt may hold U+2028, U+2029 or U+0085 unescaped (ensure_ascii=False).
    written = [MetricsRow.from_json(json.loads(line)) for line in text.split("\n") if line]
    if sharded:
        notes.append(f"KID/FID skipped: shard {shard} sees part of the images; `cfspec "
                     f"evaluate {out}` without --shard, after every shard, computes them")
        metrics_path = out / metrics_shard_file(shard.index, shard.count)
        write_text_atomic(metrics_path, "".join(
            json_line({**r, INPUTS_KEY: digests[(r["id"], r["seed"])]}) for r in normal))
        summary = _summary(written, mine, scorer.name, str(scorer.device), None, notes,
                           bootstrap_resamples, not_generated, set_skipped=notes[-1])
        return EvaluateResult(out, metrics_path, None, written, summary, diagnostics,
                              not_generated, check.damage, notes,
                              time.perf_counter() - started, shard, len(reused), shard_files)
    metrics_path, summary_path = out / METRICS_FILE, out / SUMMARY_FILE
    write_text_atomic(metrics_path, text)
    summary = _summary(written, pairs, scorer.name, str(scorer.device), features, notes,
                       bootstrap_resamples, not_generated)
    summary["metrics_sha256"] = metrics_digest(text.encode("utf-8"))
    write_text_atomic(summary_path, _dumps_summary(summary))
    return EvaluateResult(out, metrics_path, summary_path, written, summary, diagnostics,
                          not_generated, check.damage, notes, time.perf_counter() - started,
                          shard, len(reused), shard_files)


# --- reuse across shards -------------------------------------------------------------------------

# What CLD writes into a row (`_add_cld`): dropped from a reused row and recomputed, since it
# depends on every seed of the pair.
_CLD_KEYS = ("cld", "cld_d", "cld_p_cf", "cld_p_f", "cld_n_seeds", "latent_change_vs_reseed",
             "cld_reason")


def _without_cld(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in _CLD_KEYS}


def _setting_key(scorer: Any, use_lpips: bool, batch_size: int) -> str:
    """What besides the images decides a row's numbers: the CLIP model, its dtype and device
    type, the batch size (a row's last bits follow the batch shape), LPIPS on or off, the
    metric registry, cfspec's version."""
    return json.dumps({"clip_model": scorer.name, "clip_dtype": str(scorer.dtype),
                       "device": torch.device(scorer.device).type, "batch_size": batch_size,
                       "lpips": use_lpips, "metrics": [m.name for m in METRICS],
                       "cfspec": __version__}, sort_keys=True)


def _inputs_digest(job: Generated, pair: Pair, setting: str) -> str:
    """The SHA-256 of everything a (pair, seed)'s row is computed from."""
    digest = hashlib.sha256()
    about = [pair.spec, pair.counterfactual, pair.prompt_0, pair.prompt_1]
    for part in (setting, json.dumps(about, ensure_ascii=False),
                 json.dumps(job.line.to_json(), sort_keys=True, ensure_ascii=False)):
        digest.update(part.encode("utf-8") + b"\0")
    for path in (job.image_0, job.image_1, job.extras):
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
                    scorer: Any, text_emb: dict[str, torch.Tensor], use_lpips: bool,
                    features: _SetFeatures | None, reused: set[tuple[str, int]] | None = None,
                    batch_size: int = 32) -> dict[tuple[str, int], dict[str, Any]]:
    """(id, seed) -> row for the batch's jobs not in `reused`; every job's images go to the
    set-level `features`."""
    from cfspec.gpu.evaluate.metrics import masked_lpips, pair_metrics

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
        if use_lpips and changed is not None:
            for row, score in zip(metrics, masked_lpips(im0, im1, changed), strict=True):
                row["background_lpips"] = score.value
                if score.reason is not None:
                    row["background_lpips_reason"] = score.reason
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
    from cfspec.gpu.evaluate.metrics import CLD_MIN_SEEDS, SHARED_NOISE, cld_from_latents

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


# --- set level ---------------------------------------------------------------------------------


class _SetFeatures:
    """Feature rows of the factual images (each distinct image once) and of the
    counterfactual images, computed batch by batch so no image set is held in memory."""

    def __init__(self, extractor: torch.nn.Module) -> None:
        self.extractor = extractor
        self.reference: list[torch.Tensor] = []
        self.candidate: list[torch.Tensor] = []
        self.seen: set[str] = set()
        self.duplicates = 0

    def add(self, group: Sequence[Sample], im0: torch.Tensor, im1: torch.Tensor) -> None:
        from cfspec.gpu.evaluate.metrics import extract_features

        keep = []
        for i, item in enumerate(group):
            digest = hashlib.sha256(item.image_0.tobytes()).hexdigest()
            if digest in self.seen:
                self.duplicates += 1
            else:
                self.seen.add(digest)
                keep.append(i)
        if keep:
            ref = im0[keep].permute(0, 3, 1, 2).contiguous()
            self.reference.append(extract_features(ref, self.extractor))
        self.candidate.append(extract_features(im1.permute(0, 3, 1, 2).contiguous(),
                                               self.extractor))

    def distances(self) -> dict[str, Any]:
        from cfspec.gpu.evaluate.metrics import (
            FID_MIN_IMAGES,
            fid_from_features,
            kid_from_features,
        )

        ref, cand = torch.cat(self.reference), torch.cat(self.candidate)
        out: dict[str, Any] = {
            "reference": "factual images (image_0), each distinct image once",
            "candidate": "counterfactual images (image_1)",
            "n_reference": int(ref.shape[0]), "n_candidate": int(cand.shape[0]),
            "feature_size": int(ref.shape[1]),
        }
        if self.duplicates:
            out["reference_duplicates_dropped"] = self.duplicates
        try:
            out["kid"] = kid_from_features(ref, cand).as_dict()
        except ValueError as error:
            out["kid"] = {"refused": f"KID refused: {error}"}
        n = min(int(ref.shape[0]), int(cand.shape[0]))
        if n < FID_MIN_IMAGES:
            out["fid"] = {"refused": f"FID refused: {n} images per set (reference "
                          f"{ref.shape[0]}, candidate {cand.shape[0]}); it needs at least "
                          f"{FID_MIN_IMAGES} (use KID on small sets)"}
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # noted in its `notes`
                out["fid"] = fid_from_features(ref, cand).as_dict()
        return out


# --- the summary -------------------------------------------------------------------------------


def _summary(rows: list[MetricsRow], pairs: list[Pair], clip_name: str,
             device: str, features: _SetFeatures | None, notes: list[str], resamples: int,
             not_generated: list[str], set_skipped: str | None = None) -> dict[str, Any]:
    from cfspec.workspace.intervals import CI_METHOD, CI_MIN_PAIRS, cluster_bootstrap_ci

    seeds_per_pair: dict[str, int] = {}
    for row in rows:
        seeds_per_pair[row.id] = seeds_per_pair.get(row.id, 0) + 1
    means: dict[str, Any] = {}
    for name in (m.name for m in METRICS if m.summarized):  # a bool averages to a share
        used = [(r.id, value) for r in rows if (value := _usable(r, name)) is not None]
        if not used:
            continue
        ci = cluster_bootstrap_ci([value for _, value in used], [pid for pid, _ in used],
                                  n_resamples=resamples)
        # ci95 is null below CI_MIN_PAIRS pairs (`ci_reason` says why); n counts (pair, seed)s.
        means[name] = {"mean": ci.mean,
                       "ci95": None if ci.low is None else [ci.low, ci.high],
                       "n": ci.n_values, "n_pairs": ci.n_pairs}
        if ci.reason is not None:
            means[name]["ci_reason"] = ci.reason
    for name in ("background_ssim", "background_psnr", "latent_l2_per_dim"):
        missing = [r for r in rows if r.values.get(name) is None]
        if missing:
            reasons = {r.reasons.get(name) or r.reasons.get("background")
                       or r.reasons.get("latent") or "not measured" for r in missing}
            notes.append(f"{name} undefined for {len(missing)} of {len(rows)} (pair, seed)(s): "
                         + "; ".join(sorted(reasons)[:3]))
    undefined = sum(1 for r in rows if r.directional_defined is False)
    if undefined:
        notes.append(f"directional_similarity: {undefined} (pair, seed)(s) left out of the mean "
                     "(no change in CLIP space, so no direction)")
    summary: dict[str, Any] = {
        "cfspec": __version__,
        "clip_model": clip_name,
        "device": device,
        "pairs": len(pairs),
        "pairs_evaluated": len(seeds_per_pair),
        "pairs_not_generated": not_generated,
        "rows": len(rows),
        "seeds_per_pair": {"min": min(seeds_per_pair.values()),
                           "max": max(seeds_per_pair.values())},
        "means": means,
        "bootstrap": {"resamples": resamples, "confidence": 0.95,
                      "method": "studentized two-stage cluster", "unit": "pair",
                      "min_pairs": CI_MIN_PAIRS, "description": CI_METHOD},
    }
    if set_skipped is not None:
        summary["set"] = {"skipped": set_skipped}
    elif features is None:
        summary["set"] = {"skipped": "no --inception-weights: KID and FID need a local "
                          "Inception weights file"}
        notes.append("KID/FID skipped: pass --inception-weights PATH (a local file)")
    else:
        summary["set"] = features.distances()
        for metric in ("fid", "kid"):
            entry = summary["set"][metric]
            if "refused" in entry:
                notes.append(entry["refused"])
            notes += [f"{metric.upper()}: {note}" for note in entry.get("notes", [])]
    summary["notes"] = list(notes)
    return summary


def _usable(row: MetricsRow, name: str) -> float | None:
    """The value that enters the mean (a bool as 0 or 1), or None when it does not."""
    value = row.values.get(name)
    if name == "directional_similarity" and row.directional_defined is False:
        return None
    if isinstance(value, bool):
        return float(value)
    return row.number(name)


def _dumps_summary(summary: dict[str, Any]) -> str:
    return json.dumps(summary, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def summary_table(summary: dict[str, Any]) -> Any:
    """A rich Table of the means (with 95% intervals) and the set-level figures."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"cfspec evaluate: {summary['rows']} (pair, seed) of "
                  f"{summary['pairs_evaluated']} pair(s), CLIP {summary['clip_model']}")
    table.add_column("metric")
    table.add_column("N", justify="right")
    table.add_column("mean", justify="right")
    table.add_column("95% CI", justify="right")
    # Why a mean has no interval: the summary's own `ci_reason`, each distinct one once, below.
    reasons: dict[str, int] = {}
    for name, entry in summary["means"].items():
        ci = entry.get("ci95")
        if ci:
            interval = f"[{ci[0]:.4g}, {ci[1]:.4g}]"
        else:
            reason = str(entry.get("ci_reason") or "no reason recorded")
            interval = f"none [{reasons.setdefault(reason, len(reasons) + 1)}]"
        table.add_row(name, f"{entry['n']} ({entry.get('n_pairs', '?')} pairs)",
                      f"{entry['mean']:.4g}", interval)
    if reasons:
        table.caption = "\n".join(f"[{n}] {escape(reason)}"
                                   for reason, n in reasons.items())
        table.caption_justify = "left"
    set_level = summary.get("set", {})
    for metric in ("kid", "fid"):
        entry = set_level.get(metric)
        if not isinstance(entry, dict):
            continue
        if "refused" in entry:
            table.add_row(metric.upper(), "", "refused", "")
            continue
        floor = entry.get("noise_floor")
        # the floor is comparable with the value at the floor's sizes, not with `value`
        floor_text = (f"floor {floor:.4g} vs {entry['value_at_floor_sizes']:.4g} at "
                      f"{entry['noise_floor_reference_n']}/{entry['noise_floor_n']}"
                      if floor is not None else "no floor")
        table.add_row(f"{metric.upper()} ({entry['feature_size']}-d)",
                      f"{entry['n_reference']}/{entry['n_candidate']}",
                      f"{entry['value']:.4g}", floor_text)
    return table
