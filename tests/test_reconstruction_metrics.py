"""Reconstruction PSNR/SSIM of an inverted photo (cfspec/workspace/reconstruction.py)."""

from __future__ import annotations

import math

import numpy as np

from cfspec.workspace import reconstruction
from cfspec.workspace.metrics import METRICS


def test_psnr_is_the_log_of_the_mean_squared_error() -> None:
    a = np.full((8, 8, 3), 100, dtype=np.uint8)
    assert reconstruction.psnr(a, a) == reconstruction.PSNR_CAP_DB
    b = a + 10  # every value off by 10: MSE 100
    assert math.isclose(reconstruction.psnr(a, b), 10 * math.log10(255**2 / 100), rel_tol=1e-12)


def _ssim_by_windows(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM from its definition, window by window (the slow, obvious way)."""
    half = reconstruction.SSIM_WINDOW // 2
    g = np.exp(-0.5 * (np.arange(-half, half + 1) / reconstruction.SSIM_SIGMA) ** 2)
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (reconstruction.K1 * 255) ** 2, (reconstruction.K2 * 255) ** 2
    size = reconstruction.SSIM_WINDOW
    scores = []
    for c in range(3):
        x, y = a[..., c].astype(np.float64), b[..., c].astype(np.float64)
        for i in range(x.shape[0] - size + 1):
            for j in range(x.shape[1] - size + 1):
                px, py = x[i:i + size, j:j + size], y[i:i + size, j:j + size]
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy = (w * px * px).sum() - mx**2, (w * py * py).sum() - my**2
                cov = (w * px * py).sum() - mx * my
                scores.append((2 * mx * my + c1) * (2 * cov + c2)
                              / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(scores))


def test_ssim_is_the_mean_over_gaussian_windows() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (16, 19, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
    # Both sum the same ~121-term products in double precision: agreement to ~1e-12.
    assert math.isclose(reconstruction.ssim(a, b), _ssim_by_windows(a, b), abs_tol=1e-9)
    assert math.isclose(reconstruction.ssim(a, a), 1.0, abs_tol=1e-12)
    assert reconstruction.ssim(a, 255 - a) < 0


def test_both_are_registry_metrics_that_skip_pairs_without_a_photo() -> None:
    by_name = {m.name: m for m in METRICS}

    class Job:  # a manifest_lines.Generated whose line records no photo
        photo = None

    class Sample:
        job = Job()
        image_0 = np.zeros((4, 4, 3), dtype=np.uint8)

    for name in ("reconstruction_psnr", "reconstruction_ssim"):
        metric = by_name[name]
        assert metric.per_seed is not None and metric.per_seed(Sample()) is None
