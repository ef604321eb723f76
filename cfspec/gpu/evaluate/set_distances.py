"""Set-level distances between the factual and the counterfactual images: `fid_from_features`,
`kid_from_features` and `set_distances` (FID and KID through torchmetrics, Inception weights
from a local file only, each with N, feature size and a same-N noise floor).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

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
