"""Real images with known targets, built offline, for the benchmarks.

Animal-MNIST comes from the PyPI package ``animal-mnist`` (``pip install
--no-deps animal-mnist==0.4``): 10 animals, 28x28 silhouettes, exact duplicates
removed. From it: rotated silhouettes (the angle is a regression target) and
pairs of silhouettes side by side (the classes present are a multilabel
target), as ``../shared/DATA.md`` describes.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def animal_mnist():
    """All unique Animal-MNIST images ``(n, 28, 28)`` uint8 and their labels."""
    import animal_mnist as package

    root = Path(package.__file__).parent / "data" / "Animal_MNIST"
    with gzip.open(root / "animal_data_version_3.gz") as f:
        X = np.asarray(pickle.load(f), dtype=np.uint8)
    with gzip.open(root / "animal_label_version_3.gz") as f:
        y = np.asarray(pickle.load(f))
    _, first = np.unique(X.reshape(len(X), -1), axis=0, return_index=True)
    keep = np.sort(first)  # drop exact duplicates before splitting
    return X[keep], y[keep]


def per_class_split(y, n_train, n_test, seed):
    """Indices of ``n_train`` and ``n_test`` images per class, disjoint."""
    rng = np.random.RandomState(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        train += list(idx[:n_train])
        test += list(idx[n_train : n_train + n_test])
    return np.array(train), np.array(test)


def rotated(images, seed, max_angle=60.0, pad=6):
    """Each image padded, then rotated by an angle uniform in [-max, max] degrees.

    Returns the rotated images ``(n, H, W, 3)`` uint8 and the angles.
    """
    rng = np.random.RandomState(seed)
    angles = rng.uniform(-max_angle, max_angle, len(images))
    out = []
    for image, angle in zip(images, angles, strict=True):
        padded = np.pad(image, pad)
        turned = Image.fromarray(padded).rotate(angle, resample=Image.BILINEAR)
        out.append(np.repeat(np.asarray(turned)[:, :, None], 3, axis=2))
    return np.stack(out), angles


def pairs(images, labels, n, seed, n_classes=10):
    """``n`` square images of one or two silhouettes of different classes.

    Two 28x28 silhouettes side by side in the middle band of a 56x56 canvas
    (or one, at a random side, with probability 1/3); the target is the
    indicator matrix of the classes present.
    """
    rng = np.random.RandomState(seed)
    X = np.zeros((n, 56, 56, 3), dtype=np.uint8)
    Y = np.zeros((n, n_classes), dtype=np.int64)
    for i in range(n):
        two = rng.rand() > 1 / 3
        first = rng.randint(len(images))
        chosen = [first]
        if two:
            others = np.flatnonzero(labels != labels[first])
            chosen.append(rng.choice(others))
        sides = [0, 1] if two else [rng.randint(2)]
        for j, side in zip(chosen, sides, strict=True):
            X[i, 14:42, 28 * side : 28 * side + 28] = images[j][:, :, None]
            Y[i, labels[j]] = 1
    return X, Y
