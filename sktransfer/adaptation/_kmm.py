"""KMM: importance weights by kernel mean matching, on a Nyström feature map."""

import math
from numbers import Integral, Real

import numpy as np
from sklearn.kernel_approximation import Nystroem
from sklearn.utils._param_validation import Interval
from threadpoolctl import threadpool_limits

from ._base_weighter import BaseWeighter, weighter_docs
from ._kernels import median_gamma

__all__ = ["KMMWeighter", "project_capped_simplex"]


@weighter_docs
class KMMWeighter(BaseWeighter):
    """Importance weights by kernel mean matching, on a Nyström feature map.

    Finds source weights ``beta`` (``0 <= beta <= weight_bound``, mean 1) whose
    weighted kernel mean embedding of the source rows is closest to that of
    the target rows. The kernel is approximated by a Nyström map with
    ``n_components`` landmarks, so the quadratic problem is solved by
    accelerated projected gradient in ``O((n_source + n_target) *
    n_components)`` memory and time per iteration, never ``n x n``.

    KMM gives weights for a *sample*, not a ratio function: it matches means
    and has no value of ``w(x)`` at a single point. ``weights_`` holds the
    solution for the training source rows. ``compute_weights(X)`` re-solves
    the matching for the rows of ``X`` against the target embedding stored at
    fit: a row's weight then depends on the other rows of ``X`` and is
    unreliable for small batches. KMM weights follow the direction of the
    density ratio but are shrunk toward 1 by the bound and the finite kernel
    width; see the user guide for what they recover.

    Read more in the :ref:`User Guide <domain_shift>`.

    Parameters
    ----------
    gamma : float > 0 or None, default=None
        RBF kernel coefficient. ``None`` uses the median heuristic
        ``1 / median ||x - x'||^2`` (on at most 1000 random rows).

    n_components : int, default=300
        Nyström landmarks, drawn from source and target rows.

    alpha : float >= 0, default=1.0
        Ridge penalty ``alpha * ||beta||^2 / n_source^2`` added to the
        matching objective (equivalently ``K + alpha * I``). Exact
        matching (``0``) overfits: it drives many weights to 0 and loses the
        shape of the ratio; the ridge keeps weights smooth.

    weight_bound : float > 0, default=1000.0
        Upper bound ``B`` on each weight inside the matching problem.

    max_iter : int, default=2000
        Maximum projected-gradient iterations.

    tol : float, default=1e-6
        Stop when the largest change of a weight falls below ``tol``.

    %(common_params)s

    random_state : int, RandomState instance or None, default=None
        Controls the landmarks and the median-heuristic subsample.

    Attributes
    ----------
    nystroem_ : :class:`~sklearn.kernel_approximation.Nystroem`
        Fitted feature map.

    gamma_ : float
        Kernel coefficient used.

    n_iter_ : int
        Iterations of the solver at fit.

    %(common_attributes)s

    See Also
    --------
    KLIEPWeighter, ULSIFWeighter : kernel methods with out-of-sample ratios.

    Notes
    -----
    The sum constraint is an equality (``epsilon = 0`` in [1]_) because the
    weights are renormalised to mean 1 anyway. ``domain_auc_`` is the AUC of
    the MMD witness function ``<phi(x), mu_target - mu_source>`` at the
    training rows.

    References
    ----------
    .. [1] J. Huang, A. Smola, A. Gretton, K. Borgwardt, B. Schölkopf,
       "Correcting sample selection bias by unlabeled data", NIPS 2006.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.weighting import KMMWeighter
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (200, 1)), rng.normal(1, 1, (200, 1))]
    >>> sample_domain = np.r_[np.ones(200), -np.ones(200)]
    >>> weighter = KMMWeighter(n_components=50, random_state=0)
    >>> w = weighter.fit(X, sample_domain=sample_domain).weights_[:200]
    >>> bool(w[X[:200, 0] > 1].mean() > w[X[:200, 0] < 0].mean())
    True
    """

    _parameter_constraints = {
        **BaseWeighter._parameter_constraints,
        "gamma": [Interval(Real, 0, None, closed="neither"), None],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "weight_bound": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        *,
        gamma=None,
        n_components=300,
        alpha=1.0,
        weight_bound=1000.0,
        max_iter=2000,
        tol=1e-6,
        max_weight=None,
        max_weight_quantile=None,
        random_state=None,
    ):
        self.gamma = gamma
        self.n_components = n_components
        self.alpha = alpha
        self.weight_bound = weight_bound
        self.max_iter = max_iter
        self.tol = tol
        self.max_weight = max_weight
        self.max_weight_quantile = max_weight_quantile
        self.random_state = random_state

    def _fit_ratio(self, X_source, X_target, rng):
        X = np.vstack([X_source, X_target])
        self.gamma_ = self.gamma if self.gamma is not None else median_gamma(X, rng)
        self.nystroem_ = Nystroem(
            gamma=self.gamma_,
            n_components=min(self.n_components, len(X)),
            random_state=rng.randint(2**31 - 1),
        ).fit(X)
        phi_s = self.nystroem_.transform(X_source)
        phi_t = self.nystroem_.transform(X_target)
        self._target_mean = phi_t.mean(axis=0)
        beta, self.n_iter_ = self._match(phi_s)
        witness = self._target_mean - phi_s.mean(axis=0)
        return beta, phi_s @ witness, phi_t @ witness

    def _match(self, phi_s):
        """FISTA on 1/2 ||phi_s^T beta / n - mu_t||^2 over the capped simplex."""
        n = len(phi_s)
        bound = max(self.weight_bound, 1.0)
        reg = self.alpha
        lipschitz = (np.linalg.norm(phi_s, 2) ** 2 + reg) / n**2
        step = 1.0 / max(lipschitz, 1e-300)
        beta = np.ones(n)
        momentum, t = beta.copy(), 1.0
        n_iter = self.max_iter
        # Matrix-vector products on n_components columns: one BLAS thread is
        # as fast on a quiet machine and far faster on a busy one.
        with threadpool_limits(1, user_api="blas"):
            for iteration in range(self.max_iter):
                grad = phi_s @ (phi_s.T @ momentum / n - self._target_mean) / n
                grad += reg * momentum / n**2
                new = project_capped_simplex(momentum - step * grad, n, bound)
                t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
                momentum = new + (t - 1) / t_next * (new - beta)
                change = np.max(np.abs(new - beta))
                beta, t = new, t_next
                if change < self.tol:
                    n_iter = iteration + 1
                    break
        return beta, n_iter

    def _ratio(self, X):
        beta, _ = self._match(self.nystroem_.transform(X))
        return beta


def project_capped_simplex(v, total, bound):
    """Euclidean projection of ``v`` onto ``{0 <= b <= bound, sum b = total}``."""
    # g(tau) = sum(clip(v - tau, 0, bound)) - total is piecewise linear and
    # nonincreasing in tau. Newton steps on it (slope = -number of rows strictly
    # inside the box) land exactly on the root once the active set is right,
    # usually in a handful of O(n) passes; bisection guards the bracket.
    lo, hi = v.min() - bound, v.max()
    tau = (v.sum() - total) / v.size
    for _ in range(100):
        shifted = v - tau
        clipped = np.clip(shifted, 0, bound)
        excess = clipped.sum() - total
        if abs(excess) <= 1e-12 * max(total, 1.0):
            break
        if excess > 0:
            lo = tau
        else:
            hi = tau
        free = np.count_nonzero((shifted > 0) & (shifted < bound))
        tau = tau + excess / free if free else (lo + hi) / 2
        if not lo < tau < hi:
            tau = (lo + hi) / 2
    return np.clip(v - tau, 0, bound)
