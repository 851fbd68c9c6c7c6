"""The threshold picker: which calibrated-confidence threshold keeps the most labels while the target precision is met
with stated confidence, and what share right to expect above any threshold, with its interval.

What a promise can rest on. With calibrated confidences ``p_i``, the labels kept above a threshold are right in a
share whose expectation is their mean confidence; but the share actually realised on those ``m`` labels varies around
it, for two reasons the picker accounts for:

- the calibration itself is uncertain (it rests on a few dozen to a few hundred answers):
  :meth:`~labeler.core.calibrate.ConfidenceCalibrator.sample_confidence` draws plausible alternatives ``p_i^(d)``
  from its posterior;
- given the probabilities, the kept labels are right or wrong independently, so the number wrong among them is a
  Poisson-binomial variable with mean ``sum_i q_i`` and variance ``sum_i q_i (1 - q_i)`` (``q = 1 - p^(d)``).
  It is taken as the binomial with the same mean and variance (exact when the ``q_i`` are equal, the Poisson limit
  when wrong labels are rare), which keeps it a count: among ten kept labels one wrong one already means 90 %.
  A normal approximation does not, and let a dozen labels promised at 0.997 qualify for a 95 % target although
  one error in them was likely enough to miss it (pets37 breeds: 4 of 9 such promises missed).

The precision to expect is the posterior predictive distribution of the realised share: a mixture over the draws of
those counts. :func:`kept_precision` gives its mean and central interval; :func:`pick_threshold` keeps the most labels
whose interval's *lower* end still reaches the target, so the promise reads "expected X right, 95 % interval [lo, hi],
lo >= target" and the benchmark can check it (does the realised precision fall inside [lo, hi] as often as stated?).
Not included: the isotonic stage's own sampling error (blended in only from a few hundred answers) and any
misspecification of the calibration model beyond what its posterior knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import betainc, ndtr

from labeler.core.intervals import wilson_interval

# Expected wrong labels from which their count is taken as normal (see _wrong_cdf).
NORMAL_FROM = 50.0


@dataclass(frozen=True)
class PrecisionEstimate:
    """The share right to expect among labels kept above a threshold.

    Attributes
    ----------
    expected : posterior predictive mean of the kept labels' share right (NaN when none is kept)
    interval : its central ``level`` predictive interval, from the calibration's uncertainty and the finite number kept
    n_kept : number of labels kept
    level : coverage of ``interval``
    """

    expected: float
    interval: tuple[float, float]
    n_kept: int
    level: float = 0.95


@dataclass(frozen=True)
class ThresholdChoice:
    """What keeping the labels with confidence >= ``threshold`` gives.

    Attributes
    ----------
    threshold : smallest threshold whose interval's lower end reaches the target; None when none does
    expected_precision : predictive mean share right of the kept labels (NaN when none kept)
    n_kept : number of labels kept
    expected_interval : its central ``level`` predictive interval; its lower end is >= the target (the promise)
    level : coverage of ``expected_interval``
    realised_precision, interval, n_evaluated : share right among kept labels whose truth is known, its Wilson 95 %
        interval and how many those are (NaN, (0, 1), 0 without truth)
    """

    threshold: float | None
    expected_precision: float
    n_kept: int
    expected_interval: tuple[float, float] = (float("nan"), float("nan"))
    level: float = 0.95
    realised_precision: float = float("nan")
    interval: tuple[float, float] = (0.0, 1.0)
    n_evaluated: int = 0


def _wrong_cdf(allowed: NDArray[np.float64], mean: NDArray[np.float64], var: NDArray[np.float64]
               ) -> NDArray[np.float64]:
    """P(at most ``allowed`` kept labels are wrong), elementwise, for a count of wrong labels with ``mean`` and
    ``var``: the binomial with that mean and variance, ``n = mean / q`` trials of probability ``q = 1 - var / mean``
    (real ``n``: the regularised incomplete beta function, P(X <= k) = I_{1-q}(n - k, k + 1)). From
    ``NORMAL_FROM`` expected wrong labels on, its normal limit with continuity correction (within a label of it
    there, and ten times cheaper over the thousands of counts the picker weighs)."""
    allowed, mean, var = (np.asarray(a, dtype=np.float64) for a in np.broadcast_arrays(allowed, mean, var))
    out = np.ones(mean.shape)
    out[allowed < 0] = 0.0
    many = mean >= NORMAL_FROM
    out[many] = ndtr((allowed[many] + 0.5 - mean[many]) / np.sqrt(np.maximum(var[many], 1e-12)))
    few = (mean > 1e-12) & ~many & (allowed >= 0)  # no expected error: none happens
    q = np.clip(1.0 - var[few] / mean[few], 1e-12, 1.0)
    trials = mean[few] / q
    k = allowed[few]
    cdf = np.ones(k.shape)
    inside = k < trials  # as many allowed as there are trials: certain
    cdf[inside] = betainc(trials[inside] - k[inside], k[inside] + 1.0, 1.0 - q[inside])
    out[few] = cdf
    return out


def _share_estimate(mean: NDArray[np.float64], var: NDArray[np.float64], m: int, level: float
                    ) -> tuple[float, tuple[float, float]]:
    """Expected share right among ``m`` kept labels and its central ``level`` interval, under the equal-weight mixture
    over draws of the counts of wrong labels with ``mean`` and ``var`` (one value per draw)."""

    def quantile(prob: float) -> int:  # smallest count e with P(wrong <= e) >= prob, by bisection on 0..m
        lo, hi = 0, m
        while lo < hi:
            mid = (lo + hi) // 2
            if _wrong_cdf(np.array(float(mid)), mean, var).mean() >= prob:
                hi = mid
            else:
                lo = mid + 1
        return lo

    tail = (1.0 - level) / 2
    # Widened, where need be, to hold the expected share: a count's central interval can leave its mean out (ten
    # labels at 0.998 are all right 98 % of the time: the interval is [1, 1], the mean 0.998).
    expected = 1.0 - float(np.mean(mean)) / m
    return expected, (min(1.0 - quantile(1.0 - tail) / m, expected), max(1.0 - quantile(tail) / m, expected))


def _draws_for(confidence: NDArray[np.float64], confidence_draws: NDArray[Any] | None) -> NDArray[np.float64]:
    if confidence_draws is None:
        return confidence[None, :]
    draws = np.asarray(confidence_draws, dtype=np.float64)
    if draws.ndim != 2 or draws.shape[1] != confidence.size:
        raise ValueError(f"confidence_draws must have shape (n_draws, {confidence.size}), got {draws.shape}")
    return draws


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def kept_precision(
    confidence: NDArray[Any],
    threshold: float,
    *,
    confidence_draws: NDArray[Any] | None = None,
    level: float = 0.95,
) -> PrecisionEstimate:
    """The share right to expect among the labels with ``confidence >= threshold``, with its predictive interval.

    Parameters
    ----------
    confidence : float array of shape (n,), calibrated confidences of the propagated labels
    threshold : float
    confidence_draws : float array of shape (n_draws, n), optional
        Posterior draws of the confidences (:meth:`ConfidenceCalibrator.sample_confidence`); without them only the
        finite number kept makes the interval (the calibration is taken as exact).
    level : float in (0, 1), coverage of the interval
    """
    _check_level(level)
    c = np.asarray(confidence, dtype=np.float64).ravel()
    draws = _draws_for(c, confidence_draws)
    kept = c >= threshold
    m = int(kept.sum())
    if m == 0:
        return PrecisionEstimate(float("nan"), (float("nan"), float("nan")), 0, level)
    wrong = 1.0 - draws[:, kept]
    expected, interval = _share_estimate(wrong.sum(axis=1), np.sum(wrong * (1.0 - wrong), axis=1), m, level)
    return PrecisionEstimate(expected, interval, m, level)


def pick_threshold(
    confidence: NDArray[Any],
    target_precision: float = 0.95,
    *,
    correct: NDArray[Any] | None = None,
    known: NDArray[Any] | None = None,
    confidence_draws: NDArray[Any] | None = None,
    level: float = 0.95,
) -> ThresholdChoice:
    """The confidence threshold that keeps the most labels while the lower end of the ``level`` predictive interval
    of their share right reaches the target (see the module docstring).

    Labels are kept from the most confident down; whole runs of equal confidences are kept or dropped together.

    Parameters
    ----------
    confidence : float array of shape (n,), calibrated confidences of the propagated labels
    target_precision : float in (0, 1]
    correct : bool array of shape (n,), optional; whether each label is right (truth or audit answers)
    known : bool array of shape (n,), optional; where ``correct`` is known (default: everywhere it is given)
    confidence_draws : float array of shape (n_draws, n), optional
        Plausible alternatives to ``confidence`` (:meth:`ConfidenceCalibrator.sample_confidence`). Without them the
        interval holds only the variation of a finite number of labels around their mean confidence.
    level : float in (0, 1), coverage of the interval (0.95: the target is met with about 97.5 % probability)
    """
    if not 0.0 < target_precision <= 1.0:
        raise ValueError(f"target_precision must be in (0, 1], got {target_precision}")
    _check_level(level)
    c = np.asarray(confidence, dtype=np.float64).ravel()
    draws = _draws_for(c, confidence_draws)
    order = np.argsort(-c, kind="stable")
    ordered = c[order]
    run_end = np.ones(c.size, dtype=bool)
    run_end[:-1] = ordered[1:] != ordered[:-1]
    wrong = 1.0 - draws[:, order]
    m_all = np.arange(1, c.size + 1)
    wrong_mean = np.cumsum(wrong, axis=1)  # expected number wrong among the top m, per draw
    wrong_var = np.cumsum(wrong * (1.0 - wrong), axis=1)
    tail = (1.0 - level) / 2
    # The interval's lower end reaches the target exactly when P(more wrong than the target allows) is at most the
    # tail probability: one pass over the draws instead of a quantile search for every m.
    allowed = np.floor(m_all * (1.0 - target_precision) + 1e-9)
    above_allowed = 1.0 - _wrong_cdf(allowed[None, :], wrong_mean, wrong_var).mean(axis=0)
    ok = np.flatnonzero(run_end & (above_allowed <= tail))
    if ok.size == 0:
        return ThresholdChoice(None, float("nan"), 0, level=level)
    j = int(ok[-1])
    m = j + 1
    threshold = float(ordered[j])
    expected, expected_interval = _share_estimate(wrong_mean[:, j], wrong_var[:, j], m, level)
    if correct is None:
        return ThresholdChoice(threshold, expected, m, expected_interval, level)
    right = np.asarray(correct).astype(bool).ravel()
    mask = np.ones(c.size, dtype=bool) if known is None else np.asarray(known, dtype=bool).ravel()
    if right.shape != c.shape or mask.shape != c.shape:
        raise ValueError("correct and known must have the shape of confidence")
    evaluated = (c >= threshold) & mask
    n_eval = int(evaluated.sum())
    hits = int(right[evaluated].sum())
    realised = hits / n_eval if n_eval else float("nan")
    return ThresholdChoice(threshold, expected, m, expected_interval, level, realised, wilson_interval(hits, n_eval),
                           n_eval)
