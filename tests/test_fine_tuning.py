"""The shared fine-tuning base: its hooks, its signature, prediction on a device.

``FineTunedClassifier`` has its own file; here the base is exercised through
it and through two toy tasks built from the hooks alone -- a regressor and a
multilabel classifier, the subclasses the base is designed to keep small.
"""

import inspect
import pickle

import numpy as np
import pytest
import torch
from _helpers import make_tiny_cnn
from sklearn.base import ClassifierMixin, RegressorMixin, clone
from sklearn.utils._param_validation import StrOptions
from torch import nn

from sktransfer import FineTunedClassifier
from sktransfer._torch_utils import module_device
from sktransfer.fine_tuning._base import BaseFineTuner, init_with
from sktransfer.fine_tuning._net import _same_device

pytestmark = pytest.mark.usefixtures("one_thread")


def _identity(outputs):
    return outputs.double()


def _sigmoid(outputs):
    return torch.sigmoid(outputs.double())


class ToyRegressor(RegressorMixin, BaseFineTuner):
    """A regressor from the hooks alone: standardised targets, squared error."""

    _parameter_constraints = {
        **BaseFineTuner._parameter_constraints,
        "loss": [StrOptions({"squared_error", "absolute_error"})],
    }
    __init__ = init_with(loss="squared_error")

    def _check_targets(self, y):
        return np.asarray(y, dtype=np.float64)

    def _encode_targets(self, y, sample_weight):
        y2 = y.reshape(len(y), -1)
        self.mean_, self.scale_ = y2.mean(axis=0), y2.std(axis=0)
        self.n_outputs_, self._one_d = y2.shape[1], y.ndim == 1
        return ((y2 - self.mean_) / self.scale_).astype(np.float32)

    def _n_outputs(self):
        return self.n_outputs_

    def _criterion(self):
        return {"squared_error": nn.MSELoss, "absolute_error": nn.L1Loss}[self.loss]

    def _predict_nonlinearity(self):
        return _identity

    def predict(self, X):
        out = self._predict_outputs(X) * self.scale_ + self.mean_
        return out[:, 0] if self._one_d else out


class ToyMultilabel(ClassifierMixin, BaseFineTuner):
    """A multilabel classifier from the hooks: sigmoid outputs, binary CE."""

    def _check_targets(self, y):
        return np.asarray(y)

    def _encode_targets(self, y, sample_weight):
        self.n_labels_ = y.shape[1]
        return y.astype(np.float32)

    def _n_outputs(self):
        return self.n_labels_

    def _criterion(self):
        return nn.BCEWithLogitsLoss

    def _predict_nonlinearity(self):
        return _sigmoid

    def predict_proba(self, X):
        return self._predict_outputs(X)

    def predict(self, X):
        return (self.predict_proba(X) > 0.5).astype(int)


def images(n=32, seed=0):
    """Images whose brightness (the target) is spread over [40, 200]."""
    rng = np.random.RandomState(seed)
    level = rng.uniform(40, 200, n)
    noise = rng.randint(-10, 10, (n, 12, 12, 3))
    X = np.clip(level[:, None, None, None] + noise, 0, 255).astype(np.uint8)
    return X, level


def toy(cls=ToyRegressor, **kwargs):
    params = dict(
        image_size=16,
        max_epochs=10,
        batch_size=8,
        lr=0.05,
        freeze="none",
        augment=False,
        random_state=0,
        progress=False,
    )
    params.update(kwargs)
    return cls(make_tiny_cnn(), **params)


# ----------------------------------------------------------------- the hooks
def test_regressor_from_the_hooks_learns_in_original_units():
    X, level = images()
    reg = toy().fit(X, level * 1e3)
    X_test, level_test = images(16, seed=1)
    pred = reg.predict(X_test)
    assert pred.shape == (16,)
    assert reg.score(X_test, level_test * 1e3) > 0.9
    assert abs(np.mean(pred) / 1e3 - np.mean(level_test)) < 20
    assert reg.module_.head[-1].out_features == 1
    # No classes, so no stratification and no accuracy in the history.
    es = toy(early_stopping=True, max_epochs=2).fit(X, level)
    assert "valid_loss" in es.history_[-1] and "valid_acc" not in es.history_[-1]


def test_two_dimensional_targets_share_one_head_and_loss_per_sample():
    X, level = images()
    y = np.c_[level, -2 * level]
    reg = toy(max_epochs=2, freeze="backbone").fit(X, y)  # the fast path
    assert reg.predict(X).shape == (32, 2)
    assert reg.module_.head[-1].out_features == 2
    y_pred, target = torch.randn(5, 2), torch.randn(5, 2)
    w = torch.tensor([0.0, 2.0, 1.0, 0.0, 3.0])
    per_sample = ((y_pred - target) ** 2).mean(dim=1)
    torch.testing.assert_close(
        reg.net_.get_loss(y_pred, (target, w)), (w * per_sample).sum() / w.sum()
    )


