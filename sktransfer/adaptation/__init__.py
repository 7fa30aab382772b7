"""Domain adaptation: learning for a target domain from labelled source rows.

Source and target rows travel together, marked by ``sample_domain``
(positive: source, negative: target; skada's convention). One private module
per method family:

- ``_domain``: the ``sample_domain`` checks;
- ``_base_weighter``: the weighters' shared base (normalise, clip, diagnose,
  ``compute_weights``);
- ``_kernels`` and ``_kernel_ratio``: kernel helpers, and the base of KLIEP
  and uLSIF;
- ``_discriminative``, ``_kliep``, ``_ulsif``, ``_kmm``: the weighters;
- ``_estimate``: :func:`estimate_importance_weights`;
- ``_alignment``: the aligners (CORAL, subspace alignment);
- ``_deep``: gradient reversal, domain discriminator and the Deep CORAL loss,
  used by the fine-tuning estimators;
- ``_meta``: the domain-adapted meta-estimators (any adapter: weighter,
  aligner or none).

Nothing here changes scikit-learn's global configuration. The deep pieces
(``_deep``) are imported on first use, so that the shallow adapters do not
import torch.
"""

import importlib

from ._alignment import CORALAligner, SubspaceAligner
from ._discriminative import DiscriminativeWeighter
from ._domain import check_both_domains, check_sample_domain, kept_target_rows
from ._estimate import estimate_importance_weights
from ._kliep import KLIEPWeighter
from ._kmm import KMMWeighter
from ._meta import (
    DomainAdaptedClassifier,
    DomainAdaptedRegressor,
    ImportanceWeightedClassifier,
    ImportanceWeightedRegressor,
)
from ._ulsif import ULSIFWeighter

__all__ = [
    "CORALAligner",
    "DomainAdaptedClassifier",
    "DomainAdaptedRegressor",
    "SubspaceAligner",
    "DiscriminativeWeighter",
    "ImportanceWeightedClassifier",
    "ImportanceWeightedRegressor",
    "KLIEPWeighter",
    "KMMWeighter",
    "ULSIFWeighter",
    "check_both_domains",
    "check_sample_domain",
    "kept_target_rows",
    "estimate_importance_weights",
]

# The torch-based pieces of deep adaptation, imported on first use (PEP 562).
_DEEP = (
    "DomainAdaptation",
    "DomainDiscriminator",
    "DomainPairs",
    "GradientReversal",
    "coral_loss",
    "ganin_schedule",
    "grad_reverse",
)
__all__ += list(_DEEP)


def __getattr__(name):
    if name not in _DEEP:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("._deep", __name__), name)
    globals()[name] = value
    return value
