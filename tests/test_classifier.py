import functools
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
import sklearn
import torch
from _helpers import make_tiny_cnn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import compute_sample_weight
from skorch.callbacks import Callback

from sktransfer import FineTunedClassifier
from sktransfer._torch_utils import module_to_cpu
from sktransfer.backbones import load_backbone
from sktransfer.images import RandomResizedCropFlip, resize_crop

# Tiny tensors: one torch thread (see conftest's one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**kwargs):
    params = dict(
        image_size=16, max_epochs=3, batch_size=8, random_state=0, progress=False
    )
    params.update(kwargs)
    return FineTunedClassifier(make_tiny_cnn(), **params)


def blobs(n=48, seed=0):
    """Dark images are class 0, bright ones class 1: easy to learn."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    base = np.where(y == 1, 200, 40)[:, None, None, None]
    X = np.clip(base + rng.randint(-30, 30, (n, 12, 12, 3)), 0, 255).astype(np.uint8)
    return X, y


def trunk_state(clf):
    return {k: v.clone() for k, v in clf.module_.trunk.state_dict().items()}


# ------------------------------------------------------------------------ labels
@pytest.mark.parametrize(
    "labels", [np.array(["cat", "dog"]), np.array([3, 7]), np.array([False, True])]
)
def test_labels_are_encoded(labels):
    X, y01 = blobs()
    y = labels[y01]
    clf = tiny(max_epochs=6, lr=0.01, augment=False).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    pred = clf.predict(X)
    assert set(pred) <= set(labels)
    assert np.mean(pred == y) > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(1)], pred)
    assert clf.module_.head[-1].out_features == 2


def test_three_classes_and_image_files(image_files):
    y = np.array(["a", "b", "c"] * 2)
    clf = tiny(max_epochs=1).fit(image_files, y)
    assert clf.predict_proba(image_files).shape == (6, 3)


def test_one_class_raises():
    X, _ = blobs(8)
    with pytest.raises(ValueError, match=r"at least 2 classes in y; got 1 class"):
        tiny().fit(X, ["a"] * 8)


def test_y_none_raises():
    X, _ = blobs(8)
    with pytest.raises(ValueError, match=r"requires y to be passed"):
        tiny().fit(X, None)


def test_predict_before_fit_raises():
    X, _ = blobs(4)
    with pytest.raises(NotFittedError):
        tiny().predict(X)


# ------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(freeze=4), ValueError, r"freeze=4 asks to train the last 4 .* has 3"),
        (dict(unfreeze=1), ValueError, r"unfreeze=1 has nothing to unfreeze"),
        (
            dict(freeze="backbone", unfreeze=[2, 1]),
            ValueError,
            r"strictly increasing",
        ),
        (dict(mean=(0.5, 0.5)), ValueError, r"mean must hold 3 values"),
        (dict(foo=1), TypeError, r"unexpected parameter\(s\) \['foo'\]"),
        (dict(module__width=3), TypeError, r"Invalid module__ parameter"),
        (
            dict(callbacks=[("freezer", None)]),
            ValueError,
            r"uses the name\(s\) \['freezer'\]",
        ),
        (dict(callbacks=[object()]), ValueError, r"list of \(name, callback\) pairs"),
        (
            dict(discriminative_lr=0.5, optimizer__param_groups=[]),
            ValueError,
            r"optimizer__param_groups cannot be combined with discriminative_lr",
        ),
        (dict(precision="float16"), ValueError, r"float16.*only supported on CUDA"),
        (
            dict(early_stopping=True, validation_fraction=0.01),
            ValueError,
            r"could not hold out validation_fraction=0.01",
        ),
    ],
)
def test_parameter_errors(params, error, match):
    X, y = blobs(16)
    with pytest.raises(error, match=match):
        tiny(max_epochs=1, **params).fit(X, y)


@pytest.mark.parametrize(
    "sample_weight, match",
    [
        (np.zeros(16), r"Sample weights must contain at least one non-zero"),
        (-np.ones(16), r"Negative values in data passed to .?sample_weight"),
        (np.ones(3), r"sample_weight.shape == \(3,\), expected \(16,\)"),
    ],
)
def test_sample_weight_errors(sample_weight, match):
    X, y = blobs(16)
    with pytest.raises(ValueError, match=match):
        tiny(max_epochs=1).fit(X, y, sample_weight=sample_weight)


def test_class_weight_zeroing_everything_raises():
    X, y = blobs(16)
    with pytest.raises(ValueError, match=r"sample_weight sums to zero"):
        tiny(max_epochs=1, class_weight={0: 0, 1: 0}).fit(X, y)


def test_module_returning_maps_raises():
    trunk = torch.nn.Conv2d(3, 4, 3)
    X, y = blobs(8)
    with pytest.raises(ValueError, match=r"needs a module returning \(n, n_featu"):
        FineTunedClassifier(trunk, image_size=8, progress=False).fit(X, y)


# ---------------------------------------------------------------- sample weights
def test_weighted_loss_is_normalised():
    X, y = blobs(16)
    clf = tiny(max_epochs=1).fit(X, y)
    logits = torch.randn(5, 2)
    target = torch.tensor([0, 1, 1, 0, 1])
    w = torch.tensor([0.0, 2.0, 1.0, 0.0, 3.0])
    losses = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    got = clf.net_.get_loss(logits, (target, w))
    torch.testing.assert_close(got, (w * losses).sum() / w.sum())
    ones = clf.net_.get_loss(logits, (target, torch.ones(5)))
    torch.testing.assert_close(ones, losses.mean())
    zero = clf.net_.get_loss(logits, (target, torch.zeros(5)))
    assert float(zero) == 0.0


def test_zero_weight_makes_mislabelled_rows_harmless():
    X, y = blobs(32)
    # 32 more bright images labelled "dark": enough to ruin an unweighted fit.
    X_bad, _ = blobs(64, seed=1)
    X_bad = X_bad[1::2]
    X_all = np.concatenate([X, X_bad])
    y_all = np.concatenate([y, np.zeros(len(X_bad), int)])
    w = np.r_[np.ones(len(X)), np.zeros(len(X_bad))]
    params = dict(max_epochs=8, lr=0.02, augment=False)
    weighted = tiny(**params).fit(X_all, y_all, sample_weight=w)
    unweighted = tiny(**params).fit(X_all, y_all)
    X_test, y_test = blobs(40, seed=2)
    assert np.mean(weighted.predict(X_test) == y_test) == 1.0
    assert np.mean(unweighted.predict(X_test[y_test == 1]) == 1) < 0.5


def test_class_weight_is_sample_weight():
    X, y = blobs(24)
    y[:4] = 1  # imbalance
    a = tiny(class_weight="balanced").fit(X, y)
    b = tiny().fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_validation_scores_use_sample_weights():
    X, y = blobs(40)
    w = np.random.RandomState(0).uniform(0.1, 3, len(y))
    clf = tiny(max_epochs=1, early_stopping=True, validation_fraction=0.25)
    clf.fit(X, y, sample_weight=w)
    # Recompute the split the estimator drew from random_state.
    seeds = np.random.RandomState(0).randint(2**31 - 1, size=4)
    _, valid = clf._split(y, int(seeds[2]))
    assert len(valid) == 10 and set(np.bincount(y[valid])) == {5}
    proba = clf.predict_proba(X[valid])
    losses = -np.log(proba[np.arange(len(valid)), y[valid]])
    wv = w[valid]
    expected_loss = np.sum(wv * losses) / wv.sum()
    expected_acc = np.sum(wv * (proba.argmax(1) == y[valid])) / wv.sum()
    assert clf.history_[-1, "valid_loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert clf.history_[-1, "valid_acc"] == pytest.approx(expected_acc)


def test_sample_weight_through_pipeline_and_grid_search():
    X, y = blobs(24)
    w = np.random.RandomState(0).uniform(0.1, 3, len(y))
    direct = tiny().fit(X, y, sample_weight=w).predict_proba(X)
    pipe = make_pipeline(FunctionTransformer(), tiny())
    pipe.fit(X, y, finetunedclassifier__sample_weight=w)
    np.testing.assert_array_equal(pipe.predict_proba(X), direct)
    search = GridSearchCV(tiny(), {"lr": [1e-3]}, cv=2).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(search.predict_proba(X), direct)


def test_sample_weight_with_metadata_routing():
    X, y = blobs(24)
    w = np.random.RandomState(0).uniform(0.1, 3, len(y))
    cv = KFold(2)
    with sklearn.config_context(enable_metadata_routing=True):
        clf = (
            tiny()
            .set_fit_request(sample_weight=True)
            .set_score_request(sample_weight=False)
        )
        result = cross_validate(
            clf, X, y, cv=cv, params={"sample_weight": w}, return_estimator=True
        )
        train, _ = next(cv.split(X))
        manual = tiny().fit(X[train], y[train], sample_weight=w[train])
        np.testing.assert_array_equal(
            result["estimator"][0].predict_proba(X), manual.predict_proba(X)
        )
        search = GridSearchCV(clf, {"lr": [1e-3]}, cv=2).fit(X, y, sample_weight=w)
        direct = tiny().fit(X, y, sample_weight=w)
        np.testing.assert_array_equal(search.predict_proba(X), direct.predict_proba(X))


# ---------------------------------------------------------------------- freezing
def test_frozen_groups_and_batchnorm_buffers_unchanged():
    X, y = blobs(24)
    clf = tiny(freeze=1, lr=0.05)
    before = {
        k: v.clone()
        for k, v in load_backbone(make_tiny_cnn()).trunk.state_dict().items()
    }
    clf.fit(X, y)
    after = trunk_state(clf)
    for key in before:
        if key.startswith(("stem.", "stage1.")):  # frozen: bit-identical
            assert torch.equal(before[key], after[key]), key
    for key in ("stage2.0.weight", "stage2.1.running_mean", "stage2.1.weight"):
        assert not torch.equal(before[key], after[key]), key


def test_freeze_backbone_slow_path_keeps_whole_trunk():
    X, y = blobs(24)
    clf = tiny(freeze="backbone", module__dropout=0.5)  # augment=True: slow path
    before = load_backbone(make_tiny_cnn()).trunk.state_dict()
    clf.fit(X, y)
    after = clf.module_.trunk.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert clf.module_.head[0].p == 0.5
    assert clf.history_[:, "trainable_groups"] == [0, 0, 0]


def test_progressive_unfreezing_changes_scheduled_groups_only():
    from skorch.callbacks import Callback

    snapshots = []

    class Snap(Callback):
        def on_epoch_end(self, net, **kwargs):
            state = net.module_.trunk.state_dict()
            snapshots.append({k: v.clone() for k, v in state.items()})

    X, y = blobs(24)
    clf = tiny(
        freeze="backbone",
        unfreeze=[1, 3],
        max_epochs=5,
        lr=0.05,
        callbacks=[("snap", Snap())],
    ).fit(X, y)
    assert clf.history_[:, "trainable_groups"] == [0, 1, 1, 2, 2]
    initial = load_backbone(make_tiny_cnn()).trunk.state_dict()
    states = [initial] + snapshots
    expected = [
        set(),
        {"stage2"},
        {"stage2"},
        {"stage1", "stage2"},
        {"stage1", "stage2"},
    ]
    for epoch, groups in enumerate(expected):
        changed = {
            key.split(".")[0]
            for key in initial
            if not torch.equal(states[epoch][key], states[epoch + 1][key])
        }
        assert changed == groups, (epoch, changed)


def test_discriminative_learning_rates():
    X, y = blobs(16)
    clf = tiny(max_epochs=1, lr=0.1, discriminative_lr=0.5).fit(X, y)
    lrs = [g["lr"] for g in clf.net_.optimizer_.param_groups]
    assert lrs == pytest.approx([0.1 * 0.5**3, 0.1 * 0.5**2, 0.1 * 0.5, 0.1])


def test_step_schedule_and_routed_callback_params():
    X, y = blobs(16)
    clf = tiny(
        max_epochs=3, lr=0.1, lr_schedule="step", callbacks__lr_schedule__step_size=1
    )
    clf.fit(X, y)
    last = [row["batches"][-1]["lr"] for row in clf.history_]
    assert last == pytest.approx([0.1, 0.01, 0.001])


def test_fast_path_matches_slow_path():
    X, y = blobs(24)
    preprocessing = load_backbone(make_tiny_cnn()).preprocessing.with_overrides(16)
    fast = tiny(freeze="backbone", augment=False, lr=0.05).fit(X, y)
    # An augmentation equal to the evaluation transform forces the slow path.
    same = functools.partial(resize_crop, preprocessing=preprocessing)
    slow = tiny(freeze="backbone", augment=same, lr=0.05).fit(X, y)
    np.testing.assert_allclose(fast.predict_proba(X), slow.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(
        fast.history_[:, "train_loss"], slow.history_[:, "train_loss"], rtol=1e-5
    )


def test_user_transform_replaces_augmentation():
    calls = []

    def transform(image):
        calls.append(tuple(image.shape))
        return torch.zeros(3, 16, 16)

    X, y = blobs(8)
    tiny(max_epochs=1, augment=transform).fit(X, y)
    assert calls == [(3, 12, 12)] * 8


def test_own_random_resized_crop_flip_is_reseeded_and_left_alone():
    X, y = blobs(16)
    augment = RandomResizedCropFlip(16, scale=(0.6, 1.0), seed=1)
    state = augment.generator.get_state()
    a = tiny(max_epochs=1, augment=augment).fit(X, y).predict_proba(X)
    b = tiny(max_epochs=1, augment=augment).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert torch.equal(augment.generator.get_state(), state)  # a copy was used
    other = RandomResizedCropFlip(16, scale=(0.6, 1.0), seed=2)
    c = tiny(max_epochs=1, augment=other).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)


# -------------------------------------------------------- randomness, sklearn API
def test_random_state_reproducible_without_touching_global_rng():
    X, y = blobs(24)
    state = torch.get_rng_state()
    a = tiny(module__dropout=0.2, early_stopping=True).fit(X, y).predict_proba(X)
    b = tiny(module__dropout=0.2, early_stopping=True).fit(X, y).predict_proba(X)
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(a, b)
    c = tiny(random_state=1).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)


def test_augmentation_differs_per_epoch_but_not_per_run():
    from sktransfer.fine_tuning._net import FitDataset as _FitDataset

    images = torch.rand(4, 3, 20, 20)
    aug = RandomResizedCropFlip(8, seed=3)
    ds = _FitDataset(_Augmented(images, aug), [0] * 4, [1.0] * 4, augment=aug)
    first = ds[0][0]
    assert torch.equal(first, ds[0][0])
    ds.epoch = 1
    assert not torch.equal(first, ds[0][0])
    # Another run with the same seed draws the same augmentations.
    twin = RandomResizedCropFlip(8, seed=3)
    again = _FitDataset(_Augmented(images, twin), [0] * 4, [1.0] * 4, augment=twin)
    assert torch.equal(first, again[0][0])


class _Augmented:
    def __init__(self, images, aug):
        self.images, self.aug = images, aug

    def __getitem__(self, i):
        return self.aug(self.images[i])


def test_get_set_params_and_clone_keep_routed_params():
    clf = tiny(optimizer__weight_decay=0.0)
    clf.set_params(callbacks__lr_schedule__gamma=0.5, lr=0.01)
    params = clf.get_params()
    assert params["optimizer__weight_decay"] == 0.0
    assert params["callbacks__lr_schedule__gamma"] == 0.5
    twin = clone(clf)
    assert twin.get_params()["callbacks__lr_schedule__gamma"] == 0.5
    X, y = blobs(16)
    twin.set_params(max_epochs=1).fit(X, y)
    assert twin.net_.optimizer_.param_groups[0]["weight_decay"] == 0.0
    assert dict(twin.net_.callbacks_)["lr_schedule"].gamma == 0.5


def test_model_parameter_not_mutated():
    model = make_tiny_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    X, y = blobs(16)
    FineTunedClassifier(model, image_size=16, max_epochs=1, progress=False).fit(X, y)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters()) and model.training


def test_grid_search_over_lr_and_freeze():
    X, y = blobs(24)
    search = GridSearchCV(
        tiny(max_epochs=2),
        {"lr": [1e-3, 3e-2], "freeze": ["backbone", "none"]},
        cv=2,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["freeze"] in {"backbone", "none"}
    assert search.predict(X).shape == (24,)


def test_early_stopping_stops_and_restores():
    X, y = blobs(24)
    clf = tiny(early_stopping=True, n_iter_no_change=1, max_epochs=20, lr=1e-12).fit(
        X, y
    )
    assert clf.n_iter_ < 20
    assert "valid_acc" in clf.history_[-1]


def _net_snapshot(net):
    module = net.module_
    return dict(
        attributes=dict(vars(net)),
        state={k: v.clone() for k, v in module.state_dict().items()},
        modes=[m.training for m in module.modules()] + [net.criterion_.training],
        grads=[p.requires_grad for p in module.parameters()],
        devices={p.device for p in module.parameters()},
        epochs=len(net.history),
    )


@pytest.mark.parametrize(
    "params",
    [dict(), dict(early_stopping=True), dict(freeze="backbone", augment=False)],
)
def test_predict_leaves_the_fitted_state_untouched(params):
    X, y = blobs(16)
    clf = tiny(max_epochs=2, **params).fit(X, y)
    net, fitted = clf.net_, dict(vars(clf))
    before = _net_snapshot(net)
    assert not any(before["modes"])  # at rest in evaluation mode
    proba = clf.predict_proba(X)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(1)])
    after = _net_snapshot(net)
    assert vars(clf).keys() == fitted.keys()
    assert all(vars(clf)[k] is v for k, v in fitted.items())
    assert after["attributes"].keys() == before["attributes"].keys()
    assert all(after["attributes"][k] is v for k, v in before["attributes"].items())
    assert net.device == "cpu" and after["devices"] == {torch.device("cpu")}
    for key in ("modes", "grads", "devices", "epochs"):
        assert after[key] == before[key], key
    for key, value in before["state"].items():
        assert torch.equal(after["state"][key], value), key


def test_bfloat16_precision_runs():
    X, y = blobs(16)
    proba = tiny(max_epochs=1, precision="bfloat16").fit(X, y).predict_proba(X)
    assert proba.dtype == np.float64 and np.isfinite(proba).all()


# ------------------------------------------------------------------- persistence
def test_joblib_round_trip_in_fresh_process(tmp_path):
    X, y = blobs(16)
    clf = tiny(max_epochs=2).fit(X, np.array(["x", "y"])[y])
    restored = predict_in_fresh_process(clf, X, tmp_path, "predict_proba")
    np.testing.assert_array_equal(restored, clf.predict_proba(X))
    labels = predict_in_fresh_process(clf, X, tmp_path, "predict")
    np.testing.assert_array_equal(labels, clf.predict(X))


def predict_in_fresh_process(estimator, X, tmp_path, method="predict"):
    """``estimator.<method>(X)`` after a joblib round trip into a new process.

    The new process has no network (connecting raises), no CUDA device and only
    the package and tests on its path; the estimator must load on the CPU.
    """
    path = tmp_path / "estimator.joblib"
    joblib.dump(estimator, path)
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(
        f"""
        import socket, joblib, numpy as np
        def no_network(*args, **kwargs):
            raise RuntimeError("network access")
        socket.socket.connect = no_network
        estimator = joblib.load({str(path)!r})
        assert estimator.net_.device == "cpu"
        X = np.load({str(tmp_path / "X.npy")!r})
        np.save({str(tmp_path / "out.npy")!r}, estimator.{method}(X))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={"CUDA_VISIBLE_DEVICES": "", "PATH": "", "PYTHONPATH": _pythonpath()},
        cwd=str(tmp_path),
    )
    assert out.returncode == 0, out.stderr
    return np.load(tmp_path / "out.npy", allow_pickle=True)


