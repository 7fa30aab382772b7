"""The shared base of the estimators that fine-tune a pretrained CNN.

Design: composition, not inheritance from skorch. A fine-tuning estimator is a
plain scikit-learn estimator whose ``fit`` builds a
:class:`~sktransfer.fine_tuning._net.FineTuneNet` (``net_``, a
:class:`skorch.NeuralNet`) and lets skorch's training loop do the work through
its hooks and callbacks (freezing, schedules, early stopping). We do not
subclass :class:`skorch.NeuralNetClassifier` because its ``__init__`` sets
attributes and validates arguments (sklearn's "set nothing in ``__init__``"
contract), it takes ``module`` and ``criterion`` positionally, and its
``fit``/``predict`` do not encode labels; overriding all of that would leave
little of it. skorch's routed parameters stay available: ``module__*``,
``optimizer__*``, ``criterion__*``, ``iterator_train__*``,
``iterator_valid__*`` and ``callbacks__<name>__*`` are accepted by the
constructor and ``set_params``, so ``GridSearchCV`` can tune them.

:class:`BaseFineTuner` holds everything that does not depend on the task: the
parameters (their shared docs are in ``_docs``), the input check, the recipe
(freezing, unfreezing, discriminative learning rates, schedules, augmentation,
early stopping), sample weights, the frozen-backbone fast path and prediction.
A task -- classification (single-label and multilabel) and regression -- is a
small subclass providing these hooks:

* ``_check_targets(y)``: validate ``y`` (after the base's ``None`` check);
* ``_encode_targets(y, sample_weight)``: set the fitted target attributes
  (``classes_``) and return what the network trains on, in the criterion's
  dtype (``sample_weight``, already checked, for weighted target statistics);
* ``_n_outputs()``: the width of the head;
* ``_criterion()``: the loss class (built with ``reduction="none"``);
* ``_predict_nonlinearity()``: what turns the network's outputs into
  predictions (softmax), returned by ``_predict_outputs(X)`` for the
  subclass's ``predict`` and ``predict_proba`` to decode;

and, where the task needs them, ``_target_weights(y)`` (class weights),
``_validation_strata(targets)`` (a stratified validation split) and
``_valid_scores()`` (validation scores besides the loss). A subclass's own
parameters are declared with ``__init__ = init_with(name=default)``.
"""

from __future__ import annotations

import copy
import inspect
import sys
from abc import ABCMeta, abstractmethod
from collections import namedtuple
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
)
from skorch.callbacks import ProgressBar
from skorch.helper import predefined_split
from skorch.history import History

from .._docstrings import Substitution
from .._params import IMAGE_ESTIMATOR_CONSTRAINTS, set_up_backbone
from .._portable import (
    PortableState,
    rebuild_backbone,
    tensors_from_bytes,
    tensors_to_bytes,
)
from .._torch_utils import (
    preserved_rng,
    resolve_batch_size,
    resolve_device,
    seeded,
)
from ..adaptation._deep import ADAPTATION_METHODS
from ..callbacks import (
    LR_POLICIES,
    EarlyStopping,
    LayerFreezer,
    LRSchedule,
    freeze_plan,
    group_parameters,
)
from ..embedding import embed, embedding_digest, embedding_network
from ..images import ImageDataset, RandomResizedCropFlip, validate_images
from ._adaptation import DomainAdaptationMixin
from ._docs import DOCS
from ._net import FineTuneNet, FitDataset, TransferModule, probe_width
from ._regularization import L2SP

__all__ = ["BaseFineTuner", "init_with"]

# Constructor keywords forwarded to skorch, as skorch users write them.
_ROUTED_PREFIXES = (
    "module",
    "optimizer",
    "criterion",
    "callbacks",
    "iterator_train",
    "iterator_valid",
)
# Names of the callbacks the estimators add themselves.
_OWN_CALLBACKS = (
    "freezer",
    "lr_schedule",
    "early_stopping",
    "progress_bar",
    "l2sp",
)

# One draw from random_state gives the seed of each random part of a fit.
_Seeds = namedtuple("_Seeds", ["init", "train", "split", "augment"])


def _is_routed(key: str) -> bool:
    return "__" in key and key.split("__", 1)[0] in _ROUTED_PREFIXES


def _noop(*args, **kwargs):
    pass


