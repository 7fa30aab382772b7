"""Image inputs: validation, lazy decoding and preprocessing into batches.

Every estimator accepts the same inputs, checked once by :func:`check_images`:

* a list, tuple, array or pandas Series of file paths (``str`` or ``Path``);
* a list of PIL images, or of numpy arrays (images may differ in size);
* a numpy array ``(n, H, W)`` (grayscale), ``(n, H, W, 3|4)`` (channels last) or
  ``(n, 3, H, W)`` (channels first), or the same as a torch tensor;
* a 2-D array ``(n, H*W*C)`` of flattened images, with ``image_shape`` giving
  the shape of one image (``-1`` allowed once, as in :func:`numpy.reshape`).

Pixel values are read by dtype: ``uint8`` and other integers on the 0-255 scale,
``uint16`` on 0-65535, floats and booleans on [0, 1]. Grayscale and RGBA images
become RGB. Nothing is decoded until a batch is asked for.

The training augmentation of the fine-tuning estimators,
:class:`RandomResizedCropFlip`, lives here too.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy.sparse import issparse

from ._torch_utils import map_streams
from ._warnings import warn
from .exceptions import ImageLoadError, ImageScaleWarning

__all__ = [
    "ImageDataset",
    "ImageSequence",
    "Preprocessing",
    "RandomResizedCropFlip",
    "check_images",
    "collate_channels_last",
    "load_image",
    "map_batches",
    "validate_images",
]

_ACCEPTED = (
    "Accepted inputs: a list/array/Series of file paths; a list of PIL images or "
    "of numpy arrays; an array or tensor of shape (n, H, W), (n, H, W, 3|4) or "
    "(n, 3, H, W); or a 2-D array (n, H*W*C) with the image_shape parameter set."
)
_INTERPOLATION = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How images are prepared for a backbone.

    Images are resized so that their shorter side is ``resize_size``, centre
    cropped to ``image_size`` x ``image_size``, scaled to [0, 1] and normalised
    with ``mean`` and ``std`` -- torchvision's and timm's evaluation transform.

    Parameters
    ----------
    image_size : int
        Side of the square crop fed to the network.
    resize_size : int
        Length of the shorter image side before cropping.
    mean, std : tuple of float
        Per-channel normalisation statistics (RGB).
    interpolation : {"bilinear", "bicubic", "nearest"}
        Resampling filter used for the resize.
    """

    image_size: int
    resize_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"

    def with_overrides(
        self,
        image_size: int | None = None,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
    ) -> Preprocessing:
        """Return a copy with the given fields replaced.

        A new ``image_size`` keeps the weights' ratio of crop to resize size
        (224 / 256 for most torchvision weights).
        """
        changes = {}
        if image_size is not None:
            ratio = self.resize_size / self.image_size
            changes["image_size"] = int(image_size)
            changes["resize_size"] = max(int(image_size), round(image_size * ratio))
        if mean is not None:
            changes["mean"] = tuple(float(m) for m in mean)
        if std is not None:
            changes["std"] = tuple(float(s) for s in std)
        return replace(self, **changes)


