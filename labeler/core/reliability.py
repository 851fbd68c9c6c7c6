"""How well confidences match observed accuracy: the reliability curve and the expected calibration error
(Naeini et al. 2015; Guo et al. 2017)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeler.core.intervals import wilson_interval


@dataclass(frozen=True)
class ReliabilityCurve:
    """Per equal-width confidence bin on [0, 1]; empty bins have count 0 and NaN elsewhere.

    Attributes
    ----------
    bin_edges : float64 (n_bins + 1,); bin b is ``(edges[b], edges[b + 1]]``, the first also holds 0
    count, mean_confidence, accuracy, lower, upper : arrays of shape (n_bins,); lower/upper is the Wilson 95 % interval
    """

    bin_edges: NDArray[np.float64]
    count: NDArray[np.int64]
    mean_confidence: NDArray[np.float64]
    accuracy: NDArray[np.float64]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]


def _check_confidence(confidence: NDArray[Any]) -> NDArray[np.float64]:
    c = np.asarray(confidence, dtype=np.float64).ravel()
    if np.any((c < 0) | (c > 1)):
        raise ValueError("confidence must lie in [0, 1]")
    return c


def _check_pair(confidence: NDArray[Any], correct: NDArray[Any]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    c = _check_confidence(confidence)
    k = np.asarray(correct).astype(bool).ravel()
    if c.shape != k.shape:
        raise ValueError(f"confidence and correct differ in shape: {c.shape} vs {k.shape}")
    return c, k


def _bins(confidence: NDArray[np.float64], n_bins: int) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Equal-width bin edges on [0, 1] and each confidence's bin: ``(edges[b], edges[b + 1]]``, the first also
    holding 0."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return edges, np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)


def reliability_curve(confidence: NDArray[Any], correct: NDArray[Any], n_bins: int = 10) -> ReliabilityCurve:
    """Observed accuracy against mean confidence per equal-width bin (the reliability plot's data).

    Parameters
    ----------
    confidence : float array of shape (n,) in [0, 1]; correct : bool array of shape (n,)
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    c, k = _check_pair(confidence, correct)
    edges, which = _bins(c, n_bins)
    count = np.bincount(which, minlength=n_bins)
    hits = np.bincount(which, weights=k.astype(np.float64), minlength=n_bins)
    total = np.bincount(which, weights=c, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(count > 0, hits / count, np.nan)
        mean_confidence = np.where(count > 0, total / count, np.nan)
    bounds = [wilson_interval(h, m) if m else (np.nan, np.nan) for h, m in zip(hits, count, strict=True)]
    lower, upper = (np.array(b, dtype=np.float64) for b in zip(*bounds, strict=True))
    return ReliabilityCurve(edges, count.astype(np.int64), mean_confidence, accuracy, lower, upper)


def expected_calibration_error(confidence: NDArray[Any], correct: NDArray[Any], n_bins: int = 10) -> float:
    """``sum_b (n_b / n) |accuracy_b - mean confidence_b|`` over equal-width bins (Naeini et al. 2015).

    NaN when there are no points.
    """
    curve = reliability_curve(confidence, correct, n_bins)
    n = int(curve.count.sum())
    if n == 0:
        return float("nan")
    used = curve.count > 0
    gaps = np.abs(curve.accuracy[used] - curve.mean_confidence[used])
    return float(np.sum(curve.count[used] * gaps) / n)


def calibration_error_floor(
    confidence: NDArray[Any], n_bins: int = 10, n_draws: int = 200, random_state: int = 0
) -> float:
    """The ECE that *perfectly calibrated* confidences would show on these points, by chance alone.

    A binned ECE on a few hundred points is never near zero even when every confidence is the true probability: each
    bin's accuracy is a binomial share around its mean confidence. Drawing ``correct ~ Bernoulli(confidence)`` and
    measuring :func:`expected_calibration_error` gives that floor (its mean over ``n_draws``), against which a
    measured ECE can be read (Roelofs et al. 2022 discuss this bias of binned estimators). NaN without points.
    """
    c = _check_confidence(confidence)
    if c.size == 0:
        return float("nan")
    _, which = _bins(c, n_bins)
    in_bin = np.zeros((c.size, n_bins))
    in_bin[np.arange(c.size), which] = 1.0
    rng = np.random.default_rng(random_state)
    hits = (rng.random((n_draws, c.size)) < c) @ in_bin  # right answers per draw and bin
    # A bin's term n_b |accuracy_b - mean confidence_b| is |hits_b - sum of its confidences|.
    return float(np.mean(np.abs(hits - c @ in_bin).sum(axis=1)) / c.size)
