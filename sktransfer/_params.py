"""What the image estimators share: parameter constraints and backbone set-up.

``PretrainedFeatureExtractor`` and ``FineTunedClassifier`` take the same
``model``, ``weights``, ``image_size``, ``mean``, ``std``, ``image_shape``,
``device``, ``num_workers``, ``precision``, ``random_state`` and ``progress``
parameters, with the same meaning; they are validated and resolved here, once.
"""

from __future__ import annotations

import os
from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from ._torch_utils import PRECISIONS, autocast, resolve_device
from .backbones import Backbone, cached_backbone
from .images import Preprocessing

__all__ = ["IMAGE_ESTIMATOR_CONSTRAINTS", "set_up_backbone"]

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
