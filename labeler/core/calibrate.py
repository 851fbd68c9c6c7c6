"""Turn label-spreading scores into P(label is right), and measure how well that worked.

Why: with ``alpha = 0.99`` label spreading leaves most of every image's mass on a background shared by all classes,
so the normalised top mass is far below the chance of being right (issue 10: 97 % right labels averaging 0.6; on
pixels -> PCA-50, 69 % right MNIST labels average 0.27, ``benchmarks/results/calibration.md``). The ranking is good;
the scale is not a probability. This module fits the scale.

Features (:func:`calibration_features`). The main one is the log-ratio of the top two normalised masses,
``log(p1 / p2)``: it ignores the background shared by all classes, is 0 at a tie between the top two, and on the
development sets (digits, MNIST, Fashion-MNIST; k = 1..10 labels per class) ``P(correct)`` is close to
``sigmoid(4 log(p1 / p2))``: logistic fits on the truth gave slopes of mostly 2.6-5 (0.6-7 in all) and intercepts
of -2 to 0.4. Optional extra columns: bootstrap stability and the number of graph hops to the nearest seed
(:func:`seed_hops`); neither improved calibration on those sets, so both are off by default. ``log C`` is constant
within a collection, so it would only duplicate the intercept.

Model (:class:`ConfidenceCalibrator`): Platt scaling (Platt 1999), i.e. logistic regression of "label right" on the
features, with Gaussian priors centred on that default mapping (a Bayesian logistic regression's posterior mode). With
no evidence the default mapping is returned; ten all-correct answers move it without sending it to certainty; a few
hundred answers outweigh it. From ``min_isotonic`` effective evidence points on, an isotonic regression (Zadrozny &
Elkan 2002) of the evidence on the fitted logistic score is blended in with weight ``1 - min_isotonic / n``:
non-parametric once the data allow it, never a jump, and strictly increasing in the score, so calibration keeps the
ranking by ``log(p1 / p2)`` (unless the evidence drives the slope below zero: then higher spreading scores are really
more often wrong, and the calibrated values say so). :meth:`ConfidenceCalibrator.sample_confidence` draws from the
fit's posterior (Laplace approximation), so a promise made from the calibration carries its own uncertainty.

Evidence (:func:`calibration_evidence`), without the truth:

- exact leave-one-out predictions of the human labels: features of the leave-one-out ``proba`` row, correct when its
  arg-max is the human label. A seed whose class has no other seed, or that no other seed reaches, is dropped: its
  leave-one-out prediction cannot be right for reasons no propagated image shares (with one label per class there is
  no usable leave-one-out evidence at all, and the prior alone speaks until audits arrive).
- blind audit answers: features of the audited image's current ``proba``, correct when its *current* label equals
  the answer.

Caveat: leave-one-out evidence is biased, in a direction that depends on the person. Seeds are chosen, not drawn:
diverse picks (cold start takes k-means centres) sit farther from each other than a typical image sits from its
nearest seed, and labeling the review queue's hard cases makes seeds harder than the rest (both pessimistic);
picking clear, typical examples makes them easier (optimistic; see "Seeds chosen, not drawn" in the benchmark). A
left-out seed also competes with one seed fewer of its own class (pessimistic, noticeable at 2-3 labels per class).
Audits are a random sample of the propagated images, so they are the unbiased evidence. The model lets the two
disagree: leave-one-out rows are marked ``proxy`` and get an intercept offset of their own (prior sd
``proxy_offset_sd``), which the audits pin down once there are some; predictions use the audited level. With many
biased leave-one-out rows and few audits the offset's prior still lets the proxies pull: audits are what fixes it.
``seed_hops`` is an optional feature that lets the fit tell near-seed from far-from-seed predictions apart.

Also here: the Wilson interval used everywhere, the expected calibration error and reliability curve (Naeini et al.
2015; Guo et al. 2017), a threshold picker, and a selection-corrected accuracy for "best of several representations by
leave-one-out" (:func:`nested_selection_accuracy`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra
from sklearn.base import BaseEstimator
from sklearn.isotonic import isotonic_regression

Z_95 = 1.959963984540054  # two-sided 95% normal quantile
# Default mapping P(correct) = sigmoid(DEFAULT_INTERCEPT + DEFAULT_SLOPE * log(p1 / p2)): 0 because a tie between
# the top two is a coin flip at best; 4 is the typical fitted slope at alpha = 0.99 (see the module docstring).
DEFAULT_INTERCEPT = 0.0
DEFAULT_SLOPE = 4.0
# An isotonic block of the evidence is shrunk towards the logistic fit by this many pseudo-answers: the end blocks of
# a pool-adjacent-violators fit are often a handful of answers that are all right or all wrong.
ISOTONIC_PSEUDO_COUNT = 20.0
# log(p1 / p2) is capped: a zero runner-up (two classes, one unreached) would otherwise give an infinite feature.
MAX_LOG_RATIO = 10.0


# ---------------------------------------------------------------------------- features and evidence
def calibration_features(
    proba: NDArray[Any],
    *,
    stability: NDArray[Any] | None = None,
    seed_hops: NDArray[Any] | None = None,
) -> NDArray[np.float64]:
    """Features of each image's spreading output that predict whether its label is right.

    Parameters
    ----------
    proba : float array of shape (n, n_classes)
        Normalised spreading scores (rows sum to one; an all-zero row, no seed reached, gives a tie).
    stability : float array of shape (n,), optional
        Bootstrap agreement in [0, 1]; added as ``stability - 1`` (0 for fully stable). Leave-one-out evidence has
        no stability, so use it only when every evidence row has one (audits only).
    seed_hops : array of shape (n,), optional
        Graph hops to the nearest seed (:func:`seed_hops`); added as ``log(hops)``, unreachable capped at 2 ** 10.

    Returns
    -------
    X : float64 array of shape (n, n_features)
        Column 0 is ``min(log(p1 / p2), MAX_LOG_RATIO)``, then the optional columns in the order above.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] < 1:
        raise ValueError(f"proba must have shape (n, n_classes), got {proba.shape}")
    n = proba.shape[0]
    if proba.shape[1] == 1:
        log_ratio = np.full(n, MAX_LOG_RATIO)  # one class: the label cannot be wrong for lack of a rival
    else:
        top2 = -np.partition(-proba, 1, axis=1)[:, :2]
        p1, p2 = top2[:, 0], top2[:, 1]
        ratio = np.divide(p1, p2, out=np.full(n, np.inf), where=p2 > 0)
        ratio[p1 <= 0] = 1.0
        log_ratio = np.minimum(np.log(ratio), MAX_LOG_RATIO)
    columns = [log_ratio]
    for name, extra in (("stability", stability), ("seed_hops", seed_hops)):
        if extra is None:
            continue
        extra = np.asarray(extra, dtype=np.float64)
        if extra.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {extra.shape}")
        if name == "stability":
            columns.append(np.clip(np.nan_to_num(extra, nan=1.0), 0.0, 1.0) - 1.0)
        else:
            columns.append(np.log(np.clip(extra, 1.0, 2.0**10)))
    return np.stack(columns, axis=1)


