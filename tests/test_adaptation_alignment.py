"""Tests of the aligners and of the domain-adapted meta-estimators using them."""

import subprocess
import sys

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer.adaptation import (
    CORALAligner,
    DiscriminativeWeighter,
    DomainAdaptedClassifier,
    DomainAdaptedRegressor,
    ImportanceWeightedClassifier,
    SubspaceAligner,
)
from sktransfer.model_selection import SourceValidationKFold


def _cov(X):
    return np.cov(X, rowvar=False)


def two_domains(seed=0, n=400, d=4):
    rng = np.random.RandomState(seed)
    source = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    target = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + 2.0
    return np.r_[source, target], np.r_[np.ones(n), -np.ones(n)]


def scaled_shift_task(seed=0, n=300):
    """A shift the source-only model fails: the target is rescaled and moved."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(2 * n, 2))
    y = (X[:, 0] > 0).astype(int)
    X[n:] = X[n:] * [3.0, 0.3] + [4.0, -1.0]
    domain = np.r_[np.ones(n), -np.ones(n)]
    y_masked = np.r_[y[:n], -np.ones(n, int)]
    return X, y, y_masked, domain


@pytest.mark.parametrize("reg", [0.0, 0.5, 2.0])
def test_coral_gives_source_the_target_covariance(reg):
    X, domain = two_domains()
    coral = CORALAligner(reg=reg).fit(X, sample_domain=domain)
    aligned = coral.transform(X, sample_domain=domain)
    source, target = aligned[domain > 0], X[domain < 0]
    np.testing.assert_allclose(source.mean(0), target.mean(0), atol=1e-10)
    # cov(aligned) = C_t^1/2 C_s^-1/2 (C_s - reg I) C_s^-1/2 C_t^1/2, so with
    # the regularisation added back on the source side it is C_t exactly.
    a = coral.coral_map_
    regularised = _cov(source) + reg * a.T @ a
    np.testing.assert_allclose(regularised, coral.covariance_target_, atol=1e-8)
    np.testing.assert_allclose(
        coral.covariance_target_, _cov(target) + reg * np.eye(4), atol=1e-10
    )
    if reg == 0.0:
        np.testing.assert_allclose(_cov(source), _cov(target), atol=1e-8)
    # Target rows, and rows without sample_domain, pass unchanged.
    np.testing.assert_array_equal(aligned[domain < 0], X[domain < 0])
    np.testing.assert_array_equal(coral.transform(X[:3]), X[:3])


@pytest.mark.parametrize("reg", [0.0, 1.0, "auto"])
def test_coral_is_the_identity_when_the_domains_share_statistics(reg):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 3))
    twice = np.r_[X, X]
    domain = np.r_[np.ones(200), -np.ones(200)]
    coral = CORALAligner(reg=reg).fit(twice, sample_domain=domain)
    np.testing.assert_allclose(coral.coral_map_, np.eye(3), atol=1e-8)
    np.testing.assert_allclose(
        coral.transform(twice, sample_domain=domain), twice, atol=1e-8
    )


def test_coral_auto_is_finite_with_more_features_than_rows():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 60))
    domain = np.r_[np.ones(20), -np.ones(20)]
    out = CORALAligner().fit_transform(X, sample_domain=domain)
    assert np.isfinite(out).all()


def test_subspace_alignment_maps_the_source_basis_onto_the_target_basis():
    rng = np.random.RandomState(0)
    # The same 2-D principal subspace, with rotated, rescaled axes in it.
    plane = np.linalg.qr(rng.normal(size=(5, 2)))[0]
    source = rng.normal(size=(300, 2)) * [3, 1] @ plane.T
    target = rng.normal(size=(300, 2)) * [1, 2] @ plane.T
    X = np.r_[source, target + 0.01 * rng.normal(size=(300, 5))]
    domain = np.r_[np.ones(300), -np.ones(300)]
    sa = SubspaceAligner(n_components=2).fit(X, sample_domain=domain)
    aligned_basis = sa.basis_source_ @ sa.alignment_
    np.testing.assert_allclose(aligned_basis, sa.basis_target_, atol=1e-3)
    # M minimises ||P_s M - P_t||_F: never worse than no rotation.
    X2, domain2 = two_domains(d=6)
    sa2 = SubspaceAligner(n_components=3).fit(X2, sample_domain=domain2)
    gap = np.linalg.norm(sa2.basis_source_ @ sa2.alignment_ - sa2.basis_target_)
    assert gap <= np.linalg.norm(sa2.basis_source_ - sa2.basis_target_) + 1e-12
    out = sa2.transform(X2, sample_domain=domain2)
    np.testing.assert_allclose(
        out[domain2 < 0], (X2[domain2 < 0] - sa2.mean_target_) @ sa2.basis_target_
    )
    np.testing.assert_allclose(sa2.transform(X2[-3:]), out[-3:])
    assert (
        SubspaceAligner(n_components=50).fit(X2, sample_domain=domain2).n_components_
        == 6
    )


@pytest.mark.parametrize("aligner", [CORALAligner, SubspaceAligner])
def test_aligner_errors(aligner):
    X, domain = two_domains(n=20)
    with pytest.raises(ValueError, match="`sample_domain` is required"):
        aligner().fit(X)
    with pytest.raises(ValueError, match="0 marked target"):
        aligner().fit(X, sample_domain=np.ones(40))
    with pytest.raises(ValueError, match="0 sample\\(s\\) marked source"):
        aligner().fit(X, sample_domain=-np.ones(40))
    with pytest.raises(ValueError, match=r"must have shape \(40,\)"):
        aligner().fit(X, sample_domain=domain[:5])
    fitted = aligner().fit(X, sample_domain=domain)
    with pytest.raises(ValueError, match=r"must have shape \(40,\)"):
        fitted.transform(X, sample_domain=domain[:5])


def test_coral_classifier_beats_source_only_on_a_scale_shift():
    X, y, y_masked, domain = scaled_shift_task()
    target = domain < 0
    plain = DomainAdaptedClassifier(LogisticRegression(), adapter=None)
    coral = DomainAdaptedClassifier(LogisticRegression(), adapter=CORALAligner())
    acc_plain = plain.fit(X, y_masked, sample_domain=domain).score(X[target], y[target])
    acc_coral = coral.fit(X, y_masked, sample_domain=domain).score(X[target], y[target])
    assert acc_plain < 0.7 < acc_coral
    assert coral.target_features_.shape == (300, 2)
    assert not hasattr(coral, "compute_weights")  # an aligner has no weights
    assert not hasattr(coral, "sample_weight_")


def test_meta_estimator_errors():
    X, y, y_masked, domain = scaled_shift_task(n=20)
    with pytest.raises(TypeError, match="adapter must be a weighter"):
        DomainAdaptedClassifier(LogisticRegression(), adapter=Ridge()).fit(
            X, y_masked, sample_domain=domain
        )
    # An aligner does not need sample_weight; a weighter does.
    DomainAdaptedClassifier(KNeighborsClassifier(3), adapter=CORALAligner()).fit(
        X, y_masked, sample_domain=domain
    )
    with pytest.raises(TypeError, match="KNeighborsClassifier.fit does not"):
        DomainAdaptedClassifier(
            KNeighborsClassifier(3), adapter=DiscriminativeWeighter()
        ).fit(X, y_masked, sample_domain=domain)
    with pytest.raises(ValueError, match="0 marked target"):
        DomainAdaptedClassifier(LogisticRegression()).fit(
            X, y_masked, sample_domain=np.ones(40)
        )


@pytest.mark.parametrize("routing", [False, True])
def test_grid_search_over_adapters_in_a_pipeline(routing):
    X, y, y_masked, domain = scaled_shift_task(n=120)
    assert sklearn.get_config()["enable_metadata_routing"] is False
    with sklearn.config_context(enable_metadata_routing=routing):
        pipe = make_pipeline(
            StandardScaler(), DomainAdaptedClassifier(LogisticRegression())
        )
        adapters = [
            None,
            DiscriminativeWeighter(cv=2, max_weight=10, random_state=0),
            CORALAligner(),
            SubspaceAligner(n_components=2),
        ]
        search = GridSearchCV(
            pipe,
            {"domainadaptedclassifier__adapter": adapters},
            cv=SourceValidationKFold(3),
        )
        key = "sample_domain" if routing else "domainadaptedclassifier__sample_domain"
        search.fit(X, y_masked, groups=domain, **{key: domain})
        assert len(search.cv_results_["mean_test_score"]) == 4
        assert np.isfinite(search.cv_results_["mean_test_score"]).all()
        scores = cross_val_score(
            DomainAdaptedClassifier(LogisticRegression(), adapter=CORALAligner()),
            X,
            y_masked,
            cv=SourceValidationKFold(3),
            # groups travels in params with routing on, as groups= without.
            **(
                {"params": {"sample_domain": domain, "groups": domain}}
                if routing
                else {"groups": domain, "params": {"sample_domain": domain}}
            ),
        )
        assert scores.shape == (3,)
    assert sklearn.get_config()["enable_metadata_routing"] is False


def test_routing_on_sample_weight_reaches_the_estimator_with_an_aligner():
    X, y, y_masked, domain = scaled_shift_task(n=50)
    weight = np.r_[np.full(50, 2.0), np.ones(50)]
    with sklearn.config_context(enable_metadata_routing=True):
        inner = LogisticRegression().set_fit_request(sample_weight=True)
        model = DomainAdaptedClassifier(inner, adapter=CORALAligner())
        model.fit(X, y_masked, sample_domain=domain, sample_weight=weight)
        reference = LogisticRegression().fit(
            model.adapter_.transform(X, sample_domain=domain)[:50],
            y[:50],
            sample_weight=weight[:50],
        )
        np.testing.assert_allclose(model.estimator_.coef_, reference.coef_)


def test_importance_weighted_is_the_weighter_case_of_the_same_design():
    X, y, y_masked, domain = scaled_shift_task(n=80)
    weighter = DiscriminativeWeighter(cv=2, random_state=0)
    old = ImportanceWeightedClassifier(LogisticRegression(), weighter=weighter)
    new = DomainAdaptedClassifier(LogisticRegression(), adapter=weighter)
    old.fit(X, y_masked, sample_domain=domain)
    new.fit(X, y_masked, sample_domain=domain)
    assert type(old).fit is DomainAdaptedClassifier.fit  # one implementation
    np.testing.assert_allclose(old.sample_weight_, new.sample_weight_)
    np.testing.assert_allclose(old.predict_proba(X), new.predict_proba(X))
    np.testing.assert_allclose(old.compute_weights(X), new.compute_weights(X))


def test_persistence_in_a_fresh_process(tmp_path):
    X, y, y_masked, domain = scaled_shift_task(n=60)
    model = DomainAdaptedRegressor(Ridge(), adapter=SubspaceAligner(n_components=2))
    model.fit(X, y_masked.astype(float), sample_domain=domain)
    joblib.dump(model, tmp_path / "m.joblib")
    np.save(tmp_path / "X.npy", X)
    code = (
        "import joblib, numpy as np, sys; "
        f"m = joblib.load({str(tmp_path / 'm.joblib')!r}); "
        f"np.save({str(tmp_path / 'p.npy')!r}, m.predict(np.load({str(tmp_path / 'X.npy')!r})))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), model.predict(X))
