"""Tests of deep domain adaptation: the layers, the losses and the estimators."""

import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from test_classifier import _pythonpath, tiny
from torch import nn

from sktransfer import FineTunedClassifier
from sktransfer.adaptation import (
    DomainDiscriminator,
    GradientReversal,
    coral_loss,
    ganin_schedule,
    grad_reverse,
)
from sktransfer.model_selection import SourceValidationKFold

# Tiny tensors: one torch thread (see conftest's one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------ layers and losses
@pytest.mark.parametrize("coeff", [0.0, 0.3, 1.0, 2.5])
def test_gradient_reversal_is_identity_forward_and_minus_lambda_backward(coeff):
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    layer = GradientReversal(coeff)
    out = layer(x)
    assert torch.equal(out, x)
    upstream = torch.randn(5, 3, dtype=torch.float64)
    (grad,) = torch.autograd.grad(out, x, upstream)
    torch.testing.assert_close(grad, -coeff * upstream)
    # The function form agrees, through a further differentiable op.
    (grad2,) = torch.autograd.grad((grad_reverse(x, coeff) ** 2).sum(), x)
    torch.testing.assert_close(grad2, -coeff * 2 * x.detach())


def test_ganin_schedule_values():
    assert ganin_schedule(0.0) == 0.0
    assert ganin_schedule(0.5) == pytest.approx(2 / (1 + np.exp(-5)) - 1)
    assert ganin_schedule(0.5) == pytest.approx(0.986614, abs=1e-6)
    assert ganin_schedule(1.0) == pytest.approx(0.999909, abs=1e-6)


def test_discriminator_width():
    disc = DomainDiscriminator(10, width=7)
    assert disc(torch.randn(4, 10)).shape == (4, 1)
    assert disc[0].out_features == 7 and disc[2].out_features == 7


def _numpy_coral(source, target):
    cs, ct = np.cov(source, rowvar=False), np.cov(target, rowvar=False)
    d = source.shape[1]
    return np.sum((cs - ct) ** 2) / (4 * d * d)


def test_coral_loss_is_zero_for_identical_batches_and_matches_numpy():
    rng = np.random.RandomState(0)
    source, target = rng.normal(size=(16, 5)), rng.normal(2, 3, size=(12, 5))
    s, t = torch.from_numpy(source), torch.from_numpy(target)
    assert float(coral_loss(s, s)) == 0.0
    assert float(coral_loss(s, s + 4.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(coral_loss(s, t)) == pytest.approx(_numpy_coral(source, target), 1e-5)


# ---------------------------------------------------------------- the estimator
def images_two_domains(n=24, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randint(0, 255, (2 * n, 12, 12, 3), dtype=np.uint8)
    y = np.r_[np.arange(n) % 2, -np.ones(n, int)]
    return X, y, np.r_[np.ones(n), -np.ones(n)]


def test_errors_by_message():
    X, y, domain = images_two_domains()
    with pytest.raises(ValueError, match="needs the target images"):
        tiny(adaptation="dann").fit(X, y)
    with pytest.raises(ValueError, match="0 marked target"):
        tiny(adaptation="dann").fit(X, y, sample_domain=np.ones(48))
    with pytest.raises(ValueError, match="0 sample\\(s\\) marked source"):
        tiny(adaptation="coral").fit(X, y, sample_domain=-np.ones(48))
    with pytest.raises(ValueError, match=r"`sample_domain` must have shape \(48,\)"):
        tiny(adaptation="dann").fit(X, y, sample_domain=domain[:10])
    with pytest.raises(ValueError, match="'adaptation' parameter.*'dan'"):
        tiny(adaptation="dan").fit(X, y, sample_domain=domain)
    with pytest.warns(UserWarning, match="nothing can move"):
        tiny(adaptation="coral", freeze="backbone", augment=False).fit(
            X, y, sample_domain=domain
        )


@pytest.mark.parametrize("adaptation", ["dann", "coral"])
def test_each_batch_draws_from_both_domains_and_the_discriminator_is_dropped(
    adaptation, tmp_path
):
    X, y, domain = images_two_domains()
    sizes = []
    clf = tiny(adaptation=adaptation, discriminator_width=5)
    clf.fit(X, y, sample_domain=domain)
    assert clf.n_source_ == 24 and clf.n_target_ == 24
    assert getattr(clf.module_, "adaptation", None) is None
    assert not [k for k in clf.module_.state_dict() if "adaptation" in k]
    assert clf.target_features_.shape == (24, 8)
    np.testing.assert_allclose(
        clf.domain_features(X[24:]), clf.target_features_, rtol=1e-4, atol=1e-5
    )
    # A batch pair reaches the adaptation module with as many target rows.
    from sktransfer.adaptation import DomainAdaptation

    original = DomainAdaptation.forward
    DomainAdaptation.forward = lambda self, network, xs, xt: (
        sizes.append((len(xs), len(xt))) or original(self, network, xs, xt)
    )
    try:
        tiny(adaptation=adaptation, max_epochs=1).fit(X, y, sample_domain=domain)
    finally:
        DomainAdaptation.forward = original
    assert sizes and all(s == t for s, t in sizes)
    # Persistence in a fresh process: predictions identical, no discriminator.
    joblib.dump(clf, tmp_path / "m.joblib")
    np.save(tmp_path / "X.npy", X)
    code = textwrap.dedent(
        f"""
        import joblib, numpy as np
        m = joblib.load({str(tmp_path / "m.joblib")!r})
        assert getattr(m.module_, "adaptation", None) is None
        np.save({str(tmp_path / "p.npy")!r},
                m.predict_proba(np.load({str(tmp_path / "X.npy")!r})))
        """
    )
    env = {"CUDA_VISIBLE_DEVICES": "", "PATH": "", "PYTHONPATH": _pythonpath()}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), clf.predict_proba(X))


def test_target_labels_are_ignored_and_random_state_reproduces():
    X, y, domain = images_two_domains()
    other = y.copy()
    other[24:] = 7  # any value on target rows
    a = tiny(adaptation="dann").fit(X, y, sample_domain=domain)
    b = tiny(adaptation="dann").fit(X, other, sample_domain=domain)
    np.testing.assert_array_equal(a.classes_, [0, 1])
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X))


