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


def attention_tolerance(q: Any, k: Any, v: Any, scale: float, out_weight: Any,
                        gain: float = 1.0) -> float:
    """Absolute tolerance for one attention layer's output (after its output projection)
    computed two ways in fp32: fused (scaled_dot_product_attention) and as explicit
    probabilities, edited by a linear map of at most `gain` in the infinity norm (a
    Prompt-to-Prompt mapper's column sums times its largest reweighting).

    Forward error, to first order: a score q.k of d terms is off by at most d ulps of
    sum |q_i k_i|; a softmax turns a score error e into a relative probability error of at most
    2e; the weighted sum over n keys adds n ulps of max |v|; the projection multiplies by its
    infinity norm and adds d_in ulps of its own. Four times that bound, for the kernels'
    blocking; a real mistake (a wrong column, row or window) is of the order of max |v|."""
    import torch

    q, k, v = (t.detach().double().abs() for t in (q, k, v))
    d = q.shape[-1]
    score_error = d * EPS32 * scale * float(torch.matmul(q, k.transpose(-1, -2)).max())
    keys = k.shape[-2]
    v_max = float(v.max())
    out_error = gain * (2 * score_error + (keys + 2) * EPS32) * v_max
    w = out_weight.detach().double().abs()
    w_inf = float(w.sum(dim=-1).max())
    projection = w_inf * out_error + w.shape[-1] * EPS32 * w_inf * gain * v_max
    return 4.0 * projection
