"""skorch callbacks for fine-tuning: freezing that really freezes, LR schedules.

These callbacks work with any :class:`skorch.NeuralNet`, not only with
:class:`~sktransfer.FineTunedClassifier`, which adds them under fixed names
(``"freezer"``, ``"lr_schedule"``, ``"early_stopping"``) so that their
parameters can be set and grid-searched as ``callbacks__<name>__<param>``.

* :class:`LayerFreezer` freezes the bottom layer groups of a module and
  unfreezes them from the top on a schedule of epochs (progressive
  unfreezing). Unlike :class:`skorch.callbacks.Freezer`, which only sets
  ``requires_grad=False``, it also keeps the frozen modules in evaluation mode
  while the net trains, so BatchNorm running statistics of frozen layers stay
  bit-identical.
* :class:`LRSchedule` sets each parameter group's learning rate at every batch
  from a named policy (step decay, cosine, one-cycle), keeping the ratios
  between parameter groups (discriminative learning rates) and restarting the
  cycle when layers are unfrozen, as fastai's ``fine_tune`` does.
* :class:`EarlyStopping` is skorch's, restoring the best weights by default
  and releasing the copy it kept once they are restored.
* :class:`WeightedValidScores` records the validation loss and scores weighted
  by the validation samples' weights, for nets whose targets carry them.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.callbacks import EarlyStopping as _SkorchEarlyStopping

__all__ = [
    "EarlyStopping",
    "LRSchedule",
    "LayerFreezer",
    "WeightedValidScores",
    "per_sample_losses",
]

LR_POLICIES = ("constant", "step", "cosine", "onecycle")


def _keep_eval(module, args):
    """Forward pre-hook: run ``module`` in evaluation mode whatever the net says.

    skorch calls ``module_.train()`` before every training step, which would put
    BatchNorm layers back into the mode where they update their running
    statistics; this hook undoes that for frozen layers right before they run.
    """
    if module.training:
        module.train(False)


class LayerFreezer(Callback):
    """Freeze layer groups -- parameters and BatchNorm statistics -- on a schedule.

    The groups are ordered from the stem (first) to the last stage. The top
    ``trainable`` groups train; the others are frozen: their parameters get
    ``requires_grad=False`` **and** the modules owning them run in evaluation
    mode during training, so BatchNorm running statistics and dropout in the
    frozen part do not change. ``schedule`` unfreezes more groups from the top
    at given epochs (progressive unfreezing, or fastai's ``fine_tune`` with one
    entry).

    The optimizer must hold all parameters from the start (it does by default):
    frozen parameters get no gradient, which every torch optimizer skips, so
    their values, momentum and weight decay are untouched until unfrozen.

    Parameters
    ----------
    groups : sequence of sequences of str
        Parameter names (as in ``net.module_.named_parameters()``) of each layer
        group, ordered from the stem to the top.
    trainable : int or None, default=None
        How many groups, counted from the top, train at the start; ``None``
        means all of them, ``0`` none (only parameters outside ``groups``, such
        as a classification head, train).
    schedule : mapping of int to int, or None, default=None
        ``{epoch: n_trainable}``: from the given epoch (0-based) on, the top
        ``n_trainable`` groups train.
    root : str or None, default=None
        Name of the submodule that ``groups`` cover (``"trunk"``). When every
        group is frozen this whole submodule is kept in evaluation mode, which
        also covers normalisation layers without parameters and dropout.

    Attributes
    ----------
    n_trainable_ : int
        Number of groups training now.

    Examples
    --------
    >>> import torch
    >>> from skorch import NeuralNetClassifier
    >>> from sktransfer.callbacks import LayerFreezer
    >>> module = torch.nn.Sequential(
    ...     torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2)
    ... )
    >>> freezer = LayerFreezer([["0.weight", "0.bias", "1.weight", "1.bias"]], 0)
    >>> net = NeuralNetClassifier(
    ...     module, max_epochs=2, train_split=None, verbose=0,
    ...     callbacks=[("freezer", freezer)],
    ... )
    >>> X = torch.randn(32, 4).numpy()
    >>> y = (X[:, 0] > 0).astype("int64")
    >>> stats = module[1].running_mean.clone()
    >>> _ = net.fit(X, y)
    >>> bool(torch.equal(net.module_[1].running_mean, stats))
    True
    """

    def __init__(self, groups, trainable=None, schedule=None, root=None):
        self.groups = groups
        self.trainable = trainable
        self.schedule = schedule
        self.root = root

    def initialize(self):
        """Check the configuration and reset the state."""
        n = len(self.groups)
        for name, value in [("trainable", self.trainable)] + [
            (f"schedule[{k!r}]", v) for k, v in dict(self.schedule or {}).items()
        ]:
            if value is not None and not 0 <= value <= n:
                raise ValueError(
                    f"LayerFreezer: {name}={value!r} is out of range; the module "
                    f"has {n} layer groups, so use an integer from 0 to {n}."
                )
        self._handles = []
        self.n_trainable_ = n if self.trainable is None else int(self.trainable)
        return self

    def on_train_begin(self, net, **kwargs):
        """Freeze the bottom groups."""
        self._apply(net, self.n_trainable_)

    def on_epoch_begin(self, net, **kwargs):
        """Unfreeze the groups scheduled for this epoch."""
        epoch = len(net.history) - 1  # skorch has just opened this epoch's row
        schedule = dict(self.schedule or {})
        if epoch in schedule:
            self._apply(net, schedule[epoch])
        net.history.record("trainable_groups", self.n_trainable_)

    def on_train_end(self, net, **kwargs):
        """Remove the hooks, so that the module at rest is plain."""
        self._remove_hooks()

    def _remove_hooks(self):
        for handle in getattr(self, "_handles", []):
            handle.remove()
        self._handles = []

    def _apply(self, net, n_trainable: int):
        module = net.module_
        params = dict(module.named_parameters())
        n = len(self.groups)
        n_trainable = n if n_trainable is None else int(n_trainable)
        frozen = self.groups[: n - n_trainable]
        for i, names in enumerate(self.groups):
            for name in names:
                params[name].requires_grad_(i >= n - n_trainable)
        self._remove_hooks()
        owners = OrderedDict()
        for names in frozen:
            for name in names:
                owners[name.rpartition(".")[0]] = None
        targets = [module.get_submodule(path) for path in owners]
        if n_trainable == 0 and self.root is not None:
            targets = [module.get_submodule(self.root)]
        for target in targets:
            target.train(False)
            self._handles.append(target.register_forward_pre_hook(_keep_eval))
        self.n_trainable_ = n_trainable

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_handles"] = []  # hook handles hold weak references
        return state


class LRSchedule(Callback):
    """Set the learning rate of every parameter group at each training batch.

    Each group keeps its own base rate (the one the optimizer was built with),
    so discriminative learning rates keep their ratios; the policy gives the
    factor applied to all of them.

    Parameters
    ----------
    policy : {"constant", "step", "cosine", "onecycle"}, default="constant"
        ``"step"`` multiplies by ``gamma`` every ``step_size`` epochs (the
        PyTorch transfer-learning tutorial's step 7, gamma 0.1); ``"cosine"``
        anneals to zero; ``"onecycle"`` warms up from ``1 / div_factor`` for the
        first ``pct_start`` of the steps, then anneals to
        ``1 / (div_factor * final_div_factor)`` (Smith's one-cycle policy, as
        fastai uses it).
    step_size : int, default=7
        Epochs between two decays of ``"step"``.
    gamma : float, default=0.1
        Decay factor of ``"step"``.
    pct_start : float, default=0.25
        Share of the steps spent warming up in ``"onecycle"``.
    div_factor : float, default=25.0
        Initial rate is the base rate divided by this (``"onecycle"``).
    final_div_factor : float, default=1e4
        Final rate is the initial rate divided by this (``"onecycle"``).
    restarts : sequence of int, default=()
        Epochs at which ``"cosine"`` and ``"onecycle"`` start a new cycle, e.g.
        when layers are unfrozen.

    Examples
    --------
    >>> from sktransfer.callbacks import LRSchedule
    >>> schedule = LRSchedule("onecycle")
    >>> [round(schedule.factor(t), 3) for t in (0.0, 0.25, 1.0)]
    [0.04, 1.0, 0.0]
    """

    def __init__(
        self,
        policy="constant",
        *,
        step_size=7,
        gamma=0.1,
        pct_start=0.25,
        div_factor=25.0,
        final_div_factor=1e4,
        restarts=(),
    ):
        self.policy = policy
        self.step_size = step_size
        self.gamma = gamma
        self.pct_start = pct_start
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.restarts = restarts

    def initialize(self):
        """Check the policy and reset the state."""
        if self.policy not in LR_POLICIES:
            raise ValueError(
                f"LRSchedule: policy={self.policy!r} is not one of {LR_POLICIES}."
            )
        self._base_lrs = None
        return self

    def factor(self, t: float, epoch: int = 0) -> float:
        """The multiplier at fraction ``t`` of the current cycle (or ``epoch``)."""
        if self.policy == "constant":
            return 1.0
        if self.policy == "step":
            return self.gamma ** (epoch // self.step_size)
        if self.policy == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * t))
        low = 1.0 / self.div_factor
        if t < self.pct_start:
            frac = t / self.pct_start
            return low + (1.0 - low) * 0.5 * (1.0 - math.cos(math.pi * frac))
        end = low / self.final_div_factor
        frac = (t - self.pct_start) / max(1.0 - self.pct_start, 1e-12)
        return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * frac))

    def on_train_begin(self, net, **kwargs):
        """Remember each parameter group's base rate."""
        self._base_lrs = [group["lr"] for group in net.optimizer_.param_groups]

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        """Locate the epoch in its cycle."""
        self._epoch = len(net.history) - 1
        batch_size = net.get_params_for("iterator_train").get(
            "batch_size", net.batch_size
        )
        n = len(dataset_train) if dataset_train is not None else 1
        self._steps = max(1, math.ceil(n / batch_size)) if batch_size > 0 else 1
        self._batch = 0
        starts = sorted({0, *(int(r) for r in self.restarts)})
        self._start = max(s for s in starts if s <= self._epoch)
        later = [s for s in starts if s > self._start]
        self._end = min(later) if later else net.max_epochs

    def on_batch_begin(self, net, training=False, **kwargs):
        """Set the rates for this training batch."""
        if not training or self._base_lrs is None:
            return
        span = max(1, (self._end - self._start) * self._steps)
        t = min(1.0, ((self._epoch - self._start) * self._steps + self._batch) / span)
        factor = self.factor(t, self._epoch)
        for group, base in zip(
            net.optimizer_.param_groups, self._base_lrs, strict=True
        ):
            group["lr"] = base * factor
        self._batch += 1
        net.history.record_batch("lr", net.optimizer_.param_groups[-1]["lr"])


class EarlyStopping(_SkorchEarlyStopping):
    """skorch's early stopping, restoring the best weights by default.

    Identical to :class:`skorch.callbacks.EarlyStopping` except that
    ``load_best=True`` by default and the copy of the best weights is released
    once restored (it would otherwise stay in memory for the model's lifetime).
    """

    def __init__(self, monitor="valid_loss", patience=5, threshold=1e-4, **kwargs):
        kwargs.setdefault("load_best", True)
        super().__init__(
            monitor=monitor, patience=patience, threshold=threshold, **kwargs
        )

    def on_train_end(self, net, **kwargs):
        """Restore the best weights, then release their copy."""
        super().on_train_end(net, **kwargs)
        self.best_model_weights_ = None


def per_sample_losses(criterion, y_pred, y) -> torch.Tensor:
    """One loss per sample from a criterion built with ``reduction="none"``.

    A criterion returning several values per sample (one per output or label
    of a multi-output or multilabel task) is averaged over them, so that a
    sample weight multiplies one number.

    Examples
    --------
    >>> import torch
    >>> from sktransfer.callbacks import per_sample_losses
    >>> mse = torch.nn.MSELoss(reduction="none")
    >>> per_sample_losses(mse, torch.zeros(2, 3), torch.ones(2, 3))
    tensor([1., 1.])
    """
    losses = criterion(y_pred.float(), y)
    if losses.ndim > 1:
        losses = losses.reshape(len(losses), -1).mean(dim=1)
    return losses


class WeightedValidScores(Callback):
    """Validation loss and scores, weighted by the validation sample weights.

    For nets whose targets are ``(y, sample_weight)`` pairs -- as the
    fine-tuning estimators' are -- and whose criterion returns per-sample
    losses (``reduction="none"``, see :func:`per_sample_losses`). At the end of
    each epoch with validation data it records ``valid_loss``,
    ``sum(w * loss) / sum(w)``, and for each entry of ``scores``
    ``sum(w * score) / sum(w)``: exact over the whole validation set, not
    averages of per-batch values. Each comes with a ``<name>_best`` flag, as
    skorch's scoring callbacks record, so that
    :class:`~sktransfer.callbacks.EarlyStopping` can monitor any of them.

    Parameters
    ----------
    scores : dict of str to callable or None, default=None
        Per-sample scores, higher is better: ``score(y_pred, y)`` returns one
        value per sample (e.g. 1.0 where the prediction is right), recorded
        under its key (e.g. ``"valid_acc"``).

    Examples
    --------
    >>> from sktransfer.callbacks import WeightedValidScores
    >>> def correct(y_pred, y):
    ...     return (y_pred.argmax(dim=1) == y).float()
    >>> callback = WeightedValidScores({"valid_acc": correct})
    """

    def __init__(self, scores=None):
        self.scores = scores

    def on_train_begin(self, net, **kwargs):
        """Reset the best values."""
        self._names = ["valid_loss", *dict(self.scores or {})]
        self._best = {name: -np.inf for name in self._names}
        self._best["valid_loss"] = np.inf

    def on_epoch_begin(self, net, **kwargs):
        """Reset the weighted sums (one per name, then the sum of the weights)."""
        self._sums = np.zeros(len(self._names) + 1)

    def on_batch_end(self, net, batch, training, y_pred=None, **kwargs):
        """Add a validation batch's weighted losses and scores."""
        if training or y_pred is None:
            return
        y, w = (t.to(y_pred.device) for t in batch[1])
        with torch.no_grad():
            values = [per_sample_losses(net.criterion_, y_pred, y)]
            values += [score(y_pred, y) for score in dict(self.scores or {}).values()]
            self._sums += [float((w * v).sum()) for v in values] + [float(w.sum())]

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        """Record the weighted means and whether each is the best so far."""
        if dataset_valid is None or self._sums[-1] <= 0:
            return
        for name, total in zip(self._names, self._sums[:-1], strict=True):
            value = total / self._sums[-1]
            if name == "valid_loss":
                better = value < self._best[name]
            else:
                better = value > self._best[name]
            net.history.record(name, value)
            net.history.record(name + "_best", bool(better))
            if better:
                self._best[name] = value


def freeze_plan(freeze, unfreeze, n_groups: int) -> tuple[int, dict[int, int]]:
    """Turn ``freeze`` and ``unfreeze`` into trainable groups and a schedule.

    Parameters
    ----------
    freeze : {"backbone", "none"} or int
        ``"backbone"`` trains no group, ``"none"`` all, an int N the top N.
    unfreeze : None, int or sequence of int
        ``None``: no change. An int E: every group trains from epoch E on
        (fastai's ``fine_tune``). A sequence ``[e1, e2, ...]``: one more group
        trains, from the top, at each listed epoch (progressive unfreezing).
    n_groups : int
        Number of layer groups.

    Returns
    -------
    trainable : int
        Groups training at the start.
    schedule : dict of int to int
        ``{epoch: n_trainable}`` for :class:`LayerFreezer`.
    """
    if freeze == "backbone":
        trainable = 0
    elif freeze == "none":
        trainable = n_groups
    else:
        trainable = int(freeze)
        if trainable > n_groups:
            raise ValueError(
                f"freeze={freeze!r} asks to train the last {trainable} layer groups "
                f"but this backbone has {n_groups}. Use an integer from 0 to "
                f"{n_groups}, 'backbone' or 'none'."
            )
    if unfreeze is None:
        return trainable, {}
    if trainable == n_groups:
        raise ValueError(
            f"unfreeze={unfreeze!r} has nothing to unfreeze: with "
            f"freeze={freeze!r} every layer group already trains. Set freeze to "
            "'backbone' or an integer, or unfreeze=None."
        )
    if isinstance(unfreeze, (int,)) and not isinstance(unfreeze, bool):
        return trainable, {int(unfreeze): n_groups}
    if isinstance(unfreeze, Mapping) or not isinstance(unfreeze, Sequence):
        raise TypeError(
            f"unfreeze must be None, an int or a sequence of ints; got "
            f"{type(unfreeze).__name__}."
        )
    epochs = [int(e) for e in unfreeze]
    if sorted(epochs) != epochs or len(set(epochs)) != len(epochs):
        raise ValueError(
            f"unfreeze={list(unfreeze)!r} must list strictly increasing epochs."
        )
    if len(epochs) > n_groups - trainable:
        raise ValueError(
            f"unfreeze lists {len(epochs)} epochs but only {n_groups - trainable} "
            f"layer groups are frozen with freeze={freeze!r}; list at most "
            f"{n_groups - trainable}."
        )
    return trainable, {e: trainable + k + 1 for k, e in enumerate(epochs)}


def group_parameters(module: torch.nn.Module, groups, prefix: str = ""):
    """Parameter names of ``module`` per layer group, plus the rest (the head).

    Returns ``(grouped, rest)``: a list of name lists (one per group, prefixed
    with ``prefix``) and the names belonging to no group.
    """
    grouped = [[prefix + name for name in g.parameters] for g in groups]
    seen = {name for names in grouped for name in names}
    rest = [name for name, _ in module.named_parameters() if name not in seen]
    return grouped, rest
