"""The ``sample_domain`` convention: which rows are source, which are target.

Source and target rows travel together through scikit-learn; an array
``sample_domain`` marks each row, positive for a source row and negative for
a target row (skada's convention, so data moves between the two libraries).
Every estimator, splitter and scorer of the package reads it through these
checks.
"""

import numpy as np

__all__ = [
    "MAX_TARGET_FEATURES",
    "check_both_domains",
    "check_sample_domain",
    "kept_target_rows",
]

# Target rows an adapted model keeps (as features) for the scorers that need
# target data; a fixed subsample bounds the memory a fitted model holds.
MAX_TARGET_FEATURES = 2000


def check_sample_domain(sample_domain, n_samples):
    """Validate ``sample_domain`` and return the boolean mask of source rows.

    Parameters
    ----------
    sample_domain : array-like of shape (n_samples,) or None
        Positive for source rows, negative for target rows.

    n_samples : int
        Number of rows of the data ``sample_domain`` describes.

    Returns
    -------
    is_source : ndarray of bool of shape (n_samples,)
        True on the source rows.

    Raises
    ------
    ValueError
        If ``sample_domain`` is None, has the wrong shape, or holds 0 or a
        non-finite value.

    TypeError
        If ``sample_domain`` does not hold numbers.

    Examples
    --------
    >>> from sktransfer.adaptation import check_sample_domain
    >>> check_sample_domain([1, 1, -1], 3)
    array([ True,  True, False])
    """
    if sample_domain is None:
        raise ValueError(
            "`sample_domain` is required: pass an array of shape (n_samples,) "
            "with a positive value for each source row and a negative value for "
            "each target row (skada's convention), e.g. "
            "`np.r_[np.ones(n_source), -np.ones(n_target)]`."
        )
    domain = np.asarray(sample_domain)
    if domain.ndim != 1 or domain.shape[0] != n_samples:
        raise ValueError(
            f"`sample_domain` must have shape ({n_samples},) to match X; got shape "
            f"{domain.shape}."
        )
    if domain.dtype.kind not in "iuf":
        raise TypeError(
            "`sample_domain` must hold numbers (positive = source, negative = "
            f"target); got dtype {domain.dtype}."
        )
    if not np.all(np.isfinite(domain)) or np.any(domain == 0):
        raise ValueError(
            "`sample_domain` must be positive (source) or negative (target) on "
            "every row; got 0 or a non-finite value, which is neither."
        )
    return domain > 0


def check_both_domains(is_source, min_rows=1):
    """Check that both domains have at least ``min_rows`` rows; count them.

    Parameters
    ----------
    is_source : ndarray of bool of shape (n_samples,)
        The mask returned by :func:`check_sample_domain`.

    min_rows : int, default=1
        Rows each domain needs (e.g. the number of cross-validation folds).

    Returns
    -------
    n_source, n_target : int
        Number of source and target rows.

    Raises
    ------
    ValueError
        If either domain has fewer than ``min_rows`` rows.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.adaptation import check_both_domains
    >>> check_both_domains(np.array([True, True, False]))
    (2, 1)
    """
    n_source = int(is_source.sum())
    n_target = int(is_source.size - n_source)
    if n_source < min_rows or n_target < min_rows:
        raise ValueError(
            f"Importance weighting needs at least {min_rows} source sample(s) "
            f"(sample_domain > 0) and {min_rows} target sample(s) "
            f"(sample_domain < 0); got {n_source} sample(s) marked source and "
            f"{n_target} marked target."
        )
    return n_source, n_target


def kept_target_rows(features, n_max=MAX_TARGET_FEATURES):
    """At most ``n_max`` rows of ``features``: all, or a fixed sorted subsample.

    Parameters
    ----------
    features : ndarray of shape (n_rows, n_features)
        Features of the target training rows.

    n_max : int, default=2000
        Rows kept at most.

    Returns
    -------
    kept : ndarray of shape (min(n_rows, n_max), n_features)
        The rows kept, in their original order.
    """
    if len(features) <= n_max:
        return features
    keep = np.random.RandomState(0).choice(len(features), n_max, replace=False)
    return features[np.sort(keep)]
