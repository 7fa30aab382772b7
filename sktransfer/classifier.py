"""``FineTunedClassifier``: fine-tune a pretrained CNN as a scikit-learn classifier.

The estimator lives in :mod:`sktransfer.fine_tuning`, next to the base it
shares with the other fine-tuning estimators; this module keeps
``from sktransfer.classifier import FineTunedClassifier`` working.
"""

from .fine_tuning import FineTunedClassifier

__all__ = ["FineTunedClassifier"]
