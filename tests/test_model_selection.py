"""Tests of target-aware model selection: the splitter and the IWCV scorer."""

import textwrap
from pathlib import Path

import numpy as np
import pytest
import sklearn
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer.model_selection import ImportanceWeightedScorer, SourceValidationKFold
from sktransfer.weighting import DiscriminativeWeighter, ImportanceWeightedClassifier


def covariate_shift(n_source, n_target, seed=0):
    """1-D shift where label noise grows with x: the target sits in the noisy part.

    P(y | x) is the same in both domains, so the true importance weights are
    the Gaussian ratio and the true target accuracy differs from the source's.
    """
    rng = np.random.RandomState(seed)
    x = np.r_[rng.normal(0, 1, n_source), rng.normal(1.5, 1, n_target)]
    flip = rng.uniform(size=x.size) < 0.45 / (1 + np.exp(-3 * (x - 1)))
    y = (x > 0).astype(int) ^ flip
    domain = np.r_[np.ones(n_source), -np.ones(n_target)]
    return x[:, None], y, domain


def test_splitter_keeps_targets_in_training_and_validates_on_source():
    domain = np.r_[np.ones(10), -np.ones(4)]
    X = np.zeros((14, 1))
    cv = SourceValidationKFold(n_splits=5, shuffle=True, random_state=0)
    validated = []
    for train, test in cv.split(X, groups=domain):
        assert np.all(domain[test] > 0)
        assert set(np.flatnonzero(domain < 0)) <= set(train)
        assert not set(train) & set(test)
        validated.extend(test)
    assert sorted(validated) == list(range(10))
    assert cv.get_n_splits() == 5


@pytest.mark.parametrize(
    "n_splits, groups, match",
    [
        (5, None, "pass the sample_domain array as `groups`"),
        (5, np.r_[np.ones(3), -np.ones(3)], "n_splits=5 is more than the 3 source"),
        (2, np.ones(6), "0 marked target"),
    ],
)
def test_splitter_errors(n_splits, groups, match):
    with pytest.raises(ValueError, match=match):
        list(SourceValidationKFold(n_splits).split(np.zeros((6, 1)), groups=groups))


def test_splitter_bad_n_splits():
    with pytest.raises(ValueError, match="n_splits must be an integer >= 2; got 1"):
        SourceValidationKFold(1)


def test_scorer_needs_compute_weights():
    X, y, domain = covariate_shift(50, 50)
    model = LogisticRegression().fit(X, y)
    with pytest.raises(TypeError, match="needs an estimator with `compute_weights`"):
        ImportanceWeightedScorer()(model, X, y)


def test_scorer_drops_target_rows_and_refuses_target_only():
    X, y, domain = covariate_shift(100, 100)
    model = ImportanceWeightedClassifier(
        LogisticRegression(), weighter=DiscriminativeWeighter(random_state=0)
    ).fit(X, y, sample_domain=domain)
    scorer = ImportanceWeightedScorer()
    source = domain > 0
    assert scorer(model, X, y, sample_domain=domain) == scorer(
        model, X[source], y[source]
    )
    with pytest.raises(ValueError, match="received only target rows"):
        scorer(model, X[~source], y[~source], sample_domain=domain[~source])


def test_scorer_equals_weighted_accuracy_and_works_on_pipelines():
    X, y, domain = covariate_shift(150, 150)
    model = ImportanceWeightedClassifier(
        LogisticRegression(), weighter=DiscriminativeWeighter(random_state=0)
    )
    pipe = make_pipeline(StandardScaler(), model).fit(
        X, y, importanceweightedclassifier__sample_domain=domain
    )
    source = domain > 0
    weights = pipe[-1].compute_weights(pipe[:-1].transform(X[source]))
    correct = pipe.predict(X[source]) == y[source]
    expected = np.sum(weights * correct) / weights.sum()
    score = ImportanceWeightedScorer("accuracy")(pipe, X[source], y[source])
    assert score == pytest.approx(expected)
    assert score != pytest.approx(correct.mean())  # the weights matter here