def seed_hops(W: sp.spmatrix | NDArray[Any], y: NDArray[Any]) -> NDArray[np.float64]:
    """Hops from every image to the nearest seed; for a seed, to the nearest *other* seed.

    The seed case is what leave-one-out sees: with the seed left out, the closest label is the next seed. One
    multi-source breadth-first search gives both: the nearest other seed of seed ``s`` is the shortest walk
    ``s -> u -> v -> source(v)`` over an edge ``(u, v)`` whose ends have different nearest seeds.

    Parameters
    ----------
    W : (n, n) symmetric affinity (only its sparsity pattern is used)
    y : int array of shape (n,), -1 for unlabeled

    Returns
    -------
    hops : float64 array of shape (n,), ``inf`` where no (other) seed is reachable
    """
    W = sp.csr_matrix(W)
    y = np.asarray(y)
    seeds = np.flatnonzero(y >= 0)
    n = W.shape[0]
    if seeds.size == 0:
        return np.full(n, np.inf)
    dist, _, source = dijkstra(W, directed=False, indices=seeds, unweighted=True, min_only=True,
                               return_predecessors=True)
    hops = np.asarray(dist, dtype=np.float64)
    coo = W.tocoo()
    u, v = coo.row, coo.col
    border = (source[u] >= 0) & (source[v] >= 0) & (source[u] != source[v])
    to_other = np.full(n, np.inf)
    np.minimum.at(to_other, source[u[border]], hops[u[border]] + 1.0 + hops[v[border]])
    hops[seeds] = to_other[seeds]
    return hops


