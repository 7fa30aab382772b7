import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from sktransfer.exceptions import ImageLoadError
from sktransfer.images import (
    ImageDataset,
    Preprocessing,
    RandomResizedCropFlip,
    check_images,
    load_image,
    normalize_batch,
    resize_crop,
)

PRE = Preprocessing(image_size=16, resize_size=18)


def _items(images):
    return [images[i] for i in range(len(images))]


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a,  # (n, H, W, 3) uint8
        lambda a: a.astype(np.float32) / 255,  # float in [0, 1]
        lambda a: np.moveaxis(a, -1, 1).astype(np.float64) / 255,  # (n, 3, H, W)
        lambda a: torch.from_numpy(a.copy()),
        lambda a: [Image.fromarray(x) for x in a],
        lambda a: list(a),  # list of arrays
        lambda a: a.astype(np.uint16) * 257,  # 16-bit
    ],
    ids=["uint8", "float01", "chw", "tensor", "pil", "array-list", "uint16"],
)
def test_equivalent_inputs_give_equal_images(rgb_images, make):
    reference = check_images(rgb_images)
    images = check_images(make(rgb_images))
    assert len(images) == len(rgb_images)
    for a, b in zip(_items(reference), _items(images), strict=True):
        a = np.asarray(a, dtype=np.float32) / (
            255 if np.asarray(a).dtype == np.uint8 else 1
        )
        b = np.asarray(b, dtype=np.float32) / (
            255 if np.asarray(b).dtype == np.uint8 else 1
        )
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_grayscale_and_rgba_become_rgb(rgb_images):
    gray = check_images(rgb_images[..., 0])[0]
    assert gray.shape == (20, 24, 3) and np.array_equal(gray[..., 0], gray[..., 2])
    rgba = np.concatenate(
        [rgb_images, np.full((12, 20, 24, 1), 255, np.uint8)], axis=-1
    )
    np.testing.assert_allclose(check_images(rgba)[0], rgb_images[0] / 255, atol=1e-6)
    transparent = rgba.copy()
    transparent[..., 3] = 0  # composited over white
    np.testing.assert_allclose(check_images(transparent)[0], 1.0)


def test_files_of_mixed_sizes_and_modes(image_files):
    images = check_images(image_files)
    assert images.kind == "path"
    decoded = _items(images)
    assert {im.mode for im in decoded} == {"RGB"}
    assert {im.size for im in decoded} == {(24, 20), (30, 18)}


def test_16bit_png_is_rescaled(tmp_path):
    arr = np.full((8, 8), 65535, dtype=np.uint16)
    arr[0, 0] = 0
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    img = np.asarray(load_image(path))
    assert img.shape == (8, 8, 3) and img[1, 1, 0] == 255 and img[0, 0, 0] == 0


def test_pandas_series_and_one_column_frame_of_paths(image_files):
    assert check_images(pd.Series(image_files)).kind == "path"
    assert len(check_images(pd.DataFrame({"path": image_files}))) == len(image_files)


def test_flattened_rows_with_image_shape(rgb_images):
    flat = rgb_images.reshape(12, -1)
    images = check_images(flat, image_shape=(20, 24, 3))
    np.testing.assert_array_equal(images[3], check_images(rgb_images)[3])
    assert check_images(flat, image_shape=(1, -1))[0].shape == (1, 20 * 24 * 3, 3)


def test_subsets_are_lazy_views(rgb_images):
    images = check_images(rgb_images)
    sub = images[np.array([3, 1])]
    np.testing.assert_array_equal(sub[1], images[1])
    assert len(images[2:5]) == 3


def test_float_images_outside_unit_range_warn(rgb_images):
    with pytest.warns(
        UserWarning,
        match=r"values in \[0, 255\]; float images are read on the \[0, 1\] scale",
    ):
        check_images(rgb_images.astype(np.float32))


def test_keys_identify_content(rgb_images, image_files, tmp_path):
    a = check_images(rgb_images)
    b = check_images(rgb_images.copy())
    assert a.key(0) == b.key(0) != a.key(1)
    files = check_images(image_files)
    key = files.key(0)
    Image.fromarray(rgb_images[5]).save(image_files[0])  # edit the file
    import os

    os.utime(image_files[0], ns=(1, 10**18))
    assert files.key(0) != key