# A deliberately strong shift: every fold's weights have a low effective sample
# size, which is what the estimate is compared under.
@pytest.mark.filterwarnings(
    "ignore::sktransfer.exceptions.LowEffectiveSampleSizeWarning"
)
def test_iwcv_estimates_target_accuracy_better_than_plain_cv():
    # Averaged over several draws so that the comparison is not luck.
    iw_errors, plain_errors = [], []
    for seed in range(4):
        X, y, domain = covariate_shift(600, 600, seed=seed)
        X_test, y_test, _ = covariate_shift(0, 5000, seed=100 + seed)
        model = ImportanceWeightedClassifier(
            LogisticRegression(), weighter=DiscriminativeWeighter(random_state=0)
        )
        cv = SourceValidationKFold(5, shuffle=True, random_state=0)
        params = {"sample_domain": domain}
        iw = cross_val_score(
            model,
            X,
            y,
            groups=domain,
            cv=cv,
            params=params,
            scoring=ImportanceWeightedScorer(),
        ).mean()
        plain = cross_val_score(model, X, y, groups=domain, cv=cv, params=params).mean()
        truth = model.fit(X, y, sample_domain=domain).score(X_test, y_test)
        iw_errors.append(abs(iw - truth))
        plain_errors.append(abs(plain - truth))
    assert np.mean(iw_errors) < 0.5 * np.mean(plain_errors)


@pytest.mark.parametrize("routing", [False, True])
def test_grid_search_with_splitter_and_scorer(routing):
    X, y, domain = covariate_shift(200, 200)
    with sklearn.config_context(enable_metadata_routing=routing):
        search = GridSearchCV(
            ImportanceWeightedClassifier(
                LogisticRegression(),
                weighter=DiscriminativeWeighter(cv=3, random_state=0),
            ),
            {"estimator__C": [0.01, 1.0]},
            cv=SourceValidationKFold(3),
            scoring=ImportanceWeightedScorer(),
        )
        search.fit(X, y, groups=domain, sample_domain=domain)
    assert set(search.cv_results_["mean_test_score"].round(6)) != {np.nan}
    assert search.best_params_["estimator__C"] in (0.01, 1.0)
    assert sklearn.get_config()["enable_metadata_routing"] is False


def test_scorer_with_routing_filters_targets_from_plain_kfold():
    # Routing on: a plain KFold puts target rows in validation folds, and the
    # scorer, which requests sample_domain, drops them instead of scoring -1s.
    # Each fold's score must equal the score on that fold's source rows alone.
    X, y, domain = covariate_shift(200, 200)
    y = np.where(domain > 0, y, -1)
    model = ImportanceWeightedClassifier(
        LogisticRegression(), weighter=DiscriminativeWeighter(random_state=0)
    )
    cv = KFold(4, shuffle=True, random_state=0)
    scorer = ImportanceWeightedScorer()
    with sklearn.config_context(enable_metadata_routing=True):
        scores = cross_val_score(
            model, X, y, cv=cv, scoring=scorer, params={"sample_domain": domain}
        )
        expected = []
        for train, test in cv.split(X):
            fitted = clone(model).fit(X[train], y[train], sample_domain=domain[train])
            source = test[domain[test] > 0]
            expected.append(scorer(fitted, X[source], y[source]))
    np.testing.assert_allclose(scores, expected)
    # Had the -1 labels of target rows been scored, every fold would lose
    # about half its accuracy.
    assert np.all(scores > 0.3)


def test_scorer_repr():
    assert (
        repr(ImportanceWeightedScorer("r2")) == "ImportanceWeightedScorer(scoring='r2')"
    )


def iw_model():
    return ImportanceWeightedClassifier(
        LogisticRegression(), weighter=DiscriminativeWeighter(random_state=0)
    )


