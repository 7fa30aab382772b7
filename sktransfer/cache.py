"""The embedding cache: each image goes through a frozen backbone once.

Embeddings of a frozen network depend only on the network, the layer and
pooling, the preprocessing, the precision and the image. The cache keys an
embedding by two digests:

* the *configuration digest* -- the architecture, the identity of its weights
  (a weights name, the SHA-256 of a weights file, the random seed, or a hash of
  a user module's tensors), ``layer``, ``pooling``, preprocessing and precision;
* the *image key* -- absolute path, size and modification time for files, a
  hash of the pixels for in-memory images.

Changing any of these misses the cache: editing a file changes its modification
time, other weights change the configuration digest. Nothing else needs
invalidating. Two levels exist:

* an in-process LRU store shared by every estimator (so the clones that
  ``GridSearchCV`` and ``cross_val_score`` make reuse each other's work),
  bounded by :data:`MAX_MEMORY_BYTES`, emptied with :func:`clear_embedding_cache`;
* an optional on-disk store (the ``memory`` parameter, a directory or a
  :class:`joblib.Memory`), shared across processes -- what ``n_jobs > 1`` needs --
  and across sessions. One ``.npy`` file per image under
  ``<location>/sktransfer_embeddings/<configuration digest>/``; delete the
  directory to clear it.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

__all__ = ["MAX_MEMORY_BYTES", "EmbeddingCache", "clear_embedding_cache"]

#: Upper bound, in bytes, of the in-process store (least recently used first out).
MAX_MEMORY_BYTES = 1 << 30


class _MemoryStore:
    def __init__(self):
        self._data: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            row = self._data.get(key)
            if row is not None:
                self._data.move_to_end(key)
            return row

    def put(self, key, row: np.ndarray):
        with self._lock:
            if key in self._data:
                return
            self._data[key] = row
            self._bytes += row.nbytes
            while self._bytes > MAX_MEMORY_BYTES and self._data:
                _, old = self._data.popitem(last=False)
                self._bytes -= old.nbytes

    def clear(self):
        with self._lock:
            self._data.clear()
            self._bytes = 0

    def __len__(self):
        return len(self._data)


_MEMORY = _MemoryStore()


def clear_embedding_cache() -> None:
    """Empty the in-process embedding store (the on-disk store is left alone).

    Examples
    --------
    >>> from sktransfer.cache import clear_embedding_cache
    >>> clear_embedding_cache()
    """
    _MEMORY.clear()


def _location(memory) -> Path | None:
    if memory is None:
        return None
    location = getattr(memory, "location", memory)  # joblib.Memory or a path
    if location is None:
        return None
    if not isinstance(location, (str, os.PathLike)):
        raise TypeError(
            "memory must be None, a directory path or a joblib.Memory; got "
            f"{type(memory).__name__}."
        )
    return Path(location) / "sktransfer_embeddings"


class EmbeddingCache:
    """Look up and store embeddings for one configuration digest.

    Parameters
    ----------
    digest : str
        The configuration digest (see the module docstring).
    memory : None, str, path-like or joblib.Memory
        Where the on-disk store lives; ``None`` keeps to the in-process store.
    """

    def __init__(self, digest: str, memory=None):
        self.digest = digest
        root = _location(memory)
        self.directory = None if root is None else root / digest

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npy"

    def get(self, keys: list[str]) -> dict[int, np.ndarray]:
        """Return ``{position: embedding}`` for the keys found."""
        found = {}
        for i, key in enumerate(keys):
            row = _MEMORY.get((self.digest, key))
            if row is None and self.directory is not None:
                path = self._path(key)
                if path.is_file():
                    try:
                        row = np.load(path)
                    except (OSError, ValueError):
                        row = None  # a torn write by a killed process: recompute
                    if row is not None:
                        _MEMORY.put((self.digest, key), row)
            if row is not None:
                found[i] = row
        return found

    def put(self, keys: list[str], rows: np.ndarray) -> None:
        """Store one embedding per key (atomically on disk)."""
        for key, row in zip(keys, rows, strict=True):
            row = np.array(row, dtype=np.float32, copy=True)
            _MEMORY.put((self.digest, key), row)
            if self.directory is not None:
                path = self._path(key)
                if path.exists():
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
                with os.fdopen(fd, "wb") as f:
                    np.save(f, row)
                os.replace(tmp, path)