def load_image(
    path, index: int | None = None, min_size: int | None = None
) -> Image.Image:
    """Open an image file as RGB, naming the file (and its index) if it fails.

    Parameters
    ----------
    path : str or path-like
        The file to read.
    index : int, optional
        Position of the file in the input, quoted in the error message.
    min_size : int, optional
        Shorter side the caller will resize to. JPEG files much larger than that
        are decoded at 1/2, 1/4 or 1/8 scale (never below ``min_size``), which
        makes large photos several times cheaper to read.

    Returns
    -------
    image : PIL.Image.Image
        The decoded image in RGB mode.
    """
    where = f" (index {index})" if index is not None else ""
    try:
        with Image.open(path) as img:
            if min_size is not None and img.format == "JPEG":
                img.draft("RGB", (min_size, min_size))
            img.load()
            # Phone photos store the camera's rotation as an EXIF tag: apply it,
            # or the network sees the image sideways.
            return _to_rgb(ImageOps.exif_transpose(img))
    except FileNotFoundError as exc:
        raise ImageLoadError(f"Image file not found: {str(path)!r}{where}.") from exc
    except Image.DecompressionBombError as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{int(pixels.group(1)):,} pixels" if pixels else "too many pixels"
        raise ImageLoadError(
            f"Image {str(path)!r}{where} has {count}, more than twice Pillow's "
            f"limit against decompression bombs (PIL.Image.MAX_IMAGE_PIXELS = "
            f"{Image.MAX_IMAGE_PIXELS:,}). If you trust the file, raise the limit "
            "before fitting: `import PIL.Image; PIL.Image.MAX_IMAGE_PIXELS = "
            "None` (or a larger number); otherwise remove the file."
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageLoadError(
            f"Could not read image {str(path)!r}{where}: {exc}. Check that the file "
            "is a complete image in a format Pillow reads (JPEG, PNG, ...)."
        ) from exc


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode == "F":
        return Image.fromarray(
            _float_to_uint8(np.asarray(img, np.float64)), "L"
        ).convert("RGB")
    if img.mode in {"I;16", "I;16B", "I;16L", "I"}:
        # 16-bit (or 32-bit integer) grayscale: rescale to 8 bits explicitly;
        # Pillow's own conversion would clip at 255.
        arr = np.asarray(img, dtype=np.float64)
        scale = 65535.0 if img.mode.startswith("I;16") else max(arr.max(), 1.0)
        arr = np.clip(arr / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if img.mode in {"RGBA", "LA", "PA"} or (
        img.mode == "P" and "transparency" in img.info
    ):
        # Composite transparency over white rather than keeping whatever colour
        # the transparent pixels happen to store.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _float_to_uint8(arr: np.ndarray) -> np.ndarray:
    """A 32-bit float image (TIFF mode ``F``) on the scale it is written in.

    Values in [0, 1] are read as [0, 1] (Pillow's own conversion would clip
    them to black), values in [0, 255] as 8-bit levels; anything else has no
    scale we could guess and is refused.
    """
    finite = arr[np.isfinite(arr)]
    if finite.size != arr.size:
        raise ValueError("the 32-bit float image holds NaN or infinite values")
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0, 0)
    if lo >= 0.0 and hi <= 1.0:
        arr = arr * 255.0
    elif not (lo >= 0.0 and hi <= 255.0):
        raise ValueError(
            f"the 32-bit float image has values in [{lo:.4g}, {hi:.4g}], neither "
            "[0, 1] nor [0, 255]: convert it to an 8- or 16-bit image, or load "
            "it yourself and pass an array on the [0, 1] scale"
        )
    return np.clip(arr + 0.5, 0, 255).astype(np.uint8)


def _array_to_float_hwc(arr: np.ndarray) -> np.ndarray:
    """One image as float32 HWC RGB in [0, 1] scale (values are not clipped)."""
    if arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535.0
    elif np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float32) / 255.0
    else:
        arr = arr.astype(np.float32, copy=False)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    channels = arr.shape[-1]
    if channels == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif channels == 4:
        alpha = arr[..., 3:4]
        arr = arr[..., :3] * alpha + (1.0 - alpha)
    return arr


class ImageSequence(Sequence):
    """A validated, lazily decoded sequence of images.

    Built by :func:`check_images`; indexing with an integer returns one image
    (a PIL image for files and PIL inputs, a float32 ``(H, W, 3)`` array in [0, 1]
    for arrays), indexing with a slice or an index array returns a sub-sequence.
    """

    def __init__(self, items, kind: str):
        self._items = items
        self.kind = kind

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self.load(int(index))
        if isinstance(index, slice):
            return ImageSequence(self._items[index], self.kind)
        index = np.asarray(index)
        if isinstance(self._items, np.ndarray):
            return ImageSequence(self._items[index], self.kind)
        return ImageSequence([self._items[i] for i in index], self.kind)

    def load(self, i: int, min_size: int | None = None):
        """Decode image ``i`` (see :func:`load_image` for ``min_size``)."""
        item = self._items[i]
        if isinstance(item, (str, os.PathLike)):
            return load_image(item, i, min_size)
        if isinstance(item, Image.Image):
            return _to_rgb(item)
        return _array_to_float_hwc(np.asarray(item))

    def key(self, i: int) -> str:
        """A digest identifying image ``i``'s content, for the embedding cache.

        Files are identified by absolute path, size and modification time (so an
        edited file is re-embedded); in-memory images by a hash of their pixels.
        """
        item = self._items[i]
        h = hashlib.blake2b(digest_size=16)
        if isinstance(item, (str, os.PathLike)):
            try:
                stat = os.stat(item)
            except OSError as exc:
                raise ImageLoadError(
                    f"Image file not found: {str(item)!r} (index {i})."
                ) from exc
            h.update(
                f"{os.path.abspath(item)}|{stat.st_size}|{stat.st_mtime_ns}".encode()
            )
        elif isinstance(item, Image.Image):
            h.update(f"{item.mode}|{item.size}".encode())
            h.update(item.tobytes())
        else:
            arr = np.ascontiguousarray(item)
            h.update(f"{arr.dtype.str}|{arr.shape}".encode())
            h.update(arr.view(np.uint8).reshape(-1))
        return h.hexdigest()


