"""How a pair's two images and two prompts relate in CLIP space: pure functions on unit-norm
CLIP embedding rows (see `cfspec.gpu.evaluate.clip`); image 0 is the factual image with prompt 0,
image 1 the counterfactual with prompt 1.

* `clip_score`: how well an image matches a prompt, 100 * max(cos, 0) per image (Hessel et
  al.'s CLIP-S, scaled by 100), in [0, 100].
* `directional_similarity`: does the image change go the way the text change goes, in [-1, 1].
* `image_image_similarity`: how alike the two images look to CLIP, in [-1, 1].
* `effectiveness`: does the counterfactual image match its own prompt better than the factual one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

ZERO_NORM_EPS = 1e-6


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a.float(), b.float(), dim=-1, eps=1e-12)


def clip_score(image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """CLIP score of each image with its own prompt: 100 * max(cos(image, text), 0).

    Rows are matched (image i with text i); shapes (N, D) or (D,). Range [0, 100], higher =
    better match. Clamping each image's cosine at 0 is Hessel et al.'s CLIP-S
    (w * max(cos, 0), w = 2.5: multiply by 0.025 to convert); torchmetrics' `CLIPScore` also
    scales by 100 but clamps the batch mean instead, so its figure differs when some cosines
    are negative. Random ViT-L/14 pairs score about 15-20, good matches about 30-35 with the
    real model."""
    return 100.0 * _cosine(image_emb, text_emb).clamp(min=0.0)


@dataclass(frozen=True)
class Directional:
    """`value`: cosine between the image change and the text change, in [-1, 1]; 0 where
    `defined` is False (one of the changes has zero norm, so it has no direction)."""

    value: torch.Tensor
    defined: torch.Tensor


def directional_similarity(
    image_emb_0: torch.Tensor,
    image_emb_1: torch.Tensor,
    text_emb_0: torch.Tensor,
    text_emb_1: torch.Tensor,
    eps: float = ZERO_NORM_EPS,
) -> Directional:
    """CLIP directional similarity (InstructPix2Pix, Brooks et al. 2023; Gal et al. 2022):
    cos(E_img(x1) - E_img(x0), E_txt(p1) - E_txt(p0)).

    Range [-1, 1]: 1 = the image moved in CLIP space exactly along the text edit, 0 = unrelated,
    negative = against it (swapping the two images flips the sign). When either change has a
    norm below `eps` (identical images or identical prompts) the direction is undefined: the
    value is 0 and `defined` is False, so callers can leave those pairs out of means."""
    d_img = image_emb_1.float() - image_emb_0.float()
    d_txt = text_emb_1.float() - text_emb_0.float()
    n_img = d_img.norm(dim=-1)
    n_txt = d_txt.norm(dim=-1)
    defined = (n_img > eps) & (n_txt > eps)
    cos = (d_img * d_txt).sum(dim=-1) / (n_img * n_txt).clamp(min=eps * eps)
    return Directional(value=torch.where(defined, cos, torch.zeros_like(cos)), defined=defined)


def image_image_similarity(image_emb_0: torch.Tensor, image_emb_1: torch.Tensor) -> torch.Tensor:
    """Cosine of the two images' CLIP embeddings, in [-1, 1] (in practice [0, 1]): 1 = CLIP
    sees the same image; a good counterfactual stays high (most of the scene kept) but below 1."""
    return _cosine(image_emb_0, image_emb_1)


@dataclass(frozen=True)
class Effectiveness:
    """`effective`: the counterfactual image matches its own prompt better than the factual
    prompt; `margin`: 100 * (cos(x1, p1) - cos(x1, p0)), in [-200, 200], > 0 when effective."""

    effective: torch.Tensor
    margin: torch.Tensor


def effectiveness(
    cf_image_emb: torch.Tensor, factual_text_emb: torch.Tensor, cf_text_emb: torch.Tensor
) -> Effectiveness:
    """Is the edit visible to CLIP: the counterfactual image against both prompts.

    The margin is in CLIP-score units but not clamped at 0 (its sign is the answer)."""
    margin = 100.0 * (_cosine(cf_image_emb, cf_text_emb) - _cosine(cf_image_emb, factual_text_emb))
    return Effectiveness(effective=margin > 0, margin=margin)
