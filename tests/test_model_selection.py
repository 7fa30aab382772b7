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
