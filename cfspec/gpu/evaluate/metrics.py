"""Evaluation metrics for counterfactual image pairs: pure functions on tensors.

Per pair and seed (image 0 is the factual image with prompt 0, image 1 the counterfactual with
prompt 1; CLIP embeddings are unit-norm rows, see `cfspec.gpu.evaluate.clip`):

* `clip_score`: how well an image matches a prompt, 100 * max(cos, 0) per image (Hessel et
  al.'s CLIP-S, scaled by 100), in [0, 100].
* `directional_similarity`: does the image change go the way the text change goes, in [-1, 1].
* `image_image_similarity`: how alike the two images look to CLIP, in [-1, 1].
* `effectiveness`: does the counterfactual image match its own prompt better than the factual one.
* `latent_l2_per_dim`, `latent_cosine_distance`: how far apart the two final latents are.
* `changed_region`, `masked_ssim`, `masked_psnr`, `masked_lpips`: is the background (outside the
  changed words' attention) preserved.
* `edit_locality`: the minimality score, the latent change outside the edit region
  (`latent_l2_outside_edit`), with the change inside it and the share outside.
* `counterfactual_latent_divergence` (CLD, Sanchez & Tsaftaris 2022) and `cld_from_latents`:
  the published score needs counterfactuals with their own noise; for shared-noise pairs
  (every Prompt-to-Prompt pair) only its ingredients are reported (20 or more seeds).

Per set: `fid_from_features`, `kid_from_features` and `set_distances` (FID and KID through
torchmetrics, Inception weights from a local file only, each with N, feature size and a same-N
noise floor). Means over pairs get their intervals from `cfspec.workspace.intervals`
(numpy only, so the filter and the report need no torch for them).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

# --- CLIP-embedding metrics -------------------------------------------------------------------

ZERO_NORM_EPS = 1e-6
MASK_THRESHOLD = 0.5  # a position is in the edit region at half its map's range or more


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


# --- latent divergence ------------------------------------------------------------------------


def _flat_pair(z0: torch.Tensor, z1: torch.Tensor, event_dims: int) -> tuple[torch.Tensor, ...]:
    if z0.shape != z1.shape:
        raise ValueError(f"latent shapes differ: {tuple(z0.shape)} vs {tuple(z1.shape)}")
    if z0.dim() < event_dims:
        raise ValueError(f"expected at least {event_dims} dimensions, got {tuple(z0.shape)}")
    batch = z0.shape[: z0.dim() - event_dims]
    return z0.float().reshape(*batch, -1), z1.float().reshape(*batch, -1)


def latent_l2_per_dim(z0: torch.Tensor, z1: torch.Tensor, event_dims: int = 3) -> torch.Tensor:
    """||z0 - z1||_2 / sqrt(numel): the root-mean-square difference of the two final latents.

    The last `event_dims` dimensions form one latent ((C, h, w) by default); leading dimensions
    are a batch. Range [0, inf): 0 = identical latents; the per-dimension scaling makes values
    comparable across resolutions (two independent standard-normal latents give about sqrt(2);
    SD's scaled final latents have a per-element std of roughly 1)."""
    a, b = _flat_pair(z0, z1, event_dims)
    return (a - b).norm(dim=-1) / math.sqrt(a.shape[-1])


def latent_cosine_distance(z0: torch.Tensor, z1: torch.Tensor, event_dims: int = 3) -> torch.Tensor:
    """1 - cos(z0, z1) of the two final latents, flattened; range [0, 2]: 0 = same direction
    (identical up to scale), 1 = orthogonal (unrelated), 2 = opposite."""
    a, b = _flat_pair(z0, z1, event_dims)
    return 1.0 - F.cosine_similarity(a, b, dim=-1, eps=1e-12)


@dataclass(frozen=True)
class EditLocality:
    """Where the latent change of each pair lies relative to its edit region (all (N,)).

    `outside`: RMS per dimension of z1 - z0 over the latent positions outside the edit region
    (the minimality score: change the edit does not explain; lower = more minimal; NaN when
    the region covers everything). `inside`: the same inside it (NaN when it is empty).
    `share_outside`: the fraction of the squared change that lies outside, in [0, 1] (NaN for
    identical latents); compare it with `area_outside`, the fraction of positions outside:
    a change spread evenly over the image has share_outside == area_outside."""

    outside: torch.Tensor
    inside: torch.Tensor
    share_outside: torch.Tensor
    area_outside: torch.Tensor


def edit_locality(
    z0: torch.Tensor, z1: torch.Tensor, changed: torch.Tensor, threshold: float = MASK_THRESHOLD
) -> EditLocality:
    """Split each pair's latent change at its edit region. z0, z1: (N, C, h, w) final latents;
    `changed`: the edit region as for `changed_region` (attention maps at any resolution, or
    bool masks at (h, w)), brought to the latent grid (h, w)."""
    if z0.shape != z1.shape or z0.dim() != 4:
        raise ValueError(f"expected two (N, C, h, w) latents, got {tuple(z0.shape)} and "
                         f"{tuple(z1.shape)}")
    n, c, h, w = z0.shape
    region = changed_region(changed.to(z0.device), (h, w), threshold)
    if region.shape[0] == 1 and n > 1:
        region = region.expand(n, h, w)
    if region.shape[0] != n:
        raise ValueError(f"{region.shape[0]} edit regions for {n} latent pairs")
    energy = (z1.double() - z0.double()).square().sum(dim=1)  # (N, h, w): channels summed
    inside_n = region.sum(dim=(-2, -1)).double()
    outside_n = h * w - inside_n
    e_in = (energy * region).sum(dim=(-2, -1))
    e_out = energy.sum(dim=(-2, -1)) - e_in
    nan = torch.full_like(e_in, float("nan"))
    return EditLocality(
        outside=torch.where(outside_n > 0, (e_out / (c * outside_n.clamp_min(1))).sqrt(), nan),
        inside=torch.where(inside_n > 0, (e_in / (c * inside_n.clamp_min(1))).sqrt(), nan),
        share_outside=torch.where(e_in + e_out > 0, e_out / (e_in + e_out).clamp_min(1e-300),
                                  nan),
        area_outside=outside_n / (h * w),
    )


LATENT_DISTANCES = {"l2": latent_l2_per_dim, "cosine": latent_cosine_distance}
CLD_WEIGHTS = (0.8, 0.2)
CLD_MIN_SEEDS = 20


def counterfactual_latent_divergence(
    s_cf: torch.Tensor | Sequence[float],
    s_f: torch.Tensor | Sequence[float],
    d: float,
    weights: tuple[float, float] = CLD_WEIGHTS,
) -> float:
    """CLD, Counterfactual Latent Divergence (Sanchez & Tsaftaris, "Diffusion Causal Models for
    Counterfactual Estimation", CLeaR 2022): minimality of a counterfactual, measured against
    the spread of the data in a latent space.

        CLD = log( w1 * exp(P(S_cf <= d)) + w2 * exp(P(S_f >= d)) ),  (w1, w2) = (0.8, 0.2)

    My reading of the definition (the paper's formula as restated in the benchmark of Melistas
    et al. 2024, whose reference code uses the same W1, W2 = 0.8, 0.2 and the same inclusive
    comparisons): x is the factual, x* the counterfactual, d = d(x, x*) their latent distance;
    S_cf = {d(x, x') : x' has the counterfactual's parents} and S_f = {d(x, x') : x' has the
    factual's parents}. Both sets are distances *from the factual* x: S_cf to samples of the
    counterfactual class, S_f to the factual's own class. P(.) is the empirical fraction.

    * P(S_cf <= d): how many counterfactual-class samples are at least as close to x as x* is.
      Small = x* is a closer member of the new class than most: a minimal change.
    * P(S_f >= d): how many factual-class samples are at least as far from x as x* is.
      Small = x* moved further than the factual class's own spread: a real change.

    Range [0, 1] (log(w1 + w2) = 0 when both fractions are 0, log(e) = 1 when both are 1);
    lower is better. The function takes both sets and d explicitly; `cld_from_latents` builds
    them from a pair's seeds. (The brief that asked for this described S_cf as distances from
    the counterfactual latent; the published definition measures both sets from the factual,
    and that is what is implemented.)"""
    cf = torch.as_tensor(s_cf, dtype=torch.float64).flatten()
    f = torch.as_tensor(s_f, dtype=torch.float64).flatten()
    if cf.numel() == 0 or f.numel() == 0:
        raise ValueError("CLD needs non-empty distance sets S_cf and S_f")
    p_cf = float((cf <= d).double().mean())
    p_f = float((f >= d).double().mean())
    w1, w2 = weights
    return math.log(w1 * math.exp(p_cf) + w2 * math.exp(p_f))


SHARED_NOISE = ("the factual and counterfactual images start from the same noise, so every "
                "other seed's image is farther from the factual than the counterfactual is: "
                "P(S_cf <= d) is always 0, P(S_f >= d) always 1 and CLD a constant; the "
                "published CLD needs counterfactuals drawn with independent noise")


@dataclass(frozen=True)
class CldResult:
    """CLD of one (pair, seed) with its ingredients. `d`: the observed distance d(x, x*);
    `p_cf`: the fraction of the other seeds' counterfactual images at least as close to x as
    x*; `p_f`: the fraction of the other seeds' factual images at least as far from x as x*;
    `d_vs_reseed`: d over the median of S_f (the change as a fraction of what redrawing the
    factual's noise moves; < 1 = closer than a re-roll); `n_seeds`: the seeds the sets came
    from. `cld` is None (with `reason`) for shared-noise pairs, where it is a constant."""

    cld: float | None
    d: float
    p_cf: float
    p_f: float
    n_seeds: int
    d_vs_reseed: float
    reason: str | None = None


def cld_from_latents(
    factual: torch.Tensor,
    counterfactual: torch.Tensor,
    index: int,
    distance: str = "l2",
    min_seeds: int = CLD_MIN_SEEDS,
    *,
    shared_noise: bool,
) -> CldResult:
    """CLD of seed `index` of one pair, from the final latents of all its seeds.

    `factual` and `counterfactual` are (K, C, h, w): seed k's factual and counterfactual latents.
    The factual prompt's K images are the factual class, the counterfactual prompt's the
    counterfactual class. With x = factual[index], x* = counterfactual[index]:
    d = dist(x, x*), S_f = {dist(x, factual[k]) : k != index},
    S_cf = {dist(x, counterfactual[k]) : k != index} (x* itself left out: it is the candidate).
    `distance`: "l2" (`latent_l2_per_dim`) or "cosine" (`latent_cosine_distance`); the paper
    used a KL divergence between VAE posteriors, which SD's deterministic final latents lack.
    `shared_noise`: x and x* started from the same noise (Prompt-to-Prompt pairs): S_cf and S_f
    are then not the paper's comparison sets (see `SHARED_NOISE`), so `cld` is None and only
    its ingredients are reported. Refused (ValueError) below `min_seeds` seeds: with fewer,
    each fraction moves in steps of more than 1/20 and the figure is noise."""
    if factual.shape != counterfactual.shape:
        raise ValueError("factual and counterfactual latents must have the same shape")
    k = int(factual.shape[0])
    if k < min_seeds:
        raise ValueError(f"CLD needs at least {min_seeds} seeds per pair, got {k}")
    if not 0 <= index < k:
        raise IndexError(f"seed index {index} out of range for {k} seeds")
    dist = LATENT_DISTANCES[distance]
    event_dims = factual.dim() - 1
    x = factual[index].unsqueeze(0).expand_as(factual)
    others = torch.arange(k) != index
    s_f = dist(x, factual, event_dims)[others]
    s_cf = dist(x, counterfactual, event_dims)[others]
    d = float(dist(factual[index], counterfactual[index], event_dims))
    p_cf = float((s_cf.double() <= d).double().mean())
    p_f = float((s_f.double() >= d).double().mean())
    median_f = float(s_f.double().median())
    return CldResult(
        cld=None if shared_noise else counterfactual_latent_divergence(s_cf, s_f, d),
        d=d,
        p_cf=p_cf,
        p_f=p_f,
        n_seeds=k,
        d_vs_reseed=d / median_f if median_f > 0 else math.inf,
        reason=SHARED_NOISE if shared_noise else None,
    )


# --- background preservation ------------------------------------------------------------------

# Identical backgrounds have infinite PSNR. It is reported as this finite cap (with
# `capped=True`) so that means, bootstrap intervals and JSON stay finite: 100 dB is an RMS
# difference of 1e-5 of the data range, far below one uint8 level on any image we render.
PSNR_CAP_DB = 100.0


@dataclass(frozen=True)
class MaskedScore:
    """A background score of one pair. `value` is None when there is nothing to compare (the
    changed region covers the whole image), `reason` then says why; `pixels` is the number of
    background pixels compared; `capped` marks a PSNR reported at `PSNR_CAP_DB`."""

    value: float | None
    pixels: int
    reason: str | None = None
    capped: bool = False


def to_float_nchw(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) / (N, H, W, 3) / one image, uint8 or float -> float32 (N, 3, H, W) on the
    same scale (uint8 stays 0..255)."""
    x = images if images.dim() == 4 else images.unsqueeze(0)
    if x.dim() != 4:
        raise ValueError(f"expected image tensors with 3 or 4 dimensions, got {tuple(x.shape)}")
    if x.shape[1] != 3 and x.shape[-1] == 3:
        x = x.permute(0, 3, 1, 2)
    if x.shape[1] != 3:
        raise ValueError(f"expected 3 colour channels, got shape {tuple(images.shape)}")
    return x.float()


def changed_region(
    attention: torch.Tensor, size: tuple[int, int], threshold: float = MASK_THRESHOLD
) -> torch.Tensor:
    """The changed words' region at image resolution: bool (N, H, W).

    `attention` is the changed words' cross-attention at attention resolution (for example
    16 x 16): (h, w), (N, h, w) or (N, K, h, w). Each map is rescaled to [0, 1] by its own
    range, (a - min) / (max - min): accumulated attention has a floor everywhere (on the tiny
    random model it is nearly flat, 0.8-1.0 of its peak), and a threshold on the peak alone
    then marks the whole image as changed, leaving no background to score. A flat map
    (max == min) is left as it is (all zero: nothing changed; all positive: everything did).
    With K maps per pair (one per image) their element-wise maximum is used, the union of
    what changed in either image. It is upsampled bilinearly (align_corners=False) to
    `size` = (H, W) and a pixel counts as changed where the upsampled value is >= `threshold`
    (0.5: closer to the peak than to the floor). A bool tensor already at `size` is returned
    as it is."""
    if attention.dtype == torch.bool and tuple(attention.shape[-2:]) == tuple(size):
        return attention if attention.dim() == 3 else attention.reshape(-1, *size)
    a = attention.float()
    if a.dim() == 2:
        a = a.unsqueeze(0)
    if a.dim() in (3, 4):
        low = a.amin(dim=(-2, -1), keepdim=True)
        span = a.amax(dim=(-2, -1), keepdim=True) - low
        a = torch.where(span > 0, (a - low) / span.clamp_min(1e-30), a)
    if a.dim() == 4:
        a = a.amax(dim=1)
    if a.dim() != 3:
        raise ValueError(f"expected an attention map (h, w), (N, h, w) or (N, K, h, w), got "
                         f"{tuple(attention.shape)}")
    up = F.interpolate(a.unsqueeze(1), size=size, mode="bilinear", align_corners=False)
    return up.squeeze(1) >= threshold


def _background(changed: torch.Tensor, n: int, size: tuple[int, int]) -> torch.Tensor:
    mask = changed_region(changed, size)
    if mask.shape[0] == 1 and n > 1:
        mask = mask.expand(n, *size)
    if mask.shape[0] != n:
        raise ValueError(f"{mask.shape[0]} masks for {n} image pairs")
    return ~mask


NOTHING_TO_COMPARE = "the changed region covers the whole image: no background to compare"


def _data_range(img0: torch.Tensor, data_range: float | None) -> float:
    if data_range is not None:
        return float(data_range)
    return 255.0 if img0.dtype == torch.uint8 else 1.0


def masked_ssim(
    img0: torch.Tensor,
    img1: torch.Tensor,
    changed: torch.Tensor,
    data_range: float | None = None,
) -> list[MaskedScore]:
    """SSIM of the two images over the background (outside the changed region), per pair.

    torchmetrics' SSIM (Gaussian window 11, sigma 1.5) with `return_full_image=True` gives the
    SSIM map (N, 3, H, W); it is averaged over channels and then over the background pixels.
    Windows near the mask edge still see a few changed pixels (the map is not eroded), which
    lowers the score slightly for small backgrounds. Range [-1, 1]; 1 = identical background.
    `changed`: a bool mask at image size or an attention map (see `changed_region`); images
    uint8 (data range 255) or float (data range 1 unless given)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    a, b = to_float_nchw(img0), to_float_nchw(img1)
    keep = _background(changed.to(a.device), a.shape[0], (a.shape[-2], a.shape[-1]))
    result = structural_similarity_index_measure(
        a, b, data_range=_data_range(img0, data_range), return_full_image=True, reduction="none"
    )
    ssim_map = result[1] if isinstance(result, tuple) else result
    per_pixel = ssim_map.float().mean(dim=1)  # (N, H, W)
    return _background_mean(per_pixel, keep)


