"""Importance weights for covariate shift, and the estimators that use them.

Under covariate shift the inputs of the source (labelled) and target
(unlabelled) domains are drawn from different densities while ``P(y | x)`` is
shared. Training on the source rows with the importance weights
``w(x) = p_target(x) / p_source(x)`` then makes the source risk an unbiased
estimate of the target risk. This module gathers the four estimators of
``w`` and the meta-estimators that train any scikit-learn estimator taking
``sample_weight`` with them; they live in :mod:`sktransfer.adaptation`, one
module per method.

Target rows are given together with the source rows, marked by
``sample_domain`` as in skada: a positive value marks a source row, a negative
value a target row. Nothing here changes scikit-learn's global configuration.
"""

from .adaptation import (
    DiscriminativeWeighter,
    ImportanceWeightedClassifier,
    ImportanceWeightedRegressor,
    KLIEPWeighter,
    KMMWeighter,
    ULSIFWeighter,
    estimate_importance_weights,
)

__all__ = [
    "DiscriminativeWeighter",
    "ImportanceWeightedClassifier",
    "ImportanceWeightedRegressor",
    "KLIEPWeighter",
    "KMMWeighter",
    "ULSIFWeighter",
    "estimate_importance_weights",
]
