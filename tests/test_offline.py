"""The offline pretrained weights, and real pretrained features on real images."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from sktransfer import PretrainedFeatureExtractor
from sktransfer.offline import (
    convert_efficientnet_pytorch_state_dict,
    efficientnet_lite_weights,
)


def test_conversion_renames_blocks_by_stage():
    state = {
        "_conv_stem.weight": 1,
        "_blocks.0._depthwise_conv.weight": 2,
        "_blocks.1._expand_conv.weight": 3,
        "_blocks.3._project_conv.weight": 4,
        "_fc.bias": 5,
    }
    out = convert_efficientnet_pytorch_state_dict(state, [1, 2, 2])
    assert out == {
        "conv_stem.weight": 1,
        "blocks.0.0.conv_dw.weight": 2,
        "blocks.1.0.conv_pw.weight": 3,
        "blocks.2.0.conv_pwl.weight": 4,
        "classifier.bias": 5,
    }
    with pytest.raises(
        ValueError, match=r"Block 9 in key '_blocks\.9\.x\.w' exceeds the 5 blocks"
    ):
        convert_efficientnet_pytorch_state_dict({"_blocks.9.x.w": 0}, [1, 2, 2])


def test_bad_variant():
    with pytest.raises(ValueError, match="variant must be 'lite0' or 'lite2'"):
        efficientnet_lite_weights("lite7")


def test_real_weights_classify_a_photo(lite0_weights):
    import timm
    from skimage.data import coffee
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    from sktransfer.backbones import load_backbone, load_state_dict_file
    from sktransfer.images import ImageDataset, check_images, normalize_batch

    net = timm.create_model("tf_efficientnet_lite0")
    net.load_state_dict(load_state_dict_file(lite0_weights))
    pre = load_backbone(
        "timm:tf_efficientnet_lite0", weights=lite0_weights
    ).preprocessing
    x = normalize_batch(ImageDataset(check_images([coffee()]), pre)[0][None], pre)
    with torch.no_grad():
        top = net.eval()(x).softmax(1)[0]
    assert _IMAGENET_CATEGORIES[int(top.argmax())] == "espresso" and top.max() > 0.8


@pytest.mark.slow
def test_linear_probe_on_pretrained_features_beats_raw_pixels(lite0_weights):
    """Faces vs non-faces, 10 labels per class (DATA.md: raw 0.933, pretrained 0.973)."""
    from skimage.data import lfw_subset

    faces = lfw_subset()
    X = (faces * 255).astype(np.uint8)
    y = np.r_[np.ones(100), np.zeros(100)]
    train, test = train_test_split(
        np.arange(200), train_size=20, stratify=y, random_state=0
    )

    def probe_accuracy(features):
        clf = LogisticRegression(max_iter=2000).fit(features[train], y[train])
        return clf.score(features[test], y[test])

    common = dict(model="timm:tf_efficientnet_lite0", image_size=64, progress=False)
    pretrained = probe_accuracy(
        PretrainedFeatureExtractor(weights=str(lite0_weights), **common).fit_transform(
            X
        )
    )
    random_init = probe_accuracy(
        PretrainedFeatureExtractor(
            weights=None, random_state=0, **common
        ).fit_transform(X)
    )
    raw = probe_accuracy(faces.reshape(200, -1))
    assert pretrained >= raw + 0.03, (pretrained, raw)
    assert pretrained >= random_init + 0.05, (pretrained, random_init)