def _background_mean(values: torch.Tensor, keep: torch.Tensor) -> list[MaskedScore]:
    """Per image, the mean of a (N, H, W) map over its background pixels (`keep`); None, with
    the reason, when the changed region covers the whole image."""
    counts = keep.sum(dim=(-2, -1))
    sums = (values * keep).sum(dim=(-2, -1))
    out: list[MaskedScore] = []
    for total, count in zip(sums.tolist(), counts.tolist(), strict=True):
        if count == 0:
            out.append(MaskedScore(value=None, pixels=0, reason=NOTHING_TO_COMPARE))
        else:
            out.append(MaskedScore(value=total / count, pixels=int(count)))
    return out


def masked_psnr(
    img0: torch.Tensor,
    img1: torch.Tensor,
    changed: torch.Tensor,
    data_range: float | None = None,
) -> list[MaskedScore]:
    """PSNR of the two images over the background, per pair: 10 * log10(R^2 / MSE), the MSE
    taken over the background pixels and the 3 channels.

    Written by hand because torchmetrics' PSNR has no mask argument (and averaging a per-pixel
    PSNR would be wrong: PSNR is a log of the mean, not a mean of logs). Range [0, PSNR_CAP_DB]
    dB for images in range; higher = better preserved; typical lossy-but-faithful is 30-40 dB.
    An MSE of 0 (identical backgrounds) reads `PSNR_CAP_DB` with `capped=True`."""
    a, b = to_float_nchw(img0), to_float_nchw(img1)
    keep = _background(changed.to(a.device), a.shape[0], (a.shape[-2], a.shape[-1]))
    r = _data_range(img0, data_range)
    sq = (a.double() - b.double()).square().sum(dim=1)  # (N, H, W), channels summed
    counts = keep.sum(dim=(-2, -1))
    sse = (sq * keep).sum(dim=(-2, -1))
    min_mse = (r * 10 ** (-PSNR_CAP_DB / 20)) ** 2
    out: list[MaskedScore] = []
    for total, count in zip(sse.tolist(), counts.tolist(), strict=True):
        if count == 0:
            out.append(MaskedScore(value=None, pixels=0, reason=NOTHING_TO_COMPARE))
            continue
        mse = total / (3 * count)
        if mse <= min_mse:
            out.append(MaskedScore(value=PSNR_CAP_DB, pixels=int(count), capped=True))
        else:
            out.append(MaskedScore(value=10 * math.log10(r * r / mse), pixels=int(count)))
    return out


