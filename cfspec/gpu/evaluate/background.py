"""Is the background preserved: the changed words' region (`changed_region`, from their
cross-attention) and scores of the two images outside it (`masked_ssim`, `masked_psnr`; LPIPS'
is `cfspec.gpu.evaluate.perceptual.masked_lpips`), one `MaskedScore` per pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

MASK_THRESHOLD = 0.5  # a position is in the edit region at half its map's range or more

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


def background_mask(changed: torch.Tensor, n: int, size: tuple[int, int]) -> torch.Tensor:
    """Bool (n, H, W): True outside the changed region (`changed`: masks or attention maps,
    see `changed_region`; one is shared by all n pairs)."""
    mask = changed_region(changed, size)
    if mask.shape[0] == 1 and n > 1:
        mask = mask.expand(n, *size)
    if mask.shape[0] != n:
        raise ValueError(f"{mask.shape[0]} masks for {n} image pairs")
    return ~mask


NOTHING_TO_COMPARE = "the changed region covers the whole image: no background to compare"


def data_range_of(img0: torch.Tensor, data_range: float | None) -> float:
    """The images' data range: as given, else 255 for uint8 and 1 for float."""
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
    keep = background_mask(changed.to(a.device), a.shape[0], (a.shape[-2], a.shape[-1]))
    result = structural_similarity_index_measure(
        a, b, data_range=data_range_of(img0, data_range), return_full_image=True, reduction="none"
    )
    ssim_map = result[1] if isinstance(result, tuple) else result
    per_pixel = ssim_map.float().mean(dim=1)  # (N, H, W)
    return mean_over_background(per_pixel, keep)


def mean_over_background(values: torch.Tensor, keep: torch.Tensor) -> list[MaskedScore]:
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
    keep = background_mask(changed.to(a.device), a.shape[0], (a.shape[-2], a.shape[-1]))
    r = data_range_of(img0, data_range)
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
