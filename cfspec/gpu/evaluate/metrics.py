"""Every per-pair metric of one batch of counterfactual image pairs, as JSON-ready rows.

`pair_metrics` gathers, per pair and seed (image 0 is the factual image with prompt 0, image 1
the counterfactual with prompt 1), the figures of:

* `cfspec.gpu.evaluate.similarity`: CLIP score, directional and image-image similarity,
  effectiveness (CLIP embeddings, see `cfspec.gpu.evaluate.clip`);
* `cfspec.gpu.evaluate.latents`: the latent distances and the edit locality (the minimality
  score); CLD, which needs all of a pair's seeds, is the stage's (`cld_from_latents`);
* `cfspec.gpu.evaluate.background`: the background's SSIM and PSNR outside the changed region
  (LPIPS, when its weights are local, is the stage's: `masked_lpips`).

Set-level figures (FID, KID) are in `cfspec.gpu.evaluate.set_distances`. Means over pairs get
their intervals from `cfspec.workspace.intervals` (numpy only, so the filter and the report
need no torch for them).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from cfspec.gpu.evaluate.background import masked_psnr, masked_ssim
from cfspec.gpu.evaluate.latents import edit_locality, latent_cosine_distance, latent_l2_per_dim
from cfspec.gpu.evaluate.similarity import (
    clip_score,
    directional_similarity,
    effectiveness,
    image_image_similarity,
)

_UNDEFINED_BECAUSE = {
    "latent_l2_outside_edit": "the edit region covers every latent position",
    "latent_l2_inside_edit": "the edit region is empty",
    "latent_change_share_outside_edit": "identical latents: no change to locate",
}


def pair_metrics(
    image_emb_0: torch.Tensor,
    image_emb_1: torch.Tensor,
    text_emb_0: torch.Tensor,
    text_emb_1: torch.Tensor,
    images_0: torch.Tensor | None = None,
    images_1: torch.Tensor | None = None,
    changed: torch.Tensor | None = None,
    latents_0: torch.Tensor | None = None,
    latents_1: torch.Tensor | None = None,
) -> list[dict[str, Any]]:
    """Every per-pair metric for a batch of N pairs, one flat dict per pair (JSON-ready: None
    where a metric is undefined, with `<name>_reason` saying why). Embeddings (N, D); images
    (N, ...) with `changed` a mask or attention map per pair; latents (N, C, h, w)."""
    cs0 = clip_score(image_emb_0, text_emb_0)
    cs1 = clip_score(image_emb_1, text_emb_1)
    direction = directional_similarity(image_emb_0, image_emb_1, text_emb_0, text_emb_1)
    sim = image_image_similarity(image_emb_0, image_emb_1)
    eff = effectiveness(image_emb_1, text_emb_0, text_emb_1)
    n = int(cs0.shape[0]) if cs0.dim() else 1
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    columns: dict[str, list[Any]] = {
        "clip_score_0": cs0.reshape(-1).tolist(),
        "clip_score_1": cs1.reshape(-1).tolist(),
        "directional_similarity": direction.value.reshape(-1).tolist(),
        "directional_defined": direction.defined.reshape(-1).tolist(),
        "image_image_similarity": sim.reshape(-1).tolist(),
        "effective": eff.effective.reshape(-1).tolist(),
        "effectiveness_margin": eff.margin.reshape(-1).tolist(),
    }
    if latents_0 is not None and latents_1 is not None:
        columns["latent_l2_per_dim"] = latent_l2_per_dim(latents_0, latents_1).reshape(-1).tolist()
        columns["latent_cosine_distance"] = (
            latent_cosine_distance(latents_0, latents_1).reshape(-1).tolist()
        )
        if changed is not None:
            where = edit_locality(latents_0, latents_1, changed)
            columns["latent_l2_outside_edit"] = where.outside.tolist()
            columns["latent_l2_inside_edit"] = where.inside.tolist()
            columns["latent_change_share_outside_edit"] = where.share_outside.tolist()
            columns["edit_area_outside"] = where.area_outside.tolist()
    for name, values in columns.items():
        for row, value in zip(rows, values, strict=True):
            if isinstance(value, float) and math.isnan(value) and name in _UNDEFINED_BECAUSE:
                row[name] = None
                row[f"{name}_reason"] = _UNDEFINED_BECAUSE[name]
            else:
                row[name] = value
    if images_0 is not None and images_1 is not None and changed is not None:
        for name, scores in (
            ("background_ssim", masked_ssim(images_0, images_1, changed)),
            ("background_psnr", masked_psnr(images_0, images_1, changed)),
        ):
            for row, score in zip(rows, scores, strict=True):
                row[name] = score.value
                if score.reason is not None:
                    row[f"{name}_reason"] = score.reason
                if score.capped:
                    row[f"{name}_capped"] = True
    return rows
