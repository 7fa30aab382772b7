"""Model selection for the target domain: a splitter and target-aware scorers.

Plain cross-validation on source rows estimates the *source* performance.
Importance-weighted cross-validation (IWCV) weights each validation row by
``p_target(x) / p_source(x)`` so that the validation score estimates the
*target* performance, which is what hyperparameters should be chosen for.

:class:`SourceValidationKFold` makes validation folds of source rows only and
keeps every target row in the training part (where the weighter needs them);
:class:`ImportanceWeightedScorer` scores a validation fold with the weights of
the weighter fitted in that fold, which never saw the validation rows.

Every adapted estimator -- the shallow ``DomainAdapted*`` meta-estimators with
any adapter, and the fine-tuning estimators fitted with ``sample_domain`` --
keeps ``target_features_`` (its features of the target training rows) and has
``domain_features(X)``. With these, :class:`ImportanceWeightedScorer` weights
validation rows even when the estimator has no weighter of its own, and
:class:`DeepEmbeddedValidationScorer` (You et al. 2019) estimates the target
risk with a control variate, needing no target label. All work with metadata
routing on or off; none changes global configuration.
"""

import warnings

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import BaseCrossValidator, KFold
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils.metadata_routing import MetadataRequest

from ._docstrings import Substitution
from .adaptation import (
    DiscriminativeWeighter,
    check_both_domains,
    check_sample_domain,
)
from .exceptions import DomainOverlapWarning, LowEffectiveSampleSizeWarning

__all__ = [
    "DeepEmbeddedValidationScorer",
    "deep_embedded_validation",
    "ImportanceWeightedScorer",
    "SourceValidationKFold",
]

# Attributes under which a fitted wrapper exposes the estimator it wraps:
# skada's ``Shared`` selector (``make_da_pipeline`` wraps every step in one)
# has ``base_estimator_``, most meta-estimators ``estimator_``.
_WRAPPED_ESTIMATOR_ATTRIBUTES = ("base_estimator_", "estimator_")
# Wrappers looked through at most (a guard against cycles).
_MAX_WRAPPER_DEPTH = 8


