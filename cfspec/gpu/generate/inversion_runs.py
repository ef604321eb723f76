"""The photos of a generate run, inverted once each and kept: `attach_starts` gives every job
whose pair names a photo (`Pair.image`) its `engine.Start`.

An inversion depends on the photo's bytes, the factual prompt's tokens, the method, the steps,
the guidance, the size, the model and the dtype, never on the seed: its key hashes all of them,
and OUT/inversions/<key>.npz keeps x_T, each step's unconditional context and the photo's
pixels at the model's size (written atomically, one file per photo as each batch of photos
finishes; never pickled). A run killed in the middle of the inversions finds the finished ones
there and inverts only the rest; the same key from another pair or seed reuses the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from cfspec.gpu.generate import inversion
from cfspec.gpu.generate.engine import Engine, Job, Start
from cfspec.workspace import store
from cfspec.workspace.pairs import Pair
from cfspec.workspace.photos import sha256_of

INVERSIONS_DIR = "inversions"


@dataclasses.dataclass(frozen=True)
class _Need:
    key: str
    path: Path
    ids: tuple[int, ...]
    guidance: float


def inversion_file(out: Path, key: str) -> Path:
    return out / INVERSIONS_DIR / f"{key}.npz"


def photo_pixels(out: Path, key: str) -> np.ndarray:
    """(h, w, 3) uint8: the photo as it was inverted (cropped and resized)."""
    with np.load(inversion_file(out, key)) as data:
        return np.asarray(data["photo"])


def attach_starts(out: Path, engine: Engine, jobs: Sequence[Job], pairs: dict[str, Pair],
                  method: str, model: str, batch: int) -> tuple[list[Job], list[tuple[Job, str]]]:
    """(jobs with their photo's Start, (job, error) for those whose photo cannot be had)."""
    ready: list[Job] = []
    failed: list[tuple[Job, str]] = []
    needs: dict[str, _Need] = {}
    keyed: list[tuple[Job, str]] = []
    hashes: dict[str, str] = {}
    for job in jobs:
        photo = pairs[job.pair_id].image
        if photo is None:
            ready.append(job)
            continue
        try:
            found = hashes.get(photo.path) or sha256_of(Path(photo.path))
        except OSError as error:
            failed.append((job, f"{photo.path}: {error.strerror or error}; the photo compile "
                                "recorded is gone: restore it or re-run cfspec compile"))
            continue
        hashes[photo.path] = found
        if found != photo.sha256:
            failed.append((job, f"{photo.path}: changed since compile (its SHA-256 differs); "
                                "re-run cfspec compile to take the new photo"))
            continue
        guidance = engine.settings.guidance if job.guidance is None else float(job.guidance)
        key = _key(photo.sha256, job.plan.ids_0, method, engine, model, guidance)
        needs.setdefault(key, _Need(key, Path(photo.path), tuple(job.plan.ids_0), guidance))
        keyed.append((job, key))
    todo = [need for need in needs.values() if not inversion_file(out, need.key).is_file()]
    for start in range(0, len(todo), max(1, batch)):
        _invert(out, engine, todo[start:start + max(1, batch)], method)
    for job, key in keyed:
        with np.load(inversion_file(out, key)) as data:
            begin = Start(key, torch.from_numpy(np.asarray(data["latents"]))[None],
                          torch.from_numpy(np.asarray(data["uncond"])))
        ready.append(dataclasses.replace(job, start=begin))
    return ready, failed


def _key(sha256: str, ids: Sequence[int], method: str, engine: Engine, model: str,
         guidance: float) -> str:
    settings = {"photo": sha256, "ids_0": list(ids), "method": method,
                "steps": engine.settings.steps, "guidance": guidance, "height": engine.height,
                "width": engine.width, "model": model, "dtype": str(engine.dtype),
                "inner_steps": inversion.INNER_STEPS, "epsilon": inversion.EARLY_STOP}
    text = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _invert(out: Path, engine: Engine, needs: Sequence[_Need], method: str) -> None:
    """Invert a batch of photos in one UNet batch per step (grouped by guidance, which the
    optimisation runs under) and save each photo's file."""
    comps = engine.comps
    if comps.is_xl:
        raise ValueError("inversion supports SD 1.x/2.x models, not SDXL")
    by_guidance: dict[float, list[_Need]] = {}
    for need in needs:
        by_guidance.setdefault(need.guidance, []).append(need)
    engine.control.restore(comps.unet)  # plain attention, as the notebook inverts
    try:
        for guidance, group in by_guidance.items():
            photos = [inversion.load_photo(n.path, engine.height, engine.width) for n in group]
            latents = inversion.encode_photos(comps.vae, photos, engine.device, engine.dtype)
            cond, _ = engine._encode([n.ids for n in group])
            uncond = engine._uncond
            settings = inversion.InversionSettings(method, engine.settings.steps, guidance)
            found = inversion.invert(comps.unet, engine.scheduler, latents, cond.clone(),
                                     uncond.clone(), settings)
            for b, need in enumerate(group):
                store.save_npz(inversion_file(out, need.key), {
                    "latents": found.start[b].float().cpu().numpy(),
                    "uncond": found.uncond[:, b].float().cpu().numpy(),
                    "photo": photos[b],
                })
    finally:
        engine.control.install(comps.unet)
