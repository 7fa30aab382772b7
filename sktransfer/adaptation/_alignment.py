"""Feature alignment: map source rows into the target domain's statistics.

Two aligners of the feature-representation family, on one base:

- :class:`CORALAligner` (Sun, Feng and Saenko 2016) matches the means and
  covariances of the two domains: source rows are whitened with the source
  covariance and re-coloured with the target's;
- :class:`SubspaceAligner` (Fernando et al. 2013) projects each domain onto
  its own PCA subspace and rotates the source basis onto the target basis.

An aligner is fitted on source and target rows marked by ``sample_domain``,
like the weighters, and plugs into the same meta-estimators
(:class:`~sktransfer.adaptation.DomainAdaptedClassifier`). ``transform``
treats rows as target rows unless ``sample_domain`` says otherwise, so that
new rows at predict time are mapped as target rows.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.covariance import ledoit_wolf
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._docstrings import Substitution
from ._domain import check_both_domains, check_sample_domain

__all__ = ["CORALAligner", "SubspaceAligner"]

# Eigenvalues below this fraction of the largest are treated as this floor
# when a covariance is inverted: a rank-deficient covariance (more features
# than rows, with reg=0) then stays finite.
_EIGEN_FLOOR = 1e-10

_aligner_docs = Substitution(
    common_attributes="""
    n_source_, n_target_ : int
        Rows of each domain seen in ``fit``.

    n_features_in_ : int
        Number of features seen in ``fit``.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen in ``fit``, set only when ``X`` has
        feature names that are all strings.
    """,
    transform_doc="""
        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to map.

        sample_domain : array-like of shape (n_samples,), default=None
            Positive for source rows, negative for target rows. ``None``
            treats every row as a target row: new rows met at predict time
            come from the target domain.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features_out)
            The rows in the aligned space.
    """,
    fit_doc="""
        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Source and target rows together.

        y : None
            Ignored; present for API consistency.

        sample_domain : array-like of shape (n_samples,)
            Positive for source rows, negative for target rows. Required.

        Returns
        -------
        self : object
            The fitted aligner.
    """,
)


def _sym_power(cov, power):
    """``cov ** power`` of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh(cov)
    values = np.maximum(values, _EIGEN_FLOOR * max(values.max(), _EIGEN_FLOOR))
    return (vectors * values**power) @ vectors.T


