"""``FineTunedClassifier``: fine-tune a pretrained CNN as a scikit-learn classifier.

The task-specific part of fine-tuning for classification: label encoding,
class weights, the loss, the output nonlinearity, ``predict_proba`` and
``predict``, for one label per image (cross-entropy, softmax) or for a
multilabel indicator matrix (binary cross-entropy, sigmoid: one shared backbone,
one output per label). Everything else is ``_base.BaseFineTuner``'s.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import compute_sample_weight
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_array, column_or_1d
from torch import nn

from .._docstrings import Substitution
from ._base import BaseFineTuner, init_with
from ._docs import DOCS

__all__ = ["FineTunedClassifier"]


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    # In float64 so that rows sum to one to sklearn's tolerance.
    return torch.softmax(logits.double(), dim=-1)


def _sigmoid(logits: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(logits.double())


def _correct(y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (y_pred.argmax(dim=1) == y).float()


def _all_labels_correct(y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # Subset accuracy, as ClassifierMixin.score computes it for multilabel y.
    return ((y_pred > 0) == (y > 0.5)).all(dim=1).float()


@Substitution(**DOCS)
class FineTunedClassifier(ClassifierMixin, BaseFineTuner):
    """Fine-tune a pretrained CNN on labelled images, as a scikit-learn classifier.

    A new linear head, sized from the classes seen in :meth:`fit`, is put on a
    pretrained backbone (see :func:`sktransfer.load_backbone`) and trained with
    skorch to minimise the (sample-weighted) cross-entropy.

    A multilabel indicator matrix ``y`` of shape ``(n_samples, n_labels)`` (as
    :class:`~sklearn.preprocessing.MultiLabelBinarizer` makes it) trains one
    sigmoid output per label on the shared backbone (hard parameter sharing),
    with the binary cross-entropy averaged over the labels; ``predict`` then
    returns the indicator matrix.

    %(recipes)s

    Parameters
    ----------
    %(recipe_parameters)s
    class_weight : dict, list of dict, "balanced" or None, default=None
        Weights of the classes in the loss, multiplied into ``sample_weight``
        (:func:`sklearn.utils.compute_sample_weight`). For a multilabel ``y``,
        as for scikit-learn's multi-output forests: ``"balanced"`` (per label,
        the weights of its positives and negatives, multiplied over the labels)
        or a list of one ``{0: w, 1: w}`` dict per label.
    %(runtime_parameters)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, in the order of ``predict_proba``'s columns; for a
        multilabel ``y``, ``arange(n_labels)`` (the columns of ``y``), as
        :class:`~sklearn.neural_network.MLPClassifier` has them.
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
    ``criterion__label_smoothing`` (single-label) or ``criterion__pos_weight``
    (multilabel: a tensor of one factor per label for the positives).

    Multilabel ``y`` follows :class:`~sklearn.neural_network.MLPClassifier`:
    ``predict_proba`` returns one ``(n_samples, n_labels)`` array of the
    probabilities that each label is present (not a list of per-label
    ``(n_samples, 2)`` arrays, as the forests return), ``predict`` thresholds
    them at 0.5, ``score`` is the subset accuracy and ``valid_acc`` too. The
    validation split is not stratified. A label that is never present (or
    always present) in the training data is kept: its output trains toward
    the constant answer, and a ``UserWarning`` names it, as
    :class:`~sklearn.multiclass.OneVsRestClassifier` warns; a label unseen in
    ``fit`` cannot be predicted, so drop the column if it is not wanted.

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
        "class_weight": [dict, list, StrOptions({"balanced"}), None],
    }

    __init__ = init_with(class_weight=None)

    # ---------------------------------------------------------- task hooks
    def _check_targets(self, y):
        _check_no_missing_labels(y)
        if type_of_target(y) == "multilabel-indicator":
            return check_array(y, dtype=None, accept_sparse=False, input_name="y")
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        return y

    def _encode_targets(self, y, sample_weight):
        self._multilabel = y.ndim == 2
        if self._multilabel:
            return self._encode_indicator(y, sample_weight)
        encoder = LabelEncoder()
        y_enc = encoder.fit_transform(y).astype(np.int64)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"FineTunedClassifier needs samples of at least 2 classes in y; got "
                f"1 class: {list(self.classes_)!r}."
            )
        return y_enc

    def _encode_indicator(self, y, sample_weight):
        """``classes_`` and float targets of a multilabel indicator matrix."""
        # type_of_target has checked that y holds 0 and 1 only.
        self.classes_ = np.arange(y.shape[1])
        present = sample_weight @ y  # the weight of each label's positives
        constant = np.flatnonzero((present == 0) | (present == sample_weight.sum()))
        if len(constant):
            warnings.warn(
                f"Label(s) {constant.tolist()} are never present or always present "
                "in the (weighted) training data: their outputs learn the constant "
                "answer. Drop these columns of y if they are not wanted.",
                UserWarning,
                stacklevel=4,
            )
        return y.astype(np.float32)

    def _n_outputs(self):
        return len(self.classes_)

    def _criterion(self):
        return nn.BCEWithLogitsLoss if self._multilabel else nn.CrossEntropyLoss

    def _predict_nonlinearity(self):
        return _sigmoid if self._multilabel else _softmax

    def _target_weights(self, y):
        if self.class_weight is None:
            return None
        return compute_sample_weight(self.class_weight, y)

    def _validation_strata(self, targets):
        # Stratified when every class can be on both sides of the split.
        if self._multilabel or np.bincount(targets).min() < 2:
            return None
        return targets

    def _valid_scores(self):
        return {"valid_acc": _all_labels_correct if self._multilabel else _correct}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

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
            Columns follow ``classes_``. For a multilabel fit, of shape
            ``(n_samples, n_labels)``: the probability of each label, which
            need not sum to one.
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
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Labels from ``classes_``; for a multilabel fit, the indicator
            matrix of the labels whose probability exceeds 0.5.
        """
        proba = self.predict_proba(X)
        if self._multilabel:
            return (proba > 0.5).astype(np.int64)
        return self.classes_[np.argmax(proba, axis=1)]


def _check_no_missing_labels(y) -> None:
    """Name a missing label (``None``, NaN) among labels, with its index.

    Without this, sorting the classes fails with Python's "'<' not supported
    between instances of 'NoneType' and 'str'", which names neither.
    """
    labels = np.asarray(y, dtype=object).reshape(-1)
    for i, label in enumerate(labels):
        if label is None or (isinstance(label, float) and label != label):
            raise ValueError(
                f"y[{i}] is {label!r}: every sample needs a label (a string, an "
                "integer, ...). Drop the unlabelled samples, or give them a label."
            )