def _is_path(x) -> bool:
    return isinstance(x, (str, os.PathLike))


def _check_array_images(arr: np.ndarray, input_name: str) -> np.ndarray:
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == bool
    ):
        raise ValueError(
            f"{input_name} has dtype {arr.dtype}; image arrays must be numeric "
            f"(uint8, uint16, other integers, float or bool). {_ACCEPTED}"
        )
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{input_name} is complex; image arrays must be real.")
    if arr.ndim == 4 and arr.shape[1] in (1, 3) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 1, -1)  # channels first -> channels last
    if arr.ndim == 4 and arr.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"{input_name} has shape {arr.shape}: a 4-D image array needs 1, 3 or 4 "
            f"channels, first (n, C, H, W) or last (n, H, W, C). {_ACCEPTED}"
        )
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"{input_name} has shape {arr.shape} ({arr.ndim}-D); {_ACCEPTED}"
        )
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError(f"{input_name} contains NaN or infinity.")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            warn(
                f"{input_name} is a float array with values in [{lo:.3g}, {hi:.3g}]; "
                "float images are read on the [0, 1] scale. If yours are 0-255, "
                "divide by 255 or pass uint8.",
                ImageScaleWarning,
            )
    elif np.issubdtype(arr.dtype, np.integer) and arr.dtype not in (
        np.uint8,
        np.uint16,
    ):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            warn(
                f"{input_name} is a {arr.dtype} array with values in [{lo}, {hi}]; "
                "integer images are read on the 0-255 scale (uint16 on 0-65535), "
                "so values outside it are out of range. Pass uint16 for 16-bit "
                "images (X.astype(np.uint16)), or floats on the [0, 1] scale.",
                ImageScaleWarning,
            )
    return arr


def _reshape_flat(arr: np.ndarray, image_shape, input_name: str) -> np.ndarray:
    shape = tuple(int(s) for s in image_shape)
    try:
        images = arr.reshape((arr.shape[0], *shape))
    except ValueError as exc:
        raise ValueError(
            f"{input_name} has {arr.shape[1]} features per row, which cannot be "
            f"reshaped to image_shape={tuple(image_shape)}. Set image_shape to "
            "(H, W) or (H, W, C) with H*W*C equal to the number of columns "
            "(-1 allowed once)."
        ) from exc
    if images.ndim == 4 and images.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"image_shape={tuple(image_shape)} gives {images.shape[-1]} channels; "
            "use (H, W) for grayscale or (H, W, C) with C in {1, 3, 4}."
        )
    return images


