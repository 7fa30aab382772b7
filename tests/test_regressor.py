"""FineTunedRegressor: known targets recovered, units, shapes, weights, checks."""

import numpy as np
import pytest
import torch
from _helpers import make_tiny_cnn
from sklearn.model_selection import GridSearchCV
from test_classifier import predict_in_fresh_process
from torch import nn

from sktransfer import FineTunedRegressor
from sktransfer.backbones import load_backbone

# Tiny tensors: one torch thread (see conftest's one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**kwargs):
    params = dict(
        image_size=16,
        max_epochs=10,
        batch_size=8,
        lr=0.05,
        augment=False,
        random_state=0,
        progress=False,
    )
    params.update(kwargs)
    return FineTunedRegressor(make_tiny_cnn(), **params)


def colour_images(n=48, seed=0):
    """Images of random per-channel levels: the channel means, in [0, 1]."""
    rng = np.random.RandomState(seed)
    levels = rng.uniform(0.1, 0.9, (n, 3))
    noise = rng.randint(-8, 8, (n, 12, 12, 3))
    X = np.clip(levels[:, None, None, :] * 255 + noise, 0, 255).astype(np.uint8)
    return X, levels


def linear_target(levels):
    return 3.0 * levels[:, 0] - 2.0 * levels[:, 2] + 1.0


# ------------------------------------------------------------- known targets
def test_recovers_a_linear_target_of_image_features():
    X, levels = colour_images(96)
    X_test, levels_test = colour_images(48, seed=1)
    reg = tiny(max_epochs=15).fit(X, linear_target(levels))
    assert reg.score(X_test, linear_target(levels_test)) > 0.9
    assert reg.module_.head[-1].out_features == 1
    assert isinstance(reg.net_.criterion_, nn.MSELoss)