class SourceValidationKFold(BaseCrossValidator):
    """K-fold over the source rows; target rows always stay in the training part.

    Each split validates on one fold of the source rows (labelled, so they
    can be scored) and trains on the other source rows plus *all* target rows
    (unlabelled, for the importance weighter). Domains are read from
    ``groups``, which takes the ``sample_domain`` array (positive = source,
    negative = target): with metadata routing off, ``GridSearchCV`` and
    ``cross_val_score`` pass ``groups`` to the splitter; with routing on,
    ``groups`` is requested by default.

    Read more in the :ref:`User Guide <domain_shift>`.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds of the source rows (at least 2).

    shuffle : bool, default=False
        Shuffle the source rows before splitting.

    random_state : int, RandomState instance or None, default=None
        Controls the shuffling when ``shuffle=True``.

    See Also
    --------
    ImportanceWeightedScorer : scores the validation folds for the target.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.model_selection import SourceValidationKFold
    >>> sample_domain = np.array([1, 1, 1, 1, -1, -1])
    >>> cv = SourceValidationKFold(n_splits=2)
    >>> for train, test in cv.split(np.zeros((6, 1)), groups=sample_domain):
    ...     print(train, test)
    [2 3 4 5] [0 1]
    [0 1 4 5] [2 3]
    """

    __metadata_request__split = {"groups": True}

    def __init__(self, n_splits=5, *, shuffle=False, random_state=None):
        if not isinstance(n_splits, int | np.integer) or n_splits < 2:
            raise ValueError(
                f"n_splits must be an integer >= 2; got {n_splits!r}. Use at least "
                "two folds of the source rows."
            )
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state

    def split(self, X, y=None, groups=None):
        """Generate train/validation indices.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data; only its length is used.

        y : array-like of shape (n_samples,), default=None
            Ignored.

        groups : array-like of shape (n_samples,)
            The ``sample_domain`` array: positive for source rows, negative for
            target rows. Required.

        Yields
        ------
        train : ndarray
            Other source rows and all target rows.

        test : ndarray
            One fold of source rows.
        """
        n_samples = len(X)
        if groups is None:
            raise ValueError(
                "SourceValidationKFold needs the domains: pass the sample_domain "
                "array as `groups` (e.g. `GridSearchCV(...).fit(X, y, "
                "groups=sample_domain, sample_domain=sample_domain)`)."
            )
        is_source = check_sample_domain(groups, n_samples)
        n_source, _ = check_both_domains(is_source)
        if n_source < self.n_splits:
            raise ValueError(
                f"n_splits={self.n_splits} is more than the {n_source} source rows; "
                "lower n_splits."
            )
        source = np.flatnonzero(is_source)
        target = np.flatnonzero(~is_source)
        folds = KFold(
            self.n_splits, shuffle=self.shuffle, random_state=self.random_state
        )
        for train, test in folds.split(source):
            yield np.sort(np.r_[source[train], target]), source[test]

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of splits.

        Parameters
        ----------
        X, y, groups : object
            Ignored; present for API compatibility.

        Returns
        -------
        n_splits : int
            ``n_splits``.
        """
        return self.n_splits

    def _iter_test_indices(self, X=None, y=None, groups=None):  # pragma: no cover
        # split is overridden; BaseCrossValidator requires the hook to exist.
        raise NotImplementedError


def _unwrap_weighted(estimator, attribute="compute_weights"):
    """``estimator`` or the fitted estimator it wraps that has ``attribute``.

    ``None`` when there is none.
    """
    for _ in range(_MAX_WRAPPER_DEPTH):
        if hasattr(estimator, attribute):
            return estimator
        estimator = next(
            (
                getattr(estimator, name)
                for name in _WRAPPED_ESTIMATOR_ATTRIBUTES
                if getattr(estimator, name, None) is not None
            ),
            None,
        )
        if estimator is None:
            return None
    return None


def _adapted_view(estimator, X):
    """How to score source validation rows ``X`` of an adapted estimator.

    ``(scored, X_scored, features, target_features)``: the estimator to score
    and its input (from ``validation_view``), the features of ``X`` and the
    kept ``target_features_``, for ``estimator`` or the last step of a
    pipeline (through fitted wrappers, see :class:`ImportanceWeightedScorer`);
    ``None`` when there is no adapted estimator.
    """
    adapted = _unwrap_weighted(estimator, "target_features_")
    if adapted is None and isinstance(estimator, Pipeline):
        adapted = _unwrap_weighted(estimator[-1], "target_features_")
        if adapted is not None:
            X = estimator[:-1].transform(X)
    if adapted is None:
        return None
    return (*adapted.validation_view(X), adapted.target_features_)


def _feature_weights(features, target_features, weighter, random_state):
    """Importance weights of validation rows, estimated in the model's features.

    ``weighter`` (``DiscriminativeWeighter()`` when None) is fitted on the
    validation rows (source) and the kept target rows; the weights have mean
    1 over the validation rows. A weighter whose ``random_state`` is None
    takes the scorer's ``random_state``, so that its folds are the same for
    every candidate a search scores (and in every run, for an int).
    """
    weighter = clone(weighter if weighter is not None else DiscriminativeWeighter())
    if weighter.get_params().get("random_state", 0) is None:
        weighter.set_params(random_state=random_state)
    stacked = np.r_[np.asarray(features, float), np.asarray(target_features, float)]
    domain = np.r_[np.ones(len(features)), -np.ones(len(target_features))]
    with warnings.catch_warnings():
        # Diagnostics about the shift are the weighter's business, not the
        # scorer's: a grid search would print them once per fold and point.
        warnings.simplefilter("ignore", DomainOverlapWarning)
        warnings.simplefilter("ignore", LowEffectiveSampleSizeWarning)
        weighter.fit(stacked, sample_domain=domain)
    return weighter.weights_[: len(features)]


_scorer_docs = Substitution(
    random_state="""
    random_state : int, RandomState instance or None, default=0
        Seeds ``weighter`` (its cross-fitting folds and domain classifier)
        when the weighter's own ``random_state`` is None. The default, a
        fixed seed, scores every candidate of a search with the same folds
        and makes scores repeat from run to run; ``None`` draws fresh folds
        at every call, which adds noise to the comparison of candidates.
    """
)


def _repr_extra(scorer):
    """``", weighter=..., random_state=..."`` for the parameters not at default."""
    extra = ""
    if scorer.weighter is not None:
        extra += f", weighter={scorer.weighter!r}"
    if not (isinstance(scorer.random_state, int) and scorer.random_state == 0):
        extra += f", random_state={scorer.random_state!r}"
    return extra


class _TargetAwareScorer:
    """Scorer base: drops target rows it is given; requests ``sample_domain``."""

    def __call__(self, estimator, X, y_true, sample_domain=None):
        """Score ``estimator`` on the validation rows ``X, y_true`` for the target.

        Parameters
        ----------
        estimator : fitted estimator
            An adapted estimator, or a pipeline ending in one, possibly
            inside fitted wrappers (see :class:`ImportanceWeightedScorer`).

        X : array-like of shape (n_samples, ...)
            Validation rows.

        y_true : array-like of shape (n_samples,)
            Their labels.

        sample_domain : array-like of shape (n_samples,), default=None
            If given (metadata routing on), target rows are dropped before
            scoring.

        Returns
        -------
        score : float
            The estimate of the target score (greater is better).
        """
        y_true = np.asarray(y_true)
        if sample_domain is not None:
            keep = check_sample_domain(sample_domain, len(y_true))
            if not keep.any():
                raise ValueError(
                    f"{type(self).__name__} received only target rows to score; "
                    "use SourceValidationKFold so that validation folds hold "
                    "labelled source rows."
                )
            X = _safe_indexing(X, np.flatnonzero(keep))
            y_true = y_true[keep]
        return self._score(estimator, X, y_true)

    def get_metadata_routing(self):
        """Request ``sample_domain`` for scoring (used when routing is on).

        Returns
        -------
        routing : MetadataRequest
            The scorer's metadata request.
        """
        request = MetadataRequest(owner=self)
        request.score.add_request(param="sample_domain", alias=True)
        return request


@_scorer_docs
class ImportanceWeightedScorer(_TargetAwareScorer):
    """Score validation rows with importance weights (importance-weighted CV).

    Calls ``estimator.compute_weights(X)`` (an
    :class:`~sktransfer.ImportanceWeightedClassifier` or regressor, alone or as
    the last step of a :class:`~sklearn.pipeline.Pipeline`, possibly wrapped:
    see Notes) and passes the weights as ``sample_weight`` to the metric, so
    the score estimates the metric on the target domain. In cross-validation
    the weighter is the one fitted in the current fold, so validation rows
    are weighted out of sample.

    Any other adapted estimator (a :class:`~sktransfer.DomainAdaptedClassifier`
    with an aligner or no adapter, a fine-tuning estimator fitted with
    ``sample_domain``) has no weighter of its own: the validation rows are
    then weighted by ``weighter`` fitted on the estimator's features of the
    validation rows (``domain_features``) against those of the target rows it
    kept (``target_features_``), as in deep embedded validation.

    Use it with :class:`SourceValidationKFold`, which keeps target rows out of
    the validation folds. With metadata routing on, the scorer also requests
    ``sample_domain`` and drops any target row it receives.

    Read more in the :ref:`User Guide <domain_shift>`.

    Parameters
    ----------
    scoring : str or callable, default="accuracy"
        A scikit-learn scorer name (e.g. ``"accuracy"``, ``"neg_log_loss"``,
        ``"r2"``) or a scorer ``scorer(estimator, X, y, sample_weight=...)``.

    weighter : weighter or None, default=None
        Weights the validation rows in the estimator's features when it has
        no ``compute_weights``; ``None`` uses ``DiscriminativeWeighter()``.

    %(random_state)s

    See Also
    --------
    DeepEmbeddedValidationScorer : the same weights, with a control variate.

    Notes
    -----
    For a pipeline, the validation rows pass through the pipeline's first
    steps twice (once for the weights, once for the predictions); cache the
    features if they are expensive.

    The estimator with ``compute_weights`` may be wrapped, alone or as the
    pipeline's last step: the scorer looks through fitted wrappers that
    expose the wrapped estimator as ``base_estimator_`` (skada's ``Shared``
    selector, which ``skada.make_da_pipeline`` puts around every step) or
    ``estimator_``. A plain :func:`~sklearn.pipeline.make_pipeline` ending in
    an :class:`~sktransfer.ImportanceWeightedClassifier` needs no wrapper and
    works with skada's data as well.

    ``cross_val_score`` takes ``groups=`` only with metadata routing off;
    with routing on (as after ``import skada``, which turns it on for the
    whole process) pass it in ``params`` with the other metadata, as in the
    second example. ``GridSearchCV.fit(X, y, groups=d, sample_domain=d)``
    works in both modes.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_val_score
    >>> from sktransfer.model_selection import (
    ...     ImportanceWeightedScorer, SourceValidationKFold)
    >>> from sktransfer.weighting import (
    ...     DiscriminativeWeighter, ImportanceWeightedClassifier)
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (100, 2)), rng.normal(1, 1, (100, 2))]
    >>> y = np.r_[(X[:100, 0] > 0).astype(int), -np.ones(100, int)]
    >>> sample_domain = np.r_[np.ones(100), -np.ones(100)]
    >>> model = ImportanceWeightedClassifier(
    ...     LogisticRegression(), weighter=DiscriminativeWeighter(random_state=0))
    >>> scores = cross_val_score(
    ...     model, X, y, groups=sample_domain, cv=SourceValidationKFold(3),
    ...     scoring=ImportanceWeightedScorer("accuracy"),
    ...     params={"sample_domain": sample_domain})
    >>> scores.shape
    (3,)

    With metadata routing on, ``groups`` travels in ``params``:

    >>> import sklearn
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     routed = cross_val_score(
    ...         model, X, y, cv=SourceValidationKFold(3),
    ...         scoring=ImportanceWeightedScorer("accuracy"),
    ...         params={"sample_domain": sample_domain, "groups": sample_domain})
    >>> bool(np.allclose(routed, scores))
    True
    """

    def __init__(self, scoring="accuracy", *, weighter=None, random_state=0):
        self.scoring = scoring
        self.weighter = weighter
        self.random_state = random_state

    def __repr__(self):
        extra = _repr_extra(self)
        return f"ImportanceWeightedScorer(scoring={self.scoring!r}{extra})"

    def _weighted_view(self, estimator, X):
        """``(scored, X_scored, weights)``: what to score, on what, weighted how."""
        try:
            return estimator, X, self._weights(estimator, X)
        except TypeError:
            view = _adapted_view(estimator, X)
            if view is None:
                raise
            scored, X_scored, features, target = view
            weights = _feature_weights(
                features, target, self.weighter, self.random_state
            )
            return scored, X_scored, weights

    def _weights(self, estimator, X):
        weighted = _unwrap_weighted(estimator)
        if weighted is not None:
            return weighted.compute_weights(X)
        if isinstance(estimator, Pipeline):
            weighted = _unwrap_weighted(estimator[-1])
            if weighted is not None:
                return weighted.compute_weights(estimator[:-1].transform(X))
        raise TypeError(
            "ImportanceWeightedScorer needs an estimator with `compute_weights` "
            "or an adapted estimator with `target_features_` (DomainAdapted*, "
            "ImportanceWeighted*, a fine-tuning estimator fitted with "
            "sample_domain, or a Pipeline ending in one, possibly inside a fitted "
            "wrapper exposing `base_estimator_` or `estimator_`); got "
            f"{type(estimator).__name__}."
        )

    def _score(self, estimator, X, y_true):
        scored, X_scored, weights = self._weighted_view(estimator, X)
        scorer = check_scoring(scored, scoring=self.scoring)
        return scorer(scored, X_scored, y_true, sample_weight=weights)


def _per_row_loss(estimator, X, y_true):
    """Log loss per row for a classifier, squared error for a regressor."""
    if is_classifier(estimator):
        proba = estimator.predict_proba(X)
        classes = list(estimator.classes_)
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted({c for c in y_true.tolist() if c not in index})
        if unknown:
            raise ValueError(
                f"DeepEmbeddedValidationScorer: validation labels {unknown} are "
                f"not among the classes {classes} the estimator was fitted on. "
                "Score only labelled source rows (SourceValidationKFold)."
            )
        rows = np.array([index[c] for c in y_true.tolist()])
        picked = proba[np.arange(len(rows)), rows]
        return -np.log(np.clip(picked, np.finfo(float).eps, 1.0))
    pred = np.asarray(estimator.predict(X), dtype=float)
    return (pred - np.asarray(y_true, dtype=float)) ** 2


@_scorer_docs
class DeepEmbeddedValidationScorer(_TargetAwareScorer):
    """Deep embedded validation (DEV): a label-free estimate of the target risk.

    You et al. (2019) weight each validation row's loss by the importance
    weight of its features (a domain classifier on the model's features of
    the validation rows against the target rows'), then remove much of the
    variance of the weighted mean with the weights as a control variate:

    ``DEV = mean(w * L) + eta * mean(w) - eta``, with
    ``eta = -cov(w * L, w) / var(w)``.

    The scorer returns ``-DEV`` (greater is better), so ``GridSearchCV`` picks
    the model with the lowest estimated target loss. It works with every
    adapted estimator of the package: the ``DomainAdapted*`` and
    ``ImportanceWeighted*`` meta-estimators (alone or ending a pipeline) and
    the fine-tuning estimators fitted with ``sample_domain``, which keep
    their features of the target rows (``target_features_``) and compute
    those of the validation rows (``domain_features``). No target label is
    read. Use it with :class:`SourceValidationKFold`.

    Read more in the :ref:`User Guide <feature_alignment>`.

    Parameters
    ----------
    weighter : weighter or None, default=None
        Estimates the importance weights in the model's features; ``None``
        uses ``DiscriminativeWeighter()`` (a calibrated, cross-fitted
        logistic domain classifier, as in You et al.).

    %(random_state)s

    See Also
    --------
    ImportanceWeightedScorer : the weighted validation score, without the
        control variate.

    Notes
    -----
    The loss is the log loss of ``predict_proba`` for a classifier and the
    squared error for a regressor. Comparing models whose features differ
    (e.g. aligned and not aligned) uses different weights for each; the
    control variate keeps the estimates comparable in scale.

    References
    ----------
    K. You, X. Wang, M. Long and M. I. Jordan, "Towards Accurate Model
    Selection in Deep Unsupervised Domain Adaptation", ICML 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sktransfer.adaptation import CORALAligner, DomainAdaptedClassifier
    >>> from sktransfer.model_selection import (
    ...     DeepEmbeddedValidationScorer, SourceValidationKFold)
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (100, 2)), rng.normal(1, 2, (100, 2))]
    >>> y = np.r_[(X[:100, 0] > 0).astype(int), -np.ones(100, int)]
    >>> d = np.r_[np.ones(100), -np.ones(100)]
    >>> search = GridSearchCV(
    ...     DomainAdaptedClassifier(LogisticRegression()),
    ...     {"adapter": [None, CORALAligner()]},
    ...     cv=SourceValidationKFold(3),
    ...     scoring=DeepEmbeddedValidationScorer(),
    ... ).fit(X, y, groups=d, sample_domain=d)
    >>> len(search.cv_results_["mean_test_score"])
    2
    """

    def __init__(self, *, weighter=None, random_state=0):
        self.weighter = weighter
        self.random_state = random_state

    def __repr__(self):
        extra = _repr_extra(self).removeprefix(", ")
        return f"DeepEmbeddedValidationScorer({extra})"

    def _score(self, estimator, X, y_true):
        view = _adapted_view(estimator, X)
        if view is None:
            raise TypeError(
                "DeepEmbeddedValidationScorer needs an adapted estimator with "
                "`domain_features` and `target_features_` (DomainAdapted*, "
                "ImportanceWeighted*, a fine-tuning estimator fitted with "
                "sample_domain, or a Pipeline ending in one); got "
                f"{type(estimator).__name__}."
            )
        scored, X_scored, features, target = view
        weights = _feature_weights(features, target, self.weighter, self.random_state)
        losses = _per_row_loss(scored, X_scored, y_true)
        return -deep_embedded_validation(losses, weights)


def deep_embedded_validation(losses, weights):
    """The DEV risk estimate of You et al. (2019) from per-row losses and weights.

    Parameters
    ----------
    losses : array-like of shape (n_samples,)
        Loss of each validation row.

    weights : array-like of shape (n_samples,)
        Importance weights of the rows (mean about 1).

    Returns
    -------
    risk : float
        ``mean(w * L) + eta * mean(w) - eta`` with
        ``eta = -cov(w * L, w) / var(w)`` (``eta = 0`` when the weights are
        constant).

    Examples
    --------
    >>> from sktransfer.model_selection import deep_embedded_validation
    >>> deep_embedded_validation([1.0, 0.0, 1.0], [1.0, 1.0, 1.0])
    0.6666666666666666
    """
    losses = np.asarray(losses, dtype=float)
    weights = np.asarray(weights, dtype=float)
    weighted = weights * losses
    variance = np.var(weights, ddof=1) if len(weights) > 1 else 0.0
    eta = 0.0
    if variance > 0:
        eta = -np.cov(weighted, weights, ddof=1)[0, 1] / variance
    return float(np.mean(weighted) + eta * np.mean(weights) - eta)