def check_images(X, *, image_shape=None, input_name: str = "X") -> ImageSequence:
    """Validate image input and return a lazily decoded :class:`ImageSequence`.

    Parameters
    ----------
    X : images
        See the module docstring for the accepted forms.
    image_shape : tuple of int, optional
        Shape of one image, ``(H, W)`` or ``(H, W, C)``; required when ``X`` is a
        2-D array of flattened images. ``-1`` may stand for one dimension.
    input_name : str, default="X"
        Name used in error messages.

    Returns
    -------
    images : ImageSequence

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.images import check_images
    >>> images = check_images(np.zeros((5, 8, 8), dtype=np.uint8))
    >>> len(images), images[0].shape
    (5, (8, 8, 3))
    """
    if isinstance(X, ImageSequence):
        return X
    if hasattr(X, "iloc") and hasattr(X, "columns"):  # DataFrame
        if X.shape[1] == 1 and getattr(X.dtypes.iloc[0], "kind", "O") in "OUS":
            X = X.iloc[:, 0]
        else:
            X = X.to_numpy()
    if hasattr(X, "iloc"):  # Series
        X = X.tolist()
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    if isinstance(X, (str, os.PathLike, Image.Image)):
        raise TypeError(
            f"{input_name} is a single image ({type(X).__name__}); pass a list of "
            "images, e.g. [image]."
        )
    if isinstance(X, np.ndarray) and X.dtype.kind in "OUS" and X.ndim == 1:
        X = X.tolist()
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise ValueError(f"{input_name} is empty: found 0 images. {_ACCEPTED}")
        first = X[0]
        if all(_is_path(x) for x in X):
            return ImageSequence([os.fspath(x) for x in X], "path")
        if all(isinstance(x, Image.Image) for x in X):
            return ImageSequence(list(X), "pil")
        if all(isinstance(x, (np.ndarray, torch.Tensor)) for x in X):
            items = []
            for i, x in enumerate(X):
                x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x
                if (
                    x.ndim == 3
                    and x.shape[0] in (1, 3)
                    and x.shape[-1] not in (1, 3, 4)
                ):
                    x = np.moveaxis(x, 0, -1)
                if x.ndim not in (2, 3) or (
                    x.ndim == 3 and x.shape[-1] not in (1, 3, 4)
                ):
                    raise ValueError(
                        f"{input_name}[{i}] has shape {x.shape}; each image must be "
                        "(H, W), (H, W, C) or (C, H, W) with C in {1, 3, 4}."
                    )
                items.append(_check_array_images(x[None], f"{input_name}[{i}]")[0])
            return ImageSequence(items, "array")
        if all(np.ndim(x) == 1 or np.isscalar(x) for x in X) and not isinstance(
            first, (str, Image.Image)
        ):
            X = np.asarray(X)
        else:
            kinds = sorted({type(x).__name__ for x in X})
            raise TypeError(
                f"{input_name} mixes or contains unsupported element types {kinds}. "
                f"{_ACCEPTED}"
            )
    if not isinstance(X, np.ndarray):
        raise TypeError(
            f"{input_name} of type {type(X).__name__} is not supported. {_ACCEPTED}"
        )
    if X.shape[0] == 0:
        raise ValueError(f"{input_name} is empty: found 0 images. {_ACCEPTED}")
    if X.ndim == 2:
        if image_shape is None:
            raise ValueError(
                f"{input_name} is a 2-D array of shape {X.shape}; flattened images "
                "need image_shape=(H, W) or (H, W, C), e.g. image_shape=(28, 28) "
                "for MNIST rows."
            )
        X = _reshape_flat(X, image_shape, input_name)
    return ImageSequence(_check_array_images(X, input_name), "array")


def _is_flat_table(X) -> bool:
    """Whether X is a 1-D/2-D numeric array, table or sparse matrix.

    Those are flattened images (or mistakes that sklearn's validation explains
    best); lists and arrays of images, and arrays of paths, are not.
    """
    if issparse(X):
        return True
    if isinstance(X, (list, tuple)) and len(X) and not _is_image_item(X[0]):
        return True  # rows given as lists (or 1-D arrays) of numbers
    if isinstance(X, (list, tuple, str)) or not hasattr(X, "__array__"):
        return False
    if hasattr(X, "columns"):  # a one-column DataFrame of paths is an image list
        return not (X.shape[1] == 1 and getattr(X.dtypes.iloc[0], "kind", "O") in "OUS")
    arr = np.asarray(X)
    if arr.dtype.kind in "US" or (arr.ndim == 1 and arr.dtype == object):
        return False
    return arr.ndim <= 2


def _is_image_item(x) -> bool:
    return isinstance(x, (str, os.PathLike, Image.Image)) or (
        isinstance(x, (np.ndarray, torch.Tensor)) and x.ndim >= 2
    )


def validate_images(estimator, X, *, reset: bool) -> ImageSequence:
    """An estimator's input check: flattened rows through sklearn, images here.

    With ``estimator.image_shape`` set, 1-D/2-D numeric input (arrays, tables,
    lists of rows, sparse matrices) goes through
    :func:`sklearn.utils.validation.validate_data`, which sets and checks
    ``n_features_in_`` and ``feature_names_in_``; every other input is checked
    by :func:`check_images`.
    """
    from sklearn.utils.validation import validate_data

    if estimator.image_shape is not None and _is_flat_table(X):
        X = validate_data(estimator, X, reset=reset, dtype="numeric")
    elif reset:
        for attr in ("n_features_in_", "feature_names_in_"):
            if hasattr(estimator, attr):
                delattr(estimator, attr)
    return check_images(X, image_shape=estimator.image_shape)


