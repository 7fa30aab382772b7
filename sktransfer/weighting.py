"""Importance weights for covariate shift, and the estimators that use them.

Under covariate shift the inputs of the source (labelled) and target
(unlabelled) domains are drawn from different densities while ``P(y | x)`` is
shared. Training on the source rows with the importance weights
``w(x) = p_target(x) / p_source(x)`` then makes the source risk an unbiased
estimate of the target risk. This module estimates ``w`` four ways and wraps
any scikit-learn estimator that takes ``sample_weight`` so that it trains with
them.

Target rows are given together with the source rows, marked by
``sample_domain`` as in skada: a positive value marks a source row, a negative
value a target row. Nothing here changes scikit-learn's global configuration.
"""

import math
import warnings
from numbers import Integral, Real

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp
from scipy.stats import rankdata
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    RegressorMixin,
    _fit_context,
    clone,
    is_classifier,
)
from sklearn.calibration import CalibratedClassifierCV
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _assert_all_finite,
    check_is_fitted,
    has_fit_parameter,
    validate_data,
)
from threadpoolctl import threadpool_limits

from .exceptions import DomainOverlapWarning, LowEffectiveSampleSizeWarning

__all__ = [
    "DiscriminativeWeighter",
    "ImportanceWeightedClassifier",
    "ImportanceWeightedRegressor",
    "KLIEPWeighter",
    "KMMWeighter",
    "ULSIFWeighter",
    "estimate_importance_weights",
]

# Below this fraction of effective samples the weighted fit rests on a handful
# of rows: its variance swamps the bias it removes.
ESS_WARNING_RATIO = 0.1
# A domain classifier this good means the supports barely overlap: some target
# regions have no source rows at all, and no weighting can reach them.
AUC_WARNING = 0.99
# Probabilities are kept this far from 0 and 1 so that odds stay finite.
_PROBA_EPS = 1e-6
# Kernel widths tried around the median heuristic by the cross-validated methods.
_GAMMA_FACTORS = (0.1, 0.3, 1.0, 3.0, 10.0)
_ULSIF_ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
# L2 penalties tried for models with linear features (KLIEP's log-linear
# model, uLSIF's linear+rbf basis): many features need strong penalties.
_LINEAR_BASIS_ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
# Log-ratios are capped here before exp (far outside the data a log-linear
# ratio can exceed float range).
_MAX_LOG_RATIO = 700.0
# Inverse regularisation strengths of the default domain classifier.
_DISCRIMINATIVE_CS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
# scikit-learn >= 1.8 warns (FutureWarning) unless the L2 penalty and the new
# attribute layout are asked for explicitly; older versions lack both options.
_LOGISTIC_CV_MODERN = (
    {"l1_ratios": (0.0,), "use_legacy_attributes": False}
    if "use_legacy_attributes" in LogisticRegressionCV().get_params()
    else {}
)
# Rows used for the median heuristic: a bounded, random subsample.
_MEDIAN_SUBSAMPLE = 1000
# Rows per domain used by KLIEP's cross-validation (a random subsample when
# there are more): the selection needs the shape of the likelihood curve, not
# every row, and its cost is then independent of n.
_KLIEP_CV_ROWS = 2000
# Rows per block when computing distances to the centres: bounds temporaries.
_CHUNK_ROWS = 4096

_COMMON_PARAMS_DOC = """
    max_weight : float >= 1 or None, default=None
        Absolute cap on the final weights (which have mean 1 over the source
        rows). Large weights are cut and the rest renormalised so that no
        weight exceeds ``max_weight``. ``None`` applies no absolute cap.

    max_weight_quantile : float in (0, 1] or None, default=None
        Cap the normalised weights at this quantile of the training source
        weights (e.g. 0.99), then renormalise to mean 1. Applied before
        ``max_weight`` when both are given.
"""

_COMMON_ATTRIBUTES_DOC = """
    weights_ : ndarray of shape (n_samples,)
        Weights of the training rows: mean 1 over the source rows, 0 on the
        target rows.

    effective_sample_size_ : float
        Kish's effective sample size ``(sum w)**2 / sum w**2`` of the source
        weights: how many unweighted rows the weighted sample is worth.

    effective_sample_size_ratio_ : float
        ``effective_sample_size_ / n_source_``, between 0 and 1.

    weight_summary_ : dict
        ``min``, ``median``, ``q95``, ``max`` of the final source weights,
        ``max_unclipped`` and ``n_clipped`` (rows cut by the caps).

    domain_auc_ : float
        Shift score: area under the ROC curve of separating target from
        source rows (0.5 means no detectable shift, 1 disjoint supports).

    n_source_, n_target_ : int
        Number of source and target rows seen in ``fit``.

    n_features_in_ : int
        Number of features seen in ``fit``.
"""


def _doc(cls):
    # One text for the shared parameters and attributes (written once, used
    # by all four weighters).
    cls.__doc__ = cls.__doc__.replace("%(common_params)s", _COMMON_PARAMS_DOC.strip())
    cls.__doc__ = cls.__doc__.replace(
        "%(common_attributes)s", _COMMON_ATTRIBUTES_DOC.strip()
    )
    return cls


def _check_sample_domain(sample_domain, n_samples):
    """Validate ``sample_domain`` and return the boolean mask of source rows."""
    if sample_domain is None:
        raise ValueError(
            "`sample_domain` is required: pass an array of shape (n_samples,) "
            "with a positive value for each source row and a negative value for "
            "each target row (skada's convention), e.g. "
            "`np.r_[np.ones(n_source), -np.ones(n_target)]`."
        )
    domain = np.asarray(sample_domain)
    if domain.ndim != 1 or domain.shape[0] != n_samples:
        raise ValueError(
            f"`sample_domain` must have shape ({n_samples},) to match X; got shape "
            f"{domain.shape}."
        )
    if domain.dtype.kind not in "iuf":
        raise TypeError(
            "`sample_domain` must hold numbers (positive = source, negative = "
            f"target); got dtype {domain.dtype}."
        )
    if not np.all(np.isfinite(domain)) or np.any(domain == 0):
        raise ValueError(
            "`sample_domain` must be positive (source) or negative (target) on "
            "every row; got 0 or a non-finite value, which is neither."
        )
    is_source = domain > 0
    return is_source


def _check_both_domains(is_source, min_rows=1):
    n_source = int(is_source.sum())
    n_target = int(is_source.size - n_source)
    if n_source < min_rows or n_target < min_rows:
        raise ValueError(
            f"Importance weighting needs at least {min_rows} source sample(s) "
            f"(sample_domain > 0) and {min_rows} target sample(s) "
            f"(sample_domain < 0); got {n_source} sample(s) marked source and "
            f"{n_target} marked target."
        )
    return n_source, n_target


def _binary_auc(scores_source, scores_target):
    """AUC of ``scores`` separating target (positive) from source rows."""
    scores = np.concatenate([scores_source, scores_target])
    ranks = rankdata(scores)
    n_s, n_t = scores_source.size, scores_target.size
    return float((ranks[n_s:].sum() - n_t * (n_t + 1) / 2) / (n_s * n_t))


def _median_gamma(X, random_state):
    """Median heuristic ``gamma = 1 / median(squared distance)`` on a subsample.

    ``X`` is an array or a list of arrays (taken as stacked, without copying
    them all).
    """
    parts = X if isinstance(X, list | tuple) else [X]
    n_rows = sum(len(part) for part in parts)
    rng = check_random_state(random_state)
    rows = np.arange(n_rows)
    if n_rows > _MEDIAN_SUBSAMPLE:
        rows = rng.choice(n_rows, _MEDIAN_SUBSAMPLE, replace=False)
    offsets = np.cumsum([0] + [len(part) for part in parts])
    which = np.searchsorted(offsets, rows, side="right") - 1
    X = np.array([parts[k][i - offsets[k]] for k, i in zip(which, rows, strict=True)])
    d2 = euclidean_distances(X, squared=True)
    d2 = d2[np.triu_indices_from(d2, k=1)]
    median = np.median(d2[d2 > 0]) if np.any(d2 > 0) else 1.0
    return 1.0 / median


def _sq_distances(X, centers):
    """Squared distances of the rows of ``X`` to ``centers``, block by block.

    Memory: the ``(n_rows, n_centers)`` result plus one block of
    ``_CHUNK_ROWS`` rows; never ``n_rows x n_rows``.
    """
    out = np.empty((X.shape[0], centers.shape[0]))
    center_norms = np.einsum("ij,ij->i", centers, centers)
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        block = X[start : start + _CHUNK_ROWS]
        d2 = block @ centers.T
        d2 *= -2
        d2 += np.einsum("ij,ij->i", block, block)[:, None]
        d2 += center_norms
        np.maximum(d2, 0, out=d2)
        out[start : start + _CHUNK_ROWS] = d2
    return out


def _rbf_from(sq_distances, gamma, out=None):
    """``exp(-gamma * d^2)`` with no temporary (in place when ``out`` is given)."""
    K = np.multiply(sq_distances, -gamma, out=out)
    return np.exp(K, out=K)


