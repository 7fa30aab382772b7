"""The torch side of fine-tuning: the network, its training data and the skorch net.

The estimators of :mod:`sktransfer.fine_tuning` build these in ``fit``:

* :class:`TransferModule`, the network: a backbone trunk and a new linear head;
* :class:`FitDataset`, the training items ``(x, (y, w))``: the sample weight
  rides with the target, so it is split with the validation set, batched and
  used in the loss and in the validation scores;
* :class:`FineTuneNet`, skorch's :class:`~skorch.NeuralNet` with the hooks
  fine-tuning needs: ``initialize_optimizer`` (discriminative learning rates),
  ``get_loss`` (the normalised sample-weighted loss), ``infer`` (autocast),
  ``on_epoch_begin`` (new augmentations each epoch), pickling with the
  modules at rest on the CPU, and :meth:`~FineTuneNet.on_device`, a copy to
  predict on another device without moving the fitted net.
"""

from __future__ import annotations

import copy

import torch
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping as SkorchEarlyStopping
from skorch.callbacks import EpochTimer, PassthroughScoring, PrintLog
from torch import nn

from .._torch_utils import autocast, module_device, module_to_cpu
from ..callbacks import WeightedValidScores, per_sample_losses
from ..images import normalize_batch

__all__ = ["FineTuneNet", "FitDataset", "TransferModule", "probe_width"]


class TransferModule(nn.Module):
    """Backbone trunk + linear head; normalises uint8/float batches on the device.

    With ``precomputed`` set (the fast path of the fixed-feature-extractor
    recipe) its input is the trunk's embeddings and only the head runs.

    Parameters
    ----------
    trunk : torch.nn.Module
        The backbone, returning ``(n, n_features)`` features.
    n_features : int
        Width of the trunk's features.
    n_outputs : int
        Width of the head: classes, labels or regression targets.
    preprocessing : sktransfer.images.Preprocessing
        The statistics that normalise each batch.
    dropout : float, default=0.0
        Dropout before the head (``module__dropout``).
    bottleneck : int or None, default=None
        Width of a hidden layer (linear + ReLU) between the trunk and the
        head (``module__bottleneck``); its output is what domain adaptation
        aligns, so it lets adaptation work with a frozen backbone.
    """

    def __init__(
        self, trunk, n_features, n_outputs, preprocessing, dropout=0.0, bottleneck=None
    ):
        super().__init__()
        self.trunk = trunk
        hidden = [nn.Linear(n_features, bottleneck), nn.ReLU()] if bottleneck else []
        width = bottleneck or n_features
        self.head = nn.Sequential(
            *hidden, nn.Dropout(dropout), nn.Linear(width, n_outputs)
        )
        self.preprocessing = preprocessing
        self.precomputed = False

    # --- domain adaptation (sktransfer.adaptation._deep.DomainAdaptation) ---
    def features(self, x):
        """The head's input features of a batch of images or of embeddings."""
        if not self.precomputed:
            x = normalize_batch(x, self.preprocessing)
            x = self.trunk(x.contiguous(memory_format=torch.channels_last))
        return self.head[:-1](x)

    def classify(self, features):
        """The head's last layer on ``features``."""
        return self.head[-1](features)

    def forward(self, x):
        """Logits (or raw outputs) of a batch of images or of embeddings."""
        adaptation = getattr(self, "adaptation", None)
        if adaptation is not None and isinstance(x, tuple | list):
            # A (source, target) batch pair: adaptation keeps its loss.
            return adaptation(self, *x)
        if self.precomputed:
            return self.head(x)
        x = normalize_batch(x, self.preprocessing)
        x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.trunk(x))


def probe_width(trunk: nn.Module, preprocessing, owner: str) -> int:
    """Width of a user module's features, from one forward pass in eval mode."""
    size = preprocessing.image_size
    was_training = trunk.training
    trunk.eval()
    try:
        with torch.no_grad():
            out = trunk(torch.zeros(1, 3, size, size))
    finally:
        trunk.train(was_training)
    if out.ndim != 2:
        raise ValueError(
            f"model returns outputs of shape {tuple(out.shape)} for one image; "
            f"{owner} needs a module returning (n, n_features) "
            "features. End your module with pooling and flattening, e.g. "
            "nn.AdaptiveAvgPool2d(1), nn.Flatten()."
        )
    return int(out.shape[1])


class FitDataset(torch.utils.data.Dataset):
    """Items ``(x, (y, w))``: the input, its encoded target and its sample weight.

    Parameters
    ----------
    data : sequence
        The inputs: an image dataset, or a tensor of embeddings.
    y : array-like
        The encoded targets, in the dtype the criterion takes (int64 class
        indices, float32 values).
    weight : array-like of shape (n_samples,)
        The sample weights.
    augment : object with a ``reseed(epoch, index)`` method or None
        The augmentation ``data`` applies (such as
        :class:`~sktransfer.images.RandomResizedCropFlip`), reseeded before each
        item, so that it follows the seed, the epoch and the index alone.

    Attributes
    ----------
    epoch : int
        The epoch being trained; :class:`FineTuneNet` sets it.
    """

    def __init__(self, data, y, weight, augment=None):
        self.data = data
        self.y = torch.as_tensor(y)
        self.weight = torch.as_tensor(weight, dtype=torch.float32)
        self.augment = augment
        self.epoch = 0

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        if self.augment is not None:
            self.augment.reseed(self.epoch, i)
        return self.data[i], (self.y[i], self.weight[i])