class Evidence(NamedTuple):
    """Evidence rows for :meth:`ConfidenceCalibrator.fit`: ``model.fit(ev.X, ev.correct, ev.sample_weight,
    proxy=ev.proxy)``.

    Attributes
    ----------
    X : float64 (m, n_features); correct : bool (m,); sample_weight : float64 (m,)
    proxy : bool (m,), True for leave-one-out rows (they stand in for propagated images), False for audits
    """

    X: NDArray[np.float64]
    correct: NDArray[np.bool_]
    sample_weight: NDArray[np.float64]
    proxy: NDArray[np.bool_]


def calibration_evidence(
    y_seed: NDArray[Any],
    loo_label: NDArray[Any],
    loo_proba: NDArray[Any],
    *,
    audit_proba: NDArray[Any] | None = None,
    audit_label: NDArray[Any] | None = None,
    audit_answer: NDArray[Any] | None = None,
    loo_hops: NDArray[Any] | None = None,
    audit_hops: NDArray[Any] | None = None,
    loo_weight: float = 1.0,
    audit_weight: float = 1.0,
) -> Evidence:
    """Evidence rows for :meth:`ConfidenceCalibrator.fit` from leave-one-out predictions and blind audits.

    Parameters
    ----------
    y_seed : int array of shape (n_seeds,), the human label of each seed
    loo_label : int array of shape (n_seeds,), leave-one-out label (-1 where no other seed reaches the seed)
    loo_proba : float array of shape (n_seeds, n_classes), normalised leave-one-out mass
    audit_proba : float array of shape (n_audits, n_classes), the audited images' *current* ``proba``
    audit_label : int array of shape (n_audits,), their *current* labels (not the ones they had when audited)
    audit_answer : int array of shape (n_audits,), the labels the person gave blind
    loo_hops, audit_hops : arrays of shape (n_seeds,) and (n_audits,), optional :func:`seed_hops` feature; give both
        or neither
    loo_weight, audit_weight : weight of each row of either kind

    Returns
    -------
    Evidence
        Usable leave-one-out rows first (see the module docstring for which are dropped, marked ``proxy``), then the
        audits.
    """
    y_seed = np.asarray(y_seed, dtype=np.int64)
    loo_label = np.asarray(loo_label, dtype=np.int64)
    loo_proba = np.asarray(loo_proba, dtype=np.float64)
    if (audit_hops is None) != (loo_hops is None) and audit_proba is not None and y_seed.size:
        raise ValueError("give seed hops for both the leave-one-out and the audit rows, or for neither")
    n_classes = loo_proba.shape[1] if loo_proba.ndim == 2 else 0
    counts = np.bincount(y_seed, minlength=max(n_classes, 1)) if y_seed.size else np.zeros(1, dtype=np.int64)
    usable = (loo_label >= 0) & (counts[y_seed] >= 2) if y_seed.size else np.zeros(0, dtype=bool)
    parts_X: list[NDArray[np.float64]] = []
    parts_y: list[NDArray[np.bool_]] = []
    parts_w: list[NDArray[np.float64]] = []
    if usable.any():
        hops = None if loo_hops is None else np.asarray(loo_hops)[usable]
        parts_X.append(calibration_features(loo_proba[usable], seed_hops=hops))
        parts_y.append(loo_label[usable] == y_seed[usable])
        parts_w.append(np.full(int(usable.sum()), float(loo_weight)))
    if audit_proba is not None:
        if audit_label is None or audit_answer is None:
            raise ValueError("audit evidence needs audit_proba, audit_label and audit_answer together")
        audit_label = np.asarray(audit_label)
        audit_answer = np.asarray(audit_answer)
        if audit_label.shape != audit_answer.shape:
            raise ValueError(f"audit_label and audit_answer differ in shape: {audit_label.shape}, {audit_answer.shape}")
        if audit_label.size:
            parts_X.append(calibration_features(audit_proba, seed_hops=audit_hops))
            parts_y.append(audit_label == audit_answer)
            parts_w.append(np.full(audit_label.size, float(audit_weight)))
    n_loo = int(usable.sum())
    if not parts_X:
        width = 1 + (loo_hops is not None or audit_hops is not None)
        return Evidence(np.empty((0, width)), np.empty(0, dtype=bool), np.empty(0), np.empty(0, dtype=bool))
    weight = np.concatenate(parts_w)
    return Evidence(np.concatenate(parts_X), np.concatenate(parts_y), weight, np.arange(weight.size) < n_loo)