def test_dataset_resizes_and_crops(image_files, rgb_images):
    ds = ImageDataset(check_images(image_files), PRE)
    item = ds[1]
    assert item.dtype == torch.uint8 and item.shape == (3, 16, 16)
    ds = ImageDataset(check_images(rgb_images), PRE, targets=np.arange(12))
    image, target = ds[4]
    assert image.dtype == torch.float32 and image.shape == (3, 16, 16) and target == 4


def test_tensor_and_pil_resizing_agree():
    yy, xx = np.mgrid[0:40, 0:48]
    smooth = np.stack([yy * 6, xx * 5, (yy + xx) * 3], axis=-1).astype(np.uint8)
    pil = resize_crop(Image.fromarray(smooth), PRE)
    tensor = resize_crop(torch.from_numpy(smooth.transpose(2, 0, 1) / 255.0), PRE)
    diff = np.abs(np.asarray(pil) / 255.0 - tensor.numpy().transpose(1, 2, 0))
    assert np.asarray(pil).shape == (16, 16, 3) and diff.max() < 0.02


def test_normalize_batch():
    batch = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    out = normalize_batch(batch, Preprocessing(4, 4, mean=(0.5,) * 3, std=(0.25,) * 3))
    assert torch.allclose(out, torch.full_like(out, 2.0))


def test_large_jpeg_decoded_at_reduced_scale(tmp_path):
    path = tmp_path / "big.jpg"
    Image.fromarray(np.zeros((800, 1200, 3), np.uint8)).save(path)
    assert min(load_image(path, min_size=100).size) >= 100
    assert load_image(path, min_size=100).size < (1200, 800)
    assert load_image(path).size == (1200, 800)


# ------------------------------------------------------------------- errors
def test_missing_file_names_it_and_its_index(image_files):
    with pytest.raises(
        ImageLoadError, match=r"Image file not found: '.*nope\.png' \(index 6\)"
    ):
        check_images([*image_files, "nope.png"]).load(6)