_LPIPS_BACKBONES = {
    "alex": ("alexnet", "AlexNet_Weights"),
    "vgg": ("vgg16", "VGG16_Weights"),
    "squeeze": ("squeezenet1_1", "SqueezeNet1_1_Weights"),
}


def lpips_available(net: str = "alex") -> tuple[bool, str | None]:
    """Can LPIPS run without a network? (available, reason if not).

    torchmetrics' LPIPS builds its backbone with torchvision's ImageNet weights, which torch.hub
    downloads on first use; its linear heads ship inside torchmetrics. It is available when
    torchvision imports and the backbone's checkpoint is already in torch.hub's cache
    (`torch.hub.get_dir()/checkpoints/`). Nothing here touches the network."""
    if net not in _LPIPS_BACKBONES:
        return False, f"unknown LPIPS network {net!r}; choose one of {sorted(_LPIPS_BACKBONES)}"
    try:
        import torchvision
    except ImportError:
        return False, "LPIPS needs torchvision, which is not installed"
    _, weights_name = _LPIPS_BACKBONES[net]
    weights = getattr(torchvision.models, weights_name).DEFAULT
    checkpoint = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not checkpoint.is_file():
        return False, (
            f"LPIPS backbone weights not available locally (expected {checkpoint}; "
            "torchmetrics would download them)"
        )
    try:
        import torchmetrics.functional.image.lpips as tm_lpips
    except ImportError as error:
        return False, f"torchmetrics LPIPS unavailable: {error}"
    heads = Path(tm_lpips.__file__).parent / "lpips_models" / f"{net}.pth"
    if not heads.is_file():
        return False, f"LPIPS linear heads missing from torchmetrics ({heads})"
    return True, None