class BaseFineTuner(
    DomainAdaptationMixin, PortableState, BaseEstimator, metaclass=ABCMeta
):
    """Base of the image estimators that fine-tune a pretrained CNN.

    Not an estimator by itself: see the module docstring for the hooks a
    subclass provides, and :class:`~sktransfer.FineTunedClassifier` for one.
    """

    _parameter_constraints: dict = {
        **IMAGE_ESTIMATOR_CONSTRAINTS,
        "freeze": [
            StrOptions({"none", "backbone"}),
            Interval(Integral, 0, None, closed="left"),
        ],
        "unfreeze": [Interval(Integral, 0, None, closed="left"), list, tuple, None],
        "discriminative_lr": [Interval(Real, 0, 1, closed="right"), None],
        "l2sp": [Interval(Real, 0, None, closed="left")],
        "lr_schedule": [StrOptions(set(LR_POLICIES))],
        "augment": ["boolean", callable],
        "optimizer": [type],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "callbacks": [list, None],
        "verbose": ["verbose"],
        # domain adaptation
        "adaptation": [StrOptions(set(ADAPTATION_METHODS)), None],
        "adaptation_weight": [Interval(Real, 0, None, closed="left")],
        "discriminator_width": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        model="resnet18",
        *,
        weights="DEFAULT",
        freeze="none",
        unfreeze=None,
        discriminative_lr=None,
        l2sp=0.0,
        lr_schedule="constant",
        augment=True,
        optimizer=torch.optim.AdamW,
        lr=1e-3,
        max_epochs=10,
        batch_size=32,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
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
        adaptation=None,
        adaptation_weight=1.0,
        discriminator_width=256,
        **kwargs,
    ):
        self.model = model
        self.weights = weights
        self.freeze = freeze
        self.unfreeze = unfreeze
        self.discriminative_lr = discriminative_lr
        self.l2sp = l2sp
        self.lr_schedule = lr_schedule
        self.augment = augment
        self.optimizer = optimizer
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
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
        self.adaptation = adaptation
        self.adaptation_weight = adaptation_weight
        self.discriminator_width = discriminator_width
        # skorch's routed parameters are stored unchanged, as skorch does;
        # fit checks their names.
        vars(self).update(kwargs)

    # ---------------------------------------------------------- task hooks
    @abstractmethod
    def _check_targets(self, y):
        """Validate ``y`` (never ``None``); return it as an array."""

    @abstractmethod
    def _encode_targets(self, y, sample_weight):
        """Set the fitted target attributes; return the network's targets."""

    @abstractmethod
    def _n_outputs(self) -> int:
        """Width of the head (called after ``_encode_targets``)."""

    @abstractmethod
    def _criterion(self):
        """The loss class; it is built with ``reduction="none"``."""

    @abstractmethod
    def _predict_nonlinearity(self):
        """A picklable function from the network's outputs to predictions."""

    def _target_weights(self, y):
        """Per-sample factors multiplied into ``sample_weight`` (or None)."""
        return None

    def _validation_strata(self, targets):
        """Labels to stratify the validation split by (or None)."""
        return None

    def _valid_scores(self) -> dict:
        """Per-sample validation scores besides the loss, by history key."""
        return {}

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
        self : estimator
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
                "is None. Pass the targets of the images: fit(X, y)."
            )
        y = self._check_targets(y)
        check_consistent_length(np.empty(n_samples), y)
        return y

    def _check_config(self):
        name = type(self).__name__
        unknown = sorted(k for k in self._routed_params() if not _is_routed(k))
        if unknown:
            raise TypeError(
                f"{name} got unexpected parameter(s) {unknown}. skorch's "
                "routed parameters start with one of "
                f"{[p + '__' for p in _ROUTED_PREFIXES]}."
            )
        for item in self.callbacks or []:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise ValueError(
                    "callbacks must be a list of (name, callback) pairs, so that "
                    f"callbacks__<name>__<param> can be set; got {item!r}."
                )
        taken = sorted(
            name for name, _ in (self.callbacks or []) if name in _OWN_CALLBACKS
        )
        if taken:
            raise ValueError(
                f"callbacks uses the name(s) {taken}, which {name} gives its own "
                "callbacks; tune those with callbacks__<name>__<param> or choose "
                "another name."
            )

    def _sample_weight(self, sample_weight, y, n):
        weight = _check_sample_weight(
            sample_weight, np.empty(n), dtype=np.float64, ensure_non_negative=True
        )
        factors = self._target_weights(y)
        if factors is not None:
            weight = weight * factors
        if not weight.sum() > 0:
            raise ValueError(
                "sample_weight sums to zero: at least one sample needs a positive "
                "weight. Drop the samples you want ignored, or give them a small "
                "positive weight."
            )
        return weight

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    @Substitution(**DOCS)
    def fit(self, X, y, sample_weight=None, *, sample_domain=None):
        """Fine-tune the network on images ``X`` with targets ``y``.

        Parameters
        ----------
        %(X)s
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets: for a classifier, labels of any hashable type
            (strings, integers, ...).
        %(sample_weight)s
        %(sample_domain)s

        Returns
        -------
        self : object
            The fitted estimator.
        """
        # A failed or interrupted fit (Ctrl-C) leaves the estimator exactly as
        # it was: a model fitted before keeps predicting as before.
        before = dict(self.__dict__)
        try:
            # DataLoaders draw their base seed from torch's global RNG even
            # without shuffling; fork it so that fitting leaves the caller's
            # state alone.
            with preserved_rng():
                return self._fit(X, y, sample_weight, sample_domain)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _fit(self, X, y, sample_weight, sample_domain=None):
        self._check_config()
        self.__dict__.pop("_placed", None)  # a previous fit's device copy
        images = self._check_input(X, reset=True)
        images, y, sample_weight, target = self._split_domains(
            images, y, sample_weight, sample_domain
        )
        y = self._check_y(y, len(images))
        weight = self._sample_weight(sample_weight, y, len(images))
        targets = self._encode_targets(y, weight)
        backbone, preprocessing, device = set_up_backbone(self)
        trunk = copy.deepcopy(backbone.trunk).requires_grad_(True).train()
        n_features = backbone.n_features or probe_width(
            trunk, preprocessing, type(self).__name__
        )
        draws = check_random_state(self.random_state).randint(2**31 - 1, size=4)
        seeds = _Seeds(*(int(s) for s in draws))
        train, valid = self._datasets(
            images, targets, weight, trunk, backbone, preprocessing, seeds
        )
        net = self._assemble_net(
            trunk, n_features, backbone, preprocessing, device, seeds, valid
        )
        if target is not None and self.adaptation is not None:
            train = self._paired(
                train, target, net.module, backbone, preprocessing, seeds
            )
        self._train(net, train, seeds)
        if target is not None:
            self._end_adaptation(net, target, preprocessing)
        self.net_ = net
        self.history_ = net.history
        self.n_iter_ = len(net.history)
        self.layer_groups_ = [g.name for g in backbone.layer_groups]
        self.preprocessing_ = preprocessing
        return self

    def _assemble_net(
        self, trunk, n_features, backbone, preprocessing, device, seeds, valid=None
    ):
        """The skorch net around a new network on ``trunk``: in fit and on load."""
        routed = self._routed_params()
        module = self._build_module(trunk, n_features, preprocessing, routed, seeds)
        groups = backbone.layer_groups
        trainable, schedule = freeze_plan(self.freeze, self.unfreeze, len(groups))
        grouped, rest = group_parameters(module, groups, prefix="trunk.")
        return FineTuneNet(
            module,
            criterion=self._criterion(),
            optimizer=self.optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=resolve_batch_size(self.batch_size, device),
            train_split=predefined_split(valid) if valid is not None else None,
            callbacks=self._callbacks(grouped, trainable, schedule),
            predict_nonlinearity=self._predict_nonlinearity(),
            device=str(device),
            verbose=self.verbose,
            precision=self.precision,
            lr_multipliers=self._lr_multipliers(grouped, rest),
            valid_scores=self._valid_scores(),
            **self._net_params(routed, seeds),
        )

    def _build_module(self, trunk, n_features, preprocessing, routed, seeds):
        """The network, initialised from ``seeds.init``; takes ``module__*``."""
        kwargs = {
            k.split("__", 1)[1]: routed.pop(k)
            for k in list(routed)
            if k.startswith("module__")
        }
        with seeded(seeds.init):
            try:
                module = TransferModule(
                    trunk, n_features, self._n_outputs(), preprocessing, **kwargs
                )
            except TypeError as exc:
                raise TypeError(
                    f"Invalid module__ parameter(s) {sorted(kwargs)}: {exc}. The "
                    "network (backbone and linear head) accepts module__dropout "
                    "and module__bottleneck."
                ) from exc
        self._attach_adaptation(module, seeds)
        return module

    def _lr_multipliers(self, grouped, rest):
        """Per-group learning-rate factors of ``discriminative_lr`` (or None)."""
        if self.discriminative_lr is None:
            return None
        # The head trains at lr, the top group at lr * d, the stem at lr * d**n.
        d, n = float(self.discriminative_lr), len(grouped)
        return [(names, d ** (n - i)) for i, names in enumerate(grouped)] + [
            (rest, 1.0)
        ]

    def _fast_path(self) -> bool:
        """Whether the head trains on embeddings computed once by the trunk."""
        return self.freeze == "backbone" and self.unfreeze is None and not self.augment

    def _augmentation(self, preprocessing, seed):
        """The training transform: ours, the user's, or None."""
        if self.augment is True:
            return RandomResizedCropFlip(
                preprocessing.image_size, preprocessing.interpolation, seed=seed
            )
        if hasattr(self.augment, "reseed"):
            # Reseeding sets its generator: work on a copy, not the parameter.
            return copy.deepcopy(self.augment)
        return self.augment or None

    def _datasets(self, images, targets, weight, trunk, backbone, preprocessing, seeds):
        """The training and validation datasets (validation None without one).

        On the fast path the inputs are the frozen trunk's embeddings;
        otherwise images, augmented for training only.
        """
        fast = self._fast_path()
        if fast:
            data = torch.from_numpy(
                self._embed_frozen(trunk, backbone, preprocessing, images)
            )
            transform = None
        else:
            transform = self._augmentation(preprocessing, seeds.augment)
        # The augmentation to reseed per image and epoch, when it can be.
        reseeded = transform if hasattr(transform, "reseed") else None

        def dataset(index, training):
            if fast:
                inputs = data[torch.as_tensor(index)]
            else:
                inputs = ImageDataset(
                    images[index], preprocessing, transform if training else None
                )
            return FitDataset(
                inputs,
                targets[index],
                weight[index],
                augment=reseeded if training else None,
            )

        train, valid = self._split(targets, seeds.split)
        valid_set = dataset(valid, False) if valid is not None else None
        return dataset(train, True), valid_set

    def _split(self, y, seed):
        """Train/validation indices of the encoded targets ``y``."""
        index = np.arange(len(y))
        if not self.early_stopping:
            return index, None
        strata = self._validation_strata(y)
        splitter = (ShuffleSplit if strata is None else StratifiedShuffleSplit)(
            n_splits=1, test_size=self.validation_fraction, random_state=seed
        )
        try:
            train, valid = next(splitter.split(index.reshape(-1, 1), strata))
        except ValueError as exc:
            raise ValueError(
                f"early_stopping=True could not hold out validation_fraction="
                f"{self.validation_fraction} of {len(y)} samples: {exc}. Raise "
                "validation_fraction, add samples, or set early_stopping=False."
            ) from exc
        return train, valid

    def _callbacks(self, grouped, trainable, schedule):
        """The built-in callbacks (by name), then the user's."""
        restarts = (
            sorted(schedule) if self.lr_schedule in ("cosine", "onecycle") else ()
        )
        callbacks = [
            ("freezer", LayerFreezer(grouped, trainable, schedule, root="trunk")),
            ("lr_schedule", LRSchedule(self.lr_schedule, restarts=restarts)),
        ]
        if self.early_stopping:
            sink = print if self.verbose else _noop
            stopper = EarlyStopping(patience=self.n_iter_no_change, sink=sink)
            callbacks.append(("early_stopping", stopper))
        if self.progress is True or (self.progress == "auto" and sys.stderr.isatty()):
            callbacks.append(("progress_bar", ProgressBar()))
        if self.l2sp > 0:  # none at 0: exactly the plain recipe
            callbacks.append(("l2sp", L2SP(self.l2sp, prefix="trunk.")))
        return callbacks + list(self.callbacks or [])

    def _net_params(self, routed, seeds):
        """The routed skorch parameters, with the defaults fine-tuning sets."""
        routed = dict(routed)
        routed.setdefault("iterator_train__shuffle", True)
        routed.setdefault("iterator_train__num_workers", self.num_workers)
        routed.setdefault("iterator_valid__num_workers", self.num_workers)
        # Shuffling draws from a private generator, not torch's global RNG.
        routed["iterator_train__generator"] = torch.Generator().manual_seed(seeds.train)
        routed["criterion__reduction"] = "none"  # get_loss applies the weights
        return routed

    def _train(self, net, dataset, seeds):
        """Run skorch's training loop; leave the network at rest for prediction."""
        module = net.module
        module.precomputed = self._fast_path()
        try:
            # Dropout and anything else drawing from torch's global RNG is
            # seeded here, and the caller's RNG state is restored afterwards.
            with seeded(seeds.train):
                net.fit(dataset, None)
        finally:
            module.precomputed = False
            net.train_split = None  # do not keep the validation data
            net.iterator_train__generator = None
        # At rest in evaluation mode, so that predicting changes nothing.
        net.module_.eval()
        net.criterion_.eval()

    def _embed_frozen(self, trunk, backbone, preprocessing, images):
        """Embed images once with the frozen trunk, through the shared loop.

        :func:`sktransfer.embedding.embed` brings the batched, channels-last
        inference loop, the progress bar and the embedding cache, so clones
        fitted by ``GridSearchCV`` or ``cross_val_score`` embed each image once.
        The backbone's shared trunk holds the same tensors as ``trunk`` (its
        copy, not yet trained), so its memoised inference copy serves.
        """
        return embed(
            embedding_network(backbone.trunk, None, backbone.source),
            images,
            preprocessing=preprocessing,
            device=resolve_device(self.device),
            precision=self.precision,
            num_workers=self.num_workers,
            thread_safe=backbone.source != "module",
            progress=self.progress,
            desc=f"Embedding with {backbone.name}",
            cache_digest=embedding_digest(
                backbone, None, "avg", preprocessing, self.precision
            ),
        )

    # -------------------------------------------------------------- predict
    @property
    def module_(self):
        """The trained network (``net_.module_``)."""
        return self.net_.module_

    def _inference_net(self):
        """``net_``, or a copy of it on ``device``; ``net_`` is never changed.

        When ``net_`` already runs on the device it is used as it is (at rest
        in evaluation mode, so predicting changes nothing). Otherwise -- a
        model fitted on a GPU and loaded where there is none, or ``device``
        changed after ``fit`` -- the copy ``net_.on_device`` makes is kept
        until the next ``fit``, outside the pickled state.
        """
        net, device = self.net_, resolve_device(self.device)
        placed = self.__dict__.get("_placed")
        if placed is not None and placed[0] is net and placed[1] == device:
            return placed[2]
        ready = net.on_device(device)
        if ready is not net:
            self._placed = (net, device, ready)
        return ready

    def _predict_outputs(self, X):
        """The network's outputs on images, after ``_predict_nonlinearity``."""
        check_is_fitted(self)
        images = self._check_input(X, reset=False)
        dataset = ImageDataset(
            images, self.preprocessing_, targets=np.zeros(len(images), np.int64)
        )
        with preserved_rng():  # see fit
            return self._inference_net().predict_proba(dataset)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = self.image_shape is not None
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        return tags

    # ------------------------------------------------------ portable state
    # Pickling keeps net_ (at rest on the CPU: FineTuneNet.__getstate__); the
    # portable state that skops stores keeps the network's tensors and the
    # history as plain data, and rebuilds the rest from the parameters (see
    # sktransfer._portable).
    def _pickled_state(self):
        state = dict(super()._pickled_state())  # a copy: never edit self.__dict__
        state.pop("_placed", None)  # a device copy of net_, rebuilt on demand
        return state

    def _to_portable(self, state, record):
        net = state.pop("net_", None)
        state.pop("history_", None)  # net_.history, kept as plain data
        if net is not None:
            record["module"] = tensors_to_bytes(net.module_.state_dict())
            record["history"] = net.history.to_list()

    def _from_portable(self, record):
        if "module" not in record:
            return
        tensors = tensors_from_bytes(record["module"])
        trunk = {k[len("trunk.") :]: v for k, v in tensors.items() if k[:6] == "trunk."}
        backbone = rebuild_backbone(self.model, trunk)
        net = self._assemble_net(
            backbone.trunk,
            backbone.n_features,
            backbone,
            self.preprocessing_,
            torch.device("cpu"),
            _Seeds(0, 0, 0, 0),  # initial values, replaced by the saved ones
        )
        net.initialize()
        net.module_.load_state_dict(tensors, strict=True)
        net.history = History(record["history"])
        net.iterator_train__generator = None
        net.module_.eval()
        net.criterion_.eval()
        self.net_ = net
        self.history_ = net.history


def init_with(**extra):
    """An ``__init__`` taking :class:`BaseFineTuner`'s parameters and ``extra``.

    A subclass declares its own parameters with their defaults, e.g.
    ``__init__ = init_with(class_weight=None)``. They become keyword-only
    parameters of its signature, before ``**kwargs``, and are stored unchanged
    as the shared ones are, so ``get_params``, ``clone``, the ``repr`` and the
    docs all see one explicit signature without the subclass restating the
    shared parameters.
    """
    shared = inspect.signature(BaseFineTuner.__init__)
    params = list(shared.parameters.values())
    own = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
        for name, default in extra.items()
    ]

    def __init__(self, *args, **kwargs):
        for name, default in extra.items():
            setattr(self, name, kwargs.pop(name, default))
        BaseFineTuner.__init__(self, *args, **kwargs)

    __init__.__signature__ = shared.replace(parameters=params[:-1] + own + params[-1:])
    return __init__
