"""The threshold picker: which calibrated-confidence threshold keeps the most labels while the target precision is met
with stated confidence, and what share right to expect above any threshold, with its interval.

What a promise can rest on. With calibrated confidences ``p_i``, the labels kept above a threshold are right in a
share whose expectation is their mean confidence; but the share actually realised on those ``m`` labels varies around
it, for two reasons the picker accounts for:

- the calibration itself is uncertain (it rests on a few dozen to a few hundred answers):
  :meth:`~labeler.core.calibrate.ConfidenceCalibrator.sample_confidence` draws plausible alternatives ``p_i^(d)``
  from its posterior;
- given the probabilities, the kept labels are right or wrong independently, so their share right is a
  Poisson-binomial variable with mean ``mu_d = mean_i p_i^(d)`` and variance ``sum_i p_i^(d) (1 - p_i^(d)) / m^2``
  (normal approximation).

The precision to expect is the posterior predictive distribution of the realised share: a mixture over the draws of
those normals. :func:`kept_precision` gives its mean and central interval; :func:`pick_threshold` keeps the most labels
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
from scipy.special import ndtr

from labeler.core.intervals import wilson_interval

# Bisection steps for a mixture quantile on [0, 1]: 2 ** -24 is far below any precision worth showing.
_BISECTION_STEPS = 24


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


def _mixture_quantile(mean: NDArray[np.float64], sd: NDArray[np.float64], q: float) -> NDArray[np.float64]:
    """The ``q`` quantile of an equal-weight mixture of normals, per column, clipped to [0, 1].

    ``mean`` and ``sd`` have shape (n_draws, n_columns); returns shape (n_columns,).
    """
    sd = np.maximum(sd, 1e-12)
    lo = np.zeros(mean.shape[1])
    hi = np.ones(mean.shape[1])
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        below = ndtr((mid[None, :] - mean) / sd).mean(axis=0) < q
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


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
    d = draws[:, kept]
    mean = d.mean(axis=1, keepdims=True)
    sd = np.sqrt(np.sum(d * (1.0 - d), axis=1, keepdims=True)) / m
    tail = (1.0 - level) / 2
    lo = float(_mixture_quantile(mean, sd, tail)[0])
    hi = float(_mixture_quantile(mean, sd, 1.0 - tail)[0])
    return PrecisionEstimate(float(mean.mean()), (lo, hi), m, level)


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
    d = draws[:, order]
    m_all = np.arange(1, c.size + 1)
    mean_top = np.cumsum(d, axis=1) / m_all
    sd_top = np.sqrt(np.cumsum(d * (1.0 - d), axis=1)) / m_all
    tail = (1.0 - level) / 2
    # The interval's lower end reaches the target exactly when the predictive CDF at the target is at most the tail
    # probability: one pass over the draws instead of a quantile search for every m.
    below_target = ndtr((target_precision - 1e-12 - mean_top) / np.maximum(sd_top, 1e-12)).mean(axis=0)
    ok = np.flatnonzero(run_end & (below_target <= tail))
    if ok.size == 0:
        return ThresholdChoice(None, float("nan"), 0, level=level)
    j = int(ok[-1])
    m = j + 1
    threshold = float(ordered[j])
    kept_mean, kept_sd = mean_top[:, j : j + 1], sd_top[:, j : j + 1]
    expected_interval = (float(_mixture_quantile(kept_mean, kept_sd, tail)[0]),
                         float(_mixture_quantile(kept_mean, kept_sd, 1.0 - tail)[0]))
    expected = float(kept_mean.mean())
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