def _pythonpath():
    import os

    import sktransfer

    tests = os.path.dirname(__file__)
    root = os.path.dirname(os.path.dirname(sktransfer.__file__))
    return os.pathsep.join([root, tests])


def test_module_to_cpu_uses_map_location():
    module = make_tiny_cnn()
    seen = []

    def map_location(storage, location):
        seen.append(location)  # "cuda:0" for a GPU-trained model
        return storage

    copy = module_to_cpu(module, map_location=map_location)
    assert copy is not module and seen and set(seen) == {"cpu"}
    for (k, a), b in zip(
        module.state_dict().items(), copy.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k


# ------------------------------------------------- interrupts and the file at rest
class _InterruptAt(Callback):
    """A skorch callback that presses Ctrl-C at the start of one epoch."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


def test_ctrl_c_interrupts_fit_and_keeps_the_old_model():
    X, y = blobs()
    clf = tiny(max_epochs=2, freeze="none").fit(X, y)
    before_net, before = clf.net_, clf.predict_proba(X)
    clf.set_params(max_epochs=5, callbacks=[("stop", _InterruptAt(2))])
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    assert clf.net_ is before_net and clf.n_iter_ == 2
    np.testing.assert_array_equal(clf.predict_proba(X), before)


def test_ctrl_c_stops_a_grid_search():
    X, y = blobs()
    clf = tiny(max_epochs=3, callbacks=[("stop", _InterruptAt(1))])
    search = GridSearchCV(clf, {"lr": [0.01, 0.1]}, cv=2, error_score="raise")
    with pytest.raises(KeyboardInterrupt):
        search.fit(X, y)


def test_saved_model_holds_no_optimizer_state_and_can_resume():
    import pickle

    X, y = blobs()
    clf = tiny(max_epochs=2, freeze="none", optimizer=torch.optim.AdamW).fit(X, y)
    weights = sum(p.numel() * p.element_size() for p in clf.module_.parameters())
    blob = pickle.dumps(clf)
    loaded = pickle.loads(blob)
    # the file is about the weights (Adam's two moments would triple them)
    assert len(blob) < 1.5 * weights + 200_000
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.net_.optimizer_ is not None  # a fresh one: training resumes
    assert not loaded.net_.optimizer_.state


# -------------------------------------------------------------------- multilabel
def multilabel_blobs(n=48, seed=0):
    """Label 0: a bright red channel; label 1: a bright blue one; both or none."""
    rng = np.random.RandomState(seed)
    Y = rng.randint(0, 2, (n, 2))
    X = np.full((n, 12, 12, 3), 60, dtype=np.int64)
    X[..., 0] += 150 * Y[:, [0]][:, :, None]
    X[..., 2] += 150 * Y[:, [1]][:, :, None]
    X = np.clip(X + rng.randint(-20, 20, X.shape), 0, 255).astype(np.uint8)
    return X, Y


def test_multilabel_indicator_in_indicator_out():
    from sklearn.preprocessing import MultiLabelBinarizer

    X, Y = multilabel_blobs()
    # Label sets, as users hold them.
    sets = [
        {name for name, on in zip(("red", "blue"), row, strict=True) if on} for row in Y
    ]
    binarizer = MultiLabelBinarizer(classes=["red", "blue"])
    Y = binarizer.fit_transform(sets)
    clf = tiny(max_epochs=8, lr=0.05, augment=False).fit(X, Y)
    assert isinstance(clf.net_.criterion_, torch.nn.BCEWithLogitsLoss)
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    assert clf.module_.head[-1].out_features == 2
    X_test, Y_test = multilabel_blobs(32, seed=1)
    pred = clf.predict(X_test)
    assert pred.shape == (32, 2) and set(np.unique(pred)) <= {0, 1}
    assert clf.score(X_test, Y_test) > 0.9  # subset accuracy
    proba = clf.predict_proba(X_test)
    assert proba.shape == (32, 2) and ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(int))
    assert binarizer.inverse_transform(pred)[0] in [
        (),
        ("red",),
        ("blue",),
        ("red", "blue"),
    ]


def test_multilabel_validation_scores_are_subset_accuracy():
    X, Y = multilabel_blobs(40)
    clf = tiny(max_epochs=2, early_stopping=True, validation_fraction=0.25)
    clf.fit(X, Y)
    seeds = np.random.RandomState(0).randint(2**31 - 1, size=4)
    _, valid = clf._split(Y, int(seeds[2]))
    expected = np.mean((clf.predict(X[valid]) == Y[valid]).all(axis=1))
    assert clf.history_[-1, "valid_acc"] == pytest.approx(expected)


def test_multilabel_class_and_sample_weights():
    X, Y = multilabel_blobs(24)
    Y[:18, 0] = 0  # label 0 rare
    a = tiny(class_weight="balanced").fit(X, Y)
    b = tiny().fit(X, Y, sample_weight=compute_sample_weight("balanced", Y))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    per_label = [{0: 1.0, 1: 3.0}, {0: 1.0, 1: 1.0}]
    c = tiny().fit(X, Y, sample_weight=np.where(Y[:, 0] == 1, 3.0, 1.0))
    d = tiny(class_weight=per_label).fit(X, Y)
    np.testing.assert_array_equal(c.predict_proba(X), d.predict_proba(X))


def test_label_never_present_warns_and_is_predicted_absent():
    X, Y = multilabel_blobs(32)
    Y = np.c_[Y, np.zeros(32, int)]
    with pytest.warns(UserWarning, match=r"Label\(s\) \[2\] are never present"):
        clf = tiny(max_epochs=8, lr=0.05, augment=False).fit(X, Y)
    assert clf.predict_proba(X).shape == (32, 3)
    assert not clf.predict(X)[:, 2].any()
    # Present only in rows of weight 0 counts as never present.
    Y[0, 2] = 1
    w = np.r_[0.0, np.ones(31)]
    with pytest.warns(UserWarning, match=r"Label\(s\) \[2\] are never present"):
        tiny(max_epochs=1).fit(X, Y, sample_weight=w)


def test_continuous_y_to_the_classifier_raises():
    X, _ = blobs(8)
    with pytest.raises(ValueError, match=r"Unknown label type: continuous"):
        tiny(max_epochs=1).fit(X, np.linspace(0, 1, 8))


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_a_missing_label_is_named_with_its_index(missing):
    X, _ = blobs(6)
    y = ["cat", "dog", "cat", missing, "dog", "cat"]
    with pytest.raises(
        ValueError, match=r"y\[3\] is (None|nan): every sample needs a label"
    ):
        tiny(max_epochs=1).fit(X, y)