def masked_lpips(
    img0: torch.Tensor,
    img1: torch.Tensor,
    changed: torch.Tensor,
    net: str = "alex",
    data_range: float | None = None,
) -> list[MaskedScore]:
    """LPIPS (Zhang et al. 2018) over the background, per pair, or None with a reason for every
    pair when the backbone weights are not available locally (`lpips_available`).

    Uses torchmetrics' LPIPS network in its spatial mode (a per-pixel distance map at image
    size) and averages that map over the background. Range [0, ~1]; 0 = perceptually identical,
    lower = better preserved."""
    a, b = to_float_nchw(img0), to_float_nchw(img1)
    n = a.shape[0]
    ok, reason = lpips_available(net)
    if not ok:
        return [MaskedScore(value=None, pixels=0, reason=reason) for _ in range(n)]
    from torchmetrics.functional.image.lpips import _LPIPS

    keep = _background(changed.to(a.device), n, (a.shape[-2], a.shape[-1]))
    r = _data_range(img0, data_range)
    model = _LPIPS(pretrained=True, net=net, spatial=True).to(a.device)  # type: ignore[arg-type]
    with torch.inference_mode():
        dist_map = model(a / r * 2 - 1, b / r * 2 - 1).float().squeeze(1)  # (N, H, W)
    return _background_mean(dist_map, keep)


