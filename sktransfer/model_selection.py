"""Model selection for the target domain: a domain-aware splitter and an IWCV scorer.

Plain cross-validation on source rows estimates the *source* performance.
Importance-weighted cross-validation (IWCV) weights each validation row by
``p_target(x) / p_source(x)`` so that the validation score estimates the
*target* performance, which is what hyperparameters should be chosen for.

:class:`SourceValidationKFold` makes validation folds of source rows only and
keeps every target row in the training part (where the weighter needs them);
:class:`ImportanceWeightedScorer` scores a validation fold with the weights of
the weighter fitted in that fold, which never saw the validation rows. Both
work with metadata routing on or off; neither changes global configuration.
"""

import numpy as np
from sklearn.metrics import check_scoring
from sklearn.model_selection import BaseCrossValidator, KFold
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils.metadata_routing import MetadataRequest

from .adaptation import check_both_domains, check_sample_domain

__all__ = ["ImportanceWeightedScorer", "SourceValidationKFold"]

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


def _unwrap_weighted(estimator):
    """``estimator`` or the fitted estimator it wraps that has ``compute_weights``.

    ``None`` when there is none.
    """
    for _ in range(_MAX_WRAPPER_DEPTH):
        if hasattr(estimator, "compute_weights"):
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


class ImportanceWeightedScorer:
    """Score validation rows with importance weights (importance-weighted CV).

    Calls ``estimator.compute_weights(X)`` (an
    :class:`~sktransfer.ImportanceWeightedClassifier` or regressor, alone or as
    the last step of a :class:`~sklearn.pipeline.Pipeline`, possibly wrapped:
    see Notes) and passes the weights as ``sample_weight`` to the metric, so
    the score estimates the metric on the target domain. In cross-validation
    the weighter is the one fitted in the current fold, so validation rows
    are weighted out of sample.

    Use it with :class:`SourceValidationKFold`, which keeps target rows out of
    the validation folds. With metadata routing on, the scorer also requests
    ``sample_domain`` and drops any target row it receives.

    Read more in the :ref:`User Guide <domain_shift>`.

    Parameters
    ----------
    scoring : str or callable, default="accuracy"
        A scikit-learn scorer name (e.g. ``"accuracy"``, ``"neg_log_loss"``,
        ``"r2"``) or a scorer ``scorer(estimator, X, y, sample_weight=...)``.

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

    def __init__(self, scoring="accuracy"):
        self.scoring = scoring

    def __repr__(self):
        return f"ImportanceWeightedScorer(scoring={self.scoring!r})"

    @staticmethod
    def _weights(estimator, X):
        weighted = _unwrap_weighted(estimator)
        if weighted is not None:
            return weighted.compute_weights(X)
        if isinstance(estimator, Pipeline):
            weighted = _unwrap_weighted(estimator[-1])
            if weighted is not None:
                return weighted.compute_weights(estimator[:-1].transform(X))
        raise TypeError(
            "ImportanceWeightedScorer needs an estimator with `compute_weights` "
            "(ImportanceWeightedClassifier/Regressor, or a Pipeline ending in one, "
            "possibly inside a fitted wrapper exposing `base_estimator_` or "
            f"`estimator_`); got {type(estimator).__name__}."
        )

    def __call__(self, estimator, X, y_true, sample_domain=None):
        """Importance-weighted score of ``estimator`` on ``X, y_true``.

        Parameters
        ----------
        estimator : fitted estimator
            Has ``compute_weights`` or is a pipeline ending in one that has,
            either possibly inside fitted wrappers (see Notes).

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
            The weighted score (greater is better).
        """
        y_true = np.asarray(y_true)
        if sample_domain is not None:
            keep = check_sample_domain(sample_domain, len(y_true))
            if not keep.any():
                raise ValueError(
                    "ImportanceWeightedScorer received only target rows to score; "
                    "use SourceValidationKFold so that validation folds hold "
                    "labelled source rows."
                )
            X = _safe_indexing(X, np.flatnonzero(keep))
            y_true = y_true[keep]
        weights = self._weights(estimator, X)
        scorer = check_scoring(estimator, scoring=self.scoring)
        return scorer(estimator, X, y_true, sample_weight=weights)

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