class ImageDataset(torch.utils.data.Dataset):
    """Images decoded and preprocessed one at a time, for a ``DataLoader``.

    Each item is a ``(3, image_size, image_size)`` tensor: ``uint8`` for files
    and PIL images, ``float32`` in [0, 1] scale for arrays. Normalisation by mean
    and std happens later, on the whole batch and on the target device.

    Parameters
    ----------
    images : ImageSequence
        The input, from :func:`check_images`.
    preprocessing : Preprocessing
        Resize, crop and statistics.
    transform : callable, optional
        Replaces the resize and crop (training augmentation). Receives a PIL image
        or a ``(3, H, W)`` float tensor and must return a ``(3, S, S)`` tensor or
        PIL image of the final size.
    targets : array-like, optional
        Returned with each image as ``(image, target)``.
    """

    def __init__(
        self,
        images: ImageSequence,
        preprocessing: Preprocessing,
        transform=None,
        targets=None,
    ):
        self.images = images
        self.preprocessing = preprocessing
        self.transform = transform
        self.targets = targets

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        min_size = self.preprocessing.resize_size if self.transform is None else None
        image = self.images.load(i, min_size)
        if isinstance(image, np.ndarray):
            image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if self.transform is not None:
            out = self.transform(image)
        else:
            out = resize_crop(image, self.preprocessing)
        out = _as_chw_tensor(out)
        if self.targets is None:
            return out
        return out, self.targets[i]


def _as_chw_tensor(image) -> torch.Tensor:
    if isinstance(image, Image.Image):
        # A (3, H, W) view of the decoded (H, W, 3) pixels, without the
        # transposing copy: batches are stacked channels-last anyway.
        return torch.from_numpy(np.array(_to_rgb(image))).permute(2, 0, 1)
    return image


def collate_channels_last(items) -> torch.Tensor:
    """Stack ``(3, H, W)`` image tensors into a channels-last ``(n, 3, H, W)`` batch.

    Decoded images are ``(H, W, 3)`` in memory, so this is one plain copy, and
    the batch reaches the (channels-last) network without another transpose.

    Examples
    --------
    >>> import torch
    >>> from sktransfer.images import collate_channels_last
    >>> batch = collate_channels_last([torch.zeros(3, 4, 5), torch.ones(3, 4, 5)])
    >>> batch.shape, batch.is_contiguous(memory_format=torch.channels_last)
    (torch.Size([2, 3, 4, 5]), True)
    """
    return torch.stack([item.permute(1, 2, 0) for item in items]).permute(0, 3, 1, 2)


def resize_crop(image, preprocessing: Preprocessing):
    """Resize the shorter side to ``resize_size`` and centre-crop ``image_size``.

    Works on a PIL image (JPEG files are decoded at reduced scale when they are
    much larger than needed) or on a ``(3, H, W)`` float tensor.
    """
    from torchvision.transforms.v2 import functional as F

    size, crop = preprocessing.resize_size, preprocessing.image_size
    if isinstance(image, Image.Image):
        w, h = image.size
        # The same output size as torchvision's resize (the long side truncated).
        new = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
        resample = _INTERPOLATION.get(
            preprocessing.interpolation, Image.Resampling.BILINEAR
        )
        left, top = (new[0] - crop) // 2, (new[1] - crop) // 2
        if left < 0 or top < 0:  # crop larger than the resized image: pad
            image = image.resize(new, resample=resample, reducing_gap=None)
            return image.crop((left, top, left + crop, top + crop))
        # Resample only the region the crop keeps: the same filter taps as
        # resizing the whole image and then cropping, for ~40% of the work.
        sx, sy = w / new[0], h / new[1]
        box = (left * sx, top * sy, (left + crop) * sx, (top + crop) * sy)
        return image.resize((crop, crop), resample=resample, box=box, reducing_gap=None)
    interpolation = F.InterpolationMode(preprocessing.interpolation)
    image = F.resize(image, size, interpolation=interpolation, antialias=True)
    return F.center_crop(image, crop)


