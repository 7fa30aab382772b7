"""Meta-estimators that train any estimator on source rows adapted to the target.

One design for every shallow adapter: :class:`DomainAdaptedClassifier` and
:class:`DomainAdaptedRegressor` take an ``adapter`` -- a weighter (the source
rows are importance-weighted), an aligner (the source rows are mapped into
the aligned space, new rows with the target map) or ``None`` (source only).
:class:`ImportanceWeightedClassifier` and :class:`ImportanceWeightedRegressor`
are the same meta-estimators with the adapter named ``weighter`` and a
discriminative weighter by default.
"""

import numpy as np
from sklearn import get_config
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    RegressorMixin,
    _fit_context,
    clone,
    is_classifier,
)
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _assert_all_finite,
    _check_method_params,
    check_is_fitted,
    has_fit_parameter,
    validate_data,
)

from .._docstrings import Substitution
from ._discriminative import DiscriminativeWeighter
from ._domain import check_both_domains, check_sample_domain, kept_target_rows

__all__ = [
    "DomainAdaptedClassifier",
    "DomainAdaptedRegressor",
    "ImportanceWeightedClassifier",
    "ImportanceWeightedRegressor",
]


def _estimator_has(attr):
    def check(self):
        if hasattr(self, "estimator_"):
            return hasattr(self.estimator_, attr)
        return hasattr(self.estimator, attr)

    return check


def _delegated(method, summary, returns):
    """A method that validates ``X`` and returns ``estimator_.<method>(X)``.

    It exists only when the estimator has ``method`` (``available_if``); its
    docstring says ``summary`` and ``returns``.
    """

    def delegate(self, X):
        """%(summary)s from the estimator trained on the adapted rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, treated as target rows.

        Returns
        -------
        %(returns)s
        """
        features = self.domain_features(X)  # NotFittedError first
        return getattr(self.estimator_, method)(features)

    delegate.__name__ = method
    delegate = Substitution(summary=summary, returns=returns)(delegate)
    return available_if(_estimator_has(method))(delegate)


def adapter_kind(adapter):
    """``"weighter"``, ``"aligner"`` or ``None``: how ``adapter`` adapts.

    A weighter has ``compute_weights`` (and ``weights_`` once fitted); an
    aligner has ``transform(X, sample_domain=...)``.
    """
    if adapter is None:
        return None
    if hasattr(adapter, "compute_weights"):
        return "weighter"
    if hasattr(adapter, "transform"):
        return "aligner"
    raise TypeError(
        "adapter must be a weighter (with `compute_weights`, e.g. "
        "DiscriminativeWeighter()), an aligner (with `transform`, e.g. "
        f"CORALAligner()) or None; got {type(adapter).__name__}."
    )


def _adapter_has(attr):
    def check(self):
        adapter = (
            getattr(self, "adapter_", None)
            if hasattr(self, "estimator_")
            else (self._adapter())
        )
        return hasattr(adapter, attr)

    return check