def test_cross_val_score_groups_form_for_each_routing_mode():
    # Routing off: groups= beside params; routing on: groups inside params
    # (groups= itself raises there). Both forms give the same scores.
    X, y, domain = covariate_shift(150, 150)
    cv, scorer = SourceValidationKFold(3), ImportanceWeightedScorer()
    plain = cross_val_score(
        iw_model(),
        X,
        y,
        groups=domain,
        cv=cv,
        scoring=scorer,
        params={"sample_domain": domain},
    )
    with sklearn.config_context(enable_metadata_routing=True):
        routed = cross_val_score(
            iw_model(),
            X,
            y,
            cv=cv,
            scoring=scorer,
            params={"sample_domain": domain, "groups": domain},
        )
        with pytest.raises(
            ValueError, match="`groups` can only be passed if metadata routing is not"
        ):
            cross_val_score(
                iw_model(),
                X,
                y,
                groups=domain,
                cv=cv,
                scoring=scorer,
                params={"sample_domain": domain},
            )
    np.testing.assert_allclose(routed, plain)
    assert sklearn.get_config()["enable_metadata_routing"] is False


class _FittedWrapper(BaseEstimator):
    """Wraps an estimator and exposes the fitted copy under ``attribute``."""

    def __init__(self, estimator, attribute="base_estimator_"):
        self.estimator = estimator
        self.attribute = attribute

    def fit(self, X, y, sample_domain=None):
        fitted = clone(self.estimator).fit(X, y, sample_domain=sample_domain)
        setattr(self, self.attribute, fitted)
        return self

    def predict(self, X):
        return getattr(self, self.attribute).predict(X)


@pytest.mark.parametrize("attribute", ["base_estimator_", "estimator_"])
@pytest.mark.parametrize("in_pipeline", [False, True])
def test_scorer_looks_through_a_wrapped_final_step(attribute, in_pipeline):
    X, y, domain = covariate_shift(150, 150)
    source = domain > 0
    wrapped = _FittedWrapper(_FittedWrapper(iw_model()), attribute)
    plain = iw_model()
    if in_pipeline:
        wrapped = make_pipeline(StandardScaler(), wrapped)
        plain = make_pipeline(StandardScaler(), plain)
        key = "_fittedwrapper__sample_domain"
        wrapped.fit(X, y, **{key: domain})
        plain.fit(X, y, importanceweightedclassifier__sample_domain=domain)
    else:
        wrapped.fit(X, y, sample_domain=domain)
        plain.fit(X, y, sample_domain=domain)
    scorer = ImportanceWeightedScorer()
    score = scorer(wrapped, X[source], y[source])
    assert score == pytest.approx(scorer(plain, X[source], y[source]))
    with pytest.raises(TypeError, match="fitted wrapper exposing `base_estimator_`"):
        scorer(_FittedWrapper(LogisticRegression(), attribute), X, y)


def test_scorer_with_skada_make_da_pipeline():
    # skada turns metadata routing on for the whole process at import: import
    # it inside a config_context, which restores the configuration on exit.
    with sklearn.config_context():
        skada = pytest.importorskip("skada")
    assert sklearn.get_config()["enable_metadata_routing"] is False
    X, y, domain = covariate_shift(150, 150)
    y = np.where(domain > 0, y, -1)
    cv, scorer = SourceValidationKFold(3), ImportanceWeightedScorer()
    params = {"sample_domain": domain, "groups": domain}
    with sklearn.config_context(enable_metadata_routing=True):
        da_pipe = skada.make_da_pipeline(StandardScaler(), iw_model())
        scores = cross_val_score(
            da_pipe, X, y, cv=cv, scoring=scorer, params=params, error_score="raise"
        )
        # The plain-Pipeline route: the same model, the same scores.
        plain = cross_val_score(
            make_pipeline(StandardScaler(), iw_model()),
            X,
            y,
            cv=cv,
            scoring=scorer,
            params=params,
            error_score="raise",
        )
    np.testing.assert_allclose(scores, plain)
    assert np.all(np.isfinite(scores))


