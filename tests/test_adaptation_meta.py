"""Tests of the importance-weighted meta-estimators and their metadata routing."""

import pickle

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.exceptions import UnsetMetadataPassedError
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score, cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer.weighting import (
    DiscriminativeWeighter,
    ImportanceWeightedClassifier,
    ImportanceWeightedRegressor,
    KLIEPWeighter,
)


def shifted_classification(seed=0, n=300):
    rng = np.random.RandomState(seed)
    X_source = rng.normal(0, 1, (n, 2))
    X_target = rng.normal(0, 1, (n, 2)) + [1.5, 0]
    X = np.r_[X_source, X_target]
    y = (X[:, 0] + 0.3 * X[:, 1] > 0.8).astype(int)
    y[n:] = -1  # target labels masked, as in skada
    return X, y, np.r_[np.ones(n), -np.ones(n)]


def test_classifier_uses_source_rows_with_weights():
    X, y, domain = shifted_classification()
    weighter = DiscriminativeWeighter(random_state=0)
    model = ImportanceWeightedClassifier(LogisticRegression(), weighter=weighter)
    model.fit(X, y, sample_domain=domain)
    np.testing.assert_array_equal(model.classes_, [0, 1])  # -1 never a class
    expected_weights = clone(weighter).fit(X, sample_domain=domain).weights_[domain > 0]
    np.testing.assert_allclose(model.sample_weight_, expected_weights)
    reference = LogisticRegression().fit(
        X[domain > 0], y[domain > 0], sample_weight=expected_weights
    )
    np.testing.assert_allclose(model.predict_proba(X), reference.predict_proba(X))
    assert model.predict_log_proba(X).shape == (600, 2)
    assert model.decision_function(X).shape == (600,)
    np.testing.assert_allclose(
        model.compute_weights(X[:5]),
        weighter.fit(X, sample_domain=domain).compute_weights(X[:5]),
    )


def test_classifier_refuses_estimator_without_sample_weight():
    X, y, domain = shifted_classification()
    model = ImportanceWeightedClassifier(KNeighborsClassifier())
    with pytest.raises(TypeError, match="KNeighborsClassifier.fit does not"):
        model.fit(X, y, sample_domain=domain)


def test_classifier_errors():
    X, y, domain = shifted_classification()
    model = ImportanceWeightedClassifier(LogisticRegression())
    with pytest.raises(ValueError, match="y has 5 rows but X has 600"):
        model.fit(X, y[:5], sample_domain=domain)
    with pytest.raises(ValueError, match="`sample_domain` is required"):
        model.fit(X, y)
    with pytest.raises(ValueError, match="0 marked target"):
        model.fit(X, y, sample_domain=np.ones(600))


def test_regressor_ignores_masked_target_values():
    rng = np.random.RandomState(0)
    X = np.r_[rng.normal(0, 1, (200, 1)), rng.normal(1, 1, (200, 1))]
    y = np.r_[np.sin(X[:200, 0]), np.full(200, np.nan)]
    domain = np.r_[np.ones(200), -np.ones(200)]
    model = ImportanceWeightedRegressor(LinearRegression()).fit(
        X, y, sample_domain=domain
    )
    assert np.isfinite(model.predict(X)).all()
    with pytest.raises(ValueError, match="Input y contains NaN"):
        model.fit(X, np.full(400, np.nan), sample_domain=domain)


@pytest.mark.parametrize("routing", [False, True])
def test_meta_estimator_in_cv_tools_without_global_changes(routing):
    X, y, domain = shifted_classification(n=120)
    assert sklearn.get_config()["enable_metadata_routing"] is False
    with sklearn.config_context(enable_metadata_routing=routing):
        model = ImportanceWeightedClassifier(
            LogisticRegression(), weighter=DiscriminativeWeighter(cv=3, random_state=0)
        )
        scores = cross_val_score(model, X, y, cv=3, params={"sample_domain": domain})
        assert scores.shape == (3,)
        search = GridSearchCV(model, {"estimator__C": [0.1, 1.0]}, cv=3)
        search.fit(X, y, sample_domain=domain)
        assert search.best_params_["estimator__C"] in (0.1, 1.0)
        pipe = make_pipeline(StandardScaler(), model)
        # A pipeline takes the step-prefixed name with routing off, the plain
        # name (requested by default) with routing on.
        key = (
            "sample_domain"
            if routing
            else "importanceweightedclassifier__sample_domain"
        )
        pipe.fit(X, y, **{key: domain})
        assert pipe.predict(X).shape == (240,)
    assert sklearn.get_config()["enable_metadata_routing"] is False


def test_meta_estimator_joblib_round_trip(tmp_path):
    X, y, domain = shifted_classification(n=100)
    model = ImportanceWeightedClassifier(
        LogisticRegression(), weighter=KLIEPWeighter(n_centers=20, gamma=0.5)
    ).fit(X, y, sample_domain=domain)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.compute_weights(X), model.compute_weights(X))


