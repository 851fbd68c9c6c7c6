"""The threshold picker: which calibrated-confidence threshold keeps the most labels at a target precision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeler.core.intervals import wilson_interval


@dataclass(frozen=True)
class ThresholdChoice:
    """What keeping the labels with confidence >= ``threshold`` gives.

    Attributes
    ----------
    threshold : smallest threshold whose promised precision reaches the target; None when none does
    promised_precision : mean calibrated confidence of the kept labels (NaN when none kept)
    n_kept : number of labels kept
    promised_interval : 95 % interval of the promise from the calibration's own uncertainty (``confidence_draws``);
        (NaN, NaN) without draws
    realised_precision, interval, n_evaluated : share right among kept labels whose truth is known, its Wilson 95 %
        interval and how many those are (NaN, (0, 1), 0 without truth)
    """

    threshold: float | None
    promised_precision: float
    n_kept: int
    promised_interval: tuple[float, float] = (float("nan"), float("nan"))
    realised_precision: float = float("nan")
    interval: tuple[float, float] = (0.0, 1.0)
    n_evaluated: int = 0


def pick_threshold(
    confidence: NDArray[Any],
    target_precision: float = 0.95,
    *,
    correct: NDArray[Any] | None = None,
    known: NDArray[Any] | None = None,
    confidence_draws: NDArray[Any] | None = None,
) -> ThresholdChoice:
    """The confidence threshold that keeps the most labels while their expected precision reaches the target.

    With calibrated confidences the expected share right among kept labels is their mean confidence, and the mean
    of the top-m confidences only falls as m grows, so the answer is the largest such m (whole runs of equal
    confidences are kept or dropped together).

    Parameters
    ----------
    confidence : float array of shape (n,), calibrated confidences of the propagated labels
    target_precision : float in (0, 1]
    correct : bool array of shape (n,), optional; whether each label is right (truth or audit answers)
    known : bool array of shape (n,), optional; where ``correct`` is known (default: everywhere it is given)
    confidence_draws : float array of shape (n_draws, n), optional
        Plausible alternatives to ``confidence`` (:meth:`ConfidenceCalibrator.sample_confidence`); the 2.5 and 97.5
        percentiles of their mean over the kept labels give ``promised_interval``. With a few dozen answers behind
        the calibration this interval, not the realised precision's, is the wide one.
    """
    if not 0.0 < target_precision <= 1.0:
        raise ValueError(f"target_precision must be in (0, 1], got {target_precision}")
    c = np.asarray(confidence, dtype=np.float64).ravel()
    order = np.argsort(-c, kind="stable")
    ordered = c[order]
    mean_top = np.cumsum(ordered) / np.arange(1, c.size + 1)
    run_end = np.ones(c.size, dtype=bool)
    run_end[:-1] = ordered[1:] != ordered[:-1]
    ok = np.flatnonzero(run_end & (mean_top >= target_precision - 1e-12))
    if ok.size == 0:
        return ThresholdChoice(None, float("nan"), 0)
    m = int(ok[-1]) + 1
    threshold, promised = float(ordered[m - 1]), float(mean_top[m - 1])
    promised_interval = (float("nan"), float("nan"))
    if confidence_draws is not None:
        draws = np.asarray(confidence_draws, dtype=np.float64)
        if draws.ndim != 2 or draws.shape[1] != c.size:
            raise ValueError(f"confidence_draws must have shape (n_draws, {c.size}), got {draws.shape}")
        lo, hi = np.percentile(draws[:, order[:m]].mean(axis=1), [2.5, 97.5])
        promised_interval = (float(lo), float(hi))
    if correct is None:
        return ThresholdChoice(threshold, promised, m, promised_interval)
    right = np.asarray(correct).astype(bool).ravel()
    mask = np.ones(c.size, dtype=bool) if known is None else np.asarray(known, dtype=bool).ravel()
    if right.shape != c.shape or mask.shape != c.shape:
        raise ValueError("correct and known must have the shape of confidence")
    evaluated = (c >= threshold) & mask
    n_eval = int(evaluated.sum())
    hits = int(right[evaluated].sum())
    realised = hits / n_eval if n_eval else float("nan")
    return ThresholdChoice(threshold, promised, m, promised_interval, realised, wilson_interval(hits, n_eval), n_eval)
