"""The shared base of KLIEP and uLSIF: a ratio on kernels and linear features.

Both model the density ratio with Gaussian kernels on target centres,
optionally with the linear features of ``x``, and select the kernel width
and penalty by cross-validation. This module holds what they share: the
centres, the candidate widths, the folds (no fold scores a model on its own
centres), the one-standard-error rule, and the fitted coefficients.
"""

import math
from numbers import Integral, Real

import numpy as np
from sklearn.model_selection import KFold
from sklearn.utils._param_validation import Interval, StrOptions

from ._base_weighter import BaseWeighter
from ._kernels import (
    Basis,
    median_gamma,
    pooled_location_scale,
    rbf_from,
    sq_distances,
)

__all__ = [
    "GAMMA_FACTORS",
    "LINEAR_BASIS_ALPHAS",
    "BaseKernelRatio",
    "held_out_centres",
    "paired_folds",
    "select",
    "subsample",
]

# Kernel widths tried around the median heuristic by the cross-validated methods.
GAMMA_FACTORS = (0.1, 0.3, 1.0, 3.0, 10.0)
# L2 penalties tried for models with linear features (KLIEP's log-linear
# model, uLSIF's linear+rbf basis): many features need strong penalties.
LINEAR_BASIS_ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def select(fold_losses, one_standard_error):
    """Index of the chosen candidate (candidates come simplest first).

    With ``one_standard_error`` the simplest candidate whose mean loss is
    within one standard error of the best (the rule of Breiman et al.,
    "Classification and Regression Trees", 1984: the CV loss is noisy, and
    among models it cannot tell apart the simplest extrapolates best);
    otherwise the best (first on ties).
    """
    means = np.array([np.mean(losses) for losses in fold_losses])
    best = int(np.argmin(means))
    losses = np.asarray(fold_losses[best])
    if not one_standard_error or losses.size < 2:
        return best
    threshold = means[best] + np.std(losses, ddof=1) / math.sqrt(losses.size)
    return int(np.flatnonzero(means <= threshold)[0])


def subsample(n_rows, cap, rng):
    """All rows, or ``cap`` of them at random (the same for every candidate)."""
    if n_rows <= cap:
        return np.arange(n_rows)
    return np.sort(rng.choice(n_rows, cap, replace=False))


def paired_folds(n_source, n_target, cv, seed):
    """Source and target rows split separately into the same number of folds.

    Yields ``((train_source, test_source), (train_target, test_target))``.
    """
    split_s = KFold(cv, shuffle=True, random_state=seed).split(np.arange(n_source))
    split_t = KFold(cv, shuffle=True, random_state=seed + 1).split(np.arange(n_target))
    return zip(split_s, split_t, strict=True)


def held_out_centres(owner_t, test_t):
    """Kernel columns whose centre is one of the held-out target rows.

    A held-out row that is also a centre would be scored by a bump sitting
    on it, which rewards narrow kernels: these columns leave the fold's model.
    ``owner_t`` holds each target row's kernel column (-1: not a centre).
    """
    owners = owner_t[test_t]
    return owners[owners >= 0]