def test_user_guide_cross_val_score_forms_run():
    # The user guide's two cross_val_score forms, run as written.
    guide = Path(__file__).parents[1] / "docs" / "user_guide" / "domain_shift.rst"
    text = guide.read_text(encoding="utf-8")
    start = text.index("    from sklearn.model_selection import cross_val_score\n")
    block = textwrap.dedent(text[start : text.index("\n\n**With skada.**", start)])
    assert "# Metadata routing on:" in block
    X, y, domain = covariate_shift(60, 60)
    namespace = {
        "sklearn": sklearn,
        "ImportanceWeightedClassifier": ImportanceWeightedClassifier,
        "ImportanceWeightedScorer": ImportanceWeightedScorer,
        "LogisticRegression": LogisticRegression,
        "SourceValidationKFold": SourceValidationKFold,
        "X_features": X,
        "y": y,
        "sample_domain": domain,
    }
    exec(compile(block, str(guide), "exec"), namespace)
    assert sklearn.get_config()["enable_metadata_routing"] is False


# --- scorers for every adapted estimator ---------------------------------------
def _aligned_task(n=150, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(2 * n, 2))
    y = (X[:, 0] > 0).astype(int)
    X[n:] = X[n:] * [3.0, 0.3] + [4.0, -1.0]
    domain = np.r_[np.ones(n), -np.ones(n)]
    return X, np.where(domain > 0, y, -1), domain


def test_deep_embedded_validation_formula():
    from sktransfer.model_selection import deep_embedded_validation

    rng = np.random.RandomState(0)
    losses, weights = rng.uniform(size=50), rng.uniform(0.2, 2, size=50)
    weighted = weights * losses
    eta = -np.cov(weighted, weights)[0, 1] / np.var(weights, ddof=1)
    expected = weighted.mean() + eta * weights.mean() - eta
    assert deep_embedded_validation(losses, weights) == pytest.approx(expected)
    assert deep_embedded_validation(losses, np.ones(50)) == pytest.approx(losses.mean())


@pytest.mark.parametrize("routing", [False, True])
def test_scorers_work_for_every_adapter_in_one_grid_search(routing):
    from sktransfer.adaptation import CORALAligner, DomainAdaptedClassifier
    from sktransfer.model_selection import DeepEmbeddedValidationScorer

    X, y, domain = _aligned_task()
    adapters = [None, DiscriminativeWeighter(cv=2, random_state=0), CORALAligner()]
    with sklearn.config_context(enable_metadata_routing=routing):
        for scoring in [
            DeepEmbeddedValidationScorer(),
            ImportanceWeightedScorer("accuracy"),
        ]:
            search = GridSearchCV(
                make_pipeline(
                    StandardScaler(), DomainAdaptedClassifier(LogisticRegression())
                ),
                {"domainadaptedclassifier__adapter": adapters},
                cv=SourceValidationKFold(3),
                scoring=scoring,
                error_score="raise",
            )
            key = (
                "sample_domain" if routing else "domainadaptedclassifier__sample_domain"
            )
            search.fit(X, y, groups=domain, **{key: domain})
            assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert sklearn.get_config()["enable_metadata_routing"] is False


def test_dev_estimates_the_target_loss_better_than_plain_validation():
    from sklearn.metrics import log_loss

    from sktransfer.adaptation import DomainAdaptedClassifier
    from sktransfer.model_selection import DeepEmbeddedValidationScorer

    # Covariate shift with overlap (P(y|x) shared): what DEV assumes.
    X, y, domain = covariate_shift(3000, 3000, seed=1)
    fit = np.r_[np.arange(500, 3000), np.arange(3000, 6000)]
    model = DomainAdaptedClassifier(LogisticRegression()).fit(
        X[fit], np.where(domain[fit] > 0, y[fit], -1), sample_domain=domain[fit]
    )
    target = domain < 0
    true_loss = log_loss(y[target], model.predict_proba(X[target]))
    plain_loss = log_loss(y[:500], model.predict_proba(X[:500]))
    dev_loss = -DeepEmbeddedValidationScorer()(model, X[:500], y[:500])
    assert abs(dev_loss - true_loss) < abs(plain_loss - true_loss)


