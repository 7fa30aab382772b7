"""Errors and warnings raised by sktransfer.

Each subclasses the scikit-learn or builtin exception that callers already catch,
so ``except ValueError`` keeps working while sktransfer's own errors stay
distinguishable.
"""

__all__ = [
    "CacheWarning",
    "DomainOverlapWarning",
    "ImageLoadError",
    "ImageScaleWarning",
    "LowEffectiveSampleSizeWarning",
    "WeightsDownloadError",
    "WeightsMismatchError",
]


class ImageLoadError(ValueError):
    """An image could not be read or decoded; the message names it and its index."""


class WeightsMismatchError(ValueError):
    """A weights file does not fit the architecture; lists missing/unexpected keys."""


class WeightsDownloadError(RuntimeError):
    """Pretrained weights could not be downloaded; the message lists offline choices."""


class LowEffectiveSampleSizeWarning(UserWarning):
    """Importance weights leave too few effective samples for weighting to help."""


class DomainOverlapWarning(UserWarning):
    """Source and target supports barely overlap, so reweighting cannot help."""


class CacheWarning(UserWarning):
    """The embedding cache found damaged entries or cannot write its directory."""


class ImageScaleWarning(UserWarning):
    """Image arrays hold values outside the scale their dtype is read on."""
