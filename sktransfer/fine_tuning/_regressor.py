"""``FineTunedRegressor``: fine-tune a pretrained CNN as a scikit-learn regressor.

The task-specific part of fine-tuning for regression: numeric targets, one or
several per image (one output per column on one shared backbone), standardised
for training with their sample-weighted mean and standard deviation and
returned in their own units by ``predict``; the loss is a parameter.
Everything else is ``_base.BaseFineTuner``'s.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import RegressorMixin
from sklearn.utils._param_validation import StrOptions
from torch import nn

from .._docstrings import Substitution
from ._base import BaseFineTuner, init_with
from ._docs import DOCS

__all__ = ["FineTunedRegressor"]

# The loss names of sklearn's HistGradientBoostingRegressor and SGDRegressor.
_LOSSES = {
    "squared_error": nn.MSELoss,
    "huber": nn.HuberLoss,
    "absolute_error": nn.L1Loss,
}


def _identity(outputs: torch.Tensor) -> torch.Tensor:
    return outputs.double()


@Substitution(**DOCS)
class FineTunedRegressor(RegressorMixin, BaseFineTuner):
    """Fine-tune a pretrained CNN on images with numeric targets, as a regressor.

    A new linear head with one output per target is put on a pretrained
    backbone (see :func:`sktransfer.load_backbone`) and trained with skorch to
    minimise the (sample-weighted) ``loss`` on standardised targets;
    :meth:`predict` returns values in the targets' own units. A 2-D ``y`` of
    shape ``(n_samples, n_outputs)`` trains all outputs on one shared backbone
    (hard parameter sharing), the loss averaged over the outputs.

    %(recipes)s

    Parameters
    ----------
    %(recipe_parameters)s
    loss : {"squared_error", "huber", "absolute_error"}, default="squared_error"
        The training loss, on the standardised targets: the mean squared
        error, the Huber loss (quadratic within ``criterion__delta`` standard
        deviations of the target, default 1, linear beyond: robust to
        outliers) or the mean absolute error (a median regression).
    %(runtime_parameters)s

    Attributes
    ----------
    n_outputs_ : int
        Number of targets (columns of a 2-D ``y``; 1 for a 1-D ``y``).
    target_mean_ : ndarray of shape (n_outputs_,)
        Sample-weighted mean of each target in ``fit``.
    target_scale_ : ndarray of shape (n_outputs_,)
        Sample-weighted standard deviation of each target (1 where it is 0):
        the network learns ``(y - target_mean_) / target_scale_``.
    %(fitted_attributes)s

    See Also
    --------
    FineTunedClassifier : the same recipes for labels.
    sktransfer.PretrainedFeatureExtractor : frozen embeddings for any sklearn
        regressor, such as :class:`~sklearn.linear_model.RidgeCV` (the
        linear-probe recipe).

    Notes
    -----
    **Augmentation that changes the target is your call.** The default
    ``augment=True`` draws random crops and horizontal flips, which leave a
    label such as "cat" unchanged but not every number: a flip negates a
    rotation angle or swaps a left/right coordinate, and a crop changes a
    size, a position or a count. For such targets pass ``augment=False`` or
    a callable augmentation that keeps them (see ``augment``).

    :meth:`score` is the coefficient of determination R^2 (averaged over the
    outputs), as for every scikit-learn regressor. The validation loss of
    ``early_stopping`` is the loss on standardised targets. Standardising
    makes the learning rate and the Huber threshold independent of the
    targets' units: targets of 1e4 and of 1e-3 train alike.

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> from sktransfer import FineTunedRegressor
    >>> trunk = nn.Sequential(
    ...     nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
    ...     nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    ... )
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randint(0, 255, (20, 16, 16, 3), dtype=np.uint8)
    >>> y = X.mean(axis=(1, 2, 3)) * 100.0
    >>> reg = FineTunedRegressor(
    ...     trunk, image_size=16, max_epochs=2, batch_size=8, augment=False,
    ...     random_state=0,
    ... )
    >>> reg.fit(X, y).predict(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        **BaseFineTuner._parameter_constraints,
        "loss": [StrOptions(set(_LOSSES))],
    }

    __init__ = init_with(loss="squared_error")

    # ---------------------------------------------------------- task hooks
    def _check_targets(self, y):
        name = type(self).__name__
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError) as exc:
                example = y.ravel()[0] if y.size else None
                raise ValueError(
                    f"{name} needs numeric targets; y has dtype {y.dtype} (first "
                    f"value {example!r}). To predict labels, use "
                    "FineTunedClassifier."
                ) from exc
        y = y.astype(np.float64, copy=False)
        if y.ndim not in (1, 2) or y.size == 0:
            raise ValueError(
                f"{name} needs y of shape (n_samples,) or (n_samples, n_outputs); "
                f"got shape {y.shape}."
            )
        if not np.isfinite(y).all():
            raise ValueError(
                f"y contains NaN or infinity ({int(np.sum(~np.isfinite(y)))} "
                f"values): {name} needs finite targets. Drop those samples, or "
                "give them sample_weight=0 and any finite value."
            )
        return y

    def _encode_targets(self, y, sample_weight):
        y2 = y.reshape(len(y), -1)
        self.n_outputs_ = y2.shape[1]
        self._one_d = y.ndim == 1
        mean = np.average(y2, axis=0, weights=sample_weight)
        var = np.average((y2 - mean) ** 2, axis=0, weights=sample_weight)
        scale = np.sqrt(var)
        # A constant target (or one rounding to it) keeps its units.
        scale[scale <= 10 * np.finfo(np.float64).eps * np.maximum(1, abs(mean))] = 1.0
        self.target_mean_, self.target_scale_ = mean, scale
        return ((y2 - mean) / scale).astype(np.float32)

    def _n_outputs(self):
        return self.n_outputs_

    def _criterion(self):
        return _LOSSES[self.loss]

    def _predict_nonlinearity(self):
        return _identity

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    # ----------------------------------------------------------------- predict
    @Substitution(**DOCS)
    def predict(self, X):
        """Predict the targets of images, in the units of ``y``.

        Parameters
        ----------
        %(X)s

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The shape of the ``y`` given to :meth:`fit`.
        """
        out = self._predict_outputs(X) * self.target_scale_ + self.target_mean_
        return out[:, 0] if self._one_d else out
