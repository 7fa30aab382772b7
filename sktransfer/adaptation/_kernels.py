"""Gaussian-kernel helpers of the weighters: widths, distances, basis functions.

Nothing here is ``n x n``: distances to a few hundred centres are computed
block by block of rows, and the basis functions of KLIEP and uLSIF apply
their linear features through the input itself rather than a standardised
copy.
"""

import math

import numpy as np
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.utils import check_random_state

__all__ = [
    "CHUNK_ROWS",
    "Basis",
    "median_gamma",
    "pooled_location_scale",
    "rbf_from",
    "sq_distances",
]

# Rows used for the median heuristic: a bounded, random subsample.
MEDIAN_SUBSAMPLE = 1000
# Rows per block when computing distances to the centres: bounds temporaries.
CHUNK_ROWS = 4096


def median_gamma(X, random_state):
    """Median heuristic ``gamma = 1 / median(squared distance)`` on a subsample.

    ``X`` is an array or a list of arrays (taken as stacked, without copying
    them all).
    """
    parts = X if isinstance(X, list | tuple) else [X]
    n_rows = sum(len(part) for part in parts)
    rng = check_random_state(random_state)
    rows = np.arange(n_rows)
    if n_rows > MEDIAN_SUBSAMPLE:
        rows = rng.choice(n_rows, MEDIAN_SUBSAMPLE, replace=False)
    offsets = np.cumsum([0] + [len(part) for part in parts])
    which = np.searchsorted(offsets, rows, side="right") - 1
    X = np.array([parts[k][i - offsets[k]] for k, i in zip(which, rows, strict=True)])
    d2 = euclidean_distances(X, squared=True)
    d2 = d2[np.triu_indices_from(d2, k=1)]
    median = np.median(d2[d2 > 0]) if np.any(d2 > 0) else 1.0
    return 1.0 / median


def sq_distances(X, centers, chunk_rows=CHUNK_ROWS):
    """Squared distances of the rows of ``X`` to ``centers``, block by block.

    Memory: the ``(n_rows, n_centers)`` result plus one block of
    ``chunk_rows`` rows; never ``n_rows x n_rows``.
    """
    out = np.empty((X.shape[0], centers.shape[0]))
    center_norms = np.einsum("ij,ij->i", centers, centers)
    for start in range(0, X.shape[0], chunk_rows):
        block = X[start : start + chunk_rows]
        d2 = block @ centers.T
        d2 *= -2
        d2 += np.einsum("ij,ij->i", block, block)[:, None]
        d2 += center_norms
        np.maximum(d2, 0, out=d2)
        out[start : start + chunk_rows] = d2
    return out


def rbf_from(sq_distances, gamma, out=None):
    """``exp(-gamma * d^2)`` with no temporary (in place when ``out`` is given)."""
    K = np.multiply(sq_distances, -gamma, out=out)
    return np.exp(K, out=K)


def pooled_location_scale(X_source, X_target):
    """Pooled column means and one overall scale (root mean column variance).

    One scale for all columns keeps their relative variances (the geometry
    the kernels see) while putting the linear coefficients in units where
    one grid of penalties fits features of any magnitude.
    """
    n = len(X_source) + len(X_target)
    mean = (X_source.sum(axis=0) + X_target.sum(axis=0)) / n
    second = (
        np.einsum("ij,ij->j", X_source, X_source)
        + np.einsum("ij,ij->j", X_target, X_target)
    ) / n
    scale = math.sqrt(max(float(np.mean(second - mean**2)), 0.0))
    return mean, scale if scale > 0 else 1.0


class Basis:
    """Basis functions ``[1], (x - mean) / scale, k(x, c_1), ...`` of some rows.

    The linear features are applied through ``X`` itself (``X=None``: none),
    never through a standardised copy; ``K`` holds the kernel columns
    (``None``: none). Columns are ordered constant, linear, kernels;
    ``n_linear`` counts the first two groups.
    """

    def __init__(self, X, K, mean=0.0, scale=1.0, constant=False):
        self.X, self.K, self.mean, self.scale = X, K, mean, scale
        self.constant = constant
        self.n_linear = int(constant) + (0 if X is None else X.shape[1])

    @property
    def n_rows(self):
        """Number of rows."""
        return (self.X if self.X is not None else self.K).shape[0]

    @property
    def n_columns(self):
        """Number of basis functions."""
        return self.n_linear + (0 if self.K is None else self.K.shape[1])

    def take(self, rows):
        """The basis of a subset of the rows."""

        def pick(A):
            return None if A is None else A[rows]

        return Basis(pick(self.X), pick(self.K), self.mean, self.scale, self.constant)

    def linear_part(self):
        """The same rows without their kernel columns."""
        return Basis(self.X, None, self.mean, self.scale, self.constant)

    def dot(self, theta):
        """``Phi @ theta``."""
        out = np.full(self.n_rows, theta[0] if self.constant else 0.0)
        if self.X is not None:
            w = theta[int(self.constant) : self.n_linear] / self.scale
            out += self.X @ w - self.mean @ w
        if self.K is not None:
            out += self.K @ theta[self.n_linear :]
        return out

    def tdot(self, v):
        """``Phi.T @ v`` for a vector or a matrix ``v``."""
        total = v.sum(axis=0)
        parts = [np.expand_dims(total, 0)] if self.constant else []
        if self.X is not None:
            parts.append(
                (self.X.T @ v - np.multiply.outer(self.mean, total)) / self.scale
            )
        if self.K is not None:
            parts.append(self.K.T @ v)
        return np.concatenate(parts)

    def dense(self):
        """``Phi`` as an array of shape ``(n_rows, n_columns)``."""
        parts = [np.ones((self.n_rows, 1))] if self.constant else []
        if self.X is not None:
            parts.append((self.X - self.mean) / self.scale)
        if self.K is not None:
            parts.append(self.K)
        return np.hstack(parts)

    def gram(self, linear_block=None, chunk_rows=CHUNK_ROWS):
        """``Phi.T @ Phi``, with bounded temporaries.

        The linear block is reused when given (it does not depend on the
        kernel width); otherwise it is built block by block of ``chunk_rows``
        rows.
        """
        q = self.n_linear
        G = np.empty((self.n_columns, self.n_columns))
        if linear_block is None:
            linear = self.linear_part()
            linear_block = np.zeros((q, q))
            for start in range(0, self.n_rows if q else 0, chunk_rows):
                block = linear.take(slice(start, start + chunk_rows)).dense()
                linear_block += block.T @ block
        G[:q, :q] = linear_block
        if self.K is not None:
            cross = (
                self.linear_part().tdot(self.K) if q else np.empty((0, self.K.shape[1]))
            )
            G[:q, q:] = cross
            G[q:, :q] = cross.T
            G[q:, q:] = self.K.T @ self.K
        return G
