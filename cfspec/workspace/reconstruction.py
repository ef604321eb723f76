"""How faithfully an inverted photo's factual image reconstructs the photo: PSNR and SSIM of
image 0 against the photo generate kept beside it (OUT/images/<id>/photo.png, the photo as it
was inverted: cropped and resized to the model's size), for the metric registry
(workspace/metrics.py). None for a pair without a photo. numpy and PIL only: evaluate's other
metrics need the GPU, these two do not. (The third, reconstruction LPIPS, runs a network with
evaluate's batches: `cfspec.gpu.evaluate.perceptual.reconstruction_lpips`, which reads the
photo with `load_photo` as these two do.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

PSNR_CAP_DB = 100.0  # identical images: the cap, as background PSNR caps an MSE of 0
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5  # Wang et al.'s Gaussian window (and torchmetrics')
K1, K2 = 0.01, 0.03


def load_photo(job: Any) -> np.ndarray | None:
    """(H, W, 3) uint8 of the (pair, seed)'s photo, or None when its pair has none. `job`: a
    `workspace.manifest_lines.Generated`. What Pillow
    raises on a missing or damaged file is left to the caller."""
    path = job.photo  # manifest_lines.Generated resolves the line's `photo` (layout.photo_path)
    if path is None:
        return None
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """10 log10(255^2 / MSE) over all pixels and channels, capped at PSNR_CAP_DB."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse <= 255.0 ** 2 * 10 ** (-PSNR_CAP_DB / 10):
        return PSNR_CAP_DB
    return float(10 * np.log10(255.0 ** 2 / mse))


def _blur(x: np.ndarray) -> np.ndarray:
    """Gaussian-weighted local means over the 'valid' windows, each channel on its own."""
    half = SSIM_WINDOW // 2
    g = np.exp(-0.5 * (np.arange(-half, half + 1) / SSIM_SIGMA) ** 2)
    g /= g.sum()
    rows = np.apply_along_axis(lambda v: np.convolve(v, g, mode="valid"), 0, x)
    return np.apply_along_axis(lambda v: np.convolve(v, g, mode="valid"), 1, rows)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (data range 255, Gaussian window 11, sigma 1.5) over the windows that fit
    inside the image and the channels; images smaller than the window compare as one window."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    if min(x.shape[0], x.shape[1]) < SSIM_WINDOW:
        mu_x, mu_y = x.mean(axis=(0, 1)), y.mean(axis=(0, 1))
        var_x, var_y = x.var(axis=(0, 1)), y.var(axis=(0, 1))
        cov = ((x - mu_x) * (y - mu_y)).mean(axis=(0, 1))
    else:
        mu_x, mu_y = _blur(x), _blur(y)
        var_x = _blur(x * x) - mu_x ** 2
        var_y = _blur(y * y) - mu_y ** 2
        cov = _blur(x * y) - mu_x * mu_y
    c1, c2 = (K1 * 255) ** 2, (K2 * 255) ** 2
    score = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return float(np.mean(score))


def reconstruction_psnr(sample: Any) -> float | None:
    photo = load_photo(sample.job)
    return None if photo is None else psnr(sample.image_0, photo)


def reconstruction_ssim(sample: Any) -> float | None:
    photo = load_photo(sample.job)
    return None if photo is None else ssim(sample.image_0, photo)
