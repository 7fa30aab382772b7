"""scikit-learn's common checks on the weighters and meta-estimators of adaptation.

The harness below (each row fed once per domain) lives here until the common
checks of every estimator move to one file.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.utils import _safe_indexing
from sklearn.utils.estimator_checks import parametrize_with_checks

from sktransfer.adaptation import (
    CORALAligner,
    DomainAdaptedClassifier,
    DomainAdaptedRegressor,
    SubspaceAligner,
)
from sktransfer.weighting import (
    DiscriminativeWeighter,
    ImportanceWeightedClassifier,
    ImportanceWeightedRegressor,
    KLIEPWeighter,
    KMMWeighter,
    ULSIFWeighter,
)


class _NoShift:
    """Check harness: without ``sample_domain`` every row is source AND target.

    The estimators need target rows and raise without ``sample_domain``, which
    would stop every common check at ``fit``. The harness feeds each row twice,
    once per domain (a "no shift" problem), so the checks exercise the real
    estimator: parameters, cloning, validation, dtypes, NaN handling,
    pickling, idempotence and, for the meta-estimators, predictions.
    """

    def fit(self, X, y=None, sample_domain=None):
        if sample_domain is None:
            if sp.issparse(X):
                n, X = X.shape[0], sp.vstack([X, X])
            else:
                X = X if hasattr(X, "iloc") else np.asarray(X)
                n = X.shape[0]
                X = _safe_indexing(X, np.r_[np.arange(n), np.arange(n)])
            twice = np.r_[np.arange(n), np.arange(n)]
            if y is not None and np.asarray(y).shape[0] == n:
                y = _safe_indexing(np.asarray(y), twice)
            # (a y of the wrong length goes through unchanged, so the
            # estimator's own length check is what the checks see)
            sample_domain = np.r_[np.ones(n), -np.ones(n)]
        return super().fit(X, y, sample_domain=sample_domain)


def _harness(cls):
    # Registered at module level so that pickling finds the class.
    name = f"NoShift{cls.__name__}"
    if name not in globals():
        globals()[name] = type(name, (_NoShift, cls), {"__module__": __name__})
    return globals()[name]


CHECKED = [
    _harness(DiscriminativeWeighter)(cv=2, random_state=0),
    _harness(KLIEPWeighter)(n_centers=10, cv=2, random_state=0),
    _harness(ULSIFWeighter)(n_centers=10, cv=2, random_state=0),
    _harness(KMMWeighter)(n_components=10, max_iter=50, random_state=0),
    _harness(ImportanceWeightedClassifier)(
        LogisticRegression(), weighter=DiscriminativeWeighter(cv=2, random_state=0)
    ),
    _harness(ImportanceWeightedRegressor)(
        LinearRegression(), weighter=DiscriminativeWeighter(cv=2, random_state=0)
    ),
    _harness(CORALAligner)(),
    _harness(CORALAligner)(reg=1.0),
    _harness(SubspaceAligner)(n_components=2),
    _harness(DomainAdaptedClassifier)(LogisticRegression(), adapter=CORALAligner()),
    _harness(DomainAdaptedClassifier)(LogisticRegression(), adapter=None),
    _harness(DomainAdaptedRegressor)(LinearRegression(), adapter=SubspaceAligner()),
]


def _expected_failed_checks(estimator):
    return {}


@pytest.mark.filterwarnings("ignore::UserWarning")
@parametrize_with_checks(CHECKED, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
