"""Transfer learning with pretrained CNNs as scikit-learn estimators."""

from .backbones import list_backbones, load_backbone
from .feature_extraction import PretrainedFeatureExtractor

__version__ = "0.1.0.dev0"

__all__ = [
    "PretrainedFeatureExtractor",
    "list_backbones",
    "load_backbone",
]
