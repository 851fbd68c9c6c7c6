"""Turn label-spreading scores into P(label is right): the calibrator.

Why: with ``alpha = 0.99`` label spreading leaves most of every image's mass on a background shared by all classes,
so the normalised top mass is far below the chance of being right (issue 10: 97 % right labels averaging 0.6; on
pixels -> PCA-50, 69 % right MNIST labels average 0.27, ``benchmarks/results/calibration.md``). The ranking is good;
the scale is not a probability. This module fits the scale, on the features and evidence of
:mod:`labeler.core.calibration_evidence`.

Model (:class:`ConfidenceCalibrator`): Platt scaling (Platt 1999), i.e. logistic regression of "label right" on the
features, with Gaussian priors centred on that default mapping (a Bayesian logistic regression's posterior mode). With
no evidence the default mapping is returned; ten all-correct answers move it without sending it to certainty; a few
hundred answers outweigh it. From ``min_isotonic`` effective evidence points on, an isotonic regression (Zadrozny &
Elkan 2002) of the evidence on the fitted logistic score is blended in with weight ``1 - min_isotonic / n``:
non-parametric once the data allow it, never a jump, and strictly increasing in the score, so calibration keeps the
ranking by ``log(p1 / p2)`` (unless the evidence drives the slope below zero: then higher spreading scores are really
more often wrong, and the calibrated values say so). :meth:`ConfidenceCalibrator.sample_confidence` draws from the
fit's posterior (Laplace approximation), so a promise made from the calibration carries its own uncertainty.

Leave-one-out rows are marked ``proxy`` and get an intercept offset of their own (prior sd ``proxy_offset_sd``),
which the audits pin down once there are some; predictions use the audited level. With many biased leave-one-out rows
and few audits the offset's prior still lets the proxies pull: audits are what fixes it.

Measuring how well it worked lives beside it: :mod:`labeler.core.reliability` (ECE, reliability curve),
:mod:`labeler.core.intervals` (Wilson), :mod:`labeler.core.threshold` (the threshold picker).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.isotonic import isotonic_regression

from labeler.core.calibration_evidence import DEFAULT_INTERCEPT, DEFAULT_SLOPE

# An isotonic block of the evidence is shrunk towards the logistic fit by this many pseudo-answers: the end blocks of
# a pool-adjacent-violators fit are often a handful of answers that are all right or all wrong.
ISOTONIC_PSEUDO_COUNT = 20.0


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic
    return out


def _fit_logistic(
    A: NDArray[np.float64],
    y: NDArray[np.float64],
    weight: NDArray[np.float64],
    beta0: NDArray[np.float64],
    precision: NDArray[np.float64],
    max_iter: int = 100,
) -> NDArray[np.float64]:
    """MAP weighted logistic regression under the prior ``beta ~ N(beta0, diag(1 / precision))``, by damped Newton."""

    def loss(beta: NDArray[np.float64]) -> float:
        z = A @ beta
        # log(1 + e^z) - y z, stable for large |z|
        return float(np.sum(weight * (np.logaddexp(0.0, z) - y * z)) + 0.5 * np.sum(precision * (beta - beta0) ** 2))

    beta = beta0.copy()
    current = loss(beta)
    for _ in range(max_iter):
        p = _sigmoid(A @ beta)
        grad = A.T @ (weight * (p - y)) + precision * (beta - beta0)
        hess = (A * (weight * p * (1.0 - p))[:, None]).T @ A + np.diag(precision)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while True:  # halve the step until the loss does not rise (it always falls for a small enough step)
            candidate = beta - t * step
            new = loss(candidate)
            if new <= current + 1e-12 or t < 1e-8:
                break
            t *= 0.5
        beta, previous, current = candidate, current, new
        if np.max(np.abs(t * step)) < 1e-9 or previous - current < 1e-12:
            break
    return beta


def _shrunk_isotonic(
    z: NDArray[np.float64], y: NDArray[np.bool_], w: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Isotonic regression of ``y`` on ``z`` whose blocks are shrunk towards ``sigmoid(z)``.

    Pool-adjacent-violators gives blocks of answers; each block's accuracy becomes
    ``(right + m0 * mean sigmoid(z)) / (answers + m0)`` with ``m0 = ISOTONIC_PSEUDO_COUNT``, and a second isotonic pass
    over the blocks (weights ``answers + m0``) restores the order that shrinkage can break.

    Returns
    -------
    knots : mean score of each block, increasing; values : its shrunk, non-decreasing accuracy
    """
    keep = w > 0
    # Pool equal scores first (as scikit-learn's IsotonicRegression does), so the knots are strictly increasing.
    z, inverse = np.unique(z[keep], return_inverse=True)
    w_u = np.bincount(inverse, weights=w[keep])
    right_u = np.bincount(inverse, weights=w[keep] * y[keep])
    fitted = isotonic_regression(right_u / w_u, sample_weight=w_u, increasing=True)
    starts = np.flatnonzero(np.r_[True, np.diff(fitted) != 0])
    block_w = np.add.reduceat(w_u, starts)
    block_right = np.add.reduceat(right_u, starts)
    block_prior = np.add.reduceat(w_u * _sigmoid(z), starts) / block_w
    block_z = np.add.reduceat(w_u * z, starts) / block_w
    shrunk = (block_right + ISOTONIC_PSEUDO_COUNT * block_prior) / (block_w + ISOTONIC_PSEUDO_COUNT)
    values = isotonic_regression(shrunk, sample_weight=block_w + ISOTONIC_PSEUDO_COUNT, increasing=True)
    return block_z, np.asarray(values, dtype=np.float64)


