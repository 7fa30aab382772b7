"""Embedding images with a frozen network: the loop both estimators share.

:class:`~sktransfer.PretrainedFeatureExtractor` and the frozen-backbone fast
path of the fine-tuning estimators embed images the same way, through
:func:`embed`:

* :func:`embedding_network` wraps a (shared, frozen) trunk and an optional
  ``layer`` into a :class:`FrozenNetwork` -- a read-only view whose mode can
  never change, so no caller can flip a trunk that other estimators share;
* :func:`embed` runs it over images: lazy decoding, two CPU streams, autocast,
  pooling, a progress bar, and the embedding cache (:mod:`sktransfer.cache`);
* the network that actually runs is an *inference copy* with BatchNorm folded
  into the convolutions, built once per trunk, layer and device and shared by
  every estimator using that trunk (see :func:`inference_network`).

Thread safety: every forward pass here holds
:data:`sktransfer._torch_utils.FORWARD_LOCK` shared and every torch.fx trace
holds it exclusively, so fitting new extractors (which traces) while others
transform in other threads is safe.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import threading
import weakref

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ._lru import LRUMemo
from ._torch_utils import (
    FORWARD_LOCK,
    autocast,
    fold_batch_norms,
    resolve_batch_size,
    resolve_streams,
)
from .cache import EmbeddingCache
from .images import ImageDataset, Preprocessing, map_batches, normalize_batch

__all__ = [
    "POOLINGS",
    "FrozenNetwork",
    "embed",
    "embedding_digest",
    "embedding_network",
    "inference_network",
    "output_width",
    "pool",
]

POOLINGS = ("avg", "max", "avgmax", "cls")


class _Stop(Exception):
    """Raised by a layer tap's hook to end the forward pass early."""


class FrozenNetwork(nn.Module):
    """A read-only view of a shared trunk, optionally tapped at one layer.

    Estimators with the same model and weights share one trunk. This view is
    what they expose as ``backbone_``: its forward pass returns the trunk's
    output, or the output of ``layer``; :meth:`train` and
    :meth:`requires_grad_` keep the view and the trunk in evaluation mode with
    frozen parameters, whatever they are asked (so ``torch.onnx.export``,
    which switches modes and restores them, leaves the trunk alone). To train
    the network, copy it: ``copy.deepcopy(extractor.backbone_.trunk)``.

    Parameters
    ----------
    trunk : torch.nn.Module
        The shared network, in eval mode.
    layer : str or None, default=None
        A module name of ``trunk`` whose output to return; ``None`` returns
        the trunk's output.
    graph_module : torch.nn.Module or None, default=None
        A torch.fx feature extractor returning ``{"out": tensor}`` (for a
        ``layer`` that is a graph node rather than a module).
    """

    def __init__(self, trunk: nn.Module, layer: str | None = None, graph_module=None):
        super().__init__()
        self.trunk = trunk
        self.layer = layer
        self.graph_module = graph_module
        super().train(False)

    def train(self, mode: bool = True):
        """Stay in evaluation mode, whatever ``mode`` asks: the trunk is shared."""
        return super().train(False)

    def requires_grad_(self, requires_grad: bool = True):
        """Keep the shared trunk's parameters frozen; copy the trunk to train it."""
        return self

    def forward(self, x):
        """The trunk's output for a normalised batch, or its ``layer``'s."""
        if self.graph_module is not None:
            return self.graph_module(x)["out"]
        if self.layer is None:
            return self.trunk(x)
        return _run_to_layer(self.trunk, self.layer, x)