class _BaseAligner(TransformerMixin, BaseEstimator):
    """Fit on both domains; map rows by domain (target when not told)."""

    @_fit_context(prefer_skip_nested_validation=True)
    @_aligner_docs
    def fit(self, X, y=None, *, sample_domain=None):
        """Learn the map of each domain into the aligned space.

        %(fit_doc)s
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        is_source = check_sample_domain(sample_domain, X.shape[0])
        self.n_source_, self.n_target_ = check_both_domains(is_source)
        X = X.astype(np.float64, copy=False)
        self._fit_maps(X[is_source], X[~is_source])
        return self

    @_aligner_docs
    def transform(self, X, sample_domain=None):
        """Map rows into the aligned space, each by its domain.

        %(transform_doc)s
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        X = X.astype(np.float64, copy=False)
        if sample_domain is None:
            return self._map_target(X)
        is_source = check_sample_domain(sample_domain, X.shape[0])
        out = np.empty((X.shape[0], self._n_features_out()))
        out[is_source] = self._map_source(X[is_source])
        out[~is_source] = self._map_target(X[~is_source])
        return out

    def fit_transform(self, X, y=None, *, sample_domain=None):
        """Fit, then map the training rows, each by its domain.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Source and target rows together.

        y : None
            Ignored.

        sample_domain : array-like of shape (n_samples,)
            Positive for source rows, negative for target rows. Required.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features_out)
            The training rows in the aligned space.
        """
        return self.fit(X, sample_domain=sample_domain).transform(
            X, sample_domain=sample_domain
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.input_tags.sparse = False
        return tags


@_aligner_docs
class CORALAligner(_BaseAligner):
    """CORrelation ALignment: give source rows the target's mean and covariance.

    Fitted on source and target rows marked by ``sample_domain``, it learns
    the linear map ``A = C_s^{-1/2} C_t^{1/2}`` between the regularised
    covariances of the two domains (Sun, Feng and Saenko 2016) and maps a
    source row ``x`` to ``(x - mean_s) A + mean_t``. After the map, the source
    rows have the target's mean and (up to the regularisation) covariance, so
    a model trained on them sees features distributed as the target's.

    Read more in the :ref:`User Guide <feature_alignment>`.

    Parameters
    ----------
    reg : float >= 0 or "auto", default="auto"
        Covariance regularisation. A float is added to the diagonal of both
        covariances (Sun et al. add 1 to features standardised to unit
        variance); ``"auto"`` shrinks each covariance toward a multiple of
        the identity by the Ledoit-Wolf amount, which adapts to the scale and
        the number of rows (there are often more features than rows).

    Attributes
    ----------
    mean_source_, mean_target_ : ndarray of shape (n_features,)
        Means of the source and target training rows.

    covariance_source_, covariance_target_ : ndarray of shape (n_features, n_features)
        Their regularised covariances ``C_s``, ``C_t``.

    coral_map_ : ndarray of shape (n_features, n_features)
        ``C_s^{-1/2} C_t^{1/2}``, applied to centred source rows.

    %(common_attributes)s

    See Also
    --------
    SubspaceAligner : align PCA subspaces instead of full covariances.
    DomainAdaptedClassifier : train any classifier on the aligned rows.

    Notes
    -----
    ``transform`` maps source rows (``sample_domain > 0``) by
    ``(x - mean_source_) @ coral_map_ + mean_target_`` and returns target rows
    unchanged; without ``sample_domain`` every row is a target row, so new
    rows at predict time pass through unchanged. Sun et al. map the source
    rows only (no centring); matching the means as well costs nothing and
    removes the first-order shift, which dominates on embeddings.

    References
    ----------
    B. Sun, J. Feng and K. Saenko, "Return of Frustratingly Easy Domain
    Adaptation", AAAI 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.adaptation import CORALAligner
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (200, 2)), rng.normal(3, 2, (200, 2))]
    >>> domain = np.r_[np.ones(200), -np.ones(200)]
    >>> aligned = CORALAligner(reg=0.0).fit_transform(X, sample_domain=domain)
    >>> bool(np.allclose(aligned[:200].mean(0), X[200:].mean(0)))
    True
    """

    _parameter_constraints = {
        "reg": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
    }

    def __init__(self, *, reg="auto"):
        self.reg = reg

    def _covariance(self, X):
        if self.reg == "auto":
            # ledoit_wolf of a single row is 0 variance; the floor in
            # _sym_power keeps the map finite.
            return ledoit_wolf(X)[0]
        centred = X - X.mean(axis=0)
        cov = centred.T @ centred / max(X.shape[0] - 1, 1)
        return cov + self.reg * np.eye(X.shape[1])

    def _fit_maps(self, X_source, X_target):
        self.mean_source_ = X_source.mean(axis=0)
        self.mean_target_ = X_target.mean(axis=0)
        self.covariance_source_ = self._covariance(X_source)
        self.covariance_target_ = self._covariance(X_target)
        self.coral_map_ = _sym_power(self.covariance_source_, -0.5) @ _sym_power(
            self.covariance_target_, 0.5
        )

    def _n_features_out(self):
        return self.n_features_in_

    def _map_source(self, X):
        return (X - self.mean_source_) @ self.coral_map_ + self.mean_target_

    def _map_target(self, X):
        return X.copy()


@_aligner_docs
class SubspaceAligner(_BaseAligner):
    """Subspace alignment: rotate the source PCA basis onto the target's.

    Fitted on source and target rows marked by ``sample_domain``, it learns
    the first ``n_components`` principal directions of each domain, ``P_s``
    and ``P_t``, and the alignment ``M = P_s^T P_t``, which minimises
    ``||P_s M - P_t||_F`` (Fernando et al. 2013). Source rows are projected
    on the aligned source basis ``P_s M``, target rows on ``P_t``: both land
    in the same ``n_components``-dimensional coordinates.

    Read more in the :ref:`User Guide <feature_alignment>`.

    Parameters
    ----------
    n_components : int >= 1, default=32
        Dimension of the subspaces. Capped at the number of features and of
        rows in each domain; the value used is ``n_components_``.

    Attributes
    ----------
    mean_source_, mean_target_ : ndarray of shape (n_features,)
        Means of the source and target training rows (each domain is centred
        on its own mean before projection).

    basis_source_, basis_target_ : ndarray of shape (n_features, n_components_)
        Orthonormal PCA bases ``P_s`` and ``P_t``.

    alignment_ : ndarray of shape (n_components_, n_components_)
        ``M = P_s^T P_t``.

    n_components_ : int
        The subspace dimension used.

    %(common_attributes)s

    See Also
    --------
    CORALAligner : match full covariances instead of subspaces.

    Notes
    -----
    ``transform`` returns ``(x - mean_source_) @ basis_source_ @ alignment_``
    for source rows and ``(x - mean_target_) @ basis_target_`` for target
    rows; without ``sample_domain`` every row is a target row. The output
    has ``n_components_`` columns.

    References
    ----------
    B. Fernando, A. Habrard, M. Sebban and T. Tuytelaars, "Unsupervised
    Visual Domain Adaptation Using Subspace Alignment", ICCV 2013.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.adaptation import SubspaceAligner
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(100, 5))
    >>> domain = np.r_[np.ones(50), -np.ones(50)]
    >>> SubspaceAligner(n_components=2).fit_transform(X, sample_domain=domain).shape
    (100, 2)
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, n_components=32):
        self.n_components = n_components

    @staticmethod
    def _basis(X, k):
        # Right singular vectors of the centred rows: the principal axes,
        # with signs fixed (largest entry positive) so that refits agree.
        _, _, vt = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
        basis = vt[:k].T
        signs = np.sign(basis[np.abs(basis).argmax(axis=0), range(k)])
        return basis * np.where(signs == 0, 1, signs)

    def _fit_maps(self, X_source, X_target):
        self.n_components_ = int(
            min(self.n_components, X_source.shape[1], *(len(X_source), len(X_target)))
        )
        self.mean_source_ = X_source.mean(axis=0)
        self.mean_target_ = X_target.mean(axis=0)
        self.basis_source_ = self._basis(X_source, self.n_components_)
        self.basis_target_ = self._basis(X_target, self.n_components_)
        self.alignment_ = self.basis_source_.T @ self.basis_target_

    def _n_features_out(self):
        return self.n_components_

    def _map_source(self, X):
        return (X - self.mean_source_) @ self.basis_source_ @ self.alignment_

    def _map_target(self, X):
        return (X - self.mean_target_) @ self.basis_target_
