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
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ._files import atomic_write
from ._warnings import warn
from .exceptions import CacheWarning

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

    Reads never fail on a damaged store: an on-disk entry that cannot be read,
    or holds an array of another shape or dtype than ``(n_features,)``
    float32, counts as missing -- it is recomputed and overwritten, and one
    :class:`~sktransfer.exceptions.CacheWarning` per lookup names the cache
    directory and how many entries were damaged. Writes are atomic and durable
    (write, flush, fsync, rename) and give files the mode ``open()`` would. A
    directory that cannot be written (read-only, another user's, a path that
    is a file) is warned about once per process, naming it and ``memory=``,
    and the embeddings are computed without being stored there. What the
    in-process store serves is written through to the directory as well, so
    the next session or worker finds it.

    Parameters
    ----------
    digest : str
        The configuration digest (see the module docstring).
    memory : None, str, path-like or joblib.Memory
        Where the on-disk store lives; ``None`` keeps to the in-process store.
    n_features : int or None, default=None
        The embedding width: rows of any other shape are treated as damaged.
    """

    def __init__(self, digest: str, memory=None, n_features=None):
        self.digest = digest
        self.n_features = n_features
        root = _location(memory)
        self.directory = None if root is None else root / digest

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npy"

    def _valid(self, row) -> bool:
        return (
            isinstance(row, np.ndarray)
            and row.dtype == np.float32
            and row.ndim == 1
            and (self.n_features is None or row.shape == (self.n_features,))
        )

    def _read(self, key: str):
        """The on-disk row for ``key``: an array, None (absent) or False (damaged)."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            row = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return False  # a torn or foreign file: recompute
        return row if self._valid(row) else False

    def get(self, keys: list[str]) -> dict[int, np.ndarray]:
        """Return ``{position: embedding}`` for the keys found."""
        found, damaged, unwritten = {}, 0, []
        for i, key in enumerate(keys):
            row = _MEMORY.get((self.digest, key))
            if row is not None and not self._valid(row):
                row = None
            if row is not None:
                if self._writable() and not self._path(key).is_file():
                    unwritten.append((key, row))  # write through
            elif self.directory is not None:
                row = self._read(key)
                if row is False:
                    damaged += 1
                    row = None
                elif row is not None:
                    _MEMORY.put((self.digest, key), row)
            if row is not None:
                found[i] = row
        if damaged:
            warn(
                f"{damaged} damaged entr{'y' if damaged == 1 else 'ies'} in the "
                f"embedding cache {str(self.directory)!r} (unreadable, or of the "
                "wrong shape or dtype) will be recomputed and overwritten.",
                CacheWarning,
            )
        for key, row in unwritten:
            self._write(key, row)
        return found

    def put(self, keys: list[str], rows: np.ndarray) -> None:
        """Store one embedding per key (atomically on disk)."""
        for key, row in zip(keys, rows, strict=True):
            row = np.array(row, dtype=np.float32, copy=True)
            _MEMORY.put((self.digest, key), row)
            if self._writable():
                self._write(key, row)

    def _writable(self) -> bool:
        return self.directory is not None and str(self.directory) not in _UNWRITABLE

    def _write(self, key: str, row: np.ndarray) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(path) as f:
                np.save(f, row)
        except OSError as exc:
            _unwritable(self.directory, exc)


# Directories found unwritable in this process: warned about once, then skipped.
_UNWRITABLE: set[str] = set()
_UNWRITABLE_LOCK = threading.Lock()


def _unwritable(directory: Path, exc: OSError) -> None:
    with _UNWRITABLE_LOCK:
        if str(directory) in _UNWRITABLE:
            return
        _UNWRITABLE.add(str(directory))
    warn(
        f"The embedding cache cannot write to {str(directory)!r} ({exc}); "
        "embeddings are computed but not stored there. Give memory= a directory "
        "you can write, or memory=None.",
        CacheWarning,
    )