def test_own_parameter_routes_to_the_criterion():
    X, level = images(16)
    reg = toy(loss="absolute_error", max_epochs=1).fit(X, level)
    assert isinstance(reg.net_.criterion_, nn.L1Loss)
    assert reg.net_.criterion_.reduction == "none"
    with pytest.raises(ValueError, match=r"'loss' parameter of ToyRegressor must be"):
        toy(loss="huber").fit(X, level)


def test_multilabel_from_the_hooks():
    X, level = images()
    Y = np.c_[level > 120, level < 80].astype(int)
    clf = toy(ToyMultilabel).fit(X, Y)
    proba = clf.predict_proba(X)
    assert proba.shape == (32, 2) and ((proba >= 0) & (proba <= 1)).all()
    assert np.mean(clf.predict(X) == Y) > 0.9
    assert isinstance(clf.net_.criterion_, nn.BCEWithLogitsLoss)


def test_errors_name_the_estimator():
    X, level = images(8)
    with pytest.raises(ValueError, match=r"ToyRegressor requires y to be passed"):
        toy().fit(X, None)
    with pytest.raises(TypeError, match=r"ToyRegressor got unexpected parameter"):
        toy(foo=1).fit(X, level)
    with pytest.raises(ValueError, match=r"which ToyRegressor gives its own"):
        toy(callbacks=[("lr_schedule", None)]).fit(X, level)
    with pytest.raises(ValueError, match=r"ToyRegressor needs a module returning"):
        ToyRegressor(nn.Conv2d(3, 4, 3), image_size=8, progress=False).fit(X, level)


def test_the_base_alone_is_abstract():
    with pytest.raises(TypeError, match=r"abstract"):
        BaseFineTuner()


# ---------------------------------------------------------------- parameters
def test_init_with_gives_one_explicit_signature():
    params = inspect.signature(FineTunedClassifier).parameters
    shared = inspect.signature(BaseFineTuner).parameters
    assert list(params) == [*list(shared)[:-1], "class_weight", "kwargs"]
    assert params["class_weight"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["class_weight"].default is None
    assert "class_weight" not in inspect.signature(ToyRegressor).parameters
    assert repr(ToyRegressor(loss="absolute_error")) == (
        "ToyRegressor(loss='absolute_error')"
    )
    reg = ToyRegressor(lr=0.1, optimizer__weight_decay=0.0)
    twin = clone(reg)
    assert twin.get_params() == reg.get_params()
    assert twin.get_params()["loss"] == "squared_error"
    with pytest.raises(TypeError, match=r"positional argument"):
        FineTunedClassifier("resnet18", "DEFAULT")


def test_batch_size_auto_is_resolved_for_the_device():
    X, level = images(16)
    reg = toy(batch_size="auto", max_epochs=1).fit(X, level)
    assert reg.net_.batch_size == 8  # on the CPU
    assert reg.get_params()["batch_size"] == "auto"


# -------------------------------------------------- prediction on a device
def test_another_device_predicts_with_a_kept_copy_and_leaves_net_alone():
    X, level = images(16)
    reg = toy(max_epochs=1).fit(X, level)
    net = reg.net_
    reg.set_params(device="meta")
    placed = reg._inference_net()
    assert placed is not net and placed.device == "meta"
    assert module_device(placed.module_).type == "meta"
    assert net.device == "cpu" and module_device(net.module_).type == "cpu"
    assert placed.history is net.history and placed.module_ is not net.module_
    assert reg._inference_net() is placed  # made once
    assert "_placed" in vars(reg)
    assert "_placed" not in vars(pickle.loads(pickle.dumps(reg)))
    assert "_placed" in vars(reg)  # pickling leaves the estimator alone
    reg.set_params(device="cpu")
    assert reg._inference_net() is net
    reg.fit(X, level)
    assert "_placed" not in vars(reg)  # a new fit drops the old copy


def test_a_copy_on_the_cpu_predicts_the_same():
    X, level = images(16)
    reg = toy(max_epochs=1).fit(X, level)
    expected = reg.predict(X)
    reg.net_.device = "meta"  # as if net_ ran elsewhere: prediction copies it
    np.testing.assert_array_equal(reg.predict(X), expected)
    placed = reg._inference_net()
    assert placed is not reg.net_ and placed.device == "cpu"
    assert reg.net_.device == "meta"


def test_same_device_reads_cuda_as_the_current_one(monkeypatch):
    cpu, cuda, cuda0, cuda1 = (
        torch.device(d) for d in ("cpu", "cuda", "cuda:0", "cuda:1")
    )
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert _same_device(cuda, cuda0) and _same_device(cuda0, cuda)
    assert not _same_device(cuda, cuda1) and not _same_device(cpu, cuda0)
    assert _same_device(cpu, cpu) and _same_device(cuda, cuda)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert _same_device(cuda, cuda1) and not _same_device(cuda, cuda0)
    assert _same_device(torch.device("mps"), torch.device("mps:0"))