class RandomResizedCropFlip:
    """Random resized crop and horizontal flip, reproducible from a seed.

    The training augmentation of the fine-tuning estimators (``augment=True``):
    a crop of a random 35-100 % of the image area with an aspect ratio in
    [3/4, 4/3], resized to ``size`` x ``size``, then a horizontal flip with
    probability 1/2 -- torchvision's ``RandomResizedCrop`` and
    ``RandomHorizontalFlip``, except for where the randomness comes from.
    torchvision's transforms draw from torch's global RNG; this one draws from
    its own :attr:`generator`, which :meth:`reseed` sets from ``(seed, epoch,
    index)``. Each image's augmentation then depends on the estimator's
    ``random_state`` (through ``seed``), the epoch and the image alone: the
    same with or without ``DataLoader`` workers, and new every epoch.

    Parameters
    ----------
    size : int
        Side of the square output.
    interpolation : {"bilinear", "bicubic", "nearest"}, default="bilinear"
        Resampling filter of the resize.
    scale : tuple of 2 floats, default=(0.35, 1.0)
        Range of the crop's share of the image area.
    seed : int, default=0
        Base seed of :meth:`reseed`.

    Attributes
    ----------
    generator : torch.Generator
        The source of every random draw.

    Examples
    --------
    >>> import torch
    >>> from sktransfer.images import RandomResizedCropFlip
    >>> augment = RandomResizedCropFlip(8, seed=0)
    >>> image = torch.rand(3, 20, 20)
    >>> augment.reseed(epoch=0, index=3)
    >>> first = augment(image)
    >>> augment.reseed(epoch=0, index=3)
    >>> tuple(first.shape), bool(torch.equal(first, augment(image)))
    ((3, 8, 8), True)
    """

    def __init__(self, size, interpolation="bilinear", scale=(0.35, 1.0), seed=0):
        self.size = int(size)
        self.interpolation = interpolation
        self.scale = scale
        self.seed = int(seed)
        self.generator = torch.Generator()

    def reseed(self, epoch: int, index: int) -> None:
        """Seed the draws for image ``index`` of epoch ``epoch``."""
        state = np.random.SeedSequence([self.seed, int(epoch), int(index)])
        self.generator.manual_seed(int(state.generate_state(1)[0]))

    def _uniform(self, low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=self.generator))

    def __call__(self, image):
        """Crop, resize and maybe flip a PIL image or a ``(3, H, W)`` tensor."""
        from torchvision.transforms.v2 import functional as F

        if isinstance(image, Image.Image):
            width, height = image.size
        else:
            height, width = image.shape[-2:]
        area = height * width
        top, left, h, w = 0, 0, height, width  # fallback: the whole image
        # torchvision's sampling: up to 10 tries at a crop that fits.
        for _ in range(10):
            target = area * self._uniform(*self.scale)
            ratio = math.exp(self._uniform(math.log(3 / 4), math.log(4 / 3)))
            cw = round(math.sqrt(target * ratio))
            ch = round(math.sqrt(target / ratio))
            if 0 < cw <= width and 0 < ch <= height:
                top = int(
                    torch.randint(0, height - ch + 1, (), generator=self.generator)
                )
                left = int(
                    torch.randint(0, width - cw + 1, (), generator=self.generator)
                )
                h, w = ch, cw
                break
        out = F.resized_crop(
            image,
            top,
            left,
            h,
            w,
            [self.size, self.size],
            interpolation=F.InterpolationMode(self.interpolation),
            antialias=True,
        )
        if float(torch.rand((), generator=self.generator)) < 0.5:
            out = F.horizontal_flip(out)
        return out


def normalize_batch(batch: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    """Scale a batch to [0, 1] (if uint8) and normalise it with mean and std.

    One conversion and two in-place passes; the memory format of ``batch``
    (channels-last or not) is kept.
    """
    scale = 255.0 if batch.dtype == torch.uint8 else 1.0
    std = torch.tensor(preprocessing.std, device=batch.device).view(1, 3, 1, 1)
    mean = torch.tensor(preprocessing.mean, device=batch.device).view(1, 3, 1, 1)
    # (x / scale - mean) / std as x * (1 / (scale * std)) - mean / std.
    out = batch.to(torch.float32, copy=True)
    return out.mul_(1.0 / (scale * std)).sub_(mean / std)


def map_batches(
    fn, dataset, batch_size: int, *, num_workers=0, streams=1, pin_memory=False
):
    """Yield ``fn(batch)`` for the consecutive batches of ``dataset``, in order.

    Batches are stacked channels-last (:func:`collate_channels_last`).
    ``num_workers > 0`` decodes them in that many ``DataLoader`` worker processes
    and runs ``fn`` here. Otherwise each batch is decoded and passed to ``fn`` by
    one of ``streams`` threads (see :func:`sktransfer._torch_utils.map_streams`):
    with two, one batch is decoded while the other runs through the network,
    which on a CPU hides the decoding (about 1.5 ms per 500x375 JPEG) behind the
    forward pass instead of adding to it.
    """
    if num_workers > 0:
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            collate_fn=collate_channels_last,
        )
        for batch in loader:
            yield fn(batch)
        return

    def decode_and_run(start):
        stop = min(start + batch_size, len(dataset))
        return fn(collate_channels_last([dataset[i] for i in range(start, stop)]))

    yield from map_streams(decode_and_run, range(0, len(dataset), batch_size), streams)
