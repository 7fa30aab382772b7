"""Helpers shared by the test modules: a tiny CNN, the common-check harness.

Fixtures live in ``conftest.py``; plain helpers that tests import live here
(``from _helpers import make_tiny_cnn``).
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils import _safe_indexing
from torch import nn


class TinyCNN(nn.Module):
    """A 3-stage CNN with BatchNorm, small enough for sklearn's common checks.

    Its top-level children are the layer groups (stem, stage1, stage2); it
    returns pooled 8-dimensional features.
    """

    def __init__(self, width=8):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.stage1 = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, stride=2),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        self.stage2 = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, stride=2),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()

    def forward(self, x):
        return self.flatten(self.pool(self.stage2(self.stage1(self.stem(x)))))


def make_tiny_cnn(seed=0, width=8):
    """A TinyCNN with deterministic weights, built without touching global seeds."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TinyCNN(width)


class NoShift:
    """Check harness: without ``sample_domain`` every row is source AND target.

    The adaptation estimators need target rows and raise without
    ``sample_domain``, which would stop every common check at ``fit``. The
    harness feeds each row twice, once per domain (a "no shift" problem), so
    the checks exercise the real estimator: parameters, cloning, validation,
    dtypes, NaN handling, pickling, idempotence and, for the meta-estimators,
    predictions.
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


def no_shift(cls):
    """``cls`` behind the :class:`NoShift` harness (a picklable, named class)."""
    name = f"NoShift{cls.__name__}"
    harnessed = globals().get(name)
    if harnessed is None:
        harnessed = type(name, (NoShift, cls), {"__module__": __name__})
        globals()[name] = harnessed  # module level, so that pickling finds it
    return harnessed


def fresh_process_env(tmp_path):
    """Environment of a new test process: no GPU, an empty torch hub, offline.

    ``sys.path`` holds the working directory and this folder, so a user's own
    ``nn.Module`` class (``TinyCNN``) and the harness classes import there.
    Torch's thread count picks the CPU kernels (and their summation order),
    so the new process gets this one's rather than whatever ``OMP_NUM_THREADS``
    says: outputs can then be compared for equality.
    """
    return {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "TORCH_HOME": str(tmp_path / "empty_torch_home"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([os.getcwd(), os.path.dirname(__file__)]),
        "OMP_NUM_THREADS": str(torch.get_num_threads()),
    }


def run_in_fresh_process(code: str, tmp_path, timeout=300):
    """Run Python ``code`` in a new process: no network, no GPU, no torch hub.

    The environment is :func:`fresh_process_env`'s.
    """
    prelude = textwrap.dedent(
        """
        import socket
        def _no_network(*args, **kwargs):
            raise OSError("network disabled in this test")
        socket.socket.connect = _no_network
        """
    )
    subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        check=True,
        env=fresh_process_env(tmp_path),
        timeout=timeout,
    )


def no_shift_fine_tuner(cls):
    """A fine-tuning estimator behind the check harness (rows fed once per domain)."""
    name = f"NoShift{cls.__name__}"
    harnessed = globals().get(name)
    if harnessed is None:

        def fit(self, X, y, sample_weight=None, sample_domain=None):
            # (sparse input goes through unchanged: the estimator's own check
            # is what the checks see)
            if sample_domain is None and not sp.issparse(X):
                X = X if hasattr(X, "iloc") else np.asarray(X)
                n = X.shape[0]
                X = _safe_indexing(X, np.r_[np.arange(n), np.arange(n)])
                if y is not None:
                    y = np.concatenate([np.asarray(y), np.asarray(y)])
                if sample_weight is not None:
                    sample_weight = np.asarray(sample_weight)
                    sample_weight = np.concatenate([sample_weight, sample_weight])
                sample_domain = np.r_[np.ones(n), -np.ones(n)]
            return cls.fit(self, X, y, sample_weight, sample_domain=sample_domain)

        harnessed = type(name, (cls,), {"__module__": __name__, "fit": fit})
        globals()[name] = harnessed
    return harnessed