class ConfidenceCalibrator(BaseEstimator):
    """P(label is right) from :func:`~labeler.core.calibration_evidence.calibration_features`: Platt scaling with a
    prior, isotonic when data allow.

    The logistic weights get independent Gaussian priors centred on the default mapping; the fit is the posterior
    mode (Bayesian logistic regression, e.g. Gelman et al. 2008). The default widths match how much the weights of
    logistic fits on the truth varied between the development sets and label counts
    (:mod:`labeler.core.calibration_evidence`).

    Parameters
    ----------
    prior_coef : tuple of float, default=(DEFAULT_SLOPE,)
        Prior mean of the feature weights; features beyond its length get prior mean 0.
    prior_intercept : float, default=DEFAULT_INTERCEPT
    coef_sd : float, default=1.5
        Prior standard deviation of every feature weight (features are in natural units: log-ratios, log-hops).
    intercept_sd : float, default=1.0
        Prior standard deviation of the intercept (logit units).
    proxy_offset_sd : float, default=0.5
        Prior standard deviation of the level offset of proxy evidence (``fit(..., proxy=...)``), in logit units.
    min_isotonic : float, default=200
        Effective evidence count from which an isotonic fit is blended in, with weight ``1 - min_isotonic / n``.
        The isotonic fit's blocks are each shrunk towards the logistic fit by ``ISOTONIC_PSEUDO_COUNT`` answers
        and joined by straight lines.

    Attributes
    ----------
    coef_ : float64 (n_features,), intercept_ : float
        The logistic fit: ``decision_function(X) = X @ coef_ + intercept_``.
    proxy_offset_ : float
        How much higher (logit units) the proxy evidence's level came out than the audited images' (0 without
        proxies; only its prior without audits).
    covariance_ : float64 (n_features + 1, n_features + 1)
        Laplace approximation of the posterior covariance of ``(coef_, intercept_)``, for :meth:`sample_confidence`.
    n_evidence_ : float
        Effective number of evidence points (Kish: ``sum(w) ** 2 / sum(w ** 2)``).
    isotonic_score_, isotonic_value_ : float64 arrays of shape (n_blocks,) or None
        Knots of the isotonic stage: mean logistic score and shrunk accuracy of each block (None below
        ``min_isotonic``).
    isotonic_weight_ : float, its weight in :meth:`predict_confidence`
    classes_ : array([False, True]), the columns of :meth:`predict_proba`
    """

    def __init__(
        self,
        prior_coef: tuple[float, ...] = (DEFAULT_SLOPE,),
        prior_intercept: float = DEFAULT_INTERCEPT,
        coef_sd: float = 1.5,
        intercept_sd: float = 1.0,
        proxy_offset_sd: float = 0.5,
        min_isotonic: float = 200.0,
    ) -> None:
        self.prior_coef = prior_coef
        self.prior_intercept = prior_intercept
        self.coef_sd = coef_sd
        self.intercept_sd = intercept_sd
        self.proxy_offset_sd = proxy_offset_sd
        self.min_isotonic = min_isotonic

    def fit(
        self,
        X: NDArray[Any],
        y: NDArray[Any],
        sample_weight: NDArray[Any] | None = None,
        *,
        proxy: NDArray[Any] | None = None,
    ) -> ConfidenceCalibrator:
        """Fit on evidence rows.

        Parameters
        ----------
        X : float array of shape (m, n_features), features of the evidence (m may be 0: the prior mean is kept)
        y : bool array of shape (m,), whether each evidence label was right
        sample_weight : float array of shape (m,), optional
        proxy : bool array of shape (m,), optional
            True for rows that stand in for the images to calibrate without being a sample of them (leave-one-out
            predictions of seeds). They share the slope but get their own intercept offset, with prior sd
            ``proxy_offset_sd``: audits, when there are any, measure how far the proxies' level is off.

        Returns
        -------
        self
        """
        if not (self.coef_sd > 0 and self.intercept_sd > 0 and self.proxy_offset_sd > 0 and self.min_isotonic >= 0):
            raise ValueError("coef_sd, intercept_sd and proxy_offset_sd must be > 0 and min_isotonic >= 0")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
        y = np.asarray(y).astype(bool)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
        w = np.ones(y.size) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if w.shape != y.shape or np.any(w < 0):
            raise ValueError("sample_weight must be non-negative with the shape of y")
        is_proxy = np.zeros(y.size, dtype=bool) if proxy is None else np.asarray(proxy, dtype=bool)
        if is_proxy.shape != y.shape:
            raise ValueError(f"proxy must have shape {y.shape}, got {is_proxy.shape}")
        n_features = X.shape[1]
        coef0 = np.zeros(n_features)
        given = np.asarray(self.prior_coef, dtype=np.float64)[:n_features]
        coef0[: given.size] = given
        # Parameters: feature weights, intercept, then the proxies' intercept offset (prior mean 0).
        beta0 = np.concatenate([coef0, [float(self.prior_intercept), 0.0]])
        precision = np.concatenate([np.full(n_features, self.coef_sd**-2.0),
                                    [self.intercept_sd**-2.0, self.proxy_offset_sd**-2.0]])
        A = np.hstack([X, np.ones((X.shape[0], 1)), is_proxy[:, None].astype(np.float64)])
        beta = _fit_logistic(A, y.astype(np.float64), w, beta0, precision) if w.sum() > 0 else beta0
        # Laplace approximation of the posterior: the inverse Hessian of the penalised loss at its minimum; the
        # block without the offset is the marginal covariance of (coef_, intercept_).
        p = _sigmoid(A @ beta)
        covariance = np.linalg.inv((A * (w * p * (1.0 - p))[:, None]).T @ A + np.diag(precision))
        self.covariance_ = covariance[:-1, :-1]
        self.coef_ = beta[:n_features]
        self.intercept_ = float(beta[n_features])
        self.proxy_offset_ = float(beta[-1])
        self.n_features_in_ = n_features
        self.classes_ = np.array([False, True])
        self.n_evidence_ = float(w.sum() ** 2 / np.sum(w**2)) if w.sum() > 0 else 0.0
        self.isotonic_score_: NDArray[np.float64] | None = None
        self.isotonic_value_: NDArray[np.float64] | None = None
        self.isotonic_weight_ = 0.0
        if self.n_evidence_ >= max(self.min_isotonic, 1.0):
            z = self.decision_function(X) + self.proxy_offset_ * is_proxy  # proxies at their own level
            self.isotonic_score_, self.isotonic_value_ = _shrunk_isotonic(z, y, w)
            self.isotonic_weight_ = 1.0 - self.min_isotonic / self.n_evidence_
        return self

    def decision_function(self, X: NDArray[Any]) -> NDArray[np.float64]:
        """Logistic score ``X @ coef_ + intercept_``, shape (n,); higher means more likely right."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have shape (n, {self.n_features_in_}), got {X.shape}")
        out: NDArray[np.float64] = X @ self.coef_ + self.intercept_
        return out

    def predict_confidence(self, X: NDArray[Any]) -> NDArray[np.float64]:
        """P(label is right) for each row of ``X``, shape (n,), strictly increasing in the logistic score."""
        z = self.decision_function(X)
        p = _sigmoid(z)
        if self.isotonic_score_ is not None and self.isotonic_value_ is not None:
            iso = np.interp(z, self.isotonic_score_, self.isotonic_value_)
            p = self.isotonic_weight_ * iso + (1.0 - self.isotonic_weight_) * p
        return p

    def sample_confidence(self, X: NDArray[Any], n_draws: int = 200, random_state: int = 0) -> NDArray[np.float64]:
        """Draws of P(label is right) that show how uncertain the calibration itself is, shape (n_draws, n).

        The logistic weights are drawn from the Laplace approximation of their posterior (``covariance_``); the
        isotonic stage, when present, is applied to each draw's score unchanged, so its own sampling error is left
        out (it is only blended in once there are a few hundred answers). Feed the draws to
        :func:`~labeler.core.threshold.pick_threshold` to put an interval on the precision it promises.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have shape (n, {self.n_features_in_}), got {X.shape}")
        rng = np.random.default_rng(random_state)
        mean = np.append(self.coef_, self.intercept_)
        betas = rng.multivariate_normal(mean, self.covariance_, size=n_draws, method="cholesky")
        z = betas[:, :-1] @ X.T + betas[:, -1:]
        p = _sigmoid(z)
        if self.isotonic_score_ is not None and self.isotonic_value_ is not None:
            iso = np.interp(z, self.isotonic_score_, self.isotonic_value_)
            p = self.isotonic_weight_ * iso + (1.0 - self.isotonic_weight_) * p
        return p

    def predict_proba(self, X: NDArray[Any]) -> NDArray[np.float64]:
        """scikit-learn form of :meth:`predict_confidence`: shape (n, 2), columns P(wrong), P(right)."""
        p = self.predict_confidence(X)
        return np.stack([1.0 - p, p], axis=1)
