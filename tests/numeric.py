"""Tolerances that follow from the arithmetic, not from what one CPU happened to give.

Two runs of the same fp32 computation in a different batch layout (one pair alone, or beside
others; a different thread count) sum the same products in a different order: oneDNN and MKL
block their reductions by batch size and thread count. Every rounding is at most half an ulp of
the partial sum, so a reduction of n terms may differ by up to about n ulps of its result, and
a denoising step chains a few hundred such reductions. What stays fixed is the scale: errors
are relative to the magnitude of the values, never absolute.

The allowance below is 2**10 ulps of the largest value per denoising step: far above the
reordering error (measured ~2**6 ulps per step on the tiny UNet), and far below any real bug
(another pair's noise or plan changes latents by O(1), i.e. ~2**23 ulps).
"""

from __future__ import annotations

from typing import Any

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)  # 2**-23
ULPS_PER_STEP = 2**10


def reorder_tolerance(reference: Any, steps: int) -> float:
    """Absolute tolerance for comparing a result of `steps` chained fp32 denoising steps with
    the same computation reordered: ULPS_PER_STEP ulps of the largest magnitude, per step."""
    scale = max(float(np.abs(np.asarray(reference, dtype=np.float64)).max()), 1.0)
    return ULPS_PER_STEP * EPS32 * scale * max(steps, 1)


def assert_reordered_close(actual: Any, expected: Any, steps: int) -> None:
    """`actual` equals `expected` up to fp32 summation order over `steps` denoising steps."""
    expected = np.asarray(expected)
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=0,
                               atol=reorder_tolerance(expected, steps))
