"""One-line interface to the weighters: weights of a source sample."""

import numpy as np

from ._discriminative import DiscriminativeWeighter
from ._kliep import KLIEPWeighter
from ._kmm import KMMWeighter
from ._ulsif import ULSIFWeighter

__all__ = ["estimate_importance_weights"]

_METHODS = {
    "discriminative": DiscriminativeWeighter,
    "kmm": KMMWeighter,
    "kliep": KLIEPWeighter,
    "ulsif": ULSIFWeighter,
}


def estimate_importance_weights(X_source, X_target, method="discriminative", **params):
    """Importance weights ``p_target(x) / p_source(x)`` of the source rows.

    One-line interface to the weighters: stacks the two samples, fits the
    weighter named by ``method`` and returns its training weights for the
    source rows (cross-fitted for ``"discriminative"``).

    Parameters
    ----------
    X_source : array-like of shape (n_source, n_features)
        Source (labelled) rows to weight.

    X_target : array-like of shape (n_target, n_features)
        Target rows, whose distribution the weighted source should match.

    method : {"discriminative", "kmm", "kliep", "ulsif"}, default="discriminative"
        :class:`DiscriminativeWeighter`, :class:`KMMWeighter`,
        :class:`KLIEPWeighter` or :class:`ULSIFWeighter`.

    **params : dict
        Parameters of the chosen weighter (e.g. ``random_state=0``,
        ``max_weight_quantile=0.99``).

    Returns
    -------
    weights : ndarray of shape (n_source,)
        Non-negative weights with mean 1.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.weighting import estimate_importance_weights
    >>> rng = np.random.RandomState(0)
    >>> X_source = rng.normal(0, 1, (300, 2))
    >>> X_target = rng.normal(0.5, 1, (300, 2))
    >>> w = estimate_importance_weights(X_source, X_target, random_state=0)
    >>> w.shape, round(float(w.mean()), 6)
    ((300,), 1.0)
    """
    if method not in _METHODS:
        raise ValueError(
            f"Unknown method {method!r} for estimate_importance_weights; choose "
            f"one of {sorted(_METHODS)}."
        )
    weighter = _METHODS[method](**params)
    X_source, X_target = np.asarray(X_source), np.asarray(X_target)
    if (
        X_source.ndim != 2
        or X_target.ndim != 2
        or X_source.shape[1] != X_target.shape[1]
    ):
        raise ValueError(
            "X_source and X_target must be 2-D with the same number of columns; got "
            f"shapes {X_source.shape} and {X_target.shape}."
        )
    X = np.vstack([X_source, X_target])
    sample_domain = np.r_[np.ones(len(X_source)), -np.ones(len(X_target))]
    weighter.fit(X, sample_domain=sample_domain)
    return weighter.weights_[: len(X_source)]