def test_corrupt_file_names_it_and_its_index(image_files, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(
        ImageLoadError, match=r"Could not read image '.*broken\.jpg' \(index 1\)"
    ):
        check_images([image_files[0], str(bad)]).load(1)


def test_key_of_missing_file():
    with pytest.raises(
        ImageLoadError, match=r"Image file not found: 'gone\.jpg' \(index 0\)"
    ):
        check_images(["gone.jpg"]).key(0)


@pytest.mark.parametrize(
    "X, match",
    [
        ([], r"X is empty: found 0 images\. Accepted inputs"),
        (np.zeros((0, 8, 8)), r"X is empty"),
        (np.zeros((2, 8, 8, 5)), r"needs 1, 3 or 4 channels"),
        (np.zeros((2, 2, 8, 8, 3)), r"\(5-D\); Accepted inputs"),
        (np.zeros(4), r"\(1-D\); Accepted inputs"),
        (np.zeros((3, 8)), r"flattened images need image_shape=\(H, W\)"),
        (
            np.zeros((2, 4, 4), dtype=object),
            r"dtype object; image arrays must be numeric",
        ),
        (np.zeros((2, 4, 4), dtype=complex), r"must be real"),
        (np.full((2, 4, 4), np.nan), r"contains NaN or infinity"),
        ([np.zeros((4, 4, 7))], r"X\[0\] has shape \(4, 4, 7\)"),
    ],
)
def test_bad_arrays(X, match):
    with pytest.raises(ValueError, match=match):
        check_images(X)


def test_bad_image_shape():
    with pytest.raises(
        ValueError,
        match=r"7 features per row, which cannot be reshaped to image_shape=\(2, 2\)",
    ):
        check_images(np.zeros((3, 7)), image_shape=(2, 2))
    with pytest.raises(ValueError, match=r"gives 2 channels"):
        check_images(np.zeros((3, 8)), image_shape=(2, 2, 2))


@pytest.mark.parametrize(
    "X, match",
    [
        ("img.jpg", r"X is a single image \(str\); pass a list"),
        (Image.new("RGB", (4, 4)), r"single image \(Image\)"),
        (
            ["a.jpg", Image.new("RGB", (4, 4))],
            r"mixes or contains unsupported element types",
        ),
        ({"a": 1}, r"X of type dict is not supported"),
    ],
)
def test_bad_types(X, match):
    with pytest.raises(TypeError, match=match):
        check_images(X)


@pytest.mark.parametrize("num_workers, streams", [(0, 1), (0, 2), (0, 3), (1, 2)])
def test_map_batches_in_order_channels_last(rgb_images, num_workers, streams):
    from sktransfer.images import map_batches

    ds = ImageDataset(check_images(list(rgb_images)), PRE)
    batches = list(
        map_batches(lambda b: b, ds, 5, num_workers=num_workers, streams=streams)
    )
    assert [len(b) for b in batches] == [5, 5, 2]
    assert all(b.is_contiguous(memory_format=torch.channels_last) for b in batches)
    expected = torch.stack([ds[i] for i in range(12)])
    assert torch.equal(torch.cat(batches), expected)


def test_collate_channels_last_of_decoded_and_float_images(rgb_images):
    from sktransfer.images import collate_channels_last

    pil = ImageDataset(check_images([Image.fromarray(a) for a in rgb_images[:2]]), PRE)
    arrays = ImageDataset(check_images(rgb_images[:2]), PRE)
    for ds in (pil, arrays):
        items = [ds[0], ds[1]]
        batch = collate_channels_last(items)
        assert batch.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(batch, torch.stack(items))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("channels_last", [False, True])
def test_normalize_batch_matches_formula_and_keeps_layout(dtype, channels_last):
    from sktransfer.images import normalize_batch

    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (2, 3, 5, 4), generator=gen).to(dtype)
    if dtype == torch.float32:
        x = x / 255
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    before = x.clone()
    out = normalize_batch(x, PRE)
    scale = 255.0 if dtype == torch.uint8 else 1.0
    mean = torch.tensor(PRE.mean).view(1, 3, 1, 1)
    std = torch.tensor(PRE.std).view(1, 3, 1, 1)
    torch.testing.assert_close(out, (x.float() / scale - mean) / std)
    assert out.dtype == torch.float32 and torch.equal(x, before)  # input untouched
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last


# ------------------------------------------------- files as users have them
def _exif_rotated(tmp_path, arr, orientation):
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    path = tmp_path / f"phone{orientation}.jpg"
    img.save(path, exif=exif, quality=95)
    return path


def test_exif_orientation_is_applied(tmp_path):
    rng = np.random.RandomState(0)
    arr = rng.randint(0, 256, (20, 30, 3), dtype=np.uint8)
    arr[:, :10] = 0  # an asymmetric image: dark left third
    stored = np.ascontiguousarray(np.rot90(arr, k=1))  # what the camera stored
    path = _exif_rotated(tmp_path, stored, 6)  # "rotate 90 CW to display"
    upright = np.asarray(load_image(path))
    assert upright.shape == (20, 30, 3)  # landscape again, as displayed
    assert upright[:, :10].mean() < 20 and upright[:, 10:].mean() > 80


def test_float_tiff_in_unit_range_is_not_black(tmp_path):
    arr = np.linspace(0, 1, 16 * 16, dtype=np.float32).reshape(16, 16)
    path = tmp_path / "float.tif"
    Image.fromarray(arr, mode="F").save(path)
    loaded = np.asarray(load_image(path))
    np.testing.assert_allclose(loaded[..., 0] / 255.0, arr, atol=1 / 255)


def test_float_tiff_on_0_255_scale_reads_as_levels(tmp_path):
    arr = np.linspace(0, 255, 16 * 16, dtype=np.float32).reshape(16, 16)
    path = tmp_path / "float255.tif"
    Image.fromarray(arr, mode="F").save(path)
    np.testing.assert_allclose(np.asarray(load_image(path))[..., 0], arr, atol=1)


