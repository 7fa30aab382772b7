"""Tests of the shared torch helpers: BatchNorm folding for inference."""

import torch
from torch import nn
from torchvision.models import resnet18

from sktransfer import PretrainedFeatureExtractor
from sktransfer._torch_utils import fold_batch_norms


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
        got = ext._network(torch.device("cpu"))(x).mean(dim=(2, 3))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert isinstance(ext._network(torch.device("cpu")).trunk.bn1, nn.Identity)