class _BaseDomainAdapted(MetaEstimatorMixin, BaseEstimator):
    """Fit an adapter on source + target rows, then the estimator on the source.

    The adapter is a weighter (the estimator trains on the source rows with
    its importance weights), an aligner (the estimator trains on the aligned
    source rows, and predicts on rows mapped as target rows) or ``None``
    (source only). Subclasses name the adapter parameter through
    ``_adapter``.
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "adapter": [HasMethods(["fit"]), None],
    }
    # sample_domain is requested by default, so routing-enabled CV tools pass
    # it without a set_fit_request call.
    __metadata_request__fit = {"sample_domain": True}

    def __init__(self, estimator, *, adapter=None):
        self.estimator = estimator
        self.adapter = adapter

    def _adapter(self):
        """The adapter to fit (a parameter, or a default)."""
        return self.adapter

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, *, sample_domain=None, **fit_params):
        """Fit the adapter on all rows, then the estimator on the source rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Source and target rows together.

        y : array-like of shape (n_samples,)
            Targets. Values on target rows are ignored (mask them, e.g. -1 for
            classification or NaN for regression).

        sample_domain : array-like of shape (n_samples,)
            Positive for source rows, negative for target rows. Required.

        **fit_params : dict
            Only with metadata routing on: metadata the estimator requested
            for its ``fit`` (``estimator.set_fit_request(groups=True)``).
            Per-row metadata (of length ``n_samples``) reaches it restricted
            to the source rows.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        adapter = self._adapter()
        kind = adapter_kind(adapter)
        X, y, is_source = self._check_fit_inputs(X, y, sample_domain, kind)
        inner_params = self._inner_fit_params(X, fit_params, is_source, kind)
        self.adapter_ = None if adapter is None else clone(adapter)
        features = X
        if kind == "weighter":
            self.weighter_ = self.adapter_.fit(X, sample_domain=sample_domain)
            self.sample_weight_ = self.weighter_.weights_[is_source]
            inner_params["sample_weight"] = self.sample_weight_
        elif kind == "aligner":
            self.adapter_.fit(X, sample_domain=sample_domain)
            features = self.adapter_.transform(X, sample_domain=sample_domain)
        self.estimator_ = clone(self.estimator).fit(
            features[is_source], y[is_source], **inner_params
        )
        # Target rows as the deployed model sees them, for the scorers.
        self.target_features_ = kept_target_rows(self._features(X[~is_source]))
        return self

    def _check_fit_inputs(self, X, y, sample_domain, kind):
        """Validated ``X``, ``y`` and the mask of source rows."""
        weighted = kind == "weighter"
        if weighted and not has_fit_parameter(self.estimator, "sample_weight"):
            # Never resample instead: a resampled fit is a different estimator
            # with extra variance (ADAPT does this silently).
            raise TypeError(
                f"{type(self).__name__} with a weighter needs an estimator whose "
                f"fit takes `sample_weight`; {type(self.estimator).__name__}.fit "
                "does not. Choose an estimator that accepts sample_weight (for a "
                "Pipeline, put this meta-estimator as the pipeline's last step "
                "instead), or an aligner as the adapter."
            )
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        y = column_or_1d(y, warn=True)
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"y has {y.shape[0]} rows but X has {X.shape[0]}; they must match."
            )
        is_source = check_sample_domain(sample_domain, X.shape[0])
        check_both_domains(is_source)
        if is_classifier(self):
            check_classification_targets(y[is_source])
        else:
            _assert_all_finite(y[is_source], input_name="y")
        return X, y, is_source

    def _inner_fit_params(self, X, fit_params, is_source, kind):
        """The metadata routed to ``estimator.fit``, on the source rows only."""
        name = type(self).__name__
        if "sample_weight" in fit_params and kind == "weighter":
            raise TypeError(
                f"{name}.fit got `sample_weight`, but it trains the estimator "
                "with the importance weights as sample_weight. Leave the "
                "estimator's sample_weight request unset and clip the weights "
                "with the weighter's max_weight / max_weight_quantile instead."
            )
        if not get_config()["enable_metadata_routing"]:
            if fit_params:
                raise TypeError(
                    f"{name}.fit got unexpected keyword argument(s) "
                    f"{sorted(fit_params)}. Metadata other than sample_domain "
                    "reaches the estimator only with metadata routing on: fit "
                    "inside `sklearn.config_context(enable_metadata_routing=True)` "
                    "and request it with `estimator.set_fit_request(...)`."
                )
            return {}
        routed = process_routing(self, "fit", **fit_params)
        return _check_method_params(
            X, params=routed.estimator.fit, indices=np.flatnonzero(is_source)
        )

    def get_metadata_routing(self):
        """Metadata routing of this meta-estimator.

        ``fit`` consumes ``sample_domain`` itself and routes what the
        estimator requested for its ``fit``. Used only with metadata routing
        on (see :ref:`sklearn:metadata_routing`).

        Returns
        -------
        routing : MetadataRouter
            The routing information.
        """
        return (
            MetadataRouter(owner=type(self).__name__)
            .add_self_request(self)
            .add(
                estimator=self.estimator,
                method_mapping=MethodMapping().add(caller="fit", callee="fit"),
            )
        )

    @available_if(_adapter_has("compute_weights"))
    def compute_weights(self, X, *, sample_domain=None):
        """Importance weights of ``X`` from the fitted weighter.

        Only when the adapter is a weighter.

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
        return self.adapter_.compute_weights(X, sample_domain=sample_domain)

    def domain_features(self, X):
        """The features the fitted estimator predicts from, for new rows.

        Rows are treated as target rows, as in ``predict``: an aligner maps
        them with its target map; with a weighter or no adapter they are
        ``X`` itself. The target-aware scorers of
        :mod:`sktransfer.model_selection` compare these features of the
        validation rows with ``target_features_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out)
            What ``estimator_`` receives.
        """
        return self._features(self._checked(X))

    def validation_view(self, X):
        """What the target-aware scorers evaluate on source validation rows.

        Validation rows are source rows: an aligner maps them with its
        *source* map, as the training rows were, and the estimator trained on
        those rows is scored on them. Used by
        :class:`~sktransfer.model_selection.DeepEmbeddedValidationScorer` and
        :class:`~sktransfer.model_selection.ImportanceWeightedScorer`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Source validation rows.

        Returns
        -------
        estimator : estimator
            ``estimator_``.

        X_view : ndarray of shape (n_samples, n_features_out)
            The rows as ``estimator_`` sees source rows.

        features : ndarray of shape (n_samples, n_features_out)
            The same rows, compared with ``target_features_`` (here equal to
            ``X_view``).
        """
        X = self._checked(X)
        features = self._features(X, np.ones(X.shape[0]))
        return self.estimator_, features, features

    def _features(self, X, sample_domain=None):
        if adapter_kind(self.adapter_) == "aligner":
            return self.adapter_.transform(X, sample_domain=sample_domain)
        return X

    def _checked(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

    def predict(self, X):
        """Predict with the estimator trained on the adapted source rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, treated as target rows.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predictions.
        """
        features = self.domain_features(X)  # NotFittedError first
        return self.estimator_.predict(features)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


class _WeighterParameter:
    """The ``weighter`` parameter of the importance-weighted meta-estimators.

    Mixed in left of a domain-adapted meta-estimator, it names the adapter
    ``weighter`` and defaults it to ``DiscriminativeWeighter()``; everything
    else is the domain-adapted meta-estimator's.
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "weighter": [HasMethods(["fit", "compute_weights"]), None],
    }

    def __init__(self, estimator, *, weighter=None):
        self.estimator = estimator
        self.weighter = weighter

    def _adapter(self):
        return self.weighter if self.weighter is not None else DiscriminativeWeighter()