# ---------------------------------------------------------------------------- the calibrator
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
    """P(label is right) from :func:`calibration_features`: Platt scaling with a prior, isotonic when data allow.

    The logistic weights get independent Gaussian priors centred on the default mapping; the fit is the posterior
    mode (Bayesian logistic regression, e.g. Gelman et al. 2008). The default widths match how much the weights of
    logistic fits on the truth varied between the development sets and label counts (module docstring).

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
        out (it is only blended in once there are a few hundred answers). Feed the draws to :func:`pick_threshold`
        to put an interval on the precision it promises.
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


# ---------------------------------------------------------------------------- measuring calibration
def wilson_interval(successes: float, n: float, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927); the one implementation to use everywhere.

    Unlike the normal approximation it stays inside [0, 1] and is sensible at 0/n and n/n, which is exactly where
    small audits land. ``n == 0`` gives the uninformative (0, 1). Accepts non-integer counts (effective sample sizes).
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


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


def _check_pair(confidence: NDArray[Any], correct: NDArray[Any]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    c = np.asarray(confidence, dtype=np.float64).ravel()
    k = np.asarray(correct).astype(bool).ravel()
    if c.shape != k.shape:
        raise ValueError(f"confidence and correct differ in shape: {c.shape} vs {k.shape}")
    if np.any((c < 0) | (c > 1)):
        raise ValueError("confidence must lie in [0, 1]")
    return c, k


def reliability_curve(confidence: NDArray[Any], correct: NDArray[Any], n_bins: int = 10) -> ReliabilityCurve:
    """Observed accuracy against mean confidence per equal-width bin (the reliability plot's data).

    Parameters
    ----------
    confidence : float array of shape (n,) in [0, 1]; correct : bool array of shape (n,)
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    c, k = _check_pair(confidence, correct)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(c, edges[1:-1], right=True), 0, n_bins - 1)
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


# ---------------------------------------------------------------------------- selection-corrected accuracy
@dataclass(frozen=True)
class SelectionEstimate:
    """Accuracy to expect from "pick the best candidate by leave-one-out", corrected for the picking.

    Attributes
    ----------
    accuracy : nested estimate, share of held-out labels the candidate chosen without them gets right
    interval : Wilson 95 % interval of ``accuracy`` on ``n`` labels (ignores the selection's own variability)
    n : number of labels
    chosen : candidate the rule picks on all labels
    naive_accuracy : the chosen candidate's own leave-one-out accuracy (what not to show as the expectation)
    times_chosen : how often each candidate won when one label was held out (selection stability)
    """

    accuracy: float
    interval: tuple[float, float]
    n: int
    chosen: str
    naive_accuracy: float
    times_chosen: dict[str, int] = field(default_factory=dict)