def _run_to_layer(trunk: nn.Module, layer: str, x):
    """Run ``trunk`` on ``x`` up to the module ``layer`` and return its output.

    A forward hook captures the output and stops the pass, so later layers
    cost nothing. The hook lives only for this call and acts only on this
    thread's pass: two streams may run one shared trunk at once.
    """
    captured = {}
    caller = threading.get_ident()

    def hook(module, args, output):
        if threading.get_ident() != caller:
            return None
        captured["out"] = output
        raise _Stop

    handle = trunk.get_submodule(layer).register_forward_hook(hook)
    try:
        trunk(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    return captured["out"]


def _graph_nodes_and_extractor(trunk: nn.Module, layer: str, source: str):
    """torch.fx graph nodes of ``trunk`` and, if ``layer`` is one, its extractor.

    torchvision's tracer switches the network between train and eval mode
    while it works (and leaves it in training mode when tracing fails). It runs
    here under the exclusive forward lock -- no forward pass anywhere sees the
    switched modes -- and every module's mode is restored on every exit path.
    """
    from torchvision.models.feature_extraction import (
        create_feature_extractor,
        get_graph_node_names,
    )

    modes = [(m, m.training) for m in trunk.modules()]
    with FORWARD_LOCK.exclusive():
        try:
            try:
                nodes = get_graph_node_names(trunk)[1]
            except Exception:  # torch.fx cannot trace every model
                nodes = []
            if layer not in nodes:
                return nodes, None
            if source == "timm":
                from timm.models import create_feature_extractor as timm_extractor

                return nodes, timm_extractor(trunk, return_nodes={layer: "out"})
            return nodes, create_feature_extractor(trunk, return_nodes={layer: "out"})
        finally:
            for module, training in modes:
                module.training = training


def embedding_network(trunk: nn.Module, layer=None, source="module") -> FrozenNetwork:
    """The :class:`FrozenNetwork` that embeds with ``trunk`` (up to ``layer``).

    Parameters
    ----------
    trunk : torch.nn.Module
        A frozen network in eval mode (from
        :func:`sktransfer.backbones.cached_backbone`).
    layer : str or None, default=None
        ``None`` for the trunk's own output; else a module name
        (``"layer3"``) or a torch.fx graph node name (``"layer3.0.add"``).
    source : {"torchvision", "timm", "module"}, default="module"
        Where the architecture comes from (timm traces with its own tracer).

    Returns
    -------
    network : FrozenNetwork

    Raises
    ------
    ValueError
        If ``layer`` is neither a module nor a graph node; the trunk's state is
        left exactly as it was.

    Examples
    --------
    >>> from sktransfer.backbones import cached_backbone
    >>> from sktransfer.embedding import embedding_network
    >>> trunk = cached_backbone("resnet18", None, random_state=0).trunk
    >>> net = embedding_network(trunk, "layer3")
    >>> net.train().training, trunk.training
    (False, False)
    """
    if layer is None:
        return FrozenNetwork(trunk)
    modules = dict(trunk.named_modules())
    if layer in modules and layer != "":
        return FrozenNetwork(trunk, layer)
    nodes, graph_module = _graph_nodes_and_extractor(trunk, layer, source)
    if graph_module is not None:
        return FrozenNetwork(trunk, layer, graph_module.eval())
    names = [m for m in modules if m] + [n for n in nodes if n not in modules]
    close = difflib.get_close_matches(layer, names, n=5, cutoff=0.5)
    hint = f" Closest names: {close}." if close else ""
    raise ValueError(
        f"layer={layer!r} is not a module or graph node of this model.{hint} "
        "Module names come from model.named_modules(); graph node names from "
        "torchvision.models.feature_extraction.get_graph_node_names(model)."
    )


# Inference copies by (trunk or graph module) -> {(layer, device): copy}. String
# models share one memoised trunk (see backbones.cached_backbone), so the clones
# that GridSearchCV and cross_val_score fit share its folded copy too instead
# of re-tracing it. Weak keys: a copy lives as long as its trunk.
_INFERENCE_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_INFERENCE_LOCK = threading.Lock()


def _build_inference_copy(network: FrozenNetwork, device: torch.device) -> nn.Module:
    if network.graph_module is not None:
        folded = fold_batch_norms(network.graph_module)
        source = network.graph_module
    else:
        keep = () if network.layer is None else (network.layer,)
        folded = fold_batch_norms(network.trunk, keep=keep)
        source = network.trunk
    if device.type != "cpu" or folded is source:
        # Never move or hand out the shared module itself: copy it.
        folded = copy.deepcopy(folded)
    return folded.to(device).eval().requires_grad_(False)


def inference_network(network: FrozenNetwork, device) -> nn.Module:
    """The network :func:`embed` runs for ``network`` on ``device``, memoised.

    A copy of ``network``'s trunk (or graph module) with BatchNorm folded into
    the convolutions (see :func:`sktransfer._torch_utils.fold_batch_norms`; a
    tapped layer keeps its raw output), on ``device``, in eval mode. It is built
    once per trunk, layer and device and shared by every estimator using that
    trunk; ``network`` and its trunk are never moved or modified.

    Parameters
    ----------
    network : FrozenNetwork
        From :func:`embedding_network`.
    device : str or torch.device
        Where the copy lives.

    Returns
    -------
    module : torch.nn.Module
        Maps a normalised batch to the network's (unpooled) output.
    """
    device = torch.device(device)
    owner = network.graph_module if network.graph_module is not None else network.trunk
    key = (network.layer, str(device))
    with _INFERENCE_LOCK:
        copies = _INFERENCE_COPIES.setdefault(owner, {})
        folded = copies.get(key)
    if folded is None:
        folded = _build_inference_copy(network, device)
        with _INFERENCE_LOCK:
            folded = _INFERENCE_COPIES.setdefault(owner, {}).setdefault(key, folded)
    if network.graph_module is not None:
        return FrozenNetwork(folded, network.layer, graph_module=folded)
    if network.layer is None:
        return folded
    return FrozenNetwork(folded, network.layer)


def pool(out, pooling: str) -> torch.Tensor:
    """Pool a network's output into one vector per image.

    Parameters
    ----------
    out : torch.Tensor or tuple of torch.Tensor
        ``(n, d)`` vectors (returned as they are), ``(n, C, H, W)`` maps or
        ``(n, tokens, dim)`` sequences; a tuple's first element is used.
    pooling : {"avg", "max", "avgmax", "cls"}
        Average, maximum, both concatenated, or a transformer's class token.

    Returns
    -------
    features : torch.Tensor of shape (n, n_features)

    Examples
    --------
    >>> import torch
    >>> from sktransfer.embedding import pool
    >>> pool(torch.ones(2, 3, 4, 4), "avgmax").shape
    torch.Size([2, 6])
    """
    if isinstance(out, (tuple, list)):
        out = out[0]
    if out.ndim == 2:
        return out
    if out.ndim == 4:  # (n, C, H, W) feature maps
        if pooling == "cls":
            raise ValueError(
                "pooling='cls' takes the class token of a transformer's (n, tokens, "
                "dim) output; this layer gives (n, C, H, W) maps. Use 'avg', 'max' "
                "or 'avgmax'."
            )
        dims = (2, 3)
    elif out.ndim == 3:  # (n, tokens, dim)
        if pooling == "cls":
            return out[:, 0]
        dims = (1,)
    else:
        return out.flatten(1)
    if pooling == "avg":
        return out.mean(dims)
    if pooling == "max":
        return out.amax(dims)
    return torch.cat([out.mean(dims), out.amax(dims)], dim=1)


def embedding_digest(
    backbone, layer, pooling: str, preprocessing: Preprocessing, precision: str
) -> str:
    """The embedding cache's configuration digest (see :mod:`sktransfer.cache`).

    It covers what the network computes -- the digest of its architecture and
    every tensor (``backbone.digest``), so differently initialised networks
    never share cache entries -- and the layer, pooling, preprocessing and
    precision.
    """
    fields = (
        backbone.source,
        backbone.name,
        backbone.digest,
        layer,
        pooling,
        preprocessing,
        precision,
    )
    return hashlib.sha256(repr(fields).encode()).hexdigest()[:32]


# Output widths by configuration digest: a dry run costs a forward pass.
_WIDTHS = LRUMemo(256)


def output_width(network: FrozenNetwork, preprocessing, pooling, digest) -> int:
    """Width of the pooled embeddings, from one dry run, memoised by ``digest``."""

    def probe():
        size = preprocessing.image_size
        with FORWARD_LOCK.shared(), torch.inference_mode():
            out = network(torch.zeros(1, 3, size, size))
        return int(pool(out, pooling).shape[1])

    return _WIDTHS.get_or_build(digest, probe)


# torch.compile'd inference copies, by copy (weak: they go with it).
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _runner(network, device, compile):
    net = inference_network(network, device)
    if not compile:
        return net
    with _INFERENCE_LOCK:
        compiled = _COMPILED.get(net)
        if compiled is None:
            compiled = _COMPILED[net] = torch.compile(net, dynamic=False)
    return compiled


def _progress_bar(total, progress, desc):
    return tqdm(
        total=total,
        desc=desc,
        unit="img",
        disable=(not progress) or (None if progress == "auto" else False),
        delay=2.0 if progress == "auto" else 0.0,
        leave=False,
    )


def _embed_uncached(network, images, config, on_batch=None) -> np.ndarray:
    device = config["device"]
    net = _runner(network, device, config["compile"])
    batch_size = resolve_batch_size(config["batch_size"], device)
    compile_ = config["compile"]
    # Compiled graphs stay in one thread (and one static batch shape).
    streams = (
        1
        if compile_
        else resolve_streams(config["streams"], device, config["thread_safe"])
    )
    preprocessing, pooling = config["preprocessing"], config["pooling"]

    def run(batch):  # runs in a stream's thread: set its own modes
        n = batch.shape[0]
        x = normalize_batch(batch.to(device, non_blocking=True), preprocessing)
        if compile_ and n < batch_size:  # keep shapes static
            x = torch.cat([x, x.new_zeros((batch_size - n, *x.shape[1:]))])
        x = x.contiguous(memory_format=torch.channels_last)
        with (
            FORWARD_LOCK.shared(),
            torch.inference_mode(),
            autocast(device, config["precision"]),
        ):
            features = pool(net(x), pooling)
        return features[:n].float().cpu().numpy()

    results = map_batches(
        run,
        ImageDataset(images, preprocessing),
        batch_size,
        num_workers=config["num_workers"],
        streams=streams,
        pin_memory=device.type == "cuda",
    )
    out = None
    start = 0
    with _progress_bar(len(images), config["progress"], config["desc"]) as bar:
        try:
            for rows in results:
                if out is None:
                    out = np.empty((len(images), rows.shape[1]), dtype=np.float32)
                n = rows.shape[0]
                out[start : start + n] = rows
                if on_batch is not None:
                    on_batch(start, out[start : start + n])
                start += n
                bar.update(n)
        finally:
            results.close()  # join the streams on every exit path
    return out


def embed(
    network: FrozenNetwork,
    images,
    *,
    preprocessing: Preprocessing,
    pooling: str = "avg",
    device="cpu",
    precision: str = "float32",
    batch_size="auto",
    num_workers: int = 0,
    streams="auto",
    thread_safe: bool = True,
    compile: bool = False,
    progress=False,
    desc: str = "Embedding",
    cache_digest: str | None = None,
    memory=None,
    n_features: int | None = None,
) -> np.ndarray:
    """Embed images with a frozen network.

    Parameters
    ----------
    network : FrozenNetwork
        From :func:`embedding_network`; it runs as its memoised inference copy
        on ``device`` (:func:`inference_network`).
    images : ImageSequence
        Checked images (:func:`sktransfer.images.check_images`).
    preprocessing : Preprocessing
        Resize, crop and normalisation.
    pooling : {"avg", "max", "avgmax", "cls"}, default="avg"
        See :func:`pool`.
    device : str or torch.device, default="cpu"
        Where the forward passes run.
    precision : {"float32", "bfloat16", "float16"}, default="float32"
        Autocast precision.
    batch_size : int or "auto", default="auto"
        Images per forward pass (``"auto"``: 8 on the CPU, 64 on GPUs).
    num_workers : int, default=0
        DataLoader worker processes; 0 decodes in ``streams`` threads.
    streams : int or "auto", default="auto"
        See :func:`sktransfer._torch_utils.resolve_streams`.
    thread_safe : bool, default=True
        Whether the network may run from two threads at once (``"auto"``
        streams then gives 2 on a CPU).
    compile : bool, default=False
        Run a ``torch.compile``'d inference copy (one stream).
    progress : bool or "auto", default=False
        Show a progress bar (``"auto"``: on terminals, after two seconds).
    desc : str, default="Embedding"
        The progress bar's label.
    cache_digest : str or None, default=None
        The configuration digest (:func:`embedding_digest`) to cache under;
        ``None`` disables the embedding cache.
    memory : None, str, path-like or joblib.Memory, default=None
        The on-disk cache location (see :mod:`sktransfer.cache`).
    n_features : int or None, default=None
        The embedding width, if known: the width of an empty input's result,
        and cached rows of any other shape are recomputed.

    Returns
    -------
    embeddings : ndarray of shape (n_images, n_features), dtype float32

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.backbones import cached_backbone
    >>> from sktransfer.embedding import embed, embedding_network
    >>> from sktransfer.images import check_images
    >>> backbone = cached_backbone("resnet18", None, random_state=0)
    >>> images = check_images(np.zeros((3, 32, 32, 3), np.uint8))
    >>> embed(
    ...     embedding_network(backbone.trunk),
    ...     images,
    ...     preprocessing=backbone.preprocessing.with_overrides(32),
    ... ).shape
    (3, 512)
    """
    config = {
        "preprocessing": preprocessing,
        "pooling": pooling,
        "device": torch.device(device),
        "precision": precision,
        "batch_size": batch_size,
        "num_workers": num_workers,
        "streams": streams,
        "thread_safe": thread_safe,
        "compile": compile,
        "progress": progress,
        "desc": desc,
    }
    n = len(images)
    if n == 0:
        return np.empty((0, n_features or 0), dtype=np.float32)
    if cache_digest is None:
        return _embed_uncached(network, images, config)
    store = EmbeddingCache(cache_digest, memory, n_features=n_features)
    keys = [images.key(i) for i in range(n)]
    found = store.get(keys)
    missing = np.array([i for i in range(n) if i not in found], dtype=int)
    computed = None
    if missing.size:

        def keep(start, rows):  # store batch by batch: an interrupted run keeps
            store.put([keys[i] for i in missing[start : start + len(rows)]], rows)

        computed = _embed_uncached(network, images[missing], config, on_batch=keep)
    first = computed if computed is not None else next(iter(found.values()))
    out = np.empty((n, first.shape[-1]), dtype=np.float32)
    for i, row in found.items():
        out[i] = row
    if computed is not None:
        out[missing] = computed
    return out