# The text the meta-estimators share, written once.
_meta_docs = Substitution(
    adapted_description="""
    ``fit(X, y, sample_domain=...)`` takes source and target rows together. It
    fits ``adapter`` on all rows, then ``estimator`` on the source rows: with
    a weighter, weighted by its importance weights (``sample_weight``); with
    an aligner, on the source rows mapped into the aligned space; with
    ``None``, on the plain source rows (the source-only baseline). Target
    labels are ignored. At predict time new rows are target rows: an aligner
    maps them with its target map before ``estimator_`` predicts. Since the
    adapter is a parameter, one ``GridSearchCV`` compares weighters, aligners
    and no adaptation. Use it as the last step of a pipeline after a feature
    extractor, so that source and target rows get the same features.

    Read more in the :ref:`User Guide <feature_alignment>`.
    """,
    adapter="""
    adapter : weighter, aligner or None, default=None
        A weighter (:class:`DiscriminativeWeighter`, :class:`KMMWeighter`,
        :class:`KLIEPWeighter`, :class:`ULSIFWeighter`, or any object with
        ``fit(X, sample_domain=...)``, ``weights_`` and ``compute_weights``),
        an aligner (:class:`CORALAligner`, :class:`SubspaceAligner`, or any
        object with ``fit(X, sample_domain=...)`` and ``transform(X,
        sample_domain=None)``), or ``None`` for no adaptation.
    """,
    adapted_attributes="""
    estimator_ : estimator
        The fitted estimator.

    adapter_ : weighter, aligner or None
        The fitted adapter.

    weighter_ : weighter
        The fitted adapter, set only when it is a weighter; its diagnostics
        (``effective_sample_size_``, ``domain_auc_``, ...) describe the shift.

    sample_weight_ : ndarray of shape (n_source,)
        Weights the estimator was trained with, set only with a weighter.

    target_features_ : ndarray of shape (n_kept, n_features_out)
        ``domain_features`` of the target training rows (a fixed subsample
        of at most 2000): what the label-free scorers of
        :mod:`sktransfer.model_selection` compare the validation rows with.

    n_features_in_ : int
        Number of features seen in ``fit``.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen in ``fit``, set only when ``X`` has
        feature names that are all strings.
    """,
    iw_description="""
    ``fit(X, y, sample_domain=...)`` takes source and target rows together. It
    fits ``weighter`` on all rows, then ``estimator`` on the source rows with
    the weighter's importance weights as ``sample_weight``; target labels are
    ignored. Use it as the last step of a pipeline after a feature extractor,
    so that source and target rows get the same features. It raises rather
    than resample when ``estimator.fit`` has no ``sample_weight``. It is the
    domain-adapted meta-estimator with a weighter as the adapter (under the
    parameter name ``weighter``, defaulting to a discriminative weighter).

    Read more in the :ref:`User Guide <domain_shift>`.
    """,
    weighter="""
    weighter : weighter or None, default=None
        One of :class:`DiscriminativeWeighter`, :class:`KMMWeighter`,
        :class:`KLIEPWeighter`, :class:`ULSIFWeighter` (or any object with
        ``fit(X, sample_domain=...)``, ``weights_`` and ``compute_weights``).
        ``None`` uses ``DiscriminativeWeighter()``.
    """,
    notes="""
    ``sample_domain`` is requested for ``fit`` by default, so with metadata
    routing enabled ``cross_val_score(..., params={"sample_domain": d})``
    and ``GridSearchCV.fit(X, y, sample_domain=d)`` pass it on; with routing
    off these tools pass fit parameters through as well (inside a
    :class:`~sklearn.pipeline.Pipeline`, name the step:
    ``step__sample_domain``). For target-aware model selection see
    :class:`~sktransfer.model_selection.SourceValidationKFold`,
    :class:`~sktransfer.model_selection.ImportanceWeightedScorer` and
    :class:`~sktransfer.model_selection.DeepEmbeddedValidationScorer`.

    With routing on, other metadata that ``estimator`` requested for its
    ``fit`` (e.g. ``estimator.set_fit_request(groups=True)``) reaches it,
    restricted to the source rows; ``sample_weight`` cannot be routed with a
    weighter, since the importance weights take its place. With routing off,
    ``fit`` takes ``sample_domain`` only.
    """,
)


