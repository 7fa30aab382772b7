"""Transfer learning with pretrained CNNs as scikit-learn estimators."""

from .backbones import list_backbones, load_backbone
from .feature_extraction import PretrainedFeatureExtractor
from .fine_tuning import FineTunedClassifier
from .model_selection import ImportanceWeightedScorer, SourceValidationKFold
from .weighting import (
    DiscriminativeWeighter,
    ImportanceWeightedClassifier,
    ImportanceWeightedRegressor,
    KLIEPWeighter,
    KMMWeighter,
    ULSIFWeighter,
    estimate_importance_weights,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "FineTunedClassifier",
    "DiscriminativeWeighter",
    "ImportanceWeightedClassifier",
    "ImportanceWeightedRegressor",
    "ImportanceWeightedScorer",
    "KLIEPWeighter",
    "KMMWeighter",
    "SourceValidationKFold",
    "ULSIFWeighter",
    "estimate_importance_weights",
    "PretrainedFeatureExtractor",
    "list_backbones",
    "load_backbone",
]
