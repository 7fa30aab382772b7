"""The shared base of the weight estimators: fit, normalise, clip, diagnose.

A weighter estimates ``w(x) = p_target(x) / p_source(x)`` from source and
target rows marked by ``sample_domain``. Each method implements only the
unnormalised ratio (``_fit_ratio`` at the training rows, ``_ratio`` at new
rows); this base turns it into weights of mean 1 over the source rows, caps
them, measures the shift and warns when weighting cannot help.
"""

from numbers import Real

import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from .._docstrings import Substitution
from .._warnings import warn
from ..exceptions import DomainOverlapWarning, LowEffectiveSampleSizeWarning
from ._domain import check_both_domains, check_sample_domain

__all__ = ["AUC_WARNING", "ESS_WARNING_RATIO", "BaseWeighter", "weighter_docs"]

# Below this fraction of effective samples the weighted fit rests on a handful
# of rows: its variance swamps the bias it removes.
ESS_WARNING_RATIO = 0.1
# A domain classifier this good means the supports barely overlap: some target
# regions have no source rows at all, and no weighting can reach them.
AUC_WARNING = 0.99
# Steps of the bisection for the cap that gives a largest weight of max_weight.
_BISECTION_STEPS = 100

# The parameter and attribute text every weighter shares, written once.
weighter_docs = Substitution(
    common_params="""
    max_weight : float >= 1 or None, default=None
        Absolute cap on the final weights (which have mean 1 over the source
        rows). Large weights are cut and the rest renormalised so that no
        weight exceeds ``max_weight``. ``None`` applies no absolute cap.

    max_weight_quantile : float in (0, 1] or None, default=None
        Cap the normalised weights at this quantile of the training source
        weights (e.g. 0.99), then renormalise to mean 1. Applied before
        ``max_weight`` when both are given.
    """,
    common_attributes="""
    weights_ : ndarray of shape (n_samples,)
        Weights of the training rows: mean 1 over the source rows, 0 on the
        target rows.

    clip_threshold_ : float
        Cap applied to the ratio (normalised to mean 1 over the training
        source rows) before the final renormalisation; ``inf`` when neither
        ``max_weight`` nor ``max_weight_quantile`` is set. ``compute_weights``
        applies the same cap to new rows.

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

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen in ``fit``, set only when ``X`` has
        feature names that are all strings.
    """,
)


def binary_auc(scores_source, scores_target):
    """AUC of ``scores`` separating target (positive) from source rows."""
    scores = np.concatenate([scores_source, scores_target])
    ranks = rankdata(scores)
    n_s, n_t = scores_source.size, scores_target.size
    return float((ranks[n_s:].sum() - n_t * (n_t + 1) / 2) / (n_s * n_t))


def effective_sample_size(weights):
    """Kish's effective sample size ``(sum w)**2 / sum w**2``."""
    total = weights.sum()
    return float(total**2 / np.sum(weights**2)) if total > 0 else 0.0


class BaseWeighter(BaseEstimator):
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
        is_source = check_sample_domain(sample_domain, X.shape[0])
        self.n_source_, self.n_target_ = check_both_domains(is_source, self._min_rows())
        rng = check_random_state(self.random_state)
        X = X.astype(np.float64, copy=False)
        raw, score_s, score_t = self._fit_ratio(X[is_source], X[~is_source], rng)
        overlap_lost = self._set_weights(raw, is_source)
        self.domain_auc_ = binary_auc(score_s, score_t)
        self._warn_diagnostics(overlap_lost)
        return self

    def _set_weights(self, raw, is_source):
        """Normalise and cap the ratio at the source rows; set the weights.

        Returns whether the ratio vanished at every source row.
        """
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

        self.weights_ = np.zeros(is_source.size)
        self.weights_[is_source] = source_weights
        self.effective_sample_size_ = effective_sample_size(source_weights)
        self.effective_sample_size_ratio_ = self.effective_sample_size_ / self.n_source_
        self.weight_summary_ = {
            "min": float(source_weights.min()),
            "median": float(np.median(source_weights)),
            "q95": float(np.quantile(source_weights, 0.95)),
            "max": float(source_weights.max()),
            "max_unclipped": float(normalised.max() / np.mean(normalised)),
            "n_clipped": int(np.sum(normalised > self.clip_threshold_)),
        }
        return overlap_lost

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
                for _ in range(_BISECTION_STEPS):
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
            warn(
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
            )
        if self.effective_sample_size_ratio_ < ESS_WARNING_RATIO:
            warn(
                f"{name}: effective sample size {self.effective_sample_size_:.1f} "
                f"of {self.n_source_} source rows "
                f"({self.effective_sample_size_ratio_:.1%}): a few rows carry "
                "almost all the weight, so a weighted fit or score will have high "
                "variance. Consider clipping (max_weight / max_weight_quantile) "
                "or features in which the domains overlap more.",
                LowEffectiveSampleSizeWarning,
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
            is_source = check_sample_domain(sample_domain, X.shape[0])
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