class BaseKernelRatio(BaseWeighter):
    """Ratio from Gaussian kernels on target centres, optionally linear features.

    See each class's ``basis``. Subclasses implement ``_cv_losses`` (yielding
    the fold losses and the solver's state of each candidate), ``_solve``
    (the final fit) and ``_raw`` (the ratio from the score).

    Memory beyond the input is bounded by two ``(n_source + n_target) *
    n_centers`` float64 arrays (squared distances to the centres, then kernel
    values; e.g. 40 000 rows x 200 centres x 8 bytes = 64 MB each) plus one
    block of 4096 rows while the distances are computed, never ``n x n``.
    Distances are computed once; each candidate width costs one ``exp``. The
    linear features are applied through the (float64) input itself.
    """

    _parameter_constraints = {
        **BaseWeighter._parameter_constraints,
        "basis": [StrOptions({"linear+rbf", "rbf"})],
        "gamma": [Interval(Real, 0, None, closed="neither"), None],
        "alpha": [Interval(Real, 0, None, closed="neither"), None],
        "n_centers": [Interval(Integral, 1, None, closed="left")],
        "cv": [Interval(Integral, 2, None, closed="left")],
    }
    # Whether the linear basis has a constant column (uLSIF; KLIEP's
    # log-linear model normalises over the source, where a constant cancels).
    _constant = False

    def _min_rows(self):
        # Width selection by cross-validation splits the target rows.
        return self.cv if self._needs_cv() else 1

    def _linear_basis(self):
        return self.basis == "linear+rbf"

    def _needs_cv(self):
        return self.gamma is None or (self._linear_basis() and self.alpha is None)

    def _basis(self, X, K):
        linear = self._linear_basis()
        return Basis(
            X if linear else None,
            K,
            self._location,
            self._spread,
            self._constant and linear,
        )

    def _candidate_gammas(self, median):
        # Simplest first, so that ties (and, with a linear basis, near-ties)
        # go to the smoother ratio: the linear features alone (gamma None),
        # then the widest kernel.
        if self.gamma is not None:
            return [self.gamma]
        gammas = [median * factor for factor in sorted(GAMMA_FACTORS)]
        return [None, *gammas] if self._linear_basis() else gammas

    def _fit_ratio(self, X_source, X_target, rng):
        n_centers = min(self.n_centers, len(X_target))
        picked = rng.choice(len(X_target), n_centers, replace=False)
        self.centers_ = X_target[picked]
        # Column of each target row's kernel (-1: not a centre), so that the
        # cross-validation never scores a model on its own centres.
        owner_t = np.full(len(X_target), -1)
        owner_t[picked] = np.arange(n_centers)
        gammas = self._candidate_gammas(median_gamma([X_source, X_target], rng))
        self._location, self._spread = pooled_location_scale(X_source, X_target)
        fold_seed = rng.randint(2**31 - 1)
        # Distances once; each width is then one exp over them.
        D_s = sq_distances(X_source, self.centers_)
        D_t = sq_distances(X_target, self.centers_)
        cache = {}
        self.gamma_, extra = self._select_candidate(
            (X_source, X_target), (D_s, D_t), gammas, (fold_seed, owner_t), cache
        )
        K_s, K_t = None, None
        if self.gamma_ is not None:
            K_s = rbf_from(D_s, self.gamma_, out=D_s)
            K_t = rbf_from(D_t, self.gamma_, out=D_t)
        del D_s, D_t
        theta = self._solve(X_source, X_target, K_s, K_t, extra, cache)
        self._set_coefficients(theta, X_source.shape[1], n_centers)
        self._calibrate(X_source, K_s)
        r_s, r_t = self._raw(X_source, K_s), self._raw(X_target, K_t)
        # In-sample ratio as the domain score (centres are few, so its
        # optimism is small); documented in each class.
        return r_s, r_s, r_t

    def _select_candidate(self, X, D, gammas, folds, cache):
        """Cross-validate every (width, penalty); return the chosen pair.

        ``X`` and ``D`` are the source and target rows and their squared
        distances to the centres, ``folds`` the fold seed and the centre
        owner of each target row.
        """
        candidates, fold_losses = [], []
        for gamma in gammas:
            K_s, K_t = (
                (None, None)
                if gamma is None
                else (rbf_from(D[0], gamma), rbf_from(D[1], gamma))
            )
            for losses, extra in self._cv_losses(*X, K_s, K_t, *folds, cache):
                candidates.append((gamma, extra))
                fold_losses.append(losses)
        return candidates[select(fold_losses, one_standard_error=self._linear_basis())]

    def _set_coefficients(self, theta, n_features, n_centers):
        # Coefficients in the units of x, score(x) = intercept_ + coef_ . x +
        # dual_coef_ . k(x); the basis itself used standardised linear features.
        self.coef_, self.intercept_ = np.zeros(n_features), 0.0
        q = self._basis(np.empty((0, n_features)), None).n_linear
        if self._linear_basis():
            self.coef_ = theta[int(self._constant) : q] / self._spread
            constant = float(theta[0]) if self._constant else 0.0
            self.intercept_ = constant - float(self._location @ self.coef_)
        self.dual_coef_ = theta[q:] if self.gamma_ is not None else np.zeros(n_centers)

    def _calibrate(self, X_source, K_source):
        """Hook run once the coefficients are set (KLIEP fixes its normaliser)."""

    def _score(self, X, K):
        score = X @ self.coef_ + self.intercept_
        if K is not None:
            score += K @ self.dual_coef_
        return score

    def _ratio(self, X):
        K = None
        if self.gamma_ is not None:
            D = sq_distances(X, self.centers_)
            K = rbf_from(D, self.gamma_, out=D)
        return self._raw(X, K)
