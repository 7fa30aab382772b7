import math

import numpy as np
import pytest
import torch
from skorch import NeuralNet, NeuralNetClassifier
from skorch.callbacks import Freezer
from skorch.helper import predefined_split
from torch import nn

from sktransfer.callbacks import (
    EarlyStopping,
    LayerFreezer,
    LRSchedule,
    WeightedValidScores,
    freeze_plan,
    per_sample_losses,
)

# Tiny tensors: one torch thread (see conftest's one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


def _bn_net():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2)
        )


def _data():
    rng = np.random.RandomState(0)
    X = rng.randn(64, 4).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int64)


BODY = [["0.weight", "0.bias", "1.weight", "1.bias"]]


def _fit(callbacks, epochs=2):
    module = _bn_net()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    net = NeuralNetClassifier(
        module,
        max_epochs=epochs,
        lr=0.1,
        train_split=None,
        verbose=0,
        callbacks=callbacks,
    )
    net.fit(*_data())
    return before, net.module_.state_dict()


def test_layer_freezer_keeps_batchnorm_statistics():
    before, after = _fit([("freezer", LayerFreezer(BODY, trainable=0))])
    for key in ("0.weight", "1.weight", "1.running_mean", "1.running_var"):
        assert torch.equal(before[key], after[key]), key
    assert int(after["1.num_batches_tracked"]) == 0
    assert not torch.equal(before["3.weight"], after["3.weight"])  # head trains


def test_skorch_freezer_lets_batchnorm_statistics_drift():
    # The defect LayerFreezer fixes: skorch's Freezer only sets requires_grad.
    before, after = _fit([("freezer", Freezer(["0.*", "1.*"]))])
    assert torch.equal(before["0.weight"], after["0.weight"])
    assert not torch.equal(before["1.running_mean"], after["1.running_mean"])


def test_layer_freezer_schedule_and_history():
    module = _bn_net()
    net = NeuralNetClassifier(
        module,
        max_epochs=3,
        train_split=None,
        verbose=0,
        callbacks=[("freezer", LayerFreezer(BODY, trainable=0, schedule={2: 1}))],
    )
    net.fit(*_data())
    assert net.history[:, "trainable_groups"] == [0, 0, 1]
    freezer = dict(net.callbacks_)["freezer"]
    assert freezer._handles == []  # hooks removed after training
    assert not any(m._forward_pre_hooks for m in net.module_.modules())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(trainable=2), r"trainable=2 is out of range; the module has 1"),
        (dict(schedule={1: 5}), r"schedule\[1\]=5 is out of range"),
    ],
)
def test_layer_freezer_range_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LayerFreezer(BODY, **kwargs).initialize()


def test_lr_schedule_factors():
    step = LRSchedule("step", step_size=7, gamma=0.1)
    assert [step.factor(0, e) for e in (0, 6, 7, 14)] == pytest.approx(
        [1, 1, 0.1, 0.01]
    )
    cosine = LRSchedule("cosine")
    assert cosine.factor(0) == 1 and cosine.factor(1) == pytest.approx(0)
    assert cosine.factor(0.5) == pytest.approx(0.5)
    one = LRSchedule("onecycle", div_factor=25, final_div_factor=1e4)
    assert one.factor(0) == pytest.approx(1 / 25)
    assert one.factor(0.25) == pytest.approx(1)
    assert one.factor(1) == pytest.approx(1 / 25 / 1e4)
    assert LRSchedule().factor(0.3, 9) == 1


def test_lr_schedule_keeps_group_ratios_and_restarts():
    module = _bn_net()
    net = NeuralNetClassifier(
        module,
        max_epochs=4,
        lr=1.0,
        batch_size=64,  # one batch per epoch
        train_split=None,
        verbose=0,
        optimizer__param_groups=[("0.*", {"lr": 0.1})],
        callbacks=[("lr_schedule", LRSchedule("cosine", restarts=(2,)))],
    )
    net.fit(*_data())
    lrs = [row["batches"][0]["lr"] for row in net.history]  # head group's rate
    expected = [1.0, 0.5 * (1 + math.cos(math.pi / 2))] * 2  # restart at epoch 2
    assert lrs == pytest.approx(expected)
    groups = net.optimizer_.param_groups
    assert groups[0]["lr"] == pytest.approx(0.1 * groups[1]["lr"])


def test_lr_schedule_unknown_policy():
    with pytest.raises(ValueError, match=r"policy='linear' is not one of"):
        LRSchedule("linear").initialize()


def test_early_stopping_restores_and_releases_best_weights():
    module = _bn_net()
    stop = EarlyStopping(patience=1, sink=lambda *a: None)
    net = NeuralNetClassifier(
        module, max_epochs=20, lr=1e-9, verbose=0, callbacks=[("es", stop)]
    )
    net.fit(*_data())
    assert len(net.history) < 20
    assert stop.load_best and stop.best_model_weights_ is None


@pytest.mark.parametrize(
    "freeze, unfreeze, expected",
    [
        ("none", None, (3, {})),
        ("backbone", None, (0, {})),
        (1, None, (1, {})),
        ("backbone", 2, (0, {2: 3})),
        ("backbone", [1, 3], (0, {1: 1, 3: 2})),
        (1, (2,), (1, {2: 2})),
    ],
)
def test_freeze_plan(freeze, unfreeze, expected):
    assert freeze_plan(freeze, unfreeze, 3) == expected


