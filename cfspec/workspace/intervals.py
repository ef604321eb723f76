"""Intervals over pairs: the studentized two-stage cluster bootstrap of a metric's mean (pairs
resampled, then each drawn pair's seeds). Needs numpy only, so the evaluate summary, the filter
and the report compute or check intervals without torch (`tests/test_intervals.py` simulates
the coverage).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Below this many pairs no interval is reported: with N = 4 a resample repeats one pair with
# probability 4 / 4**4 = 1.6%, close to the 2.5% tail, so the studentized tails become
# unbounded; from N = 5 the simulated coverage holds (tests/test_intervals.py).
CI_MIN_PAIRS = 5
CI_METHOD = ("studentized two-stage cluster bootstrap: pairs resampled with replacement, then "
             "each drawn pair's seeds with replacement; the estimate is the mean over pairs of "
             "each pair's mean over its seeds")
_CHUNK_ELEMENTS = 4_000_000  # bound memory: at most ~4M resampled values at once


@dataclass(frozen=True)
class ClusterInterval:
    """The mean over pairs (each pair's seeds averaged first) and its interval; `low`/`high`
    are None with `reason` below `CI_MIN_PAIRS` pairs."""

    mean: float
    low: float | None
    high: float | None
    n_pairs: int
    n_values: int
    reason: str | None = None


def studentized_cluster_ci(
    values: np.ndarray,
    counts: np.ndarray,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised core of `cluster_bootstrap_ci` over R data sets that share one layout.

    `values` (R, N, M): data set r's pair i has its seeds in values[r, i, :counts[i]] (the rest
    is padding and never read); `counts` (N,) >= 1. Returns (estimate, low, high), each (R,).

    Estimate: the mean of the N pair means. Each resample draws N pairs with replacement and,
    inside each drawn pair, its counts[i] seeds with replacement (the two stages that produced
    the data: pairs from a population, seeds per pair), and records
    t* = (estimate* - estimate) / se*, se = sd(pair means, ddof=1) / sqrt(N). The interval is
    [estimate - t*_(1-a) se, estimate - t*_(a) se] with order statistics of t* (bootstrap-t:
    its own spread sets the width, so the extra within-pair noise that the second stage adds
    to estimate* cancels in t*, and the t-like tails at small N are kept)."""
    data = np.asarray(values, dtype=np.float64)
    cnt = np.asarray(counts, dtype=np.int64)
    if data.ndim != 3 or cnt.shape != (data.shape[1],):
        raise ValueError(f"expected values (R, N, M) and counts (N,), got {data.shape} and "
                         f"{cnt.shape}")
    r_sets, n, m = data.shape
    if n < 2 or cnt.min() < 1 or cnt.max() > m:
        raise ValueError("need at least 2 pairs, each with 1..M values")
    valid = np.arange(m)[None, :] < cnt[:, None]  # (N, M)
    pair_means = np.where(valid, data, 0.0).sum(-1) / cnt  # (R, N)
    estimate = pair_means.mean(-1)
    se = pair_means.std(-1, ddof=1) / math.sqrt(n)
    rng = np.random.default_rng(seed)
    flat = data.reshape(-1)
    t_star = np.empty((r_sets, n_resamples), dtype=np.float64)
    per_resample = n * m
    sets_per_chunk = max(1, _CHUNK_ELEMENTS // (per_resample * n_resamples))
    for s0 in range(0, r_sets, sets_per_chunk):
        sets = np.arange(s0, min(r_sets, s0 + sets_per_chunk))
        c = len(sets)
        b_chunk = max(1, _CHUNK_ELEMENTS // (per_resample * c))
        for b0 in range(0, n_resamples, b_chunk):
            b = min(b_chunk, n_resamples - b0)
            picked = rng.integers(0, n, size=(c, b, n))  # stage 1: pairs
            k = cnt[picked]  # (c, b, n): seeds of each drawn pair
            u = rng.random((c, b, n, m), dtype=np.float32)  # stage 2: seeds in each pair
            seeds = np.minimum((u * k[..., None]).astype(np.int64), k[..., None] - 1)
            base = (sets[:, None, None] * n + picked) * m  # flat index of each pair's seed 0
            drawn = flat[base[..., None] + seeds]
            keep = np.arange(m) < k[..., None]
            means = np.where(keep, drawn, 0.0).sum(-1) / k  # (c, b, n)
            est_b = means.mean(-1)
            se_b = means.std(-1, ddof=1) / math.sqrt(n)
            diff = est_b - estimate[sets, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.where(se_b > 0, diff / se_b, np.sign(diff) * np.inf)
            t_star[sets, b0 : b0 + b] = np.nan_to_num(t, nan=0.0, posinf=np.inf,
                                                      neginf=-np.inf)
    t_star.sort(axis=1)
    alpha = (1.0 - confidence) / 2.0
    k_low = max(0, int(math.floor((n_resamples + 1) * alpha)) - 1)
    t_low, t_high = t_star[:, k_low], t_star[:, n_resamples - 1 - k_low]
    with np.errstate(invalid="ignore"):
        low = np.where(se > 0, estimate - t_high * se, estimate)
        high = np.where(se > 0, estimate - t_low * se, estimate)
    return estimate, low, high


def cluster_bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    clusters: Sequence[Any],
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    min_pairs: int = CI_MIN_PAIRS,
) -> ClusterInterval:
    """Mean over pairs and its studentized two-stage cluster-bootstrap interval
    (`studentized_cluster_ci`); `clusters[i]` names the pair of `values[i]` (seeds of one pair
    share it). Below `min_pairs` pairs, or when the tails are unbounded, no interval.
    Non-finite values are an error (drop undefined metrics first)."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0 or arr.size != len(clusters):
        raise ValueError(f"need one cluster label per value, got {arr.size} values and "
                         f"{len(clusters)} labels")
    if not np.all(np.isfinite(arr)):
        raise ValueError("cluster_bootstrap_ci got non-finite values; drop undefined entries")
    groups: dict[Any, list[float]] = {}
    for value, label in zip(arr.tolist(), clusters, strict=True):
        groups.setdefault(label, []).append(value)
    n = len(groups)
    mean = float(np.mean([np.mean(g) for g in groups.values()]))
    if n < max(min_pairs, 2):
        return ClusterInterval(mean, None, None, n, int(arr.size),
                               f"no interval below {max(min_pairs, 2)} pairs (got {n}): the "
                               "bootstrap cannot hold its coverage there")
    counts = np.array([len(g) for g in groups.values()])
    padded = np.zeros((1, n, int(counts.max())))
    for i, g in enumerate(groups.values()):
        padded[0, i, : len(g)] = g
    _, low, high = studentized_cluster_ci(padded, counts, n_resamples, seed, confidence)
    if not (np.isfinite(low[0]) and np.isfinite(high[0])):
        return ClusterInterval(mean, None, None, n, int(arr.size),
                               "the bootstrap tails are unbounded (too few distinct pairs)")
    return ClusterInterval(mean, float(low[0]), float(high[0]), n, int(arr.size))
