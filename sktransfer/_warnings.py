"""Warnings that point at the user's line, not at the package's own code."""

from __future__ import annotations

import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _outside_level() -> int:
    """``stacklevel`` for the first frame of the caller's caller outside the package."""
    frame, level = sys._getframe(2), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _PACKAGE + os.sep
    ):
        frame, level = frame.f_back, level + 1
    return level


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first caller outside sktransfer.

    Frames of scikit-learn, joblib or a stream thread's own machinery count as
    outside: the warning then points at the nearest of them, which is where
    the call entered the package.
    """
    warnings.warn(message, category, stacklevel=_outside_level() + 1)
