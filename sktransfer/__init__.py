"""Transfer learning with pretrained CNNs as scikit-learn estimators.

The public names are imported on first use (PEP 562), so that ``import
sktransfer`` -- and with it ``sktransfer --help`` -- does not import torch.
"""

import importlib

__version__ = "0.1.0.dev0"

# Public name -> the module that defines it.
_EXPORTS = {
    "list_backbones": "backbones",
    "load_backbone": "backbones",
    "FineTunedClassifier": "fine_tuning",
    "FineTunedRegressor": "fine_tuning",
    "PretrainedFeatureExtractor": "feature_extraction",
    "CORALAligner": "adaptation",
    "DomainAdaptedClassifier": "adaptation",
    "DomainAdaptedRegressor": "adaptation",
    "SubspaceAligner": "adaptation",
    "DeepEmbeddedValidationScorer": "model_selection",
    "ImportanceWeightedScorer": "model_selection",
    "SourceValidationKFold": "model_selection",
    "DiscriminativeWeighter": "weighting",
    "ImportanceWeightedClassifier": "weighting",
    "ImportanceWeightedRegressor": "weighting",
    "KLIEPWeighter": "weighting",
    "KMMWeighter": "weighting",
    "ULSIFWeighter": "weighting",
    "estimate_importance_weights": "weighting",
}

__all__ = [
    "CORALAligner",
    "DeepEmbeddedValidationScorer",
    "DomainAdaptedClassifier",
    "DomainAdaptedRegressor",
    "SubspaceAligner",
    "FineTunedClassifier",
    "FineTunedRegressor",
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


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted({*globals(), *__all__})
