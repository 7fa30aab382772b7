"""What the image estimators share: parameter constraints and backbone set-up.

``PretrainedFeatureExtractor`` and ``FineTunedClassifier`` take the same
``model``, ``weights``, ``image_size``, ``mean``, ``std``, ``image_shape``,
``device``, ``num_workers``, ``precision``, ``random_state`` and ``progress``
parameters, with the same meaning; they are validated and resolved here, once.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from ._torch_utils import PRECISIONS, autocast, resolve_device
from .backbones import Backbone, load_backbone
from .images import Preprocessing

__all__ = ["IMAGE_ESTIMATOR_CONSTRAINTS", "cached_backbone", "set_up_backbone"]

IMAGE_ESTIMATOR_CONSTRAINTS: dict = {
    "model": [str, nn.Module],
    "weights": [str, os.PathLike, None],
    "image_size": [Interval(Integral, 1, None, closed="left"), None],
    "mean": ["array-like", None],
    "std": ["array-like", None],
    "image_shape": [tuple, list, None],
    "device": [str, torch.device],
    "num_workers": [Interval(Integral, 0, None, closed="left")],
    "precision": [StrOptions(set(PRECISIONS))],
    "random_state": ["random_state"],
    "progress": ["boolean", StrOptions({"auto"})],
}

# Built backbones by specification, so the clones made by GridSearchCV and
# cross_val_score do not rebuild (and re-hash) the same network for every fit.
_BACKBONES: OrderedDict[tuple, object] = OrderedDict()
_MAX_BACKBONES = 2


def cached_backbone(model, weights, random_state) -> Backbone:
    """:func:`load_backbone`, memoised for deterministic specifications.

    The trunk comes frozen, in eval mode and channels-last; callers that train it
    must work on a copy.
    """
    key = None
    if isinstance(model, str) and (
        weights is not None or isinstance(random_state, Integral)
    ):
        wkey = weights
        if isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights):
            stat = os.stat(weights)
            wkey = (os.path.abspath(weights), stat.st_size, stat.st_mtime_ns)
        key = (model, wkey, random_state)
        if key in _BACKBONES:
            _BACKBONES.move_to_end(key)
            return _BACKBONES[key]
    backbone = load_backbone(model, weights, random_state=random_state)
    backbone.trunk.eval().requires_grad_(False)
    backbone.trunk.to(memory_format=torch.channels_last)
    if key is not None:
        _BACKBONES[key] = backbone
        while len(_BACKBONES) > _MAX_BACKBONES:
            _BACKBONES.popitem(last=False)
    return backbone


def set_up_backbone(estimator) -> tuple[Backbone, Preprocessing, torch.device]:
    """Check the shared parameters and build the estimator's backbone.

    Returns the (memoised, frozen) backbone, the preprocessing after the
    ``image_size``/``mean``/``std`` overrides, and the resolved device.
    """
    for name in ("mean", "std"):
        value = getattr(estimator, name)
        if value is not None and np.shape(value) != (3,):
            raise ValueError(f"{name} must hold 3 values (R, G, B); got {value!r}.")
    device = resolve_device(estimator.device)
    autocast(device, estimator.precision)  # validates precision for the device
    backbone = cached_backbone(
        estimator.model, estimator.weights, estimator.random_state
    )
    preprocessing = backbone.preprocessing.with_overrides(
        estimator.image_size, estimator.mean, estimator.std
    )
    return backbone, preprocessing, device