class _AdaptedClassifier(ClassifierMixin, _BaseDomainAdapted):
    """What a domain-adapted classifier adds: classes and probabilities."""

    @property
    def classes_(self):
        """Class labels of the fitted estimator."""
        return self.estimator_.classes_

    predict_proba = _delegated(
        "predict_proba",
        "Class probabilities",
        """
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``.
        """,
    )
    predict_log_proba = _delegated(
        "predict_log_proba",
        "Class log-probabilities",
        """
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities, columns in the order of ``classes_``.
        """,
    )
    decision_function = _delegated(
        "decision_function",
        "Decision function",
        """
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Decision scores.
        """,
    )


class _AdaptedRegressor(RegressorMixin, _BaseDomainAdapted):
    """A domain-adapted regressor: the shared behaviour, regression scoring."""


@_meta_docs
class DomainAdaptedClassifier(_AdaptedClassifier):
    """Train a classifier on source rows adapted to the target domain.

    %(adapted_description)s

    Parameters
    ----------
    estimator : estimator object
        Classifier (whose ``fit`` accepts ``sample_weight`` if the adapter is
        a weighter).

    %(adapter)s

    Attributes
    ----------
    %(adapted_attributes)s

    classes_ : ndarray of shape (n_classes,)
        Class labels, from the source rows.

    See Also
    --------
    ImportanceWeightedClassifier : the same with a weighter, named ``weighter``.

    Notes
    -----
    %(notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sktransfer.adaptation import CORALAligner, DomainAdaptedClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (100, 2)), rng.normal(1, 2, (100, 2))]
    >>> y = np.r_[(X[:100, 0] > 0).astype(int), -np.ones(100)]
    >>> sample_domain = np.r_[np.ones(100), -np.ones(100)]
    >>> model = DomainAdaptedClassifier(LogisticRegression(), adapter=CORALAligner())
    >>> model.fit(X, y, sample_domain=sample_domain).predict(X[:2]).shape
    (2,)
    """


