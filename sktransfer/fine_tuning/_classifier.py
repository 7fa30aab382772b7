"""``FineTunedClassifier``: fine-tune a pretrained CNN as a scikit-learn classifier.

The task-specific part of fine-tuning for single-label classification: label
encoding, class weights, cross-entropy, softmax, ``predict_proba`` and
``predict``. Everything else is ``_base.BaseFineTuner``'s.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import compute_sample_weight
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d
from torch import nn

from .._docstrings import Substitution
from ._base import BaseFineTuner, init_with
from ._docs import DOCS

__all__ = ["FineTunedClassifier"]


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    # In float64 so that rows sum to one to sklearn's tolerance.
    return torch.softmax(logits.double(), dim=-1)


def _correct(y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (y_pred.argmax(dim=1) == y).float()


@Substitution(**DOCS)
class FineTunedClassifier(ClassifierMixin, BaseFineTuner):
    """Fine-tune a pretrained CNN on labelled images, as a scikit-learn classifier.

    A new linear head, sized from the classes seen in :meth:`fit`, is put on a
    pretrained backbone (see :func:`sktransfer.load_backbone`) and trained with
    skorch to minimise the (sample-weighted) cross-entropy.

    %(recipes)s

    Parameters
    ----------
    %(recipe_parameters)s
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, multiplied into ``sample_weight``.
    %(runtime_parameters)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, in the order of ``predict_proba``'s columns.
    %(fitted_attributes)s

    See Also
    --------
    sktransfer.PretrainedFeatureExtractor : frozen embeddings for any sklearn
        model (the linear-probe recipe).
    sktransfer.callbacks : the freezing and schedule callbacks used here.

    Notes
    -----
    The validation split of ``early_stopping`` is stratified by class when
    every class has at least two samples. Besides ``valid_loss``, the history
    records the weighted ``valid_acc``: to keep the most accurate epoch (as
    PyTorch's tutorial does), set
    ``callbacks__early_stopping__monitor="valid_acc"`` and
    ``callbacks__early_stopping__lower_is_better=False``. The loss takes
    ``criterion__label_smoothing``.

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
        **BaseFineTuner._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    __init__ = init_with(class_weight=None)

    # ---------------------------------------------------------- task hooks
    def _check_targets(self, y):
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        return y

    def _encode_targets(self, y):
        encoder = LabelEncoder()
        y_enc = encoder.fit_transform(y).astype(np.int64)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"FineTunedClassifier needs samples of at least 2 classes in y; got "
                f"1 class: {list(self.classes_)!r}."
            )
        return y_enc

    def _n_outputs(self):
        return len(self.classes_)

    def _criterion(self):
        return nn.CrossEntropyLoss

    def _predict_nonlinearity(self):
        return _softmax

    def _target_weights(self, y):
        if self.class_weight is None:
            return None
        return compute_sample_weight(self.class_weight, y)

    def _validation_strata(self, targets):
        # Stratified when every class can be on both sides of the split.
        return targets if np.bincount(targets).min() >= 2 else None

    def _valid_scores(self):
        return {"valid_acc": _correct}

    # ----------------------------------------------------------------- predict
    @Substitution(**DOCS)
    def predict_proba(self, X):
        """Class probabilities of images.

        Parameters
        ----------
        %(X)s

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        return self._predict_outputs(X)

    @Substitution(**DOCS)
    def predict(self, X):
        """Predict the labels of images.

        Parameters
        ----------
        %(X)s

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
