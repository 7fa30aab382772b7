"""``FineTunedClassifier``: fine-tune a pretrained CNN as a scikit-learn classifier.

Design: composition, not inheritance. ``FineTunedClassifier`` is a plain
scikit-learn estimator whose ``fit`` builds a :class:`skorch.NeuralNet`
subclass (``net_``) and lets skorch's training loop do the work through its
hooks -- ``initialize_optimizer`` (discriminative learning rates), ``get_loss``
(the normalised sample-weighted loss), ``infer`` (autocast), ``get_iterator``
(seeded shuffling) and callbacks (freezing, schedules, early stopping). We do
not subclass :class:`skorch.NeuralNetClassifier` because its ``__init__`` sets
attributes and validates arguments (sklearn's "set nothing in ``__init__``"
contract), it takes ``module`` and ``criterion`` positionally, and its
``fit``/``predict`` do not encode labels; overriding all of that would leave
little of it. skorch's routed parameters stay available: ``module__*`` (the
classification module, e.g. ``module__dropout``), ``optimizer__*``,
``criterion__*``, ``iterator_train__*``, ``iterator_valid__*`` and
``callbacks__<name>__*`` are accepted by the constructor and ``set_params``, so
``GridSearchCV`` can tune them.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import replace
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state, compute_sample_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)
from skorch import NeuralNet
from skorch.callbacks import (
    EpochTimer,
    PassthroughScoring,
    PrintLog,
    ProgressBar,
)
from skorch.helper import predefined_split
from torch import nn

from ._params import IMAGE_ESTIMATOR_CONSTRAINTS, set_up_backbone
from ._torch_utils import autocast, module_device, module_to_cpu, resolve_device, seeded
from .callbacks import (
    LR_POLICIES,
    EarlyStopping,
    LayerFreezer,
    LRSchedule,
    WeightedValidScores,
    freeze_plan,
    group_parameters,
    per_sample_losses,
)
from .feature_extraction import PretrainedFeatureExtractor
from .images import (
    ImageDataset,
    RandomResizedCropFlip,
    normalize_batch,
    validate_images,
)

__all__ = ["FineTunedClassifier"]

# Constructor keywords forwarded to skorch, as skorch users write them.
_ROUTED_PREFIXES = (
    "module",
    "optimizer",
    "criterion",
    "callbacks",
    "iterator_train",
    "iterator_valid",
)
# Names of the callbacks FineTunedClassifier adds itself.
_OWN_CALLBACKS = ("freezer", "lr_schedule", "early_stopping", "progress_bar")


def _is_routed(key: str) -> bool:
    return "__" in key and key.split("__", 1)[0] in _ROUTED_PREFIXES


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    # In float64 so that rows sum to one to sklearn's tolerance.
    return torch.softmax(logits.double(), dim=-1)


def _correct(y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (y_pred.argmax(dim=1) == y).float()


def _noop(*args, **kwargs):
    pass


class _TransferModule(nn.Module):
    """Backbone trunk + linear head; normalises uint8/float batches on the device.

    With ``precomputed`` set (the fast path of the fixed-feature-extractor
    recipe) its input is the trunk's embeddings and only the head runs.
    """

    def __init__(self, trunk, n_features, n_classes, preprocessing, dropout=0.0):
        super().__init__()
        self.trunk = trunk
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(n_features, n_classes))
        self.preprocessing = preprocessing
        self.precomputed = False

    def forward(self, x):
        if self.precomputed:
            return self.head(x)
        x = normalize_batch(x, self.preprocessing)
        x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.trunk(x))


class _FitDataset(torch.utils.data.Dataset):
    """Items ``(x, (y, w))``: the input, its encoded label and its sample weight.

    Carrying the weight next to the label is what lets it be split with the
    validation set, batched by the DataLoader and used in the loss.
    """

    def __init__(self, data, y, weight, augment=None):
        self.data = data
        self.y = torch.as_tensor(y, dtype=torch.int64)
        self.weight = torch.as_tensor(weight, dtype=torch.float32)
        self.augment = augment
        self.epoch = 0

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        if self.augment is not None:
            self.augment.reseed(self.epoch, i)
        return self.data[i], (self.y[i], self.weight[i])


class _FineTuneNet(NeuralNet):
    """skorch's ``NeuralNet`` with the hooks fine-tuning needs.

    Parameters
    ----------
    precision : str
        Autocast precision of forward passes.
    lr_multipliers : list of (list of str, float) or None
        Parameter groups of the optimizer: parameter names and the factor
        applied to ``lr`` (discriminative learning rates).
    """

    def __init__(self, *args, precision="float32", lr_multipliers=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.precision = precision
        self.lr_multipliers = lr_multipliers

    def get_default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_scores", WeightedValidScores({"valid_acc": _correct})),
            ("print_log", PrintLog()),
        ]

    def initialize_optimizer(self, *args, **kwargs):
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

    def infer(self, x, **fit_params):
        with autocast(torch.device(self.device), self.precision):
            return super().infer(x, **fit_params).float()

    def get_loss(self, y_pred, y_true, X=None, training=False):
        # sum(w * loss) / sum(w): a batch whose weights are all zero adds nothing.
        y, w = (t.to(y_pred.device) for t in y_true)
        losses = per_sample_losses(self.criterion_, y_pred, y)
        return (w * losses).sum() / w.sum().clamp_min(torch.finfo(w.dtype).tiny)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(
            net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs
        )
        if isinstance(dataset_train, _FitDataset):
            # New augmentations each epoch; workers copy the dataset per epoch.
            dataset_train.epoch = len(self.history) - 1

    # Modules at rest on the CPU: a model trained on a GPU unpickles anywhere.
    def __getstate__(self):
        state = self.__dict__.copy()
        state["train_split"] = None  # holds the validation data
        state["iterator_train__generator"] = None
        module = state.get("module_")
        if module is not None and module_device(module).type != "cpu":
            state["module_"] = state["module"] = module_to_cpu(module)
            state["optimizer_"] = None  # its moments live on the accelerator
            state["device"] = "cpu"
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)


class FineTunedClassifier(ClassifierMixin, BaseEstimator):
    """Fine-tune a pretrained CNN on labelled images, as a scikit-learn classifier.

    A new linear head, sized from the classes seen in :meth:`fit`, is put on a
    pretrained backbone (see :func:`sktransfer.load_backbone`) and trained with
    skorch. The usual fine-tuning recipes are constructor parameters, so
    ``GridSearchCV`` can compare them:

    * ``freeze="backbone"`` trains the head only (fixed feature extractor);
      ``freeze="none"`` fine-tunes everything; ``freeze=N`` trains the last N
      layer groups. Frozen means frozen: parameters *and* BatchNorm running
      statistics are bit-identical after ``fit``.
    * ``unfreeze`` unfreezes on a schedule: ``unfreeze=E`` unfreezes all layers
      at epoch E; a list of epochs unfreezes one layer group per listed epoch,
      from the top (progressive unfreezing).
    * ``discriminative_lr`` lowers the learning rate group by group toward the
      stem; ``lr_schedule`` picks step decay, cosine or one-cycle.
    * fastai's ``fine_tune`` recipe is ``freeze="backbone", unfreeze=1,
      discriminative_lr=0.3, lr_schedule="onecycle"`` (with
      ``lr_schedule="onecycle"`` the cycle restarts when layers are unfrozen).

    With ``freeze="backbone"``, ``augment=False`` and no ``unfreeze``, the
    backbone's features are computed once per fit (and cached across fits, see
    :mod:`sktransfer.cache`) and only the head trains on them: the same result
    as running the frozen backbone every epoch, many times faster.

    Parameters
    ----------
    model : str or torch.nn.Module, default="resnet18"
        A torchvision model name, ``"timm:<name>"``, or your own module
        returning features. See :func:`sktransfer.list_backbones`.
    weights : str, path-like or None, default="DEFAULT"
        ``"DEFAULT"`` or a weights name (downloaded on first use), ``None`` for
        random initialisation seeded by ``random_state``, or the path of a local
        state_dict file.
    freeze : {"none", "backbone"} or int, default="none"
        Which part of the backbone trains at the start: nothing
        (``"backbone"``), everything (``"none"``) or the last N layer groups.
    unfreeze : None, int or list of int, default=None
        Unfreezing schedule: an epoch at which every layer group starts
        training, or a list of epochs at each of which one more group starts
        training, from the top. Epochs count from 0.
    discriminative_lr : float in (0, 1] or None, default=None
        Learning-rate factor between consecutive layer groups: the head trains
        at ``lr``, the last group at ``lr * discriminative_lr``, the one below
        at ``lr * discriminative_lr**2``, down to the stem.
    lr_schedule : {"constant", "step", "cosine", "onecycle"}, default="constant"
        ``"step"`` divides the rates by 10 every 7 epochs (tune with
        ``callbacks__lr_schedule__step_size`` and ``__gamma``); ``"cosine"``
        anneals to zero; ``"onecycle"`` warms up then anneals, per batch.
    augment : bool or callable, default=True
        Training augmentation: a random resized crop (35-100% of the area) and a
        horizontal flip, seeded by ``random_state``. ``False`` turns it off; a
        callable replaces it: it receives a PIL image or a ``(3, H, W)`` float
        tensor in [0, 1] and must return a ``(3, S, S)`` tensor or PIL image of
        the final size ``S`` (``image_size``).
    optimizer : torch optimizer class, default=torch.optim.AdamW
        Its options are set with ``optimizer__<name>`` (e.g.
        ``optimizer__weight_decay``).
    lr : float, default=1e-3
        Learning rate of the head (the base rate of the schedule).
    max_epochs : int, default=10
        Number of passes over the training data.
    batch_size : int, default=32
        Images per training step (and per prediction batch).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified), stop when the
        validation loss has not improved for ``n_iter_no_change`` epochs, and
        restore the weights of the best epoch. To keep the most accurate epoch
        instead (as PyTorch's tutorial does), set
        ``callbacks__early_stopping__monitor="valid_acc"`` and
        ``callbacks__early_stopping__lower_is_better=False``.
    validation_fraction : float in (0, 1), default=0.1
        Share of the data held out when ``early_stopping=True``.
    n_iter_no_change : int, default=5
        Patience of early stopping, in epochs.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, multiplied into ``sample_weight``.
    image_size : int or None, default=None
        Side of the square crop fed to the network; ``None`` uses the weights'
        own (224 for most).
    mean, std : tuple of 3 floats or None, default=None
        Override the weights' normalisation statistics.
    image_shape : tuple of int or None, default=None
        Shape ``(H, W)`` or ``(H, W, C)`` of one image when ``X`` is a 2-D array
        of flattened images (``-1`` allowed once).
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU.
    num_workers : int, default=0
        DataLoader worker processes decoding and augmenting images.
    precision : {"float32", "bfloat16", "float16"}, default="float32"
        ``"bfloat16"`` trains and predicts under autocast (fast on recent CPUs
        and GPUs); ``"float16"`` is for CUDA only.
    callbacks : list of (str, skorch.callbacks.Callback) or None, default=None
        Extra skorch callbacks, run after the built-in ones (``"freezer"``,
        ``"lr_schedule"``, ``"early_stopping"``, ``"progress_bar"``).
    random_state : int, RandomState instance or None, default=None
        Controls random initialisation (head, and backbone when
        ``weights=None``), shuffling, the validation split, augmentation and
        dropout, without touching global seeds: equal seeds give identical
        models on the CPU.
    verbose : int, default=0
        ``1`` prints skorch's table of losses per epoch.
    progress : bool or "auto", default="auto"
        Progress bars for training epochs and feature computation; ``"auto"``
        shows them on terminals only.
    **kwargs
        skorch's routed parameters: ``module__dropout`` (dropout before the
        head), ``optimizer__*``, ``criterion__*`` (e.g.
        ``criterion__label_smoothing``), ``iterator_train__*``,
        ``iterator_valid__*`` and ``callbacks__<name>__*``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, in the order of ``predict_proba``'s columns.
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_`` is the network.
    module_ : torch.nn.Module
        The network: ``module_.trunk`` (the backbone) and ``module_.head``.
    history_ : skorch.History
        Losses, scores, learning rates and trainable groups per epoch.
    n_iter_ : int
        Number of epochs run (fewer than ``max_epochs`` after early stopping).
    layer_groups_ : list of str
        Names of the backbone's layer groups, from the stem to the top.
    preprocessing_ : sktransfer.backbones.Preprocessing
        The resize, crop and normalisation applied at prediction time.
    n_features_in_ : int
        Number of columns of 2-D input (only set for flattened-image input).
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names of a 2-D DataFrame input (only when it has string names).

    See Also
    --------
    sktransfer.PretrainedFeatureExtractor : frozen embeddings for any sklearn
        model (the linear-probe recipe).
    sktransfer.callbacks : the freezing and schedule callbacks used here.

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> from sktransfer import FineTunedClassifier
    >>> trunk = nn.Sequential(
    ...     nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
    ...     nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    ... )
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randint(0, 255, (20, 16, 16, 3), dtype=np.uint8)
    >>> y = np.array(["cat", "dog"] * 10)
    >>> clf = FineTunedClassifier(
    ...     trunk, image_size=16, max_epochs=2, batch_size=8, random_state=0
    ... )
    >>> clf.fit(X, y).predict(X[:3]).shape
    (3,)
    >>> clf.classes_
    array(['cat', 'dog'], dtype='<U3')
    """

    _parameter_constraints: dict = {
        **IMAGE_ESTIMATOR_CONSTRAINTS,
        "freeze": [
            StrOptions({"none", "backbone"}),
            Interval(Integral, 0, None, closed="left"),
        ],
        "unfreeze": [Interval(Integral, 0, None, closed="left"), list, tuple, None],
        "discriminative_lr": [Interval(Real, 0, 1, closed="right"), None],
        "lr_schedule": [StrOptions(set(LR_POLICIES))],
        "augment": ["boolean", callable],
        "optimizer": [type],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "callbacks": [list, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        model="resnet18",
        *,
        weights="DEFAULT",
        freeze="none",
        unfreeze=None,
        discriminative_lr=None,
        lr_schedule="constant",
        augment=True,
        optimizer=torch.optim.AdamW,
        lr=1e-3,
        max_epochs=10,
        batch_size=32,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        class_weight=None,
        image_size=None,
        mean=None,
        std=None,
        image_shape=None,
        device="auto",
        num_workers=0,
        precision="float32",
        callbacks=None,
        random_state=None,
        verbose=0,
        progress="auto",
        **kwargs,
    ):
        self.model = model
        self.weights = weights
        self.freeze = freeze
        self.unfreeze = unfreeze
        self.discriminative_lr = discriminative_lr
        self.lr_schedule = lr_schedule
        self.augment = augment
        self.optimizer = optimizer
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.image_size = image_size
        self.mean = mean
        self.std = std
        self.image_shape = image_shape
        self.device = device
        self.num_workers = num_workers
        self.precision = precision
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose
        self.progress = progress
        # skorch's routed parameters are stored unchanged, as skorch does;
        # fit checks their names.
        vars(self).update(kwargs)

    # --------------------------------------------------------------- params
    def _routed_params(self) -> dict:
        """The keyword arguments beyond the signature (public, not fitted)."""
        names = set(self._get_param_names())
        return {
            k: v
            for k, v in vars(self).items()
            if k not in names and not k.startswith("_") and not k.endswith("_")
        }

    def get_params(self, deep=True):
        """Get parameters, including skorch's routed ``prefix__name`` ones.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of contained estimators.

        Returns
        -------
        params : dict
        """
        params = super().get_params(deep=deep)
        params.update(self._routed_params())
        return params

    def set_params(self, **params):
        """Set parameters, including skorch's routed ``prefix__name`` ones.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : FineTunedClassifier
        """
        own = {}
        for key, value in params.items():
            if _is_routed(key) or key in self._routed_params():
                setattr(self, key, value)
            else:
                own[key] = value
        return super().set_params(**own)

    # ---------------------------------------------------------------- input
    def _check_input(self, X, *, reset):
        return validate_images(self, X, reset=reset)

    def _check_y(self, y, n_samples):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None. Pass the labels of the images: fit(X, y)."
            )
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        check_consistent_length(np.empty(n_samples), y)
        return y

    def _check_config(self):
        unknown = sorted(k for k in self._routed_params() if not _is_routed(k))
        if unknown:
            raise TypeError(
                f"FineTunedClassifier got unexpected parameter(s) {unknown}. skorch's "
                "routed parameters start with one of "
                f"{[p + '__' for p in _ROUTED_PREFIXES]}."
            )
        for item in self.callbacks or []:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise ValueError(
                    "callbacks must be a list of (name, callback) pairs, so that "
                    f"callbacks__<name>__<param> can be set; got {item!r}."
                )
        unknown = sorted(
            name for name, _ in (self.callbacks or []) if name in _OWN_CALLBACKS
        )
        if unknown:
            raise ValueError(
                f"callbacks uses the name(s) {unknown}, which FineTunedClassifier "
                "gives its own callbacks; tune those with callbacks__<name>__<param> "
                "or choose another name."
            )

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fine-tune the network on images ``X`` with labels ``y``.

        Parameters
        ----------
        X : images
            See :mod:`sktransfer.images` for the accepted forms.
        y : array-like of shape (n_samples,)
            Labels: any hashable values (strings, integers, ...).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights. Split with the validation set, batched, and
            used as a normalised weighted loss (sum of w * loss over sum of w)
            in training and in the validation scores.

        Returns
        -------
        self : FineTunedClassifier
        """
        # DataLoaders draw their base seed from torch's global RNG even without
        # shuffling; fork it so that fitting leaves the caller's state alone.
        with torch.random.fork_rng(devices=[]):
            return self._fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight):
        self._check_config()
        images = self._check_input(X, reset=True)
        n = len(images)
        y = self._check_y(y, n)
        encoder = LabelEncoder()
        y_enc = encoder.fit_transform(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"FineTunedClassifier needs samples of at least 2 classes in y; got "
                f"1 class: {list(self.classes_)!r}."
            )
        weight = self._sample_weight(sample_weight, y, n)
        backbone, preprocessing, device = set_up_backbone(self)
        trunk = copy.deepcopy(backbone.trunk).requires_grad_(True).train()
        n_features = backbone.n_features or _probe_width(trunk, preprocessing)
        seeds = check_random_state(self.random_state).randint(2**31 - 1, size=4)
        init_seed, train_seed, split_seed, augment_seed = (int(s) for s in seeds)
        routed = self._routed_params()
        module_kwargs = {
            k.split("__", 1)[1]: routed.pop(k)
            for k in list(routed)
            if k.startswith("module__")
        }
        with seeded(init_seed):
            try:
                module = _TransferModule(
                    trunk,
                    n_features,
                    len(self.classes_),
                    preprocessing,
                    **module_kwargs,
                )
            except TypeError as exc:
                raise TypeError(
                    f"Invalid module__ parameter(s) {sorted(module_kwargs)}: {exc}. "
                    "The classification module accepts module__dropout."
                ) from exc

        groups = backbone.layer_groups
        trainable, schedule = freeze_plan(self.freeze, self.unfreeze, len(groups))
        grouped, rest = group_parameters(module, groups, prefix="trunk.")
        multipliers = None
        if self.discriminative_lr is not None:
            d = float(self.discriminative_lr)
            multipliers = [
                (names, d ** (len(grouped) - i)) for i, names in enumerate(grouped)
            ] + [(rest, 1.0)]

        fast = self.freeze == "backbone" and self.unfreeze is None and not self.augment
        if fast:
            data = torch.from_numpy(
                self._embed_frozen(trunk, backbone, preprocessing, images)
            )
        augment = None
        if self.augment is True:
            augment = RandomResizedCropFlip(
                preprocessing.image_size, preprocessing.interpolation, seed=augment_seed
            )
        transform = augment if augment is not None else (self.augment or None)

        def dataset(index, training):
            if fast:
                base = data[torch.as_tensor(index)]
            else:
                base = ImageDataset(
                    images[index], preprocessing, transform if training else None
                )
            return _FitDataset(
                base,
                y_enc[index],
                weight[index],
                augment=augment if training and not fast else None,
            )

        train_idx, valid_idx = self._split(y_enc, split_seed)
        valid_ds = dataset(valid_idx, False) if valid_idx is not None else None

        show = self.progress is True or (
            self.progress == "auto" and sys.stderr.isatty()
        )
        sink = print if self.verbose else _noop
        restarts = (
            sorted(schedule) if self.lr_schedule in ("cosine", "onecycle") else ()
        )
        callbacks = [
            ("freezer", LayerFreezer(grouped, trainable, schedule, root="trunk")),
            ("lr_schedule", LRSchedule(self.lr_schedule, restarts=restarts)),
        ]
        if self.early_stopping:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(patience=self.n_iter_no_change, sink=sink),
                )
            )
        if show:
            callbacks.append(("progress_bar", ProgressBar()))
        callbacks += list(self.callbacks or [])
        routed.setdefault("iterator_train__shuffle", True)
        routed.setdefault("iterator_train__num_workers", self.num_workers)
        routed.setdefault("iterator_valid__num_workers", self.num_workers)
        routed["iterator_train__generator"] = torch.Generator().manual_seed(train_seed)
        routed["criterion__reduction"] = "none"  # get_loss applies the weights
        net = _FineTuneNet(
            module,
            criterion=nn.CrossEntropyLoss,
            optimizer=self.optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=predefined_split(valid_ds) if valid_ds is not None else None,
            callbacks=callbacks,
            predict_nonlinearity=_softmax,
            device=str(device),
            verbose=self.verbose,
            precision=self.precision,
            lr_multipliers=multipliers,
            **routed,
        )
        module.precomputed = fast
        try:
            # Dropout and anything else drawing from torch's global RNG is
            # seeded here, and the caller's RNG state is restored afterwards.
            with seeded(train_seed):
                net.fit(dataset(train_idx, True), None)
        finally:
            module.precomputed = False
            net.train_split = None  # do not keep the validation data
            net.iterator_train__generator = None
        self.net_ = net
        self.history_ = net.history
        self.n_iter_ = len(net.history)
        self.layer_groups_ = [g.name for g in groups]
        self.preprocessing_ = preprocessing
        return self

    def _sample_weight(self, sample_weight, y, n):
        weight = _check_sample_weight(
            sample_weight, np.empty(n), dtype=np.float64, ensure_non_negative=True
        )
        if self.class_weight is not None:
            weight = weight * compute_sample_weight(self.class_weight, y)
        if not weight.sum() > 0:
            raise ValueError(
                "sample_weight sums to zero: at least one sample needs a positive "
                "weight. Drop the samples you want ignored, or give them a small "
                "positive weight."
            )
        return weight

    def _split(self, y, seed):
        """Train/validation indices (stratified when every class allows it)."""
        index = np.arange(len(y))
        if not self.early_stopping:
            return index, None
        counts = np.bincount(y)
        splitter = (StratifiedShuffleSplit if counts.min() >= 2 else ShuffleSplit)(
            n_splits=1, test_size=self.validation_fraction, random_state=seed
        )
        try:
            train, valid = next(splitter.split(index.reshape(-1, 1), y))
        except ValueError as exc:
            raise ValueError(
                f"early_stopping=True could not hold out validation_fraction="
                f"{self.validation_fraction} of {len(y)} samples: {exc}. Raise "
                "validation_fraction, add samples, or set early_stopping=False."
            ) from exc
        return train, valid

    def _embed_frozen(self, trunk, backbone, preprocessing, images):
        """Embed images once with the frozen trunk, through the extractor's loop.

        The extractor brings the batched, channels-last inference loop, the
        progress bar and the embedding cache, so clones fitted by
        ``GridSearchCV`` or ``cross_val_score`` embed each image once.
        """
        trunk.eval()
        extractor = PretrainedFeatureExtractor(
            trunk,
            device=self.device,
            num_workers=self.num_workers,
            precision=self.precision,
            progress=self.progress,
        )
        device = resolve_device(self.device)
        extractor._use_backbone(replace(backbone, trunk=trunk), preprocessing, device)
        return extractor.transform(images)

    # -------------------------------------------------------------- predict
    @property
    def module_(self):
        """The trained network (``net_.module_``)."""
        return self.net_.module_

    def _ready_net(self):
        net = self.net_
        device = resolve_device(self.device)
        if module_device(net.module_) != device:
            net.module_.to(device)
        net.device = str(device)
        return net

    def predict_proba(self, X):
        """Class probabilities of images.

        Parameters
        ----------
        X : images
            See :mod:`sktransfer.images` for the accepted forms.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        check_is_fitted(self)
        images = self._check_input(X, reset=False)
        dataset = ImageDataset(
            images, self.preprocessing_, targets=np.zeros(len(images), np.int64)
        )
        with torch.random.fork_rng(devices=[]):  # see fit
            return self._ready_net().predict_proba(dataset)

    def predict(self, X):
        """Predict the labels of images.

        Parameters
        ----------
        X : images
            See :mod:`sktransfer.images` for the accepted forms.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = self.image_shape is not None
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        return tags


def _probe_width(trunk: nn.Module, preprocessing) -> int:
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
            "FineTunedClassifier needs a module returning (n, n_features) "
            "features. End your module with pooling and flattening, e.g. "
            "nn.AdaptiveAvgPool2d(1), nn.Flatten()."
        )
    return int(out.shape[1])