@_meta_docs
class DomainAdaptedRegressor(_AdaptedRegressor):
    """Train a regressor on source rows adapted to the target domain.

    %(adapted_description)s

    Parameters
    ----------
    estimator : estimator object
        Regressor (whose ``fit`` accepts ``sample_weight`` if the adapter is
        a weighter).

    %(adapter)s

    Attributes
    ----------
    %(adapted_attributes)s

    See Also
    --------
    ImportanceWeightedRegressor : the same with a weighter, named ``weighter``.

    Notes
    -----
    %(notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from sktransfer.adaptation import DomainAdaptedRegressor, SubspaceAligner
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (100, 3)), rng.normal(1, 1, (100, 3))]
    >>> y = np.r_[X[:100, 0], np.full(100, np.nan)]
    >>> sample_domain = np.r_[np.ones(100), -np.ones(100)]
    >>> model = DomainAdaptedRegressor(Ridge(), adapter=SubspaceAligner(n_components=2))
    >>> model.fit(X, y, sample_domain=sample_domain).predict(X[:2]).shape
    (2,)
    """


@_meta_docs
class ImportanceWeightedClassifier(_WeighterParameter, _AdaptedClassifier):
    """Train a classifier on source rows weighted toward the target domain.

    %(iw_description)s

    Parameters
    ----------
    estimator : estimator object
        Classifier whose ``fit`` accepts ``sample_weight``.

    %(weighter)s

    Attributes
    ----------
    %(adapted_attributes)s

    classes_ : ndarray of shape (n_classes,)
        Class labels, from the source rows.

    See Also
    --------
    DomainAdaptedClassifier : the same with any adapter (weighter or aligner).

    Notes
    -----
    %(notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sktransfer.weighting import ImportanceWeightedClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (100, 2)), rng.normal(1, 1, (100, 2))]
    >>> y = np.r_[(X[:100, 0] > 0).astype(int), -np.ones(100)]
    >>> sample_domain = np.r_[np.ones(100), -np.ones(100)]
    >>> model = ImportanceWeightedClassifier(LogisticRegression(), weighter=None)
    >>> model.fit(X, y, sample_domain=sample_domain).predict(X[:2]).shape
    (2,)
    >>> model.sample_weight_.shape
    (100,)
    """


@_meta_docs
class ImportanceWeightedRegressor(_WeighterParameter, _AdaptedRegressor):
    """Train a regressor on source rows weighted toward the target domain.

    %(iw_description)s

    Parameters
    ----------
    estimator : estimator object
        Regressor whose ``fit`` accepts ``sample_weight``.

    %(weighter)s

    Attributes
    ----------
    %(adapted_attributes)s

    See Also
    --------
    DomainAdaptedRegressor : the same with any adapter (weighter or aligner).

    Notes
    -----
    %(notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from sktransfer.weighting import ImportanceWeightedRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (100, 2)), rng.normal(1, 1, (100, 2))]
    >>> y = np.r_[X[:100, 0], np.full(100, np.nan)]
    >>> sample_domain = np.r_[np.ones(100), -np.ones(100)]
    >>> model = ImportanceWeightedRegressor(Ridge()).fit(
    ...     X, y, sample_domain=sample_domain)
    >>> model.predict(X[:2]).shape
    (2,)
    >>> model.sample_weight_.shape
    (100,)
    """
