"""The estimators that fine-tune a pretrained CNN on labelled images.

``_base`` holds what every task shares (parameters, recipes, sample weights,
the fast frozen-backbone path, prediction), ``_docs`` the shared docstring
text, ``_net`` the torch side (the network, the training data and the skorch
net), ``_regularization`` the penalties toward the pretrained weights (L2-SP),
and one private module per task the small rest: ``_classifier`` for
:class:`FineTunedClassifier` (single-label and multilabel), ``_regressor`` for
:class:`FineTunedRegressor`.
"""

from ._classifier import FineTunedClassifier
from ._regressor import FineTunedRegressor

__all__ = ["FineTunedClassifier", "FineTunedRegressor"]