@pytest.mark.parametrize("kind", ["dev", "iw"])
def test_scorer_random_state_fixes_the_weighters_folds(kind):
    from sktransfer.adaptation import CORALAligner, DomainAdaptedClassifier
    from sktransfer.model_selection import DeepEmbeddedValidationScorer

    def make(**params):
        if kind == "dev":
            return DeepEmbeddedValidationScorer(**params)
        return ImportanceWeightedScorer("neg_log_loss", **params)

    X, y, domain = covariate_shift(300, 300, seed=2)
    fit = np.r_[np.arange(100, 300), np.arange(300, 600)]
    model = DomainAdaptedClassifier(LogisticRegression(), adapter=CORALAligner())
    model.fit(X[fit], np.where(domain[fit] > 0, y[fit], -1), sample_domain=domain[fit])
    X_val, y_val = X[:100], y[:100]
    # The default seed scores the same features the same way at every call
    # (every candidate of a search meets the same folds) ...
    assert make()(model, X_val, y_val) == make()(model, X_val, y_val)
    # ... seeds differ in their folds, and hence in the score ...
    scores = {make(random_state=seed)(model, X_val, y_val) for seed in range(4)}
    assert len(scores) > 1
    # ... and a weighter's own random_state is left alone.
    own = DiscriminativeWeighter(random_state=3)
    assert make(weighter=own, random_state=0)(model, X_val, y_val) == make(
        weighter=own, random_state=1
    )(model, X_val, y_val)
    assert own.random_state == 3
    assert "random_state=None" in repr(make(random_state=None))
    assert "random_state" not in repr(make())


def test_scorer_errors():
    from sktransfer.model_selection import DeepEmbeddedValidationScorer

    X, y, domain = _aligned_task(n=40)
    plain = LogisticRegression().fit(X[:40], y[:40])
    with pytest.raises(TypeError, match="needs an adapted estimator"):
        DeepEmbeddedValidationScorer()(plain, X[:10], y[:10])
    with pytest.raises(TypeError, match="`target_features_`"):
        ImportanceWeightedScorer()(plain, X[:10], y[:10])
    from sktransfer.adaptation import DomainAdaptedClassifier

    model = DomainAdaptedClassifier(LogisticRegression()).fit(
        X, y, sample_domain=domain
    )
    labels = np.r_[y[:9], 7]
    with pytest.raises(ValueError, match=r"labels \[7\] are not among the classes"):
        DeepEmbeddedValidationScorer()(model, X[:10], labels)
    with pytest.raises(ValueError, match="received only target rows"):
        DeepEmbeddedValidationScorer()(model, X[:3], y[:3], sample_domain=-np.ones(3))


def test_scorers_work_for_a_deep_adapted_estimator():
    from _helpers import make_tiny_cnn

    from sktransfer import FineTunedClassifier
    from sktransfer.model_selection import DeepEmbeddedValidationScorer

    rng = np.random.RandomState(0)
    X = rng.randint(0, 255, (48, 12, 12, 3), dtype=np.uint8)
    y = np.r_[np.arange(24) % 2, -np.ones(24, int)]
    domain = np.r_[np.ones(24), -np.ones(24)]
    clf = FineTunedClassifier(
        make_tiny_cnn(), image_size=12, max_epochs=1, random_state=0, progress=False
    )
    search = GridSearchCV(
        clf,
        {"adaptation": [None, "dann"]},
        cv=SourceValidationKFold(2),
        scoring={
            "dev": DeepEmbeddedValidationScorer(),
            "iw": ImportanceWeightedScorer(),
        },
        refit="dev",
        error_score="raise",
    )
    search.fit(X, y, groups=domain, sample_domain=domain)
    assert np.isfinite(search.cv_results_["mean_test_dev"]).all()
    assert np.isfinite(search.cv_results_["mean_test_iw"]).all()
