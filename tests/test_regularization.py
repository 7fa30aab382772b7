"""L2-SP: the pull toward the pretrained weights, its gradient, and the recipes."""

import pickle

import numpy as np
import pytest
import torch
from _helpers import make_tiny_cnn
from test_classifier import blobs, tiny

from sktransfer.backbones import load_backbone
from sktransfer.fine_tuning._regularization import L2SP

# Tiny tensors: one torch thread (see conftest's one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


def pretrained_trunk():
    return {
        k: v.clone()
        for k, v in load_backbone(make_tiny_cnn()).trunk.state_dict().items()
    }


def relative_change(before, module):
    params = {k: p.detach() for k, p in module.named_parameters()}
    num = sum(
        float(((params[k] - v) ** 2).sum()) for k, v in before.items() if k in params
    )
    den = sum(float((v**2).sum()) for k, v in before.items() if k in params)
    return (num / den) ** 0.5


def test_huge_strength_keeps_the_backbone_while_the_head_trains():
    X, y = blobs(32)
    before = pretrained_trunk()
    plain = tiny(max_epochs=4, lr=0.05, augment=False).fit(X, y)
    clf = tiny(max_epochs=4, lr=0.05, augment=False, l2sp=1e6).fit(X, y)
    assert relative_change(before, clf.module_.trunk) < 1e-3
    assert relative_change(before, plain.module_.trunk) > 1e-2
    losses = clf.history_[:, "train_loss"]
    assert losses[-1] < 0.5 * losses[0]  # the head still learns
    assert np.mean(clf.predict(X) == y) > 0.9


def test_zero_strength_is_the_plain_recipe_bit_for_bit():
    X, y = blobs(24)
    plain = tiny(max_epochs=2, module__dropout=0.2).fit(X, y)
    zero = tiny(max_epochs=2, module__dropout=0.2, l2sp=0.0).fit(X, y)
    np.testing.assert_array_equal(plain.predict_proba(X), zero.predict_proba(X))
    for (k, a), b in zip(
        plain.module_.state_dict().items(),
        zero.module_.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b), k
    assert "l2sp" not in dict(zero.net_.callbacks_)
    on = tiny(max_epochs=2, module__dropout=0.2, l2sp=1.0).fit(X, y)
    assert "l2sp" in dict(on.net_.callbacks_)
    assert not np.array_equal(plain.predict_proba(X), on.predict_proba(X))


def test_moderate_strength_stays_closer_than_plain_fine_tuning():
    X, y = blobs(32)
    before = pretrained_trunk()
    params = dict(max_epochs=4, lr=0.05, augment=False, optimizer__weight_decay=0.0)
    plain = tiny(**params).fit(X, y)
    l2sp = tiny(l2sp=20.0, **params).fit(X, y)
    assert relative_change(before, l2sp.module_.trunk) < 0.7 * relative_change(
        before, plain.module_.trunk
    )


def _callback_on(module, alpha):
    class Net:
        pass

    net = Net()
    net.module_ = module
    callback = L2SP(alpha, prefix="trunk.").initialize()
    callback.on_train_begin(net)
    return net, callback


def _toy_module():
    torch.manual_seed(0)
    module = torch.nn.Module()
    module.trunk = torch.nn.Linear(3, 2)
    module.head = torch.nn.Linear(2, 1)
    return module.double()


def _finite_difference_gradient(callback, module, p, eps=1e-6):
    """Central differences of the penalty along each coordinate of ``p``."""
    grad = torch.zeros_like(p)
    flat = p.data.view(-1)
    for i in range(p.numel()):
        at = float(flat[i])
        flat[i] = at + eps
        up = float(callback.penalty(module))
        flat[i] = at - eps
        down = float(callback.penalty(module))
        flat[i] = at
        grad.view(-1)[i] = (up - down) / (2 * eps)
    return grad