def _effective_sample_size(weights):
    total = weights.sum()
    return float(total**2 / np.sum(weights**2)) if total > 0 else 0.0


class _BaseWeighter(BaseEstimator):
    """Shared fit/normalise/clip/diagnose logic of the weight estimators.

    Subclasses implement ``_fit_ratio(X_source, X_target, rng)``, returning the
    unnormalised ratio at the source rows and a domain score for the source and
    target rows, and ``_ratio(X)`` for new rows.
    """

    _parameter_constraints = {
        "max_weight": [Interval(Real, 1, None, closed="left"), None],
        "max_weight_quantile": [Interval(Real, 0, 1, closed="right"), None],
        "random_state": ["random_state"],
    }
    # Rows per domain below which a method cannot run (cross-fitting needs cv).
    _min_rows_per_domain = 1

    def _min_rows(self):
        return self._min_rows_per_domain

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, sample_domain=None):
        """Estimate the importance weights from source and target rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Source and target rows together.

        y : None
            Ignored; present for API consistency.

        sample_domain : array-like of shape (n_samples,)
            Positive for source rows, negative for target rows. Required.

        Returns
        -------
        self : object
            The fitted weighter.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        is_source = _check_sample_domain(sample_domain, X.shape[0])
        self.n_source_, self.n_target_ = _check_both_domains(
            is_source, self._min_rows()
        )
        rng = check_random_state(self.random_state)
        X = X.astype(np.float64, copy=False)
        raw, score_s, score_t = self._fit_ratio(X[is_source], X[~is_source], rng)

        # Scale fixed at fit: out-of-sample weights use the same units, so a
        # row's weight never depends on which other rows are asked about.
        self._scale = float(np.mean(raw))
        overlap_lost = not np.isfinite(self._scale) or self._scale <= 0
        if overlap_lost:
            # The ratio vanishes at every source row: nothing to weight with.
            self._scale = 1.0
            raw = np.ones_like(raw)
        normalised = raw / self._scale
        self.clip_threshold_ = self._clip_threshold(normalised)
        clipped = np.minimum(normalised, self.clip_threshold_)
        self._renorm = float(np.mean(clipped))
        source_weights = clipped / self._renorm

        self.weights_ = np.zeros(X.shape[0])
        self.weights_[is_source] = source_weights
        self.effective_sample_size_ = _effective_sample_size(source_weights)
        self.effective_sample_size_ratio_ = self.effective_sample_size_ / self.n_source_
        self.weight_summary_ = {
            "min": float(source_weights.min()),
            "median": float(np.median(source_weights)),
            "q95": float(np.quantile(source_weights, 0.95)),
            "max": float(source_weights.max()),
            "max_unclipped": float(normalised.max() / np.mean(normalised)),
            "n_clipped": int(np.sum(normalised > self.clip_threshold_)),
        }
        self.domain_auc_ = _binary_auc(score_s, score_t)
        self._warn_diagnostics(overlap_lost)
        return self

    def _clip_threshold(self, normalised):
        """Cap on the normalised weights from ``max_weight(_quantile)``."""
        threshold = np.inf
        if self.max_weight_quantile is not None:
            threshold = float(np.quantile(normalised, self.max_weight_quantile))
        if self.max_weight is not None:
            current = np.minimum(normalised, threshold)
            # After renormalisation the largest weight is c / mean(min(w, c)),
            # nondecreasing in c: bisect for the c that makes it max_weight.
            if current.max() / current.mean() > self.max_weight:
                lo, hi = 0.0, float(current.max())
                for _ in range(100):
                    mid = (lo + hi) / 2
                    if mid / np.minimum(current, mid).mean() > self.max_weight:
                        hi = mid
                    else:
                        lo = mid
                threshold = lo
        return threshold

    def _warn_diagnostics(self, overlap_lost):
        name = type(self).__name__
        if overlap_lost or self.domain_auc_ >= AUC_WARNING:
            warnings.warn(
                f"{name}: source and target barely overlap (domain AUC "
                f"{self.domain_auc_:.3f}"
                + (
                    "; the estimated ratio is 0 at every source row, weights set to 1"
                    if overlap_lost
                    else ""
                )
                + "). Target regions without source rows cannot be reached by "
                "reweighting; importance weighting cannot correct this shift.",
                DomainOverlapWarning,
                stacklevel=4,
            )
        if self.effective_sample_size_ratio_ < ESS_WARNING_RATIO:
            warnings.warn(
                f"{name}: effective sample size {self.effective_sample_size_:.1f} "
                f"of {self.n_source_} source rows "
                f"({self.effective_sample_size_ratio_:.1%}): a few rows carry "
                "almost all the weight, so a weighted fit or score will have high "
                "variance. Consider clipping (max_weight / max_weight_quantile) "
                "or features in which the domains overlap more.",
                LowEffectiveSampleSizeWarning,
                stacklevel=4,
            )

    def compute_weights(self, X, *, sample_domain=None):
        """Importance weights of the rows of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to weight. Need not be the training rows.

        sample_domain : array-like of shape (n_samples,), default=None
            If given, target rows (negative) get weight 0 and the source rows
            are renormalised to mean exactly 1. If ``None``, every row is
            treated as a source row and weighted in the units fixed at ``fit``
            (mean 1 over the training source rows), so a row's weight does not
            depend on the other rows of ``X``.

        Returns
        -------
        weights : ndarray of shape (n_samples,)
            Non-negative importance weights.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        X = X.astype(np.float64, copy=False)
        if sample_domain is not None:
            is_source = _check_sample_domain(sample_domain, X.shape[0])
        else:
            is_source = np.ones(X.shape[0], dtype=bool)
        weights = np.zeros(X.shape[0])
        if not is_source.any():
            return weights
        raw = self._ratio(X[is_source]) / self._scale
        weights[is_source] = np.minimum(raw, self.clip_threshold_) / self._renorm
        if sample_domain is not None and weights.sum() > 0:
            weights *= is_source.sum() / weights.sum()
        return weights

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags


@_doc
class DiscriminativeWeighter(_BaseWeighter):
    """Importance weights from a cross-fitted probabilistic domain classifier.

    A classifier learns ``P(target | x)`` from source and target rows; by
    Bayes' rule ``p_target(x) / p_source(x) = odds(x) * n_source / n_target``,
    the second factor undoing the class prior of the domain classifier. The
    classifier is cross-fitted: the weight of each training row comes from a
    model that did not see that row, which keeps over-confident (overfit)
    probabilities out of the weights. Cost is linear in the number of rows for
    a linear classifier.

    Read more in the :ref:`User Guide <domain_shift>`.

    Parameters
    ----------
    estimator : classifier with ``predict_proba`` or None, default=None
        Domain classifier. ``None`` uses
        ``LogisticRegressionCV(Cs=(1e-6, ..., 1e-1, 1), cv=3,
        scoring="neg_log_loss", max_iter=1000)``: a logistic regression whose
        ``C`` is chosen by an inner 3-fold cross-validation of the log-loss on
        the training rows of each cross-fitting fold (so no row is weighted by
        a model that saw it, even through the choice of ``C``). Its log-odds
        are linear in ``x``: exact for Gaussian mean shifts, a first-order
        approximation otherwise. Give a more flexible model (e.g. polynomial
        features + logistic regression) for curved ratios. The grid is on the
        raw feature scale and stops at ``C=1``; pass your own estimator for
        features with a very small scale.

    cv : int >= 2, default=5
        Number of cross-fitting folds, stratified by domain.

    calibration : {"sigmoid", "isotonic"} or None, default=None
        Calibrate the domain probabilities with
        :class:`~sklearn.calibration.CalibratedClassifierCV` (3 inner folds)
        inside each cross-fitting fold. Useful for classifiers whose scores
        are not probabilities (boosting, SVMs); logistic regression needs none.

    %(common_params)s

    random_state : int, RandomState instance or None, default=None
        Controls the cross-fitting folds (and is passed to ``estimator`` if it
        has a ``random_state`` parameter left at ``None``).

    Attributes
    ----------
    estimators_ : list of fitted classifiers
        One domain classifier per cross-fitting fold; ``compute_weights`` on new
        rows averages their odds.

    %(common_attributes)s

    See Also
    --------
    KLIEPWeighter, ULSIFWeighter, KMMWeighter : kernel methods.
    estimate_importance_weights : one-line function interface.

    Notes
    -----
    ``domain_auc_`` is the out-of-fold AUC of the domain classifier itself.

    The default classifier chooses its regularisation because a fixed
    ``C=1`` over-fits the domains in high dimension: on 1280-d image
    embeddings with 2000 rows per domain it gave extreme odds, an effective
    sample size below 1% and a rank correlation with the true weights near
    0.2; the cross-validated ``C`` (about 1e-4 there) keeps the odds
    moderate. On a few well-separated features it picks ``C`` near 1.

    References
    ----------
    .. [1] S. Bickel, M. Brückner, T. Scheffer, "Discriminative learning under
       covariate shift", JMLR 10, 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.weighting import DiscriminativeWeighter
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (200, 1)), rng.normal(1, 1, (200, 1))]
    >>> sample_domain = np.r_[np.ones(200), -np.ones(200)]
    >>> weighter = DiscriminativeWeighter(random_state=0)
    >>> weighter.fit(X, sample_domain=sample_domain)
    DiscriminativeWeighter(random_state=0)
    >>> w = weighter.compute_weights(X[:3])
    >>> bool(np.all(np.diff(weighter.compute_weights([[-1.0], [0.0], [1.0]])) > 0))
    True
    >>> round(float(weighter.weights_[:200].mean()), 6)
    1.0
    """

    _parameter_constraints = {
        **_BaseWeighter._parameter_constraints,
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "calibration": [StrOptions({"sigmoid", "isotonic"}), None],
    }

    def __init__(
        self,
        *,
        estimator=None,
        cv=5,
        calibration=None,
        max_weight=None,
        max_weight_quantile=None,
        random_state=None,
    ):
        self.estimator = estimator
        self.cv = cv
        self.calibration = calibration
        self.max_weight = max_weight
        self.max_weight_quantile = max_weight_quantile
        self.random_state = random_state

    def _min_rows(self):
        return self.cv

    def _make_classifier(self, seed):
        if self.estimator is None:
            # C by inner cross-validation of the log-loss on this fold's
            # training rows only, so cross-fitting still holds: C=1 overfits
            # the domains in high dimension (extreme odds, tiny ESS).
            classifier = LogisticRegressionCV(
                Cs=_DISCRIMINATIVE_CS,
                cv=3,
                scoring="neg_log_loss",
                max_iter=1000,
                **_LOGISTIC_CV_MODERN,
            )
        else:
            classifier = clone(self.estimator)
            if classifier.get_params().get("random_state", 0) is None:
                classifier.set_params(random_state=seed)
        if self.calibration is not None:
            classifier = CalibratedClassifierCV(
                classifier, method=self.calibration, cv=3
            )
        return classifier

    @staticmethod
    def _odds(classifier, X):
        # Column of the target class (label 1) whatever order classes_ has.
        column = list(classifier.classes_).index(1)
        p = np.clip(classifier.predict_proba(X)[:, column], _PROBA_EPS, 1 - _PROBA_EPS)
        return p / (1 - p)

    def _fit_ratio(self, X_source, X_target, rng):
        X = np.vstack([X_source, X_target])
        domain = np.r_[np.zeros(len(X_source), int), np.ones(len(X_target), int)]
        folds = StratifiedKFold(
            n_splits=self.cv, shuffle=True, random_state=rng.randint(2**31 - 1)
        )
        seed = rng.randint(2**31 - 1)
        odds = np.empty(len(X))
        self.estimators_ = []
        self._prior_corrections = []
        for train, test in folds.split(X, domain):
            classifier = self._make_classifier(seed).fit(X[train], domain[train])
            # Prior correction with this fold's counts: the classifier's odds
            # carry n_target/n_source of its own training rows.
            n_t = domain[train].sum()
            correction = (len(train) - n_t) / n_t
            odds[test] = self._odds(classifier, X[test]) * correction
            self.estimators_.append(classifier)
            self._prior_corrections.append(correction)
        n_s = len(X_source)
        return odds[:n_s], odds[:n_s], odds[n_s:]

    def _ratio(self, X):
        ratios = [
            self._odds(classifier, X) * correction
            for classifier, correction in zip(
                self.estimators_, self._prior_corrections, strict=True
            )
        ]
        return np.mean(ratios, axis=0)


class _Basis:
    """Basis functions ``[1], (x - mean) / scale, k(x, c_1), ...`` of some rows.

    The linear features are applied through ``X`` itself (``X=None``: none),
    never through a standardised copy; ``K`` holds the kernel columns
    (``None``: none). Columns are ordered constant, linear, kernels;
    ``n_linear`` counts the first two groups.
    """

    def __init__(self, X, K, mean=0.0, scale=1.0, constant=False):
        self.X, self.K, self.mean, self.scale = X, K, mean, scale
        self.constant = constant
        self.n_linear = int(constant) + (0 if X is None else X.shape[1])

    @property
    def n_rows(self):
        return (self.X if self.X is not None else self.K).shape[0]

    @property
    def n_columns(self):
        return self.n_linear + (0 if self.K is None else self.K.shape[1])

    def take(self, rows):
        def pick(A):
            return None if A is None else A[rows]

        return _Basis(pick(self.X), pick(self.K), self.mean, self.scale, self.constant)

    def dot(self, theta):
        """``Phi @ theta``."""
        out = np.full(self.n_rows, theta[0] if self.constant else 0.0)
        if self.X is not None:
            w = theta[int(self.constant) : self.n_linear] / self.scale
            out += self.X @ w - self.mean @ w
        if self.K is not None:
            out += self.K @ theta[self.n_linear :]
        return out

    def tdot(self, v):
        """``Phi.T @ v`` for a vector or a matrix ``v``."""
        total = v.sum(axis=0)
        parts = [np.expand_dims(total, 0)] if self.constant else []
        if self.X is not None:
            parts.append(
                (self.X.T @ v - np.multiply.outer(self.mean, total)) / self.scale
            )
        if self.K is not None:
            parts.append(self.K.T @ v)
        return np.concatenate(parts)

    def dense(self):
        parts = [np.ones((self.n_rows, 1))] if self.constant else []
        if self.X is not None:
            parts.append((self.X - self.mean) / self.scale)
        if self.K is not None:
            parts.append(self.K)
        return np.hstack(parts)

    def gram(self, linear_block=None):
        """``Phi.T @ Phi``, with bounded temporaries.

        The linear block is reused when given (it does not depend on the
        kernel width); otherwise it is built block by block of rows.
        """
        q = self.n_linear
        G = np.empty((self.n_columns, self.n_columns))
        if linear_block is None:
            linear = _Basis(self.X, None, self.mean, self.scale, self.constant)
            linear_block = np.zeros((q, q))
            for start in range(0, self.n_rows if q else 0, _CHUNK_ROWS):
                block = linear.take(slice(start, start + _CHUNK_ROWS)).dense()
                linear_block += block.T @ block
        G[:q, :q] = linear_block
        if self.K is not None:
            cross = _Basis(self.X, None, self.mean, self.scale, self.constant)
            cross = cross.tdot(self.K) if q else np.empty((0, self.K.shape[1]))
            G[:q, q:] = cross
            G[q:, :q] = cross.T
            G[q:, q:] = self.K.T @ self.K
        return G


def _pooled_location_scale(X_source, X_target):
    """Pooled column means and one overall scale (root mean column variance).

    One scale for all columns keeps their relative variances (the geometry
    the kernels see) while putting the linear coefficients in units where
    one grid of penalties fits features of any magnitude.
    """
    n = len(X_source) + len(X_target)
    mean = (X_source.sum(axis=0) + X_target.sum(axis=0)) / n
    second = (
        np.einsum("ij,ij->j", X_source, X_source)
        + np.einsum("ij,ij->j", X_target, X_target)
    ) / n
    scale = math.sqrt(max(float(np.mean(second - mean**2)), 0.0))
    return mean, scale if scale > 0 else 1.0


def _select(fold_losses, one_standard_error):
    """Index of the chosen candidate (candidates come simplest first).

    With ``one_standard_error`` the simplest candidate whose mean loss is
    within one standard error of the best (the rule of Breiman et al.,
    "Classification and Regression Trees", 1984: the CV loss is noisy, and
    among models it cannot tell apart the simplest extrapolates best);
    otherwise the best (first on ties).
    """
    means = np.array([np.mean(losses) for losses in fold_losses])
    best = int(np.argmin(means))
    losses = np.asarray(fold_losses[best])
    if not one_standard_error or losses.size < 2:
        return best
    threshold = means[best] + np.std(losses, ddof=1) / math.sqrt(losses.size)
    return int(np.flatnonzero(means <= threshold)[0])


def _subsample(n_rows, cap, rng):
    """All rows, or ``cap`` of them at random (the same for every candidate)."""
    if n_rows <= cap:
        return np.arange(n_rows)
    return np.sort(rng.choice(n_rows, cap, replace=False))