def test_composes_with_the_recipes():
    X, y, domain = images_two_domains(n=32)
    weight = np.r_[np.linspace(0.5, 2, 32), np.zeros(32)]
    clf = tiny(
        adaptation="dann",
        freeze=1,
        unfreeze=[1],
        discriminative_lr=0.5,
        lr_schedule="onecycle",
        augment=True,
        class_weight="balanced",
        early_stopping=True,
        validation_fraction=0.25,
        max_epochs=3,
    )
    clf.fit(X, y, sample_weight=weight, sample_domain=domain)
    assert clf.n_iter_ >= 1
    assert "valid_loss" in clf.history_[-1]
    # Fast path: frozen embeddings, a trainable bottleneck aligned by CORAL.
    fast = tiny(
        adaptation="coral", freeze="backbone", augment=False, module__bottleneck=6
    ).fit(X, y, sample_domain=domain)
    assert fast.target_features_.shape == (32, 6)


def flip_shift_images(n=160, seed=0):
    """Left half: a weak signal shared by both domains. Right half: a strong
    one in the source that is constant in the target, so a model that reads
    it (as source-only training does) predicts one class on the target."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, 2 * n)
    a = np.where(y == 1, 1.0, -1.0) + 0.6 * rng.normal(size=2 * n)
    b = np.where(y == 1, 2.0, -2.0) + 0.1 * rng.normal(size=2 * n)
    b[n:] = 5.0 + 0.1 * rng.normal(size=n)
    X = np.empty((2 * n, 8, 8, 3))
    X[:, :, :4] = 128 + 20 * a[:, None, None, None]
    X[:, :, 4:] = 128 + 20 * b[:, None, None, None]
    X = np.clip(X, 0, 255).astype(np.uint8)
    domain = np.r_[np.ones(n), -np.ones(n)]
    return X, y, np.where(domain > 0, y, -1), domain


def halves_trunk():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 2)), nn.Flatten(), nn.Linear(6, 16), nn.ReLU()
        )


def test_dann_beats_source_only_on_a_shift_source_only_fails():
    X, y, y_masked, domain = flip_shift_images()
    target = domain < 0
    common = dict(
        image_size=8,
        augment=False,
        max_epochs=60,
        batch_size=32,
        lr=0.003,
        module__bottleneck=32,
        random_state=0,
        progress=False,
    )
    plain = FineTunedClassifier(halves_trunk(), **common)
    plain.fit(X, y_masked, sample_domain=domain)
    dann = FineTunedClassifier(
        halves_trunk(), adaptation="dann", adaptation_weight=3.0, **common
    )
    dann.fit(X, y_masked, sample_domain=domain)
    acc_plain = np.mean(plain.predict(X[target]) == y[target])
    acc_dann = np.mean(dann.predict(X[target]) == y[target])
    assert acc_plain < 0.6
    assert acc_dann > acc_plain + 0.2


def test_grid_search_over_adaptation_methods():
    X, y, domain = images_two_domains(n=16)
    search = GridSearchCV(
        tiny(max_epochs=1),
        {"adaptation": [None, "dann", "coral"]},
        cv=SourceValidationKFold(2),
        error_score="raise",
    )
    search.fit(X, y, groups=domain, sample_domain=domain)
    assert len(search.cv_results_["mean_test_score"]) == 3