def test_penalty_gradient_matches_finite_differences():
    module = _toy_module()
    net, callback = _callback_on(module, alpha=0.7)
    with torch.no_grad():
        for p in module.trunk.parameters():
            p.add_(torch.randn_like(p))
    callback.penalty(module).backward()
    for name, p in module.trunk.named_parameters():
        numeric = _finite_difference_gradient(callback, module, p)
        torch.testing.assert_close(p.grad, numeric, rtol=1e-6, atol=1e-8, msg=name)
    assert module.head.weight.grad is None  # the head is not in the penalty


def test_the_step_is_the_implicit_gradient_step_of_the_penalty():
    """``w_new = w - lr * grad(penalty)(w_new)``, the gradient by finite differences."""
    module = _toy_module()
    net, callback = _callback_on(module, alpha=3.0)
    lr = 0.2
    net.optimizer_ = torch.optim.SGD(module.parameters(), lr=lr)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p))
    old = {k: v.detach().clone() for k, v in module.named_parameters()}
    callback.on_batch_end(net, training=True)
    for name, p in module.trunk.named_parameters():
        grad = _finite_difference_gradient(callback, module, p)  # at w_new
        expected = old["trunk." + name] - lr * grad
        torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=1e-8)
    for name in ("head.weight", "head.bias"):  # the head is left to the optimizer
        assert torch.equal(dict(module.named_parameters())[name], old[name])
    callback.on_batch_end(net, training=False)  # validation batches: no step


def test_frozen_groups_are_not_penalised_and_unfrozen_ones_are():
    X, y = blobs(24)
    before = pretrained_trunk()
    clf = tiny(freeze=1, l2sp=5.0, lr=0.05, augment=False).fit(X, y)
    after = clf.module_.trunk.state_dict()
    for key in before:
        if key.startswith(("stem.", "stage1.")):  # frozen: bit-identical
            assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["stage2.0.weight"], after["stage2.0.weight"])
    assert dict(clf.net_.callbacks_)["l2sp"].alpha == 5.0
    # Unfreezing later: the groups freed at epoch 1 are pulled toward w0 too.
    later = tiny(freeze="backbone", unfreeze=1, l2sp=1e6, lr=0.05, max_epochs=3)
    later.fit(X, y)
    assert relative_change(before, later.module_.trunk) < 1e-3
    assert later.history_[:, "trainable_groups"] == [0, 3, 3]


def test_strength_is_routed_and_pickles_without_the_reference():
    X, y = blobs(16)
    clf = tiny(max_epochs=1, l2sp=1.0, callbacks__l2sp__alpha=2.0).fit(X, y)
    callback = dict(clf.net_.callbacks_)["l2sp"]
    assert callback.alpha == 2.0 and callback._reference is not None
    restored = pickle.loads(pickle.dumps(clf))
    assert dict(restored.net_.callbacks_)["l2sp"]._reference is None
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("strength", [-1.0, "high"])
def test_bad_strength_raises(strength):
    X, y = blobs(8)
    with pytest.raises(ValueError, match=r"'l2sp' parameter of FineTunedClassifier"):
        tiny(max_epochs=1, l2sp=strength).fit(X, y)


def test_own_callback_name_is_reserved():
    X, y = blobs(8)
    with pytest.raises(ValueError, match=r"uses the name\(s\) \['l2sp'\]"):
        tiny(max_epochs=1, callbacks=[("l2sp", None)]).fit(X, y)


def test_the_regressor_takes_it_too():
    from sktransfer import FineTunedRegressor

    rng = np.random.RandomState(0)
    X = rng.randint(0, 255, (16, 12, 12, 3)).astype(np.uint8)
    reg = FineTunedRegressor(
        make_tiny_cnn(), image_size=16, max_epochs=2, l2sp=1e6, progress=False
    ).fit(X, X.mean(axis=(1, 2, 3)))
    assert relative_change(pretrained_trunk(), reg.module_.trunk) < 1e-3
