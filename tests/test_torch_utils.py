"""Tests of the shared torch helpers: BatchNorm folding, inference streams."""

import threading

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from sktransfer import PretrainedFeatureExtractor
from sktransfer._torch_utils import fold_batch_norms, map_streams, resolve_streams
from sktransfer.embedding import inference_network


def _trained_resnet():
    torch.manual_seed(0)
    model = resnet18(num_classes=4)
    for m in model.modules():  # non-trivial running statistics and affine terms
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def test_fold_matches_the_original_and_leaves_it_untouched():
    model = _trained_resnet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batch_norms(model)
    assert folded is not model
    assert isinstance(folded.bn1, nn.Identity)
    assert isinstance(folded.layer1[0].bn2, nn.Identity)
    # The downsample path is a Sequential(conv, bn): folded too.
    assert isinstance(folded.layer2[0].downsample[1], nn.Identity)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        expected, got = model(x), folded(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert isinstance(model.bn1, nn.BatchNorm2d)


def test_fold_keeps_named_convolutions_and_shared_outputs():
    class Branch(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.bn = nn.BatchNorm2d(4)
            self.conv2 = nn.Conv2d(3, 4, 3)
            self.bn2 = nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y + self.bn2(self.conv2(x))  # y used twice

    model = Branch().eval()
    folded = fold_batch_norms(model)
    assert isinstance(folded.bn, nn.BatchNorm2d)  # conv's output also used raw
    assert isinstance(folded.bn2, nn.Identity)
    assert fold_batch_norms(model, keep=("conv2",)) is model  # nothing left


def test_fold_returns_untraceable_modules_unchanged():
    class Dynamic(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: fx cannot trace it
                return self.bn(self.conv(x))
            return x

    model = Dynamic().eval()
    assert fold_batch_norms(model) is model


def test_extractor_tapping_a_convolution_gets_its_raw_output(rgb_images):
    # Folding must not normalise the output of a tapped convolution.
    model = _trained_resnet()
    ext = PretrainedFeatureExtractor(
        model, layer="layer1.0.conv1", image_size=32, cache=False, progress=False
    ).fit(rgb_images)
    captured = {}
    model.layer1[0].conv1.register_forward_hook(
        lambda m, a, out: captured.setdefault("out", out)
    )
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        model(x)
        expected = captured["out"].mean(dim=(2, 3))
        got = inference_network(ext.backbone_, "cpu")(x).mean(dim=(2, 3))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert isinstance(inference_network(ext.backbone_, "cpu").trunk.bn1, nn.Identity)


def _stream_threads():
    return [t for t in threading.enumerate() if t.name.startswith("sktransfer-stream")]


@pytest.mark.parametrize("streams", [1, 2, 3])
def test_map_streams_in_order_with_a_share_of_the_threads(streams):
    main_threads = torch.get_num_threads()

    def fn(i):
        # Parallel work first: torch's lazy per-thread set-up must not undo the
        # stream's thread limit.
        torch.ones(256, 256).sum()
        return i * i, torch.get_num_threads(), threading.current_thread().name

    out = list(map_streams(fn, range(7), streams))
    assert [r[0] for r in out] == [i * i for i in range(7)]
    if streams == 1:
        assert {r[2] for r in out} == {threading.current_thread().name}
        assert {r[1] for r in out} == {main_threads}
    else:
        assert {r[1] for r in out} == {max(1, main_threads // streams)}
        assert len({r[2] for r in out}) == streams
    assert torch.get_num_threads() == main_threads
    assert not _stream_threads()


def test_map_streams_raises_in_order_and_joins_its_threads():
    def fn(i):
        if i == 3:
            raise ValueError("item 3 is bad")
        return i

    seen = []
    with pytest.raises(ValueError, match="item 3 is bad"):
        for value in map_streams(fn, range(8), 2):
            seen.append(value)
    assert seen == [0, 1, 2]  # everything before the bad item, nothing after
    assert not _stream_threads()


def test_map_streams_closed_early_stops_its_threads():
    results = map_streams(lambda i: i, range(100), 2)
    assert next(results) == 0
    results.close()
    assert not _stream_threads()


def test_resolve_streams():
    cpu = torch.device("cpu")
    assert resolve_streams(3, cpu) == 3
    assert resolve_streams("auto", torch.device("cuda")) == 1
    expected = 2 if torch.get_num_threads() >= 2 else 1
    assert resolve_streams("auto", cpu) == expected
    assert resolve_streams("auto", cpu, thread_safe=False) == 1
    assert resolve_streams(2, cpu, thread_safe=False) == 2


def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    from sktransfer._torch_utils import resolve_device

    mps = torch.backends.mps
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