def nested_selection_accuracy(
    loo_correct_by_candidate: dict[str, NDArray[Any]],
    *,
    preferred: str | None = None,
    min_gain_se: float = 0.0,
) -> SelectionEstimate:
    """Selection-corrected accuracy of choosing a candidate (e.g. a representation) by leave-one-out accuracy.

    Method: nested leave-one-out with a shortcut. For each label i, the selection rule runs on the other n - 1
    labels' leave-one-out correctness, and the chosen candidate is scored on label i (Varma & Simon 2006; Cawley &
    Talbot 2010 on selection bias). Exact nesting would recompute every candidate's leave-one-out vector without label
    i (a leave-one-out inside a leave-one-out: n more graph solves per candidate); here the vectors computed on all
    labels are reused, a slight leak: label i still acted as a seed when the others were predicted. Without that leak
    the estimate is unbiased for the rule applied to n - 1 labels (on pure-noise candidates it averages 0.50 where the
    naive winner of four shows 0.62 on 20 labels); the leak's effect is small next to the selection bias it removes.
    Chosen over a bootstrap .632 correction because it is exact arithmetic on vectors the app already has,
    deterministic, and O(n x candidates).

    The rule: the candidate with the highest leave-one-out accuracy, except that ``preferred`` is kept unless another
    beats it by more than ``min_gain_se`` standard errors of its own accuracy (what the app's representation choice
    does with ``min_gain_se=1``). Remaining ties go to ``preferred``, then to the first name in sorted order.

    Parameters
    ----------
    loo_correct_by_candidate : dict of name -> bool array of shape (n,)
        Whether candidate's leave-one-out prediction of each human label is right; the same labels in the same order
        for every candidate.
    preferred : str, optional
    min_gain_se : float, default=0
    """
    if not loo_correct_by_candidate:
        raise ValueError("need at least one candidate")
    names = sorted(loo_correct_by_candidate)
    if preferred is not None and preferred not in loo_correct_by_candidate:
        raise ValueError(f"preferred {preferred!r} is not among {names}")
    if preferred is not None:  # ties go to preferred: put it first, argmax keeps the first maximum
        names.remove(preferred)
        names.insert(0, preferred)
    if len({np.asarray(v).size for v in loo_correct_by_candidate.values()}) != 1:
        raise ValueError("every candidate needs a correctness vector of the same length")
    M = np.stack([np.asarray(loo_correct_by_candidate[name]).astype(bool).ravel() for name in names], axis=1)
    n = M.shape[0]

    def choose(scores: NDArray[np.float64], n_labels: int) -> NDArray[np.int64]:
        """Index of the chosen candidate for each row of ``scores`` (shape (rows, candidates))."""
        best = np.argmax(scores, axis=1).astype(np.int64)
        if preferred is None or min_gain_se <= 0 or n_labels == 0:
            return best
        p = scores[:, 0]
        se = np.sqrt(np.maximum(p * (1 - p), 0.25 / n_labels) / n_labels)  # floored: p = 0 or 1 is not certainty
        gain = scores[np.arange(scores.shape[0]), best] - p
        return np.where(gain > min_gain_se * se, best, 0).astype(np.int64)

    if n == 0:
        return SelectionEstimate(float("nan"), (0.0, 1.0), 0, names[0], float("nan"))
    totals = M.sum(axis=0).astype(np.float64)
    full = choose((totals / n)[None, :], n)[0]
    # Row i: every candidate's accuracy without label i (with one label, nothing is left: a tie, which goes first).
    rest = (totals[None, :] - M) / max(n - 1, 1)
    picked = choose(rest, n - 1)
    held_out = M[np.arange(n), picked]
    hits = int(held_out.sum())
    counts = np.bincount(picked, minlength=len(names))
    return SelectionEstimate(
        accuracy=hits / n,
        interval=wilson_interval(hits, n),
        n=n,
        chosen=names[full],
        naive_accuracy=float(totals[full] / n),
        times_chosen={name: int(counts[j]) for j, name in enumerate(names) if counts[j]},
    )
