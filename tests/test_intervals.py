"""The summary's intervals, checked by simulation: clustered data (pairs with a shared effect,
seeds within pairs), many seeded data sets at once, coverage of the true mean compared with
95% within a band set by the simulation's own binomial standard error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cfspec.workspace import intervals as M

REPEATS = 800  # data sets per design: binomial SE of the coverage = sqrt(.95 * .05 / 800) = 0.8%
RESAMPLES = 999  # bootstrap resamples per data set ((B + 1) * 0.025 is a whole number)
# Allowed distance from 95%: 3.5 binomial SEs of the simulation (a false alarm 1 run in ~2000)
# plus 1 point of the method's own small-sample error.
BAND = 3.5 * math.sqrt(0.95 * 0.05 / REPEATS) + 0.01


def _clustered(rng: np.random.Generator, pairs: int, seeds: int, icc: float) -> np.ndarray:
    """(REPEATS, pairs, seeds): y = pair effect + seed noise, total variance 1, true mean 0."""
    effect = rng.normal(0.0, math.sqrt(icc), (REPEATS, pairs, 1))
    noise = rng.normal(0.0, math.sqrt(1.0 - icc), (REPEATS, pairs, seeds))
    return effect + noise


@pytest.mark.parametrize(("pairs", "seeds", "icc"), [
    (10, 20, 0.5),  # the row bootstrap covered 43% here
    (30, 4, 0.5),  # ... and 79% here
    (5, 4, 0.5),  # the fewest pairs given an interval
    (5, 1, 0.5),  # one seed per pair: small-N percentile intervals covered 84%
    (10, 4, 0.0),  # independent seeds: the second stage must not inflate the interval
])
def test_cluster_interval_covers_95_percent(pairs: int, seeds: int, icc: float) -> None:
    rng = np.random.default_rng(1000 * pairs + seeds)
    data = _clustered(rng, pairs, seeds, icc)
    estimate, low, high = M.studentized_cluster_ci(data, np.full(pairs, seeds), RESAMPLES,
                                                   seed=7)
    assert np.all(low <= estimate) and np.all(estimate <= high)
    coverage = float(np.mean((low <= 0.0) & (0.0 <= high)))
    assert abs(coverage - 0.95) <= BAND, f"coverage {coverage:.3f} at {pairs} x {seeds}"


def test_skewed_pairs_hold_coverage() -> None:
    """A skewed metric (log-normal pair effects): the studentized tails follow the skew."""
    rng = np.random.default_rng(3)
    effect = rng.lognormal(0.0, 0.75, (REPEATS, 10, 1))
    data = effect + rng.normal(0.0, 0.5, (REPEATS, 10, 4))
    truth = math.exp(0.75**2 / 2)
    _, low, high = M.studentized_cluster_ci(data, np.full(10, 4), RESAMPLES, seed=7)
    coverage = float(np.mean((low <= truth) & (truth <= high)))
    # measured 91.6%: skew at 10 pairs costs the bootstrap-t a few points; 2 more allowed
    assert abs(coverage - 0.95) <= BAND + 0.02, coverage


def test_the_row_bootstrap_fails_the_same_check() -> None:
    """The percentile bootstrap over (pair, seed) rows that the summary used before: with 20
    seeds per pair it treats correlated seeds as independent and the band catches it."""
    rng = np.random.default_rng(9)
    sets = 200
    data = _clustered(rng, 10, 20, 0.5)[:sets].reshape(sets, -1)  # rows, pairs forgotten
    idx = rng.integers(0, data.shape[1], size=(sets, 499, data.shape[1]))
    means = np.take_along_axis(data[:, None, :], idx, axis=2).mean(-1)
    low, high = np.percentile(means, [2.5, 97.5], axis=1)
    coverage = float(np.mean((low <= 0.0) & (0.0 <= high)))
    assert coverage < 0.95 - BAND - 0.2, coverage  # measured 49.5% (200 data sets)


def test_ragged_pairs_match_the_core_and_ignore_order() -> None:
    rng = np.random.default_rng(5)
    counts = [3, 1, 4, 2, 2, 5]
    values = [float(v) for c in counts for v in rng.normal(size=c)]
    labels = [f"p{i}" for i, c in enumerate(counts) for _ in range(c)]
    result = M.cluster_bootstrap_ci(values, labels, n_resamples=499, seed=2)
    pair_means = [np.mean(values[sum(counts[:i]):sum(counts[:i + 1])])
                  for i in range(len(counts))]
    assert result.mean == pytest.approx(float(np.mean(pair_means)), rel=1e-12)
    assert (result.n_pairs, result.n_values) == (6, sum(counts))
    assert result.low is not None and result.high is not None
    assert result.low < result.mean < result.high
    padded = np.zeros((1, 6, 5))
    for i, c in enumerate(counts):
        padded[0, i, :c] = values[sum(counts[:i]):sum(counts[:i + 1])]
    _, low, high = M.studentized_cluster_ci(padded, np.array(counts), 499, seed=2)
    assert (result.low, result.high) == (float(low[0]), float(high[0]))
    again = M.cluster_bootstrap_ci(values, labels, n_resamples=499, seed=2)
    assert again == result  # seeded: the same rows give the same interval


def test_no_interval_below_five_pairs() -> None:
    result = M.cluster_bootstrap_ci([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], list("aabbcc"))
    assert result.low is None and result.high is None and result.n_pairs == 3
    assert result.mean == pytest.approx(3.5) and "5 pairs" in (result.reason or "")
    with pytest.raises(ValueError):
        M.cluster_bootstrap_ci([1.0, float("nan")], ["a", "b"])


def test_pairs_with_equal_means_give_a_zero_width_interval() -> None:
    result = M.cluster_bootstrap_ci([1.0] * 10, [i // 2 for i in range(10)])
    assert (result.mean, result.low, result.high) == (1.0, 1.0, 1.0)