@pytest.mark.parametrize("unit", [1e4, 1e-3])
def test_predictions_are_in_the_units_of_y(unit):
    X, levels = colour_images()
    y = linear_target(levels) * unit
    reg = tiny().fit(X, y)
    pred = reg.predict(X)
    assert reg.score(X, y) > 0.9
    assert abs(pred.mean() - y.mean()) < 0.25 * y.std()
    # Standardised targets: the same training whatever the unit.
    ref = tiny().fit(X, linear_target(levels)).predict(X)
    np.testing.assert_allclose(pred / unit, ref, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(reg.target_mean_, [y.mean()])
    np.testing.assert_allclose(reg.target_scale_, [y.std()])


def test_one_and_two_dimensional_y():
    X, levels = colour_images(32)
    y = linear_target(levels)
    one = tiny(max_epochs=2).fit(X, y)
    assert one.predict(X).shape == (32,) and one.n_outputs_ == 1
    column = tiny(max_epochs=2).fit(X, y[:, None])
    assert column.predict(X).shape == (32, 1)
    np.testing.assert_allclose(column.predict(X)[:, 0], one.predict(X))
    Y = np.c_[y, 1e3 * levels[:, 1]]  # two outputs on very different scales
    two = tiny(max_epochs=15).fit(X, Y)
    assert two.predict(X).shape == (32, 2) and two.n_outputs_ == 2
    assert two.module_.head[-1].out_features == 2
    assert two.score(X, Y) > 0.8
    np.testing.assert_allclose(two.target_scale_, Y.std(axis=0))


def test_constant_target_keeps_its_units():
    X, _ = colour_images(16)
    reg = tiny(max_epochs=1).fit(X, np.full(16, 7.0))
    assert reg.target_scale_[0] == 1.0
    np.testing.assert_allclose(reg.predict(X), 7.0, atol=2.0)


# ------------------------------------------------------------ sample weights
def test_zero_weight_rows_are_harmless():
    X, levels = colour_images(64)
    y = linear_target(levels)
    X_bad, _ = colour_images(32, seed=3)
    X_all = np.concatenate([X, X_bad])
    y_all = np.r_[y, np.full(32, 1e6)]  # garbage targets
    w = np.r_[np.ones(64), np.zeros(32)]
    weighted = tiny().fit(X_all, y_all, sample_weight=w)
    X_test, levels_test = colour_images(32, seed=1)
    y_test = linear_target(levels_test)
    assert weighted.score(X_test, y_test) > 0.9
    np.testing.assert_allclose(weighted.target_mean_, [y.mean()])
    unweighted = tiny().fit(X_all, y_all)
    assert unweighted.score(X_test, y_test) < 0


def test_sample_weight_scales_the_loss():
    X, levels = colour_images(16)
    reg = tiny(max_epochs=1).fit(X, linear_target(levels))
    y_pred, target = torch.randn(4, 1), torch.randn(4, 1)
    w = torch.tensor([0.0, 1.0, 2.0, 1.0])
    expected = (w * ((y_pred - target) ** 2)[:, 0]).sum() / w.sum()
    torch.testing.assert_close(reg.net_.get_loss(y_pred, (target, w)), expected)


# --------------------------------------------------------------------- losses
@pytest.mark.parametrize(
    "loss, criterion",
    [
        ("squared_error", nn.MSELoss),
        ("huber", nn.HuberLoss),
        ("absolute_error", nn.L1Loss),
    ],
)
def test_loss_parameter(loss, criterion):
    X, levels = colour_images(32)
    reg = tiny(loss=loss, max_epochs=15).fit(X, linear_target(levels))
    assert type(reg.net_.criterion_) is criterion
    assert reg.net_.criterion_.reduction == "none"
    assert reg.score(X, linear_target(levels)) > 0.8


def test_huber_delta_is_routed():
    X, levels = colour_images(16)
    reg = tiny(loss="huber", criterion__delta=0.5, max_epochs=1)
    assert reg.fit(X, linear_target(levels)).net_.criterion_.delta == 0.5


def test_grid_search_over_lr_and_loss():
    X, levels = colour_images(32)
    search = GridSearchCV(
        tiny(max_epochs=3),
        {"lr": [1e-3, 5e-2], "loss": ["squared_error", "huber"]},
        cv=2,
    ).fit(X, linear_target(levels))
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["loss"] in {"squared_error", "huber"}
    assert search.predict(X).shape == (32,)


# --------------------------------------------------------------------- recipes
def test_frozen_fast_path_keeps_the_backbone_and_early_stopping_runs():
    X, levels = colour_images(32)
    y = linear_target(levels)
    before = load_backbone(make_tiny_cnn()).trunk.state_dict()
    fast = tiny(freeze="backbone", max_epochs=3).fit(X, y)
    after = fast.module_.trunk.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    es = tiny(early_stopping=True, max_epochs=2, freeze=1).fit(X, y)
    assert "valid_loss" in es.history_[-1] and "valid_acc" not in es.history_[-1]
    assert es.history_[:, "trainable_groups"] == [1, 1]


# ----------------------------------------------------------------- persistence
def test_joblib_round_trip_in_fresh_process(tmp_path):
    X, levels = colour_images(16)
    reg = tiny(max_epochs=2).fit(X, np.c_[linear_target(levels), levels[:, 1]])
    restored = predict_in_fresh_process(reg, X, tmp_path)
    np.testing.assert_array_equal(restored, reg.predict(X))


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "y, match",
    [
        (np.array(["a", "b"] * 8), r"needs numeric targets; y has dtype <U1 .*'a'"),
        (np.r_[np.nan, np.ones(15)], r"y contains NaN or infinity \(1 values\)"),
        (np.r_[np.inf, np.ones(15)], r"y contains NaN or infinity"),
        (np.ones((16, 2, 2)), r"shape \(n_samples,\) or \(n_samples, n_outputs\)"),
    ],
)
def test_target_errors(y, match):
    X, _ = colour_images(16)
    with pytest.raises(ValueError, match=match):
        tiny(max_epochs=1).fit(X, y)


def test_unknown_loss_raises():
    X, levels = colour_images(8)
    with pytest.raises(ValueError, match=r"'loss' parameter of FineTunedRegressor"):
        tiny(loss="poisson").fit(X, linear_target(levels))


def test_object_numbers_are_accepted():
    X, levels = colour_images(16)
    y = linear_target(levels).astype(object)
    assert tiny(max_epochs=1).fit(X, y).predict(X).dtype == np.float64
