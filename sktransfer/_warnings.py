"""Warnings that point at the user's line, not at the package's own code."""

from __future__ import annotations

import os
import sys
import warnings


def _package_dirs() -> tuple[str, ...]:
    # sktransfer and the libraries whose wrappers sit between a user's call and
    # ours (sklearn's _fit_context and set_output, a Pipeline, skorch's loop)
    import sklearn

    dirs = [os.path.dirname(os.path.abspath(__file__))]
    dirs.append(os.path.dirname(os.path.abspath(sklearn.__file__)))
    for name in ("skorch", "joblib"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            dirs.append(os.path.dirname(os.path.abspath(module.__file__)))
    return tuple(d + os.sep for d in dirs)


def _outside_level() -> int:
    """``stacklevel`` of the caller's first frame outside sktransfer and sklearn."""
    inside = _package_dirs()
    frame, level = sys._getframe(2), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        inside
    ):
        frame, level = frame.f_back, level + 1
    return level


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the user's line.

    The warning points at the first frame outside sktransfer, scikit-learn,
    skorch and joblib: the user's ``fit`` call, not the validation helper deep
    inside, even when a Pipeline or a grid search sits in between. (In a
    worker thread with no user frame it points at the thread's entry.)
    """
    warnings.warn(message, category, stacklevel=_outside_level() + 1)
