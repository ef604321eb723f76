"""LPIPS (Zhang et al. 2018), torchmetrics' network: whether it can run without a download
(`lpips_available`), the network, loaded once per evaluate run (`Lpips`), and evaluate's two
LPIPS metrics: `background_lpips` (`masked_lpips`, the per-pixel distance map averaged outside
the changed region) and `reconstruction_lpips` (`reconstruction_lpips`, the factual image of a
pair with a photo against that photo, whole image).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from cfspec.gpu.evaluate.background import (
    MaskedScore,
    background_mask,
    data_range_of,
    mean_over_background,
    to_float_nchw,
)
from cfspec.workspace.integrity import PNG_ERRORS
from cfspec.workspace.reconstruction import load_photo

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


class Lpips:
    """torchmetrics' LPIPS network on `device`, built on first use (check `lpips_available`
    first): each mode once per evaluate run, not once per batch. Images are (N, 3, H, W) or
    (N, H, W, 3), uint8 (data range 255) or float (data range 1 unless given)."""

    def __init__(self, net: str = "alex", device: torch.device | str = "cpu") -> None:
        self.net = net
        self.device = torch.device(device)

    def _network(self, spatial: bool) -> torch.nn.Module:
        from torchmetrics.functional.image.lpips import _LPIPS

        return _LPIPS(pretrained=True, net=self.net,  # type: ignore[arg-type]
                      spatial=spatial).to(self.device)

    @cached_property
    def _whole(self) -> torch.nn.Module:
        return self._network(spatial=False)

    @cached_property
    def _spatial(self) -> torch.nn.Module:
        return self._network(spatial=True)

    def _inputs(self, images: torch.Tensor, data_range: float | None) -> torch.Tensor:
        """The network's input: float (N, 3, H, W) in [-1, 1] on its device."""
        x = to_float_nchw(images).to(self.device)
        return x / data_range_of(images, data_range) * 2 - 1

    def distances(self, img0: torch.Tensor, img1: torch.Tensor,
                  data_range: float | None = None) -> list[float]:
        """LPIPS of each pair of images: each layer's distances averaged over its own
        positions, then summed over the layers (the paper's distance, and torchmetrics'
        `learned_perceptual_image_patch_similarity`). 0 = identical, lower = closer."""
        with torch.inference_mode():
            scores = self._whole(self._inputs(img0, data_range), self._inputs(img1, data_range))
        return [float(v) for v in scores.reshape(-1).tolist()]

    def distance_maps(self, img0: torch.Tensor, img1: torch.Tensor,
                      data_range: float | None = None) -> torch.Tensor:
        """Float (N, H, W): each layer's distances upsampled to the image size, summed."""
        with torch.inference_mode():
            maps = self._spatial(self._inputs(img0, data_range), self._inputs(img1, data_range))
        return maps.float().squeeze(1)


def masked_lpips(
    img0: torch.Tensor,
    img1: torch.Tensor,
    changed: torch.Tensor,
    net: str = "alex",
    data_range: float | None = None,
    lpips: Lpips | None = None,
) -> list[MaskedScore]:
    """LPIPS over the background, per pair, or None with a reason for every pair when the
    backbone weights are not available locally (`lpips_available`).

    Averages LPIPS' per-pixel distance map (`Lpips.distance_maps`) over the background (outside
    the changed region, see `background.changed_region`). Range [0, ~1]; 0 = perceptually
    identical, lower = better preserved. `lpips`: a network already loaded (evaluate's),
    else one is built for this call."""
    n = to_float_nchw(img0).shape[0]
    if lpips is None:
        ok, reason = lpips_available(net)
        if not ok:
            return [MaskedScore(value=None, pixels=0, reason=reason) for _ in range(n)]
        lpips = Lpips(net, img0.device)
    dist_map = lpips.distance_maps(img0, img1, data_range)
    keep = background_mask(changed.to(dist_map.device), n, (dist_map.shape[-2],
                                                             dist_map.shape[-1]))
    return mean_over_background(dist_map, keep)


@dataclass(frozen=True)
class ReconstructionScore:
    """One (pair, seed)'s `reconstruction_lpips`: None without a photo (`reason` None too), or
    None with the reason when the photo cannot be compared."""

    value: float | None
    reason: str | None = None


def reconstruction_lpips(samples: Sequence[Any], lpips: Lpips) -> list[ReconstructionScore]:
    """LPIPS of each sample's factual image (image 0: for a pair with a photo, the inverted
    photo's reconstruction) against the photo generate kept beside it, whole image; the photos
    that match their image's size go through the network in one call. `samples`:
    `gpu.evaluate.stage.Sample`s."""
    found = [ReconstructionScore(None)] * len(samples)  # no photo: null, nothing went wrong
    compared: list[tuple[int, torch.Tensor, torch.Tensor]] = []
    for index, sample in enumerate(samples):
        try:
            photo = load_photo(sample.job)
        except PNG_ERRORS as error:
            found[index] = ReconstructionScore(None, f"{sample.job.photo}: unreadable "
                                                     f"({type(error).__name__}: {error})")
            continue
        if photo is None:
            continue
        if photo.shape != sample.image_0.shape:
            (ph, pw, _), (ih, iw, _) = photo.shape, sample.image_0.shape
            found[index] = ReconstructionScore(None, f"the photo is {pw}x{ph}, the factual "
                                                     f"image {iw}x{ih}: generate writes "
                                                     "photo.png at the image's size; was it "
                                                     "replaced?")
            continue
        compared.append((index, torch.from_numpy(sample.image_0), torch.from_numpy(photo)))
    if compared:
        values = lpips.distances(torch.stack([c[1] for c in compared]),
                                 torch.stack([c[2] for c in compared]))
        for (index, _, _), value in zip(compared, values, strict=True):
            found[index] = ReconstructionScore(value)
    return found
