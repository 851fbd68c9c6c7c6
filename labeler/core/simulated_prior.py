"""A prior mapping for the calibrator derived from the graph itself: re-seed at random, see how often spreading agrees.

Why: the calibrator's default mapping ``sigmoid(4 log(p1 / p2))`` is an average over ten-class development sets, but
how ``log(p1 / p2)`` relates to being right depends on the graph and on the number of classes: how fast mass decays,
how clusters touch, and how the masses of many classes crowd the top two together (the fitted slope is about 4 on ten
digit classes, 8-14 on 37 pet breeds, 15-18 on 2 species). With one label per class there is no leave-one-out
evidence at all, so the default alone spoke until audits arrived (issue 10: ECE 0.3 on Fashion-MNIST at one label per
class); with more labels the leave-one-out rows span too little of the feature to move a slope held at 4 by its prior.

Method, a parametric bootstrap of the seeding (Efron & Tibshirani 1993, ch. 6, with the fitted model standing in for
the unknown truth): take the current labels as if they were the truth; place as many seeds per class as the person
has labels, at random among the images carrying that label; spread; record, for every image the spreading reaches,
the calibration feature and whether the re-seeded label agrees with the current one. Repeat a few times and fit the
calibrator's logistic model on those rows. The fit is the calibration curve expected on *this* graph when a person's
labels land at random, and becomes the prior mean of :class:`~labeler.core.calibrate.ConfidenceCalibrator`; the
slope's width stays as it is, since the real draw of seeds is one seeding among many, the level's is set below, and
audits and leave-one-out rows update it as before.

What it cannot see: where the current labels are wrong in a way the graph agrees with (a cluster of class A that
spreading gives to B is "truth" here), and seeds chosen rather than drawn. The simulated truth is smoother than the
real one, which makes errors inside a cluster invisible (optimistic), while a random re-seeding is often less typical
than the person's (pessimistic); audits remain what pins the level.

How far to trust it (:attr:`SimulatedPrior.intercept_sd`): the width of the prior on the level is set where its error
is measured, in probability, from two parts. At one label per class (no leave-one-out evidence: the prior and the
audits alone decide) the simulated level's error (the mean P(right) it predicts minus the share right) was, per set,
a bias plus a spread from draw to draw (``benchmarks/results/prior_width.md``, nine sets: digits at 8, 16 and 28 px,
clothing, pets37's breeds and species at full size and at 32 px, digits on photo crops). The spread is what the
simulation itself shows: how much the agreement differs from one re-seeding to the next (:attr:`SimulatedPrior.spread`;
0.03-0.09 on most sets and 0.26 on the 32 px species, whose accuracy from one label per class swings from 0.4 to 0.9
between draws), about the size of the error's own spread from draw to draw or larger (0.02-0.07; 0.17 there), so
counting it does not make the prior too sure. The bias it cannot see
(clothing's level is 0.14 too high on average); its root mean square over the sets, ``BIAS_SD``, is the other part.
The width is ``sqrt(BIAS_SD ** 2 + spread ** 2)`` in probability, i.e. that over ``a (1 - a)`` logits at the
simulated agreement ``a`` (the logistic's slope there), at most the calibrator's former 1.0. A fixed width in logits
cannot say this: one logit is 0.24 in probability near a level of 0.6, where 30 answers then outweighed the prior
about seven to one (pets37's breeds at one label each scored ECE 0.115, the prior alone 0.069), and 0.02 near 0.98.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from labeler.core.calibration_evidence import DEFAULT_INTERCEPT, DEFAULT_SLOPE, calibration_features
from labeler.core.propagate import Source, propagate

if TYPE_CHECKING:  # imported where used: its scikit-learn costs `labeler status`, which only reads the prior, a second
    from labeler.core.calibrate import ConfidenceCalibrator

# Root mean square over sets of the simulated level's average error (mean P(right) it predicts minus the share
# right) at one label per class, in probability (benchmarks/prior_width.py).
BIAS_SD = 0.065
# The widest prior on the intercept (logits): ConfidenceCalibrator's default, what a level near 0 or 1 keeps.
MAX_INTERCEPT_SD = 1.0


@dataclass(frozen=True)
class SimulatedPrior:
    """The calibration curve expected on a graph under random seeding.

    Attributes
    ----------
    coef : float, slope on ``log(p1 / p2)``; intercept : float (logit units)
    n_rows : int, simulated (feature, agreement) rows the fit rests on (0: the default mapping, nothing simulated)
    agreement : float, share of those rows whose re-seeded label agreed with the current one (NaN without rows)
    spread : float, standard deviation of the agreement from one re-seeding to the next (0 with fewer than two)
    """

    coef: float = DEFAULT_SLOPE
    intercept: float = DEFAULT_INTERCEPT
    n_rows: int = 0
    agreement: float = float("nan")
    spread: float = 0.0

    @property
    def level_sd(self) -> float:
        """How far off the simulated level may be, in probability: ``sqrt(BIAS_SD ** 2 + spread ** 2)``."""
        return float(np.hypot(BIAS_SD, self.spread))

    @property
    def intercept_sd(self) -> float:
        """Prior standard deviation of the calibrator's intercept (logits): :attr:`level_sd` at the simulated
        agreement ``a``, i.e. ``level_sd / (a (1 - a))``, at most ``MAX_INTERCEPT_SD`` (module docstring);
        ``MAX_INTERCEPT_SD`` for the default mapping, which was not simulated."""
        a = self.agreement
        if not self.n_rows or not 0.0 < a < 1.0:
            return MAX_INTERCEPT_SD
        return min(self.level_sd / (a * (1.0 - a)), MAX_INTERCEPT_SD)

    def calibrator(self, **params: Any) -> ConfidenceCalibrator:
        """A :class:`ConfidenceCalibrator` centred on this mapping, with :attr:`intercept_sd` as the width of its
        level (other parameters, ``intercept_sd`` too, passed through)."""
        from labeler.core.calibrate import ConfidenceCalibrator

        params.setdefault("intercept_sd", self.intercept_sd)
        return ConfidenceCalibrator(prior_coef=(self.coef,), prior_intercept=self.intercept, **params)


def simulated_prior(
    W: sp.spmatrix | NDArray[Any],
    y: NDArray[Any],
    label: NDArray[Any],
    n_classes: int,
    *,
    n_repeats: int = 8,
    alpha: float = 0.99,
    random_state: int = 0,
) -> SimulatedPrior:
    """Fit the calibrator's logistic mapping on re-seeded spreading, with ``label`` standing in for the truth.

    Parameters
    ----------
    W : (n, n) symmetric affinity
    y : int array of shape (n,), the human labels (-1 elsewhere); how many seeds each class gets
    label : int array of shape (n,), current labels (human and propagated; -1 where unreached)
    n_classes : int
    n_repeats : int, re-seedings (each one spreading solve)
    alpha : label spreading's alpha, as the app runs it
    random_state : int

    Returns
    -------
    SimulatedPrior
        The default mapping (``n_rows == 0``) when fewer than two classes have labels to draw from.
    """
    y = np.asarray(y, dtype=np.int64)
    label = np.asarray(label, dtype=np.int64)
    if y.shape != label.shape:
        raise ValueError(f"y and label differ in shape: {y.shape}, {label.shape}")
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1, got {n_repeats}")
    per_class = np.bincount(y[y >= 0], minlength=n_classes)[:n_classes]
    members = [np.flatnonzero(label == c) for c in range(n_classes)]
    drawable = [c for c in range(n_classes) if per_class[c] > 0 and members[c].size > 0]
    if len(drawable) < 2:
        return SimulatedPrior()
    rng = np.random.default_rng(random_state)
    features: list[NDArray[np.float64]] = []
    agree: list[NDArray[np.bool_]] = []
    for _ in range(n_repeats):
        y_sim = np.full_like(label, -1)
        for c in drawable:
            y_sim[rng.choice(members[c], size=min(int(per_class[c]), members[c].size), replace=False)] = c
        result = propagate(W, y_sim, n_classes, alpha=alpha, n_bootstrap=0)
        rows = np.flatnonzero((result.source == Source.PROPAGATED) & (label >= 0))
        features.append(calibration_features(result.proba[rows]))
        agree.append(result.label[rows] == label[rows])
    X = np.concatenate(features)
    right = np.concatenate(agree)
    if right.size == 0:
        return SimulatedPrior()
    # Fitted under the default prior, so a degenerate simulation (every row agrees) stays finite; thousands of rows
    # outweigh that prior otherwise.
    from labeler.core.calibrate import ConfidenceCalibrator

    model = ConfidenceCalibrator(min_isotonic=np.inf).fit(X, right)
    shares = [float(a.mean()) for a in agree if a.size]
    spread = float(np.std(shares, ddof=1)) if len(shares) >= 2 else 0.0
    return SimulatedPrior(float(model.coef_[0]), float(model.intercept_), int(right.size), float(right.mean()), spread)
