"""Two Gaussian classes whose Bayes posterior is known: the reference answer for calibration tests.

Two classes, x ~ N(+-1, 1), equal priors; the classifier says sign(x). Its Bayes probability of being right is
sigmoid(2 |x|). The scores handed to the calibrator are a tempered posterior, p = sigmoid(TEMPER x), like label
spreading's underconfident mass: log(p1 / p2) = TEMPER |x|, so the right mapping is sigmoid(2 / TEMPER * feature),
a slope of 2.9 where the default prior says 4.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from labeler.core.calibration_evidence import calibration_features

TEMPER = 0.7
GRID = np.linspace(0.0, 3.0, 61)
Distortion = Callable[[NDArray[np.float64]], NDArray[np.float64]]


def tempered(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return TEMPER * x


def sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-z))


def two_class_proba(score: NDArray[np.float64]) -> NDArray[np.float64]:
    p = sigmoid(score)
    return np.stack([1.0 - p, p], axis=1)


def two_gaussians(n: int, seed: int, distort: Distortion = tempered) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Features of ``n`` draws and whether sign(x) is the true class."""
    rng = np.random.default_rng(seed)
    positive = rng.random(n) < 0.5
    x = rng.normal(np.where(positive, 1.0, -1.0), 1.0)
    return calibration_features(two_class_proba(distort(x))), (x > 0) == positive