def test_float_tiff_of_unknown_scale_is_refused_by_name(tmp_path):
    path = tmp_path / "float_odd.tif"
    Image.fromarray(np.full((8, 8), 1000.0, np.float32), mode="F").save(path)
    with pytest.raises(ImageLoadError, match=r"float_odd\.tif.*neither \[0, 1\]"):
        load_image(path, 3)


def test_decompression_bomb_names_the_file_and_the_fix(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    Image.new("RGB", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 > 2 x 1000
    with pytest.raises(
        ImageLoadError,
        match=r"'.*huge\.png' \(index 5\) has 4,096 pixels.*MAX_IMAGE_PIXELS",
    ):
        load_image(path, 5)


@pytest.mark.parametrize("dtype, lo, hi", [("int32", 0, 1000), ("int16", -5, 100)])
def test_integer_arrays_out_of_8_bit_range_warn(dtype, lo, hi):
    from sktransfer.exceptions import ImageScaleWarning

    arr = np.linspace(lo, hi, 2 * 8 * 8).astype(dtype).reshape(2, 8, 8)
    with pytest.warns(
        ImageScaleWarning, match=rf"{dtype} array with values in \[{lo}, {hi}\]"
    ):
        check_images(arr)


def test_in_range_integer_arrays_do_not_warn():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_images(np.full((2, 8, 8), 200, np.int64))
        check_images(np.full((2, 8, 8), 60000, np.uint16))


def test_scale_warning_points_at_the_callers_line_once(rgb_images):
    import warnings

    from _helpers import make_tiny_cnn

    from sktransfer import PretrainedFeatureExtractor

    ext = PretrainedFeatureExtractor(make_tiny_cnn(), image_size=16, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ext.fit_transform(rgb_images.astype(np.float32))  # 0-255 floats
    scale = [w for w in caught if "float images are read" in str(w.message)]
    assert len(scale) == 1
    assert scale[0].filename == __file__


# ------------------------------------------------------------------ augmentation
def test_random_resized_crop_flip_follows_seed_epoch_and_index():
    image = torch.rand(3, 20, 24)
    aug = RandomResizedCropFlip(8, seed=3)

    def draw(epoch, index, augment=aug):
        augment.reseed(epoch, index)
        return augment(image)

    first = draw(0, 0)
    assert first.shape == (3, 8, 8)
    assert torch.equal(first, draw(0, 0))
    assert torch.equal(first, draw(0, 0, RandomResizedCropFlip(8, seed=3)))
    assert not torch.equal(first, draw(1, 0))
    assert not torch.equal(first, draw(0, 1))
    assert not torch.equal(first, draw(0, 0, RandomResizedCropFlip(8, seed=4)))


def test_random_resized_crop_flip_leaves_global_rng_alone():
    state = torch.get_rng_state()
    aug = RandomResizedCropFlip(8)
    for i in range(5):
        aug.reseed(0, i)
        aug(torch.rand(3, 12, 12, generator=torch.Generator().manual_seed(i)))
    assert torch.equal(state, torch.get_rng_state())


def test_random_resized_crop_flip_flips_and_takes_pil_images():
    # A horizontal ramp: a flip reverses it, a crop keeps its direction.
    ramp = torch.linspace(0, 1, 32).expand(3, 32, 32).contiguous()
    aug = RandomResizedCropFlip(8, scale=(1.0, 1.0))
    directions = set()
    for i in range(16):
        aug.reseed(0, i)
        out = aug(ramp)
        directions.add(bool(out[0, 0, -1] > out[0, 0, 0]))
    assert directions == {True, False}
    pil = Image.fromarray(np.zeros((10, 14, 3), np.uint8))
    aug.reseed(0, 0)
    assert aug(pil).size == (8, 8)


def test_random_resized_crop_flip_falls_back_to_the_whole_image():
    # 0.1-0.2 % of a 4 x 4 image rounds to an empty crop on every try: the whole
    # image is used instead (here resized to its own size, so kept as is).
    image = torch.arange(48, dtype=torch.float32).reshape(3, 4, 4) / 48
    aug = RandomResizedCropFlip(4, scale=(0.001, 0.002))
    for i in range(4):
        aug.reseed(0, i)
        out = aug(image)
        assert torch.allclose(out, image) or torch.allclose(out, image.flip(-1))
