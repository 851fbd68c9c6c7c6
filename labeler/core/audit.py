"""Random audit of propagated labels: sampling and the accuracy estimate with Wilson intervals.

The interval itself (:mod:`labeler.core.intervals`), the reliability curve (:mod:`labeler.core.reliability`) and the
threshold picker (:mod:`labeler.core.threshold`) live in modules of their own.

The audit sample is drawn from propagated images only and labeled blind (the propagated label hidden), so it is
an unbiased sample of the labels the tool produced; human seeds are never part of the estimate.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeler.core.intervals import wilson_interval


def audit_sample(
    candidates: NDArray[Any],
    n: int,
    *,
    confidence: NDArray[Any] | None = None,
    stratified: bool = False,
    n_strata: int = 5,
    random_state: int = 0,
) -> NDArray[np.int64]:
    """Draw ``n`` images to audit from ``candidates`` (the propagated images), without replacement.

    Uniform by default. ``stratified=True`` cuts the candidates into ``n_strata`` confidence quantile bands and
    samples each band in proportion to its size (largest remainders), so every confidence band is covered while
    the sample stays self-weighting: the plain audit accuracy remains an unbiased estimate.

    Parameters
    ----------
    candidates : int (m,), image indices
    confidence : float (m,), aligned with ``candidates``; required when ``stratified``
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    rng = np.random.default_rng(random_state)
    n = min(int(n), candidates.size)
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    if not stratified:
        return rng.choice(candidates, n, replace=False)
    if confidence is None or np.shape(confidence) != candidates.shape:
        raise ValueError("stratified sampling needs a confidence per candidate")
    order = np.argsort(np.asarray(confidence), kind="stable")
    strata = np.array_split(order, min(n_strata, candidates.size))
    sizes = np.array([s.size for s in strata])
    exact = n * sizes / sizes.sum()
    take = np.floor(exact).astype(int)
    remainder_order = np.argsort(-(exact - take), kind="stable")
    take[remainder_order[: n - take.sum()]] += 1
    picked = [rng.choice(candidates[s], t, replace=False) for s, t in zip(strata, take, strict=True) if t > 0]
    return np.concatenate(picked)


@dataclass(frozen=True)
class AuditEstimate:
    """Estimated accuracy of the propagated labels from a blind audit.

    ``per_class`` maps each predicted class to (accuracy, lo, hi, n): the share of images propagated as that class
    that truly are, i.e. the precision of the propagated label.
    """

    accuracy: float
    interval: tuple[float, float]
    n: int
    per_class: dict[Hashable, tuple[float, float, float, int]] = field(default_factory=dict)


def _weighted_rate(correct: NDArray[np.float64], weights: NDArray[np.float64]) -> tuple[float, float, float]:
    """Weighted accuracy and its Wilson interval on Kish's effective sample size."""
    if correct.size == 0:
        return float("nan"), 0.0, 1.0
    rate = float(np.sum(weights * correct) / np.sum(weights))
    n_eff = float(np.sum(weights) ** 2 / np.sum(weights**2))
    lo, hi = wilson_interval(rate * n_eff, n_eff)
    return rate, lo, hi


def audit_estimate(
    audited_true: Sequence[Hashable] | NDArray[Any],
    audited_pred: Sequence[Hashable] | NDArray[Any],
    classes: Sequence[Hashable] | NDArray[Any],
    *,
    weights: NDArray[Any] | None = None,
) -> AuditEstimate:
    """Accuracy of propagated labels, overall and per predicted class, with 95% Wilson intervals.

    Parameters
    ----------
    audited_true : (m,) labels the person gave blind
    audited_pred : (m,) propagated labels of the same images
    classes : every class, so classes without audited images appear with n = 0
    weights : (m,) optional inverse inclusion probabilities for a non-self-weighting design
    """
    true = np.asarray(audited_true, dtype=object)
    pred = np.asarray(audited_pred, dtype=object)
    if true.shape != pred.shape:
        raise ValueError(f"audited_true and audited_pred differ in shape: {true.shape} vs {pred.shape}")
    w = np.ones(true.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    correct = (true == pred).astype(np.float64)
    rate, lo, hi = _weighted_rate(correct, w)
    per_class: dict[Hashable, tuple[float, float, float, int]] = {}
    for c in classes:
        mask = pred == c
        c_rate, c_lo, c_hi = _weighted_rate(correct[mask], w[mask])
        per_class[c] = (c_rate, c_lo, c_hi, int(mask.sum()))
    return AuditEstimate(accuracy=rate, interval=(lo, hi), n=int(true.shape[0]), per_class=per_class)
