"""Writing files safely: atomic, durable, and with the mode ``open()`` gives."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading
from pathlib import Path

__all__ = ["atomic_path", "atomic_write", "new_file_mode"]

_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask is process-wide)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0o666 less the umask."""
    return 0o666 & ~_umask()


def _fsync(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; move it into place on success.

    For writers that take a path (``joblib.dump``, ``np.save``). The written
    file is fsync'ed before the rename, so after a crash ``path`` holds either
    its old content or the new one, never a part. A new file gets the mode
    ``open()`` would give it (0o666 less the umask, not ``mkstemp``'s 0o600);
    a replaced file keeps its mode. On any error, interrupt included, the
    temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or path-like
        The file to write.

    Yields
    ------
    tmp : pathlib.Path
        Where to write.
    """
    path = Path(path)
    try:
        file_mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        file_mode = new_file_mode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, file_mode)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        _fsync(path.parent)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """Open a file for writing that appears at ``path`` only when complete.

    See :func:`atomic_path` for the guarantees (atomic, durable, mode).

    Parameters
    ----------
    path : str or path-like
        The file to write.
    mode : {"wb", "w"}, default="wb"
        Binary or text.

    Yields
    ------
    file : file object
        Open for writing.
    """
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        yield f