# --- one batch of pairs -----------------------------------------------------------------------


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


# --- set level: FID and KID -------------------------------------------------------------------

FID_MIN_IMAGES = 50
FID_WARN_BELOW = 2048
KID_SUBSET_SIZE = 1000  # Binkowski et al.'s size; std needs 2x this per set


@dataclass(frozen=True)
class SetDistance:
    """A set-level figure with what it takes to read it.

    `value` compares `n_reference` reference images with `n_candidate` candidate images in a
    `feature_size`-d feature space. `noise_floor` is the same metric for no change at all, at
    the candidate's size: a random `noise_floor_n` (= n_candidate) reference images against the
    other `noise_floor_reference_n` reference images. Its reference side is smaller than the
    value's (n_reference), and FID's small-N bias grows as either side shrinks, so
    `value_at_floor_sizes` is the candidate set against those same `noise_floor_reference_n`
    images: that and the floor share every size and can be compared directly. None (with a
    note) when the reference cannot spare a candidate-size subset. `std` (KID only): the
    spread of KID over random subsets, reported only when each subset is at most half of
    each set (else the subsets are nearly the same images and their spread is no uncertainty).
    """

    metric: str
    value: float
    n_reference: int
    n_candidate: int
    feature_size: int
    noise_floor: float | None
    noise_floor_n: int | None
    std: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    noise_floor_reference_n: int | None = None
    value_at_floor_sizes: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["notes"] = list(self.notes)
        return out