# --- metadata routing ---------------------------------------------------------


class _RecordingRidge(Ridge):
    """A regressor whose fit takes one more piece of metadata, ``tag``."""

    def fit(self, X, y, sample_weight=None, tag=None):
        self.tag_, self.weights_seen_ = tag, sample_weight
        return super().fit(X, y, sample_weight=sample_weight)


def regression_with_tags(n=60):
    rng = np.random.RandomState(0)
    X = np.r_[rng.normal(0, 1, (n, 2)), rng.normal(1, 1, (n, 2))]
    # Target values are ignored (0 here, so that a plain scorer can run).
    y = np.r_[X[:n, 0], np.zeros(n)]
    domain = np.r_[np.ones(n), -np.ones(n)]
    return X, y, domain, np.arange(2 * n) * 10


def test_routing_on_metadata_reaches_the_inner_fit_on_source_rows():
    X, y, domain, tag = regression_with_tags()
    weighter = DiscriminativeWeighter(cv=2, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        inner = _RecordingRidge().set_fit_request(tag=True)
        model = ImportanceWeightedRegressor(inner, weighter=weighter)
        model.fit(X, y, sample_domain=domain, tag=tag)
        np.testing.assert_array_equal(model.estimator_.tag_, tag[domain > 0])
        np.testing.assert_array_equal(
            model.estimator_.weights_seen_, model.sample_weight_
        )
        # Metadata that is not per row goes through unchanged.
        model.fit(X, y, sample_domain=domain, tag="all")
        assert model.estimator_.tag_ == "all"
        # Through a cross-validation tool: each fold's source rows.
        cv = KFold(3, shuffle=True, random_state=0)
        results = cross_validate(
            model,
            X,
            y,
            cv=cv,
            scoring="neg_mean_squared_error",
            params={"sample_domain": domain, "tag": tag},
            return_estimator=True,
            error_score="raise",
        )
        for fitted, (train, _) in zip(results["estimator"], cv.split(X), strict=True):
            np.testing.assert_array_equal(
                fitted.estimator_.tag_, tag[train][domain[train] > 0]
            )
    assert sklearn.get_config()["enable_metadata_routing"] is False


def test_routing_on_unrequested_metadata_raises():
    X, y, domain, tag = regression_with_tags()
    with sklearn.config_context(enable_metadata_routing=True):
        model = ImportanceWeightedRegressor(
            _RecordingRidge(), weighter=DiscriminativeWeighter(cv=2)
        )
        with pytest.raises(UnsetMetadataPassedError, match="set_fit_request"):
            model.fit(X, y, sample_domain=domain, tag=tag)
        with pytest.raises(TypeError, match="not routed to any object"):
            model.fit(X, y, sample_domain=domain, unknown=tag)


def test_routing_off_fit_takes_sample_domain_only():
    X, y, domain, tag = regression_with_tags()
    model = ImportanceWeightedRegressor(
        _RecordingRidge(), weighter=DiscriminativeWeighter(cv=2, random_state=0)
    )
    with pytest.raises(TypeError, match=r"\['tag'\].*only with metadata routing on"):
        model.fit(X, y, sample_domain=domain, tag=tag)
    # Unchanged behaviour otherwise: the estimator's own default for tag.
    assert model.fit(X, y, sample_domain=domain).estimator_.tag_ is None


@pytest.mark.parametrize("routing", [False, True])
def test_sample_weight_is_never_routed(routing):
    X, y, domain, _ = regression_with_tags()
    with sklearn.config_context(enable_metadata_routing=routing):
        inner = Ridge()
        if routing:
            inner.set_fit_request(sample_weight=True)
        model = ImportanceWeightedRegressor(
            inner, weighter=DiscriminativeWeighter(cv=2)
        )
        with pytest.raises(TypeError, match="got `sample_weight`.*importance weights"):
            model.fit(X, y, sample_domain=domain, sample_weight=np.ones(len(X)))


def test_get_metadata_routing_routes_fit_to_the_estimator():
    with sklearn.config_context(enable_metadata_routing=True):
        model = ImportanceWeightedRegressor(_RecordingRidge().set_fit_request(tag=True))
        routing = model.get_metadata_routing()
        # Consumed by the meta-estimator itself or by its estimator.
        assert routing.consumes("fit", ["sample_domain", "tag", "other"]) == {
            "sample_domain",
            "tag",
        }
        routed = routing.route_params(
            caller="fit", params={"tag": [1], "sample_domain": [1]}
        )
        assert routed.estimator.fit == {"tag": [1]}


@pytest.mark.parametrize(
    "method", ["predict", "predict_proba", "predict_log_proba", "decision_function"]
)
def test_unfitted_methods_raise_not_fitted(method):
    model = ImportanceWeightedClassifier(LogisticRegression())
    with pytest.raises(sklearn.exceptions.NotFittedError):
        getattr(model, method)(np.zeros((2, 2)))