class FineTuneNet(NeuralNet):
    """skorch's ``NeuralNet`` with the hooks fine-tuning needs.

    Parameters
    ----------
    *args, **kwargs
        skorch's parameters.
    precision : str, default="float32"
        Autocast precision of forward passes.
    lr_multipliers : list of (list of str, float) or None, default=None
        Parameter groups of the optimizer: parameter names and the factor
        applied to ``lr`` (discriminative learning rates).
    valid_scores : dict of str to callable or None, default=None
        Per-sample validation scores besides the loss, for
        :class:`~sktransfer.callbacks.WeightedValidScores`.
    """

    def __init__(
        self,
        *args,
        precision="float32",
        lr_multipliers=None,
        valid_scores=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.precision = precision
        self.lr_multipliers = lr_multipliers
        self.valid_scores = valid_scores

    def get_default_callbacks(self):
        """Timer, training loss, weighted validation scores, and the log."""
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_scores", WeightedValidScores(self.valid_scores)),
            ("print_log", PrintLog()),
        ]

    def initialize_optimizer(self, *args, **kwargs):
        """The optimizer, with one parameter group per layer group if asked."""
        if not self.lr_multipliers:
            return super().initialize_optimizer(*args, **kwargs)
        params = dict(self.get_all_learnable_params())
        options = self.get_params_for("optimizer")
        if "param_groups" in options:
            raise ValueError(
                "optimizer__param_groups cannot be combined with discriminative_lr, "
                "which sets one parameter group per layer group. Use one of them."
            )
        lr = options.pop("lr", self.lr)
        groups = [
            {"params": [params[name] for name in names], "lr": lr * factor}
            for names, factor in self.lr_multipliers
            if names
        ]
        self.optimizer_ = self.optimizer(groups, lr=lr, **options)
        return self

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """Run skorch's loop, remembering an interrupt that ``partial_fit`` swallows."""
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt as exc:
            # skorch's EarlyStopping ends training by raising KeyboardInterrupt
            # too: that one is a normal end, not the user's Ctrl-C.
            if not self._stopped_early():
                self._interrupt = exc
            raise

    def _stopped_early(self) -> bool:
        """Whether an early-stopping callback has just ended training."""
        return any(
            isinstance(callback, SkorchEarlyStopping)
            and getattr(callback, "misses_", 0) >= callback.patience
            for _, callback in getattr(self, "callbacks_", [])
        )

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train as skorch's ``partial_fit`` does, except that Ctrl-C interrupts.

        skorch catches ``KeyboardInterrupt`` in its training loop and returns
        normally, so a fit interrupted after one epoch of five looked
        successful. Here the interrupt is raised again once skorch has run its
        ``on_train_end`` clean-up (which restores the best weights of early
        stopping): a grid search stops, and the command line exits 130.
        """
        self._interrupt = None
        super().partial_fit(X, y, classes=classes, **fit_params)
        interrupt, self._interrupt = self._interrupt, None
        if interrupt is not None:
            raise interrupt
        return self

    def infer(self, x, **fit_params):
        """The module's output under autocast, as float32."""
        with autocast(torch.device(self.device), self.precision):
            return super().infer(x, **fit_params).float()

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """``sum(w * loss) / sum(w)``: a batch whose weights are all zero adds 0."""
        y, w = (t.to(y_pred.device) for t in y_true)
        losses = per_sample_losses(self.criterion_, y_pred, y)
        loss = (w * losses).sum() / w.sum().clamp_min(torch.finfo(w.dtype).tiny)
        return loss + self.adaptation_penalty(training)

    def adaptation_penalty(self, training):
        """The domain-adaptation loss of the last training batch (else 0)."""
        adaptation = getattr(self.module_, "adaptation", None)
        penalty = getattr(adaptation, "penalty", None)
        if not training or penalty is None:
            return 0.0
        adaptation.penalty = None  # one batch's loss is added once
        return penalty

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """Tell the training data which epoch it serves."""
        super().on_epoch_begin(
            net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs
        )
        if hasattr(dataset_train, "epoch"):  # FitDataset, or DomainPairs
            # New augmentations each epoch; workers copy the dataset per epoch.
            dataset_train.epoch = len(self.history) - 1

    def on_device(self, device: torch.device):
        """The net itself if it runs on ``device``, else a copy of it that does.

        The copy shares everything with this net but the module, which is
        copied onto ``device``; this net is left as it is.
        """
        if _same_device(module_device(self.module_), device) and _same_device(
            torch.device(self.device), device
        ):
            return self
        if device.type == "cpu":
            module = module_to_cpu(self.module_)
        else:
            module = copy.deepcopy(self.module_).to(device)
        view = object.__new__(type(self))  # no __init__: skorch's re-checks args
        view.__dict__.update(self.__dict__, module_=module, device=str(device))
        return view

    # At rest: what prediction needs, on the CPU (a model trained on a GPU
    # unpickles anywhere). The optimizer's moments (two tensors per parameter
    # for Adam: twice the weights) are left out.
    def __getstate__(self):
        state = self.__dict__.copy()
        state["train_split"] = None  # holds the validation data
        state["iterator_train__generator"] = None
        state.pop("_interrupt", None)
        state["optimizer_"] = None
        module = state.get("module_")
        if module is not None and module_device(module).type != "cpu":
            state["module_"] = state["module"] = module_to_cpu(module)
            state["device"] = "cpu"
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if state.get("optimizer_", 0) is None and state.get("module_") is not None:
            # A fresh optimizer (its moments at zero), so that partial_fit can
            # resume training from the saved weights.
            self.initialize_optimizer()


def _same_device(a: torch.device, b: torch.device) -> bool:
    """Whether ``a`` and ``b`` are one device (``"cuda"`` is the current one)."""
    if a.type != b.type:
        return False
    current = torch.cuda.current_device() if a.type == "cuda" else 0
    index_a = current if a.index is None else a.index
    return index_a == (current if b.index is None else b.index)