class _Precomputed(torch.nn.Module):
    """Identity 'feature extractor': lets torchmetrics' FID/KID run on features computed once."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _inception_v3_class() -> Any:
    """torchmetrics' `NoTrainInceptionV3` (the FID Inception of torch-fidelity)."""
    from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

    if not _TORCH_FIDELITY_AVAILABLE:
        raise ModuleNotFoundError(
            "FID/KID with Inception weights needs torch-fidelity "
            "(`pip install 'cfspec[fid]'` with a torchvision built for your torch)"
        )
    from torchmetrics.image.fid import NoTrainInceptionV3

    return NoTrainInceptionV3


def inception_extractor(weights_path: str | Path, feature: int = 2048) -> torch.nn.Module:
    """torchmetrics' FID Inception-v3 (`NoTrainInceptionV3`, the network torch-fidelity and
    the original TF FID use) with weights read from `weights_path` only: the
    `pt_inception-2015-12-05-6726825d.pth` file torch-fidelity would otherwise download. It
    takes uint8 (N, 3, H, W) images (resized to 299 inside) and returns (N, feature)."""
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Inception weights not found at {path}; FID/KID read them from a local file only "
            "(torch-fidelity's pt_inception-2015-12-05-6726825d.pth)"
        )
    cls = _inception_v3_class()
    module: torch.nn.Module = cls(
        name="inception-v3-compat",
        features_list=[str(feature)],
        feature_extractor_weights_path=str(path),
    )
    return module


@torch.inference_mode()
def extract_features(
    images: torch.Tensor, extractor: torch.nn.Module, batch_size: int = 64
) -> torch.Tensor:
    """Run `extractor` over uint8 (N, 3, H, W) / (N, H, W, 3) images in batches -> (N, F) float64
    on the CPU (features are small; FID's covariances want float64)."""
    x = images if images.dim() == 4 else images.unsqueeze(0)
    if x.shape[1] != 3 and x.shape[-1] == 3:
        x = x.permute(0, 3, 1, 2)
    device = next((p.device for p in extractor.parameters()), torch.device("cpu"))
    chunks = [
        extractor(x[i : i + batch_size].to(device)).reshape(min(batch_size, x.shape[0] - i), -1)
        for i in range(0, x.shape[0], batch_size)
    ]
    return torch.cat(chunks).double().cpu()