class _BaseKernelRatio(_BaseWeighter):
    """Ratio from Gaussian kernels on target centres, optionally linear features.

    See each class's ``model`` / ``basis``.

    Memory beyond the input is bounded by two ``(n_source + n_target) *
    n_centers`` float64 arrays (squared distances to the centres, then kernel
    values; e.g. 40 000 rows x 200 centres x 8 bytes = 64 MB each) plus one
    block of 4096 rows while the distances are computed, never ``n x n``.
    Distances are computed once; each candidate width costs one ``exp``. The
    linear features are applied through the (float64) input itself.
    """

    _parameter_constraints = {
        **_BaseWeighter._parameter_constraints,
        "gamma": [Interval(Real, 0, None, closed="neither"), None],
        "n_centers": [Interval(Integral, 1, None, closed="left")],
        "cv": [Interval(Integral, 2, None, closed="left")],
    }

    def _min_rows(self):
        # Width selection by cross-validation splits the target rows.
        return self.cv if self._needs_cv() else 1

    def _needs_cv(self):
        return self.gamma is None or (self._linear_basis() and self.alpha is None)

    # Whether the linear basis has a constant column (uLSIF; KLIEP's
    # log-linear model normalises over the source, where a constant cancels).
    _constant = False

    def _basis(self, X, K):
        linear = self._linear_basis()
        return _Basis(
            X if linear else None,
            K,
            self._location,
            self._spread,
            self._constant and linear,
        )

    def _fit_ratio(self, X_source, X_target, rng):
        n_centers = min(self.n_centers, len(X_target))
        picked = rng.choice(len(X_target), n_centers, replace=False)
        self.centers_ = X_target[picked]
        # Column of each target row's kernel (-1: not a centre), so that the
        # cross-validation never scores a model on its own centres.
        owner_t = np.full(len(X_target), -1)
        owner_t[picked] = np.arange(n_centers)
        median = _median_gamma([X_source, X_target], rng)
        self._location, self._spread = _pooled_location_scale(X_source, X_target)
        # Simplest first, so that ties (and, with a linear basis, near-ties)
        # go to the smoother ratio: the linear features alone (gamma None),
        # then the widest kernel.
        gammas = (
            [self.gamma]
            if self.gamma is not None
            else [median * factor for factor in sorted(_GAMMA_FACTORS)]
        )
        if self._linear_basis() and self.gamma is None:
            gammas = [None, *gammas]
        fold_seed = rng.randint(2**31 - 1)
        # Distances once; each width is then one exp over them.
        D_s = _sq_distances(X_source, self.centers_)
        D_t = _sq_distances(X_target, self.centers_)
        cache = {}
        candidates, fold_losses = [], []
        for gamma in gammas:
            K_s, K_t = (
                (None, None)
                if gamma is None
                else (_rbf_from(D_s, gamma), _rbf_from(D_t, gamma))
            )
            for losses, extra in self._cv_losses(
                X_source, X_target, K_s, K_t, fold_seed, owner_t, cache
            ):
                candidates.append((gamma, extra))
                fold_losses.append(losses)
        chosen = _select(fold_losses, one_standard_error=self._linear_basis())
        self.gamma_, extra = candidates[chosen]
        K_s, K_t = None, None  # free the last candidate's kernels first
        if self.gamma_ is not None:
            K_s = _rbf_from(D_s, self.gamma_, out=D_s)
            K_t = _rbf_from(D_t, self.gamma_, out=D_t)
        del D_s, D_t
        theta = self._solve(X_source, X_target, K_s, K_t, extra, cache)
        self._set_coefficients(theta, X_source.shape[1], n_centers)
        self._calibrate(X_source, K_s)
        r_s, r_t = self._raw(X_source, K_s), self._raw(X_target, K_t)
        # In-sample ratio as the domain score (centres are few, so its
        # optimism is small); documented in each class.
        return r_s, r_s, r_t

    def _set_coefficients(self, theta, n_features, n_centers):
        # Coefficients in the units of x, score(x) = intercept_ + coef_ . x +
        # alpha_ . k(x); the basis itself used standardised linear features.
        self.coef_, self.intercept_ = np.zeros(n_features), 0.0
        q = self._basis(np.empty((0, n_features)), None).n_linear
        if self._linear_basis():
            self.coef_ = theta[int(self._constant) : q] / self._spread
            constant = float(theta[0]) if self._constant else 0.0
            self.intercept_ = constant - float(self._location @ self.coef_)
        self.alpha_ = theta[q:] if self.gamma_ is not None else np.zeros(n_centers)

    def _calibrate(self, X_source, K_source):
        """Hook run once the coefficients are set (KLIEP fixes its normaliser)."""

    def _score(self, X, K):
        score = X @ self.coef_ + self.intercept_
        if K is not None:
            score += K @ self.alpha_
        return score

    def _ratio(self, X):
        K = None
        if self.gamma_ is not None:
            D = _sq_distances(X, self.centers_)
            K = _rbf_from(D, self.gamma_, out=D)
        return self._raw(X, K)