@pytest.mark.parametrize(
    "freeze, unfreeze, error, match",
    [
        (4, None, ValueError, r"freeze=4 asks to train the last 4 .* has 3"),
        ("none", 1, ValueError, r"unfreeze=1 has nothing to unfreeze"),
        ("backbone", [2, 1], ValueError, r"strictly increasing"),
        ("backbone", [1, 2, 3, 4], ValueError, r"lists 4 epochs but only 3"),
        ("backbone", {1: 2}, TypeError, r"unfreeze must be None, an int or a seq"),
    ],
)
def test_freeze_plan_errors(freeze, unfreeze, error, match):
    with pytest.raises(error, match=match):
        freeze_plan(freeze, unfreeze, 3)


# ---------------------------------------------------------- weighted validation
class _Weighted(torch.utils.data.Dataset):
    """Items (x, (y, w)), as the fine-tuning estimators' datasets yield them."""

    def __init__(self, X, y, w):
        self.X, self.y = torch.as_tensor(X), torch.as_tensor(y)
        self.w = torch.as_tensor(w, dtype=torch.float32)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.X[i], (self.y[i], self.w[i])


class _WeightedNet(NeuralNet):
    def get_default_callbacks(self):
        return [("valid_scores", WeightedValidScores({"valid_acc": _correct}))]

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y, w = y_true
        losses = per_sample_losses(self.criterion_, y_pred, y)
        return (w * losses).sum() / w.sum()


def _correct(y_pred, y):
    return (y_pred.argmax(dim=1) == y).float()


def _weighted_fit(w_valid, epochs=2):
    X, y = _data()
    w = np.random.RandomState(1).uniform(0.1, 3, len(y))
    w[48:] = w_valid
    net = _WeightedNet(
        _bn_net(),
        criterion=nn.CrossEntropyLoss(reduction="none"),
        max_epochs=epochs,
        lr=0.1,
        batch_size=5,  # uneven batches: batch means would differ
        train_split=predefined_split(_Weighted(X[48:], y[48:], w[48:])),
        verbose=0,
    )
    net.fit(_Weighted(X[:48], y[:48], w[:48]), None)
    return net, X[48:], y[48:], w[48:]


def test_weighted_valid_scores_are_exact_weighted_means():
    net, X, y, w = _weighted_fit(np.r_[np.full(8, 3.0), np.full(8, 0.2)])
    logits = net.forward(X)
    losses = nn.functional.cross_entropy(logits, torch.as_tensor(y), reduction="none")
    expected_loss = float((torch.as_tensor(w) * losses.double()).sum() / w.sum())
    expected_acc = np.sum(w * (logits.argmax(1).numpy() == y)) / w.sum()
    assert net.history[-1, "valid_loss"] == pytest.approx(expected_loss, rel=1e-6)
    assert net.history[-1, "valid_acc"] == pytest.approx(expected_acc)
    assert net.history[0, "valid_loss_best"] and net.history[0, "valid_acc_best"]
    losses = net.history[:, "valid_loss"]
    assert net.history[1, "valid_loss_best"] == (losses[1] < losses[0])


def test_weighted_valid_scores_skip_weightless_validation():
    net, *_ = _weighted_fit(0.0)
    assert "valid_loss" not in net.history[-1]
    assert "valid_acc" not in net.history[-1]


def test_weighted_valid_scores_best_flags_follow_direction():
    callback = WeightedValidScores({"valid_acc": _correct})

    class History(list):
        def record(self, key, value):
            self.append((key, value))

    class Net:
        criterion_ = nn.CrossEntropyLoss(reduction="none")
        history = History()

    net, dataset = Net(), object()
    y = torch.tensor([0, 1])
    callback.on_train_begin(net)
    for logits in ([[2.0, 0.0], [0.0, 2.0]], [[0.0, 2.0], [2.0, 0.0]]):
        callback.on_epoch_begin(net)
        batch = (None, (y, torch.ones(2)))
        callback.on_batch_end(net, batch, training=False, y_pred=torch.tensor(logits))
        callback.on_batch_end(net, batch, training=True, y_pred=torch.tensor(logits))
        callback.on_epoch_end(net, dataset_valid=dataset)
    flags = [(k, v) for k, v in net.history if k.endswith("_best")]
    assert flags == [
        ("valid_loss_best", True),
        ("valid_acc_best", True),
        ("valid_loss_best", False),  # the loss went up
        ("valid_acc_best", False),  # the accuracy went down
    ]
    assert dict(net.history[:4])["valid_acc"] == 1.0


def test_per_sample_losses_average_over_outputs():
    y_pred = torch.tensor([[0.0, 2.0], [1.0, 1.0]], dtype=torch.float64)
    target = torch.zeros(2, 2)
    mse = nn.MSELoss(reduction="none")
    got = per_sample_losses(mse, y_pred, target)
    assert got.dtype == torch.float32  # predictions are taken as float32
    torch.testing.assert_close(got, torch.tensor([2.0, 1.0]))
    ce = nn.CrossEntropyLoss(reduction="none")
    labels = torch.tensor([1, 0])
    torch.testing.assert_close(
        per_sample_losses(ce, y_pred, labels), ce(y_pred.float(), labels)
    )