def _split_reference(n_ref: int, n_cand: int, seed: int, minimum: int
                     ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(rest, stand-in): a random n_cand-image subset of the reference to stand in for the
    candidate set, and the other n_ref - n_cand images as the reference; None when the rest
    would hold fewer than `minimum` images."""
    if n_cand < minimum or n_ref - n_cand < minimum:
        return None
    perm = torch.randperm(n_ref, generator=torch.Generator().manual_seed(seed))
    return perm[n_cand:], perm[:n_cand]


def _floor_note(metric: str, n_ref: int, n_cand: int, minimum: int) -> str:
    return (f"no noise floor: at the candidate's size it needs {n_cand} + {minimum} reference "
            f"images (a candidate-size stand-in and a {minimum}+ image rest), the reference "
            f"holds {n_ref}; the {metric} value has no no-change baseline here")


def _fid(ref: torch.Tensor, cand: torch.Tensor) -> float:
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_Precomputed(int(ref.shape[1])))
    metric.update(ref, real=True)
    metric.update(cand, real=False)
    return float(metric.compute())


def _check_features(ref: torch.Tensor, cand: torch.Tensor) -> None:
    if ref.dim() != 2 or cand.dim() != 2 or ref.shape[1] != cand.shape[1]:
        raise ValueError(
            f"expected (N, F) feature matrices of the same F, got {tuple(ref.shape)} and "
            f"{tuple(cand.shape)}"
        )


def fid_from_features(
    reference: torch.Tensor, candidate: torch.Tensor, seed: int = 0
) -> SetDistance:
    """FID between two feature sets (N, F), through torchmetrics' `FrechetInceptionDistance`.

    Refused below `FID_MIN_IMAGES` (50) images in either set: the covariance estimates are then
    so poor that the number says nothing (ValueError). Below `FID_WARN_BELOW` (2048, the
    feature size of Inception's pool layer: below it the covariance is rank-deficient) a
    UserWarning is issued and noted; FID is biased upwards at small N, so compare it with its
    `noise_floor` and only with figures of the same N. Range [0, inf), 0 = same statistics."""
    _check_features(reference, candidate)
    n_ref, n_cand = int(reference.shape[0]), int(candidate.shape[0])
    n = min(n_ref, n_cand)
    if n < FID_MIN_IMAGES:
        raise ValueError(
            f"FID refused: {n} images (reference {n_ref}, candidate {n_cand}); it needs at "
            f"least {FID_MIN_IMAGES} per set to mean anything, and {FID_WARN_BELOW}+ to be "
            "comparable with published figures (use KID for small sets)"
        )
    notes: list[str] = []
    if n < FID_WARN_BELOW:
        message = (
            f"FID on {n} images (< {FID_WARN_BELOW}) is biased upwards; compare it only with "
            "its noise floor and with figures of the same N"
        )
        warnings.warn(message, UserWarning, stacklevel=2)
        notes.append(message)
    return _with_floor("fid", _fid, _fid(reference, candidate), None, reference, candidate,
                       seed, FID_MIN_IMAGES, notes)


def _with_floor(metric: str, distance: Callable[[torch.Tensor, torch.Tensor], float],
                value: float, std: float | None, reference: torch.Tensor,
                candidate: torch.Tensor, seed: int, min_images: int,
                notes: list[str]) -> SetDistance:
    """The SetDistance of `value`, with its noise floor where the reference set is large
    enough to split: `distance` between a stand-in of the candidate's size drawn from the
    reference and the rest of it, and the candidate against that same rest."""
    n_ref, n_cand = int(reference.shape[0]), int(candidate.shape[0])
    floor = matched = None
    split = _split_reference(n_ref, n_cand, seed, min_images)
    if split is not None:
        rest, stand_in = split
        floor = distance(reference[rest], reference[stand_in])
        matched = distance(reference[rest], candidate)
    else:
        notes.append(_floor_note(metric.upper(), n_ref, n_cand, min_images))
    return SetDistance(
        metric=metric,
        value=value,
        std=std,
        n_reference=n_ref,
        n_candidate=n_cand,
        feature_size=int(reference.shape[1]),
        noise_floor=floor,
        noise_floor_n=None if split is None else n_cand,
        noise_floor_reference_n=None if split is None else n_ref - n_cand,
        value_at_floor_sizes=matched,
        notes=tuple(notes),
    )


def _kid(
    ref: torch.Tensor, cand: torch.Tensor, subsets: int, subset_size: int, seed: int
) -> tuple[float, float]:
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(subset_size, int(ref.shape[0]), int(cand.shape[0]))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = KernelInceptionDistance(
            feature=_Precomputed(int(ref.shape[1])), subsets=subsets, subset_size=size
        )
    metric.update(ref, real=True)
    metric.update(cand, real=False)
    with torch.random.fork_rng(devices=[]):  # KID draws its subsets from the global RNG
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def kid_from_features(
    reference: torch.Tensor,
    candidate: torch.Tensor,
    subsets: int = 100,
    subset_size: int = KID_SUBSET_SIZE,
    seed: int = 0,
) -> SetDistance:
    """KID (Binkowski et al. 2018) between two feature sets, through torchmetrics'
    `KernelInceptionDistance`: the unbiased squared MMD with a cubic polynomial kernel,
    averaged over `subsets` random subsets of min(subset_size, N) images. Unbiased, so usable
    at small N (at least 2 per set); range about [0, inf) (small negative values are sampling
    noise around 0). `std`, the spread over subsets, only when both sets hold at least
    2 x subset_size images: below that every subset is (nearly) the whole set and the spread
    reads ~0 whatever the uncertainty. Noise floor as for FID."""
    _check_features(reference, candidate)
    n_ref, n_cand = int(reference.shape[0]), int(candidate.shape[0])
    if min(n_ref, n_cand) < 2:
        raise ValueError("KID needs at least 2 images per set")
    mean, std = _kid(reference, candidate, subsets, subset_size, seed)
    notes: list[str] = []
    if min(n_ref, n_cand) < 2 * subset_size:
        std_out = None
        notes.append(f"no std: it needs {2 * subset_size}+ images per set (subsets of "
                     f"{subset_size}, at most half of each set); with {min(n_ref, n_cand)} "
                     "the subsets overlap and their spread is not an uncertainty")
    else:
        std_out = std

    def distance(a: torch.Tensor, b: torch.Tensor) -> float:
        return _kid(a, b, subsets, subset_size, seed)[0]

    return _with_floor("kid", distance, mean, std_out, reference, candidate, seed, 2, notes)


def set_distances(
    reference: torch.Tensor,
    candidate: torch.Tensor,
    *,
    inception_weights: str | Path | None = None,
    feature_extractor: torch.nn.Module | None = None,
    metrics: Sequence[str] = ("fid", "kid"),
    batch_size: int = 64,
    seed: int = 0,
    kid_subsets: int = 100,
    kid_subset_size: int = KID_SUBSET_SIZE,
) -> dict[str, SetDistance]:
    """FID and/or KID of `candidate` against `reference` (uint8 image sets), by metric name.

    Features come from the Inception-v3 at `inception_weights` (a local file; never downloaded)
    or, for tests and custom feature spaces, from `feature_extractor` (uint8 images -> (N, F));
    exactly one must be given. Each image goes through the network once; the metrics and their
    noise floors are all computed from those features. FID below 50 images raises ValueError
    (see `fid_from_features`): ask for `metrics=("kid",)` on small sets."""
    if (inception_weights is None) == (feature_extractor is None):
        raise ValueError(
            "give exactly one of inception_weights (a local file) or feature_extractor"
        )
    unknown = set(metrics) - {"fid", "kid"}
    if unknown:
        raise ValueError(f"unknown set metrics {sorted(unknown)}; choose fid and/or kid")
    if "fid" in metrics:  # refuse before running any network
        n = min(_count(reference), _count(candidate))
        if n < FID_MIN_IMAGES:
            raise ValueError(
                f"FID refused: {n} images per set, it needs at least {FID_MIN_IMAGES} "
                "(ask for metrics=('kid',) on small sets)"
            )
    extractor = (
        inception_extractor(inception_weights) if inception_weights is not None
        else feature_extractor
    )
    assert extractor is not None
    ref = extract_features(reference, extractor, batch_size)
    cand = extract_features(candidate, extractor, batch_size)
    out: dict[str, SetDistance] = {}
    if "fid" in metrics:
        out["fid"] = fid_from_features(ref, cand, seed)
    if "kid" in metrics:
        out["kid"] = kid_from_features(ref, cand, kid_subsets, kid_subset_size, seed)
    return out


def _count(images: torch.Tensor) -> int:
    return int(images.shape[0]) if images.dim() == 4 else 1