@_doc
class KLIEPWeighter(_BaseKernelRatio):
    """Importance weights by the Kullback-Leibler importance estimation procedure.

    KLIEP maximises the log-likelihood of the target rows under
    ``r(x) p_source(x)``, subject to ``r`` averaging 1 over the source rows.
    The default model is log-linear [2]_: ``r(x) = exp(theta . phi(x)) /
    mean_source exp(theta . phi)`` with basis ``phi(x)`` = the features of
    ``x`` (centred, one overall scale) and Gaussian kernels on ``n_centers``
    target rows, and an L2 penalty ``alpha / 2 ||theta||^2``. The problem is
    convex (solved with L-BFGS-B), and the ratio can follow an exponential
    tilt ``exp(a . x + b)`` -- the exact ratio of Gaussian mean shifts -- into
    the tails, where a sum of bumps cannot. ``model="kernel"`` is the original
    KLIEP [1]_: a non-negative combination of the kernels. Weights are a
    function of ``x``, so ``compute_weights`` works out of sample.

    Read more in the :ref:`User Guide <domain_shift>`.

    Parameters
    ----------
    model : {"log-linear", "kernel"}, default="log-linear"
        ``"log-linear"``: the log-linear model above; ``gamma`` and ``alpha``
        are chosen together by ``cv``-fold cross-validation, the linear
        features alone (no kernels) being one of the candidates.
        ``"kernel"``: ``r(x) = sum_l alpha_l k(x, c_l)`` with ``alpha_l >=
        0``, width by likelihood cross-validation over the target rows
        (``alpha`` unused).

    gamma : float > 0 or None, default=None
        RBF kernel coefficient, ``k(x, c) = exp(-gamma ||x - c||^2)``. ``None``
        picks it by cross-validation among the median heuristic
        ``1 / median ||x - x'||^2`` times 0.1, 0.3, 1, 3, 10 (and, for the
        log-linear model, no kernels at all). A given ``gamma`` always uses
        the kernels.

    alpha : float > 0 or None, default=None
        L2 penalty of the log-linear model. ``None`` picks it by
        cross-validation among 100, 10, 1, 0.1, 0.01, 0.001.

    n_centers : int, default=200
        Number of kernel centres, drawn from the target rows with
        ``random_state``. Memory is two ``(n_source + n_target) * n_centers``
        float64 arrays.

    cv : int >= 2, default=5
        Folds for the selection (unused when nothing is left to select). The
        selection uses a random subsample of at most 2000 rows of each domain
        (2000 target rows for ``model="kernel"``, whose constraint uses every
        source row), so its cost does not grow with n; the final fit uses
        every row, warm-started from the selection (which holds per-fold
        copies of the subsampled rows). A fold's model never uses
        a centre that is one of its held-out rows (a bump sitting on a
        held-out row would favour narrow kernels). For the log-linear model
        the source rows are split into folds too, and a fold's model is
        scored on its held-out rows of both domains by the log-loss of the
        domain posterior its ratio implies, ``P(target | x) = n_t r(x) /
        (n_t r(x) + n_s)`` (see Notes). Penalties are tried from the
        strongest down, stopping once the loss rises, and the simplest
        candidate within one standard error of the best wins (the linear
        features alone, then wider kernels, then stronger penalties).

    max_iter : int, default=1000
        Maximum L-BFGS-B iterations per fit.

    %(common_params)s

    random_state : int, RandomState instance or None, default=None
        Controls the centres, the median-heuristic subsample and the folds.

    Attributes
    ----------
    centers_ : ndarray of shape (n_centers, n_features)
        Kernel centres.

    alpha_ : ndarray of shape (n_centers,)
        Kernel coefficients (all 0 when the selection kept no kernels).

    coef_ : ndarray of shape (n_features,)
        Linear coefficients of the log-ratio, in the units of ``X`` (0 for
        ``model="kernel"``).

    intercept_ : float
        Constant of the log-ratio: for the log-linear model ``log r(x) =
        intercept_ + coef_ . x + alpha_ . k(x)``, normalised to mean 1 over
        the training source rows; 0 for ``model="kernel"``, where ``r(x) =
        alpha_ . k(x)``.

    gamma_ : float or None
        Kernel coefficient used; ``None`` when the selection kept the linear
        features alone.

    regularization_ : float or None
        L2 penalty used (``None`` for ``model="kernel"``).

    %(common_attributes)s

    See Also
    --------
    ULSIFWeighter : closed-form least-squares alternative, faster.
    DiscriminativeWeighter : classifier-based, scales to many features.

    Notes
    -----
    ``domain_auc_`` is the AUC of the fitted ratio evaluated at the training
    rows (in-sample).

    The log-linear model is selected by a proper score of the ratio (the
    held-out log-loss above; logistic regression's loss is one of the
    Bregman divergences between density ratios [3]_) rather than by KLIEP's
    own held-out criterion ``-mean_t log r + log mean_s r``: with few
    held-out source rows the log of their mean ratio is biased low and very
    noisy for peaked (overfit) ratios, which it then rewards. The
    one-standard-error rule guards against the remaining noise.

    On a 5-D Gaussian mean shift (``tests/test_weighting.py``, mean of 5
    seeds) the rank correlation with the analytic ratio is 0.99 with 400 rows
    per domain and 1.00 with 2000 (``model="kernel"``: 0.92 and 0.96). On
    the Fashion-MNIST selection-bias benchmark it reaches 0.98-1.00 on 50
    PCA components and 0.69-0.99 on 1280-d EfficientNet-Lite0 embeddings
    (``benchmarks/bench_weighting.py``; the user guide has the tables).

    References
    ----------
    .. [1] M. Sugiyama et al., "Direct importance estimation for covariate
       shift adaptation", Annals of the Institute of Statistical Mathematics
       60(4), 2008.
    .. [2] Y. Tsuboi, H. Kashima, S. Hido, S. Bickel, M. Sugiyama, "Direct
       density ratio estimation for large-scale covariate shift adaptation",
       Journal of Information Processing 17, 2009.
    .. [3] M. Sugiyama, T. Suzuki, T. Kanamori, "Density-ratio matching under
       the Bregman divergence: a unified framework of density-ratio
       estimation", Annals of the Institute of Statistical Mathematics 64,
       2012.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.weighting import KLIEPWeighter
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (200, 1)), rng.normal(1, 1, (200, 1))]
    >>> sample_domain = np.r_[np.ones(200), -np.ones(200)]
    >>> weighter = KLIEPWeighter(n_centers=50, random_state=0)
    >>> weighter.fit(X, sample_domain=sample_domain).weights_.shape
    (400,)
    >>> bool(np.all(np.diff(weighter.compute_weights([[-1.0], [0.0], [1.0]])) > 0))
    True
    """

    _parameter_constraints = {
        **_BaseKernelRatio._parameter_constraints,
        "model": [StrOptions({"log-linear", "kernel"})],
        "alpha": [Interval(Real, 0, None, closed="neither"), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        *,
        model="log-linear",
        gamma=None,
        alpha=None,
        n_centers=200,
        cv=5,
        max_iter=1000,
        max_weight=None,
        max_weight_quantile=None,
        random_state=None,
    ):
        self.model = model
        self.gamma = gamma
        self.alpha = alpha
        self.n_centers = n_centers
        self.cv = cv
        self.max_iter = max_iter
        self.max_weight = max_weight
        self.max_weight_quantile = max_weight_quantile
        self.random_state = random_state

    def _linear_basis(self):
        return self.model == "log-linear"

    def _minimize(self, objective, start, exclude):
        # Excluded coefficients are held at 0 (bounds (0, 0)), which keeps the
        # coefficient vector aligned for warm starts; others get ``bounds``.
        bounds = list(self._bounds(len(start)))
        if exclude is not None:
            for column in exclude:
                bounds[column] = (0, 0)
        # Matrix-vector products on a few hundred columns: one BLAS thread is
        # as fast on a quiet machine and far faster on a busy one.
        with threadpool_limits(1, user_api="blas"):
            result = minimize(
                objective,
                start,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": self.max_iter},
            )
        return result.x

    def _bounds(self, n_columns):
        bound = (None, None) if self._linear_basis() else (0, None)
        return [bound] * n_columns

    def _solve_kliep(self, K_t, b, start=None, exclude=None):
        # max mean log(K_t a) - b.a over a >= 0: the Lagrangian form of KLIEP,
        # whose optimum satisfies b.a = 1 (mean ratio 1 on the source) itself.
        n_t = K_t.shape[0]

        def objective(alpha):
            fitted = K_t @ alpha + 1e-12
            value = -np.mean(np.log(fitted)) + b @ alpha
            grad = -(K_t.T @ (1.0 / fitted)) / n_t + b
            return value, grad

        if start is None:
            start = np.full(K_t.shape[1], 1.0 / max(b.sum(), 1e-12))
        alpha = self._minimize(objective, start, exclude)
        return alpha / max(b @ alpha, 1e-300)

    def _solve_loglinear(self, basis_s, basis_t, regularization, start, exclude):
        # min -mean_t theta.phi + log mean_s exp(theta.phi) + reg/2 |theta|^2:
        # convex, and its optimum is the penalised KLIEP of r ~ exp(theta.phi).
        target_mean = basis_t.tdot(np.full(basis_t.n_rows, 1.0 / basis_t.n_rows))
        log_n = math.log(basis_s.n_rows)

        def objective(theta):
            z = basis_s.dot(theta)
            log_mean = logsumexp(z) - log_n
            softmax = np.exp(z - log_n - log_mean)
            value = (
                -target_mean @ theta + log_mean + 0.5 * regularization * theta @ theta
            )
            grad = -target_mean + basis_s.tdot(softmax) + regularization * theta
            return value, grad

        if start is None:
            start = np.zeros(basis_s.n_columns)
        return self._minimize(objective, start, exclude)

    @staticmethod
    def _loglinear_loss(train_s, test_s, test_t, theta):
        """Held-out log-loss of the domain posterior that the ratio implies.

        With ``r`` normalised over the fit's source rows, ``P(target | x) =
        n_t r(x) / (n_t r(x) + n_s)`` (held-out counts); why this score and
        not KLIEP's own held-out criterion: see the class Notes.
        """
        z_train = train_s.dot(theta)
        shift = math.log(test_t.n_rows / test_s.n_rows) - (
            logsumexp(z_train) - math.log(z_train.size)
        )
        logit_s, logit_t = test_s.dot(theta) + shift, test_t.dot(theta) + shift
        # -log(1 - p) = log(1 + e^logit), -log p = log(1 + e^-logit).
        total = np.logaddexp(0, logit_s).sum() + np.logaddexp(0, -logit_t).sum()
        return total / (logit_s.size + logit_t.size)

    def _cv_losses(self, X_s, X_t, K_s, K_t, seed, owner_t, cache):
        if self.model == "kernel":
            yield from self._cv_losses_kernel(K_s, K_t, seed, owner_t)
            return
        alphas = (
            [self.alpha]
            if self.alpha is not None
            else sorted(_LINEAR_BASIS_ALPHAS)[::-1]
        )
        if not self._needs_cv():
            yield np.zeros(1), (self.alpha, None)
            return
        # Same random subsample of each domain for every candidate.
        rng = np.random.RandomState(seed)
        rows_s = _subsample(len(X_s), _KLIEP_CV_ROWS, rng)
        rows_t = _subsample(len(X_t), _KLIEP_CV_ROWS, rng)
        basis_s = self._basis(X_s, K_s).take(rows_s)
        basis_t = self._basis(X_t, K_t).take(rows_t)
        owner_t = owner_t[rows_t]
        folds = []
        split_s = KFold(self.cv, shuffle=True, random_state=seed).split(rows_s)
        split_t = KFold(self.cv, shuffle=True, random_state=seed + 1).split(rows_t)
        for (tr_s, te_s), (tr_t, te_t) in zip(split_s, split_t, strict=True):
            # A held-out row that is also a centre would be scored by a bump
            # sitting on it, which rewards narrow kernels: its centre is left
            # out of this fold's model.
            exclude = None
            if K_s is not None:
                exclude = basis_s.n_linear + owner_t[te_t][owner_t[te_t] >= 0]
            folds.append(
                (
                    basis_s.take(tr_s),
                    basis_t.take(tr_t),
                    basis_s.take(te_s),
                    basis_t.take(te_t),
                    exclude,
                )
            )
        thetas, best = [None] * self.cv, np.inf
        for regularization in alphas:
            losses = []
            for k, (train_s, train_t, test_s, test_t, exclude) in enumerate(folds):
                # Warm start from the next stronger penalty of the same fold.
                thetas[k] = self._solve_loglinear(
                    train_s, train_t, regularization, thetas[k], exclude
                )
                losses.append(self._loglinear_loss(train_s, test_s, test_t, thetas[k]))
            losses = np.array(losses)
            yield losses, (regularization, thetas[-1])
            # From strong to weak penalties the held-out loss falls, then
            # rises; past the turn weaker penalties only overfit more (and
            # cost the most iterations).
            if losses.mean() > best:
                return
            best = losses.mean()

    def _cv_losses_kernel(self, K_s, K_t, seed, owner_t):
        if self.gamma is not None:
            yield np.zeros(1), None
            return
        b = K_s.mean(axis=0)
        if len(K_t) > _KLIEP_CV_ROWS:
            # Same random subsample for every width (same seed).
            rows = np.random.RandomState(seed).choice(
                len(K_t), _KLIEP_CV_ROWS, replace=False
            )
            K_t, owner_t = K_t[rows], owner_t[rows]
        losses, alpha = [], None
        for train, test in KFold(self.cv, shuffle=True, random_state=seed).split(K_t):
            # A held-out row that is also a centre would be scored by a bump
            # sitting on it, which rewards narrow kernels: its centre is left
            # out of this fold's model.
            exclude = owner_t[test][owner_t[test] >= 0]
            # Warm start from the previous fold: the folds share most rows.
            alpha = self._solve_kliep(K_t[train], b, start=alpha, exclude=exclude)
            losses.append(-np.mean(np.log(K_t[test] @ alpha + 1e-12)))
        yield np.array(losses), alpha

    def _solve(self, X_s, X_t, K_s, K_t, extra, cache):
        if self.model == "kernel":
            self.regularization_ = None
            return self._solve_kliep(K_t, K_s.mean(axis=0), start=extra)
        self.regularization_, start = extra
        return self._solve_loglinear(
            self._basis(X_s, K_s),
            self._basis(X_t, K_t),
            self.regularization_,
            start,
            None,
        )

    def _calibrate(self, X_source, K_source):
        if self._linear_basis():
            # Normalise to mean 1 over the source rows in the log domain, so
            # that exp never overflows at the training rows.
            z = self._score(X_source, K_source)
            self.intercept_ -= float(logsumexp(z) - math.log(z.size))

    def _raw(self, X, K):
        score = self._score(X, K)
        if not self._linear_basis():
            return score
        # Far outside the data a log-linear ratio can exceed float range.
        return np.exp(np.minimum(score, _MAX_LOG_RATIO))


@_doc
class ULSIFWeighter(_BaseKernelRatio):
    """Importance weights by unconstrained least-squares importance fitting.

    Models the ratio as a combination of basis functions and fits it by least
    squares against the true ratio, which has the closed form ``theta = (H +
    lambda I)^-1 h`` with ``H = mean_source phi phi^T`` and ``h = mean_target
    phi``. The default basis is a constant, the features of ``x`` (centred,
    one overall scale) and Gaussian kernels on ``n_centers`` target rows: the
    linear part lets the ratio keep falling into the source tail, where a sum
    of bumps on target rows is flat. Negative kernel coefficients are set to 0
    (as in [1]_), the constant and linear ones are free, and the ratio is
    clipped at 0. Width and regularisation are chosen by ``cv``-fold
    cross-validation of the same squared loss. Weights are a function of
    ``x``, so ``compute_weights`` works out of sample.

    Read more in the :ref:`User Guide <domain_shift>`.

    Parameters
    ----------
    basis : {"linear+rbf", "rbf"}, default="linear+rbf"
        ``"linear+rbf"``: constant, linear and kernel basis functions; the
        linear ones alone (no kernels) are one of the candidates of the
        selection. ``"rbf"``: the kernels alone, the original uLSIF.

    gamma : float > 0 or None, default=None
        RBF kernel coefficient. ``None`` picks it by cross-validation among the
        median heuristic times 0.1, 0.3, 1, 3, 10 (and, for
        ``basis="linear+rbf"``, no kernels at all). A given ``gamma`` always
        uses the kernels.

    alpha : float > 0 or None, default=None
        Ridge regularisation ``lambda``. ``None`` picks it by cross-validation
        among 1e-3, 1e-2, 1e-1, 1, 10 (and 100 for ``basis="linear+rbf"``).

    n_centers : int, default=200
        Number of kernel centres, drawn from the target rows. Memory is two
        ``(n_source + n_target) * n_centers`` float64 arrays.

    cv : int >= 2, default=5
        Folds for the selection (unused when both ``gamma`` and ``alpha`` are
        given). Source and target rows are split into folds; a fold's model
        never uses a centre that is one of its held-out target rows. With
        ``basis="linear+rbf"`` the simplest candidate within one standard
        error of the best wins (linear basis alone, then wider kernels, then
        stronger ridges); with ``"rbf"``, the best.

    %(common_params)s

    random_state : int, RandomState instance or None, default=None
        Controls the centres, the median-heuristic subsample and the folds.

    Attributes
    ----------
    centers_ : ndarray of shape (n_centers, n_features)
        Kernel centres.

    alpha_ : ndarray of shape (n_centers,)
        Non-negative kernel coefficients (all 0 when the selection kept no
        kernels).

    coef_ : ndarray of shape (n_features,)
        Linear coefficients, in the units of ``X`` (0 for ``basis="rbf"``).

    intercept_ : float
        Constant: ``r(x) = max(0, intercept_ + coef_ . x + alpha_ . k(x))``
        before normalisation.

    gamma_ : float or None
        Kernel coefficient used; ``None`` when the selection kept the linear
        basis alone.

    regularization_ : float
        Ridge coefficient used.

    %(common_attributes)s

    See Also
    --------
    KLIEPWeighter : likelihood-based alternative.
    DiscriminativeWeighter : classifier-based, scales to many features.

    Notes
    -----
    ``domain_auc_`` is the AUC of the fitted ratio evaluated at the training
    rows (in-sample). Because the ratio is clipped at 0, uLSIF can give
    weight exactly 0 to source rows far from the target.

    On a 5-D Gaussian mean shift (``tests/test_weighting.py``, mean of 5
    seeds) the rank correlation with the analytic ratio is 0.98 with 400 rows
    per domain and 0.99 with 2000 (``basis="rbf"``: 0.81 and 0.85).

    References
    ----------
    .. [1] T. Kanamori, S. Hido, M. Sugiyama, "A least-squares approach to
       direct importance estimation", JMLR 10, 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.weighting import ULSIFWeighter
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (200, 1)), rng.normal(1, 1, (200, 1))]
    >>> sample_domain = np.r_[np.ones(200), -np.ones(200)]
    >>> weighter = ULSIFWeighter(n_centers=50, random_state=0)
    >>> weighter.fit(X, sample_domain=sample_domain).weights_.shape
    (400,)
    >>> bool(np.all(np.diff(weighter.compute_weights([[-1.0], [0.0], [1.0]])) > 0))
    True
    """

    _parameter_constraints = {
        **_BaseKernelRatio._parameter_constraints,
        "basis": [StrOptions({"linear+rbf", "rbf"})],
        "alpha": [Interval(Real, 0, None, closed="neither"), None],
    }
    _constant = True

    def __init__(
        self,
        *,
        basis="linear+rbf",
        gamma=None,
        alpha=None,
        n_centers=200,
        cv=5,
        max_weight=None,
        max_weight_quantile=None,
        random_state=None,
    ):
        self.basis = basis
        self.gamma = gamma
        self.alpha = alpha
        self.n_centers = n_centers
        self.cv = cv
        self.max_weight = max_weight
        self.max_weight_quantile = max_weight_quantile
        self.random_state = random_state

    def _linear_basis(self):
        return self.basis == "linear+rbf"

    def _needs_cv(self):
        return self.gamma is None or self.alpha is None

    def _alphas(self):
        if self.alpha is not None:
            return [self.alpha]
        grid = _LINEAR_BASIS_ALPHAS if self._linear_basis() else _ULSIF_ALPHAS
        # Strongest ridge first, so that ties go to the smoother ratio.
        return sorted(grid, reverse=True)

    @staticmethod
    def _fit_coef(H, h, regularization, n_linear):
        coef = np.linalg.solve(H + regularization * np.eye(len(h)), h)
        coef[n_linear:] = np.maximum(coef[n_linear:], 0)
        return coef

    def _cv_losses(self, X_s, X_t, K_s, K_t, seed, owner_t, cache):
        alphas = self._alphas()
        if not self._needs_cv():
            yield np.zeros(1), self.alpha
            return
        basis_s, basis_t = self._basis(X_s, K_s), self._basis(X_t, K_t)
        q = basis_s.n_linear
        # Source and target split separately into the same number of folds;
        # H of a training part is the full H minus the held-out rows'. The
        # linear blocks of these Gram matrices do not depend on the width:
        # they are computed once per fit (``cache``).
        H_full = basis_s.gram(cache.get("full"))
        cache["full"] = H_full[:q, :q]
        sum_t = basis_t.tdot(np.ones(basis_t.n_rows))
        folds_s = KFold(self.cv, shuffle=True, random_state=seed).split(X_s)
        folds_t = KFold(self.cv, shuffle=True, random_state=seed + 1).split(X_t)
        losses = np.zeros((len(alphas), self.cv))
        # Small dense algebra (a few hundred columns): one BLAS thread avoids
        # the oversubscription that makes it crawl on a busy machine.
        with threadpool_limits(1, user_api="blas"):
            for fold, ((tr_s, te_s), (tr_t, te_t)) in enumerate(
                zip(folds_s, folds_t, strict=True)
            ):
                held_s, held_t = basis_s.take(te_s), basis_t.take(te_t)
                H_held = held_s.gram(cache.get(fold))
                cache[fold] = H_held[:q, :q]
                # Centres among the held-out rows leave this fold's model
                # (scored on its own centres, a model favours narrow kernels).
                keep = np.ones(basis_s.n_columns, dtype=bool)
                if K_s is not None:
                    keep[q + owner_t[te_t][owner_t[te_t] >= 0]] = False
                H = (H_full - H_held)[np.ix_(keep, keep)] / len(tr_s)
                h = (sum_t - held_t.tdot(np.ones(len(te_t))))[keep] / len(tr_t)
                # One eigendecomposition serves every ridge value.
                eigval, eigvec = np.linalg.eigh(H)
                projected = eigvec.T @ h
                held_s, held_t = held_s.dense()[:, keep], held_t.dense()[:, keep]
                for i, regularization in enumerate(alphas):
                    coef = eigvec @ (projected / (eigval + regularization))
                    coef[q:] = np.maximum(coef[q:], 0)
                    # Held-out least-squares loss of the ratio as used
                    # (clipped at 0): 1/2 E_s[r^2] - E_t[r].
                    r_s = np.maximum(held_s @ coef, 0)
                    r_t = np.maximum(held_t @ coef, 0)
                    losses[i, fold] = 0.5 * np.mean(r_s**2) - np.mean(r_t)
        yield from zip(losses, alphas, strict=True)

    def _solve(self, X_s, X_t, K_s, K_t, regularization, cache):
        self.regularization_ = regularization
        basis_s, basis_t = self._basis(X_s, K_s), self._basis(X_t, K_t)
        with threadpool_limits(1, user_api="blas"):
            H = basis_s.gram(cache.get("full")) / basis_s.n_rows
        h = basis_t.tdot(np.full(basis_t.n_rows, 1.0 / basis_t.n_rows))
        return self._fit_coef(H, h, regularization, basis_s.n_linear)

    def _raw(self, X, K):
        return np.maximum(self._score(X, K), 0)


@_doc
class KMMWeighter(_BaseWeighter):
    """Importance weights by kernel mean matching, on a Nyström feature map.

    Finds source weights ``beta`` (``0 <= beta <= weight_bound``, mean 1) whose
    weighted kernel mean embedding of the source rows is closest to that of
    the target rows. The kernel is approximated by a Nyström map with
    ``n_components`` landmarks, so the quadratic problem is solved by
    accelerated projected gradient in ``O((n_source + n_target) *
    n_components)`` memory and time per iteration, never ``n x n``.

    KMM gives weights for a *sample*, not a ratio function: it matches means
    and has no value of ``w(x)`` at a single point. ``weights_`` holds the
    solution for the training source rows. ``compute_weights(X)`` re-solves
    the matching for the rows of ``X`` against the target embedding stored at
    fit: a row's weight then depends on the other rows of ``X`` and is
    unreliable for small batches. KMM weights follow the direction of the
    density ratio but are shrunk toward 1 by the bound and the finite kernel
    width; see the user guide for what they recover.

    Read more in the :ref:`User Guide <domain_shift>`.

    Parameters
    ----------
    gamma : float > 0 or None, default=None
        RBF kernel coefficient. ``None`` uses the median heuristic
        ``1 / median ||x - x'||^2`` (on at most 1000 random rows).

    n_components : int, default=300
        Nyström landmarks, drawn from source and target rows.

    regularization : float >= 0, default=1.0
        Ridge term ``regularization * ||beta||^2 / n_source^2`` added to the
        matching objective (equivalently ``K + regularization * I``). Exact
        matching (``0``) overfits: it drives many weights to 0 and loses the
        shape of the ratio; the ridge keeps weights smooth.

    weight_bound : float > 0, default=1000.0
        Upper bound ``B`` on each weight inside the matching problem.

    max_iter : int, default=2000
        Maximum projected-gradient iterations.

    tol : float, default=1e-6
        Stop when the largest change of a weight falls below ``tol``.

    %(common_params)s

    random_state : int, RandomState instance or None, default=None
        Controls the landmarks and the median-heuristic subsample.

    Attributes
    ----------
    nystroem_ : :class:`~sklearn.kernel_approximation.Nystroem`
        Fitted feature map.

    gamma_ : float
        Kernel coefficient used.

    n_iter_ : int
        Iterations of the solver at fit.

    %(common_attributes)s

    See Also
    --------
    KLIEPWeighter, ULSIFWeighter : kernel methods with out-of-sample ratios.

    Notes
    -----
    The sum constraint is an equality (``epsilon = 0`` in [1]_) because the
    weights are renormalised to mean 1 anyway. ``domain_auc_`` is the AUC of
    the MMD witness function ``<phi(x), mu_target - mu_source>`` at the
    training rows.

    References
    ----------
    .. [1] J. Huang, A. Smola, A. Gretton, K. Borgwardt, B. Schölkopf,
       "Correcting sample selection bias by unlabeled data", NIPS 2006.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.weighting import KMMWeighter
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (200, 1)), rng.normal(1, 1, (200, 1))]
    >>> sample_domain = np.r_[np.ones(200), -np.ones(200)]
    >>> weighter = KMMWeighter(n_components=50, random_state=0)
    >>> w = weighter.fit(X, sample_domain=sample_domain).weights_[:200]
    >>> bool(w[X[:200, 0] > 1].mean() > w[X[:200, 0] < 0].mean())
    True
    """

    _parameter_constraints = {
        **_BaseWeighter._parameter_constraints,
        "gamma": [Interval(Real, 0, None, closed="neither"), None],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "regularization": [Interval(Real, 0, None, closed="left")],
        "weight_bound": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        *,
        gamma=None,
        n_components=300,
        regularization=1.0,
        weight_bound=1000.0,
        max_iter=2000,
        tol=1e-6,
        max_weight=None,
        max_weight_quantile=None,
        random_state=None,
    ):
        self.gamma = gamma
        self.n_components = n_components
        self.regularization = regularization
        self.weight_bound = weight_bound
        self.max_iter = max_iter
        self.tol = tol
        self.max_weight = max_weight
        self.max_weight_quantile = max_weight_quantile
        self.random_state = random_state

    def _fit_ratio(self, X_source, X_target, rng):
        X = np.vstack([X_source, X_target])
        self.gamma_ = self.gamma if self.gamma is not None else _median_gamma(X, rng)
        self.nystroem_ = Nystroem(
            gamma=self.gamma_,
            n_components=min(self.n_components, len(X)),
            random_state=rng.randint(2**31 - 1),
        ).fit(X)
        phi_s = self.nystroem_.transform(X_source)
        phi_t = self.nystroem_.transform(X_target)
        self._target_mean = phi_t.mean(axis=0)
        beta, self.n_iter_ = self._match(phi_s)
        witness = self._target_mean - phi_s.mean(axis=0)
        return beta, phi_s @ witness, phi_t @ witness

    def _match(self, phi_s):
        """FISTA on 1/2 ||phi_s^T beta / n - mu_t||^2 over the capped simplex."""
        n = len(phi_s)
        bound = max(self.weight_bound, 1.0)
        reg = self.regularization
        lipschitz = (np.linalg.norm(phi_s, 2) ** 2 + reg) / n**2
        step = 1.0 / max(lipschitz, 1e-300)
        beta = np.ones(n)
        momentum, t = beta.copy(), 1.0
        n_iter = self.max_iter
        # Matrix-vector products on n_components columns: one BLAS thread is
        # as fast on a quiet machine and far faster on a busy one.
        with threadpool_limits(1, user_api="blas"):
            for iteration in range(self.max_iter):
                grad = phi_s @ (phi_s.T @ momentum / n - self._target_mean) / n
                grad += reg * momentum / n**2
                new = _project_capped_simplex(momentum - step * grad, n, bound)
                t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
                momentum = new + (t - 1) / t_next * (new - beta)
                change = np.max(np.abs(new - beta))
                beta, t = new, t_next
                if change < self.tol:
                    n_iter = iteration + 1
                    break
        return beta, n_iter

    def _ratio(self, X):
        beta, _ = self._match(self.nystroem_.transform(X))
        return beta


def _project_capped_simplex(v, total, bound):
    """Euclidean projection of ``v`` onto ``{0 <= b <= bound, sum b = total}``."""
    # g(tau) = sum(clip(v - tau, 0, bound)) - total is piecewise linear and
    # nonincreasing in tau. Newton steps on it (slope = -number of rows strictly
    # inside the box) land exactly on the root once the active set is right,
    # usually in a handful of O(n) passes; bisection guards the bracket.
    lo, hi = v.min() - bound, v.max()
    tau = (v.sum() - total) / v.size
    for _ in range(100):
        shifted = v - tau
        clipped = np.clip(shifted, 0, bound)
        excess = clipped.sum() - total
        if abs(excess) <= 1e-12 * max(total, 1.0):
            break
        if excess > 0:
            lo = tau
        else:
            hi = tau
        free = np.count_nonzero((shifted > 0) & (shifted < bound))
        tau = tau + excess / free if free else (lo + hi) / 2
        if not lo < tau < hi:
            tau = (lo + hi) / 2
    return np.clip(v - tau, 0, bound)


_METHODS = {
    "discriminative": DiscriminativeWeighter,
    "kmm": KMMWeighter,
    "kliep": KLIEPWeighter,
    "ulsif": ULSIFWeighter,
}


def estimate_importance_weights(X_source, X_target, method="discriminative", **params):
    """Importance weights ``p_target(x) / p_source(x)`` of the source rows.

    One-line interface to the weighters: stacks the two samples, fits the
    weighter named by ``method`` and returns its training weights for the
    source rows (cross-fitted for ``"discriminative"``).

    Parameters
    ----------
    X_source : array-like of shape (n_source, n_features)
        Source (labelled) rows to weight.

    X_target : array-like of shape (n_target, n_features)
        Target rows, whose distribution the weighted source should match.

    method : {"discriminative", "kmm", "kliep", "ulsif"}, default="discriminative"
        :class:`DiscriminativeWeighter`, :class:`KMMWeighter`,
        :class:`KLIEPWeighter` or :class:`ULSIFWeighter`.

    **params : dict
        Parameters of the chosen weighter (e.g. ``random_state=0``,
        ``max_weight_quantile=0.99``).

    Returns
    -------
    weights : ndarray of shape (n_source,)
        Non-negative weights with mean 1.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.weighting import estimate_importance_weights
    >>> rng = np.random.RandomState(0)
    >>> X_source = rng.normal(0, 1, (300, 2))
    >>> X_target = rng.normal(0.5, 1, (300, 2))
    >>> w = estimate_importance_weights(X_source, X_target, random_state=0)
    >>> w.shape, round(float(w.mean()), 6)
    ((300,), 1.0)
    """
    if method not in _METHODS:
        raise ValueError(
            f"Unknown method {method!r} for estimate_importance_weights; choose "
            f"one of {sorted(_METHODS)}."
        )
    weighter = _METHODS[method](**params)
    X_source, X_target = np.asarray(X_source), np.asarray(X_target)
    if (
        X_source.ndim != 2
        or X_target.ndim != 2
        or X_source.shape[1] != X_target.shape[1]
    ):
        raise ValueError(
            "X_source and X_target must be 2-D with the same number of columns; got "
            f"shapes {X_source.shape} and {X_target.shape}."
        )
    X = np.vstack([X_source, X_target])
    sample_domain = np.r_[np.ones(len(X_source)), -np.ones(len(X_target))]
    weighter.fit(X, sample_domain=sample_domain)
    return weighter.weights_[: len(X_source)]


def _estimator_has(attr):
    def check(self):
        if hasattr(self, "estimator_"):
            return hasattr(self.estimator_, attr)
        return hasattr(self.estimator, attr)

    return check


class _BaseImportanceWeighted(MetaEstimatorMixin, BaseEstimator):
    """Fit a weighter on source + target rows, then the estimator on the source."""

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "weighter": [HasMethods(["fit", "compute_weights"]), None],
    }
    # sample_domain is requested by default, so routing-enabled CV tools pass
    # it without a set_fit_request call.
    __metadata_request__fit = {"sample_domain": True}

    def __init__(self, estimator, *, weighter=None):
        self.estimator = estimator
        self.weighter = weighter

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, *, sample_domain=None):
        """Fit the weighter on all rows, then the estimator on the source rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Source and target rows together.

        y : array-like of shape (n_samples,)
            Targets. Values on target rows are ignored (mask them, e.g. -1 for
            classification or NaN for regression).

        sample_domain : array-like of shape (n_samples,)
            Positive for source rows, negative for target rows. Required.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        if not has_fit_parameter(self.estimator, "sample_weight"):
            # Never resample instead: a resampled fit is a different estimator
            # with extra variance (ADAPT does this silently).
            raise TypeError(
                f"{type(self).__name__} needs an estimator whose fit takes "
                f"`sample_weight`; {type(self.estimator).__name__}.fit does not. "
                "Choose an estimator that accepts sample_weight (for a Pipeline, "
                "put this meta-estimator as the pipeline's last step instead)."
            )
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        y = column_or_1d(y, warn=True)
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"y has {y.shape[0]} rows but X has {X.shape[0]}; they must match."
            )
        is_source = _check_sample_domain(sample_domain, X.shape[0])
        _check_both_domains(is_source)
        y_source = y[is_source]
        if is_classifier(self):
            check_classification_targets(y_source)
        else:
            _assert_all_finite(y_source, input_name="y")
        weighter = (
            self.weighter if self.weighter is not None else DiscriminativeWeighter()
        )
        self.weighter_ = clone(weighter).fit(X, sample_domain=sample_domain)
        self.sample_weight_ = self.weighter_.weights_[is_source]
        self.estimator_ = clone(self.estimator).fit(
            X[is_source], y_source, sample_weight=self.sample_weight_
        )
        return self

    def compute_weights(self, X, *, sample_domain=None):
        """Importance weights of ``X`` from the fitted weighter.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to weight.

        sample_domain : array-like of shape (n_samples,), default=None
            See the weighter's ``compute_weights``.

        Returns
        -------
        weights : ndarray of shape (n_samples,)
            Non-negative importance weights.
        """
        check_is_fitted(self)
        return self.weighter_.compute_weights(X, sample_domain=sample_domain)

    def _checked(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

    def predict(self, X):
        """Predict with the estimator trained on the weighted source rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predictions.
        """
        X = self._checked(X)
        return self.estimator_.predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


_IW_DOC = """Train {what} on source rows weighted toward the target domain.

    ``fit(X, y, sample_domain=...)`` takes source and target rows together. It
    fits ``weighter`` on all rows, then ``estimator`` on the source rows with
    the weighter's importance weights as ``sample_weight``; target labels are
    ignored. Use it as the last step of a pipeline after a feature extractor,
    so that source and target rows get the same features. It raises rather
    than resample when ``estimator.fit`` has no ``sample_weight``.

    Read more in the :ref:`User Guide <domain_shift>`.

    Parameters
    ----------
    estimator : estimator object
        {what_cap} whose ``fit`` accepts ``sample_weight``.

    weighter : weighter or None, default=None
        One of :class:`DiscriminativeWeighter`, :class:`KMMWeighter`,
        :class:`KLIEPWeighter`, :class:`ULSIFWeighter` (or any object with
        ``fit(X, sample_domain=...)``, ``weights_`` and ``compute_weights``).
        ``None`` uses ``DiscriminativeWeighter()``.

    Attributes
    ----------
    estimator_ : estimator
        The fitted estimator.

    weighter_ : weighter
        The fitted weighter; its diagnostics (``effective_sample_size_``,
        ``domain_auc_``, ...) describe the shift.

    sample_weight_ : ndarray of shape (n_source,)
        Weights the estimator was trained with.
{extra_attributes}
    n_features_in_ : int
        Number of features seen in ``fit``.

    Notes
    -----
    ``sample_domain`` is requested for ``fit`` by default, so with metadata
    routing enabled ``cross_val_score(..., params={{"sample_domain": d}})``
    and ``GridSearchCV.fit(X, y, sample_domain=d)`` pass it on; with routing
    off these tools pass fit parameters through as well (inside a
    :class:`~sklearn.pipeline.Pipeline`, name the step:
    ``step__sample_domain``). For target-aware model selection see
    :class:`~sktransfer.model_selection.SourceValidationKFold` and
    :class:`~sktransfer.model_selection.ImportanceWeightedScorer`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import {example_estimator}
    >>> from sktransfer.weighting import {name}
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (100, 2)), rng.normal(1, 1, (100, 2))]
    >>> y = np.r_[{example_y}, -np.ones(100)]
    >>> sample_domain = np.r_[np.ones(100), -np.ones(100)]
    >>> model = {name}({example_estimator}(), weighter=None)
    >>> model.fit(X, y, sample_domain=sample_domain).predict(X[:2]).shape
    (2,)
    >>> model.sample_weight_.shape
    (100,)
    """


def _iw_doc(**fields):
    # The classifier and regressor share one docstring text.
    def decorate(cls):
        cls.__doc__ = _IW_DOC.format(**fields)
        return cls

    return decorate


@_iw_doc(
    what="a classifier",
    what_cap="Classifier",
    name="ImportanceWeightedClassifier",
    example_estimator="LogisticRegression",
    example_y="(X[:100, 0] > 0).astype(int)",
    extra_attributes="""
    classes_ : ndarray of shape (n_classes,)
        Class labels, from the source rows.
""",
)
class ImportanceWeightedClassifier(ClassifierMixin, _BaseImportanceWeighted):
    """Train a classifier on source rows weighted toward the target domain."""

    @property
    def classes_(self):
        """Class labels of the fitted estimator."""
        return self.estimator_.classes_

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities from the weighted estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``.
        """
        X = self._checked(X)
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Class log-probabilities from the weighted estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities, columns in the order of ``classes_``.
        """
        X = self._checked(X)
        return self.estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the weighted estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Decision scores.
        """
        X = self._checked(X)
        return self.estimator_.decision_function(X)


@_iw_doc(
    what="a regressor",
    what_cap="Regressor",
    name="ImportanceWeightedRegressor",
    example_estimator="Ridge",
    example_y="X[:100, 0]",
    extra_attributes="",
)
class ImportanceWeightedRegressor(RegressorMixin, _BaseImportanceWeighted):
    """Train a regressor on source rows weighted toward the target domain."""
