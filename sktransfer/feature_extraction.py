"""``PretrainedFeatureExtractor``: images in, embeddings out."""

from __future__ import annotations

import copy
import hashlib
import os
import threading
import weakref
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn
from tqdm.auto import tqdm

from ._params import IMAGE_ESTIMATOR_CONSTRAINTS, set_up_backbone
from ._torch_utils import (
    autocast,
    fold_batch_norms,
    module_device,
    module_to_cpu,
    resolve_batch_size,
    resolve_device,
    resolve_streams,
)
from .backbones import TIMM_PREFIX
from .cache import EmbeddingCache
from .images import ImageDataset, map_batches, normalize_batch, validate_images

__all__ = ["PretrainedFeatureExtractor"]

POOLINGS = ("avg", "max", "avgmax", "cls")


class _LayerTap(nn.Module):
    """Run ``trunk`` only up to the module named ``layer`` and return its output.

    A forward hook captures the output and stops the forward pass with an
    exception, so later layers cost nothing. The hook lives only for the call,
    which keeps the module picklable.
    """

    class _Stop(Exception):
        pass

    def __init__(self, trunk: nn.Module, layer: str):
        super().__init__()
        self.trunk = trunk
        self.layer = layer

    def forward(self, x):
        captured = {}
        caller = threading.get_ident()

        def hook(module, args, output):
            # Two streams may run the shared trunk at once, each with its own
            # hook on the same layer: act on this call's forward pass only.
            if threading.get_ident() != caller:
                return None
            captured["out"] = output
            raise self._Stop

        handle = self.trunk.get_submodule(self.layer).register_forward_hook(hook)
        try:
            self.trunk(x)
        except self._Stop:
            pass
        finally:
            handle.remove()
        return captured["out"]


class _GraphTap(nn.Module):
    """Wrap a torch.fx feature extractor so that it returns one tensor."""

    def __init__(self, graph_module: nn.Module):
        super().__init__()
        self.graph_module = graph_module

    def forward(self, x):
        return self.graph_module(x)["out"]


def _tap(trunk: nn.Module, layer: str | None, source: str) -> nn.Module:
    if layer is None:
        return trunk
    modules = dict(trunk.named_modules())
    if layer in modules and layer != "":
        return _LayerTap(trunk, layer)
    from torchvision.models.feature_extraction import (
        create_feature_extractor,
        get_graph_node_names,
    )

    try:
        nodes = get_graph_node_names(trunk)[1]
    except Exception:  # torch.fx cannot trace every model
        nodes = []
    if layer in nodes:
        if source == "timm":
            from timm.models import create_feature_extractor as timm_extractor

            return _GraphTap(timm_extractor(trunk, return_nodes={layer: "out"}))
        return _GraphTap(create_feature_extractor(trunk, return_nodes={layer: "out"}))
    import difflib

    names = [m for m in modules if m] + [n for n in nodes if n not in modules]
    close = difflib.get_close_matches(layer, names, n=5, cutoff=0.5)
    hint = f" Closest names: {close}." if close else ""
    raise ValueError(
        f"layer={layer!r} is not a module or graph node of this model.{hint} "
        "Module names come from model.named_modules(); graph node names from "
        "torchvision.models.feature_extraction.get_graph_node_names(model)."
    )


# Inference copies by network and layer. String models share one memoised,
# frozen trunk (see _params.cached_backbone), so the clones that GridSearchCV
# and cross_val_score fit share its folded copy too instead of re-tracing it.
_INFERENCE_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _inference_copy(net: nn.Module) -> nn.Module:
    """``net`` with BatchNorm folded (see ``fold_batch_norms``), memoised.

    A module tap's own layer keeps its raw output: a tapped convolution is
    never merged with the BatchNorm after it.
    """
    trunk, layer = (net.trunk, net.layer) if isinstance(net, _LayerTap) else (net, None)
    copies = _INFERENCE_COPIES.setdefault(trunk, {})
    # Keyed by device too: moving the trunk leaves an earlier copy behind.
    key = (layer, module_device(trunk))
    if key not in copies:
        folded = fold_batch_norms(trunk, keep=() if layer is None else (layer,))
        # None when nothing folds: a value holding its own key would never let
        # the weak entry go.
        copies[key] = None if folded is trunk else folded
    folded = copies[key] or trunk
    return folded if layer is None else _LayerTap(folded, layer)


def _pool(out, pooling: str) -> torch.Tensor:
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


_WIDTHS: dict[str, int] = {}  # output width by configuration digest


class PretrainedFeatureExtractor(TransformerMixin, BaseEstimator):
    """Embed images with a pretrained network: images in, features out.

    The network is built in :meth:`fit` (nothing heavy happens in ``__init__``)
    and always runs in evaluation mode under ``torch.inference_mode``, so its
    BatchNorm statistics never change. Images are decoded lazily, batch by
    batch, and each image's embedding is cached (see :mod:`sktransfer.cache`), so
    cross-validation and grid searches over downstream steps embed each image
    once.

    Parameters
    ----------
    model : str or torch.nn.Module, default="resnet18"
        A torchvision classification model name, ``"timm:<name>"``, or your own
        module returning features. See :func:`sktransfer.list_backbones`.
    weights : str, path-like or None, default="DEFAULT"
        ``"DEFAULT"`` or a weights name (downloaded on first use), ``None`` for
        random initialisation, or the path of a local state_dict file (loaded
        with ``weights_only=True``).
    layer : str or None, default=None
        ``None`` gives the pooled penultimate embedding. Otherwise a module name
        (``"layer3"``, ``"blocks.5"``) or a torch.fx graph node name; its output
        is pooled according to ``pooling``.
    pooling : {"avg", "max", "avgmax", "cls"}, default="avg"
        How spatial maps ``(n, C, H, W)`` or token sequences ``(n, L, D)`` from
        ``layer`` become vectors; ``"avgmax"`` concatenates both, ``"cls"`` takes
        a transformer's class token.
    image_size : int or None, default=None
        Side of the square crop fed to the network; ``None`` uses the weights'
        own (224 for most). Smaller is faster.
    mean, std : tuple of 3 floats or None, default=None
        Override the weights' normalisation statistics.
    image_shape : tuple of int or None, default=None
        Shape ``(H, W)`` or ``(H, W, C)`` of one image when ``X`` is a 2-D array
        of flattened images (``-1`` allowed once).
    batch_size : int or "auto", default="auto"
        Images per forward pass; ``"auto"`` is 8 on the CPU and 64 on a GPU.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU.
    num_workers : int, default=0
        DataLoader worker processes decoding images; 0 decodes in this process.
    streams : int or "auto", default="auto"
        Batches in flight at once when ``num_workers=0``, each decoded and run
        by its own thread with an equal share of torch's intra-op threads, so
        that decoding one batch overlaps the forward pass of another. ``"auto"``
        is 2 on a CPU with at least 2 torch threads for the networks built from
        a model name (about 1.1-1.4x faster here), and 1 on GPUs and for your
        own ``nn.Module``, whose forward pass (or hooks) may keep state that two
        threads must not share: set 2 if yours does not. Embeddings do not
        depend on it. ``compile=True`` and ``num_workers > 0`` run one stream.
    precision : {"float32", "bfloat16", "float16"}, default="float32"
        ``"bfloat16"`` runs under autocast: often 1.5-2x faster on recent CPUs
        and GPUs, with embeddings within about 1% of float32. ``"float16"`` is
        for CUDA only.
    compile : bool, default=False
        Compile the network with ``torch.compile`` at the first transform
        (which then takes tens of seconds) and run one stream. On a 2-core CPU
        the default two eager streams were faster; see the user guide.
    memory : None, str, path-like or joblib.Memory, default=None
        Directory of an on-disk embedding cache shared across processes and
        sessions (needed for the cache to help with ``n_jobs > 1``).
    cache : bool, default=True
        Reuse embeddings computed earlier in this process (and in ``memory``).
    random_state : int, RandomState instance or None, default=None
        Seeds random initialisation when ``weights=None``.
    progress : bool or "auto", default="auto"
        Show a progress bar; ``"auto"`` shows one on terminals for transforms
        that take more than two seconds.

    Attributes
    ----------
    backbone_ : torch.nn.Module
        The network that computes the features (head removed), in eval mode.
    preprocessing_ : sktransfer.backbones.Preprocessing
        The resize, crop and normalisation applied.
    n_features_out_ : int
        Width of the embeddings.
    n_features_in_ : int
        Number of columns of 2-D input (only set for flattened-image input).
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names of a 2-D DataFrame input (only when it has string names).

    See Also
    --------
    sktransfer.list_backbones : the supported model names.
    sktransfer.cache : how the embedding cache is keyed and invalidated.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer import PretrainedFeatureExtractor
    >>> images = np.random.RandomState(0).randint(0, 255, (4, 32, 32, 3), np.uint8)
    >>> extractor = PretrainedFeatureExtractor(
    ...     "resnet18", weights=None, image_size=32, random_state=0, progress=False
    ... )
    >>> extractor.fit_transform(images).shape
    (4, 512)
    """

    _parameter_constraints: dict = {
        **IMAGE_ESTIMATOR_CONSTRAINTS,
        "layer": [str, None],
        "pooling": [StrOptions(set(POOLINGS))],
        "batch_size": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "streams": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "compile": ["boolean"],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
        "cache": ["boolean"],
    }

    def __init__(
        self,
        model="resnet18",
        *,
        weights="DEFAULT",
        layer=None,
        pooling="avg",
        image_size=None,
        mean=None,
        std=None,
        image_shape=None,
        batch_size="auto",
        device="auto",
        num_workers=0,
        streams="auto",
        precision="float32",
        compile=False,
        memory=None,
        cache=True,
        random_state=None,
        progress="auto",
    ):
        self.model = model
        self.weights = weights
        self.layer = layer
        self.pooling = pooling
        self.image_size = image_size
        self.mean = mean
        self.std = std
        self.image_shape = image_shape
        self.batch_size = batch_size
        self.device = device
        self.num_workers = num_workers
        self.streams = streams
        self.precision = precision
        self.compile = compile
        self.memory = memory
        self.cache = cache
        self.random_state = random_state
        self.progress = progress

    # ------------------------------------------------------------------ input
    def _check_input(self, X, *, reset: bool):
        return validate_images(self, X, reset=reset)

    # -------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Build the network and check ``X``; no training happens.

        Parameters
        ----------
        X : images
            See :mod:`sktransfer.images` for the accepted forms.
        y : None
            Ignored.

        Returns
        -------
        self : PretrainedFeatureExtractor
        """
        self._check_input(X, reset=True)
        return self._use_backbone(*set_up_backbone(self))

    def _use_backbone(self, backbone, preprocessing, device: torch.device):
        """Set the fitted state from a built backbone (fit, and FineTunedClassifier).

        The backbone's trunk must stay frozen while this extractor is in use: the
        cache digest identifies it by the weights it was loaded with.
        """
        self.preprocessing_ = preprocessing
        net = _tap(backbone.trunk, self.layer, backbone.source)
        if device.type != "cpu":
            net = copy.deepcopy(net).to(device)
        self.backbone_ = net
        self.backbone_name_ = backbone.name
        # Networks built from a model name are known to run safely from two
        # threads at once; a user's module may keep state in its forward pass.
        self._thread_safe = backbone.source != "module"
        self._digest = hashlib.sha256(
            repr(
                (
                    backbone.source,
                    backbone.name,
                    backbone.weights_id,
                    self.layer,
                    self.pooling,
                    self.preprocessing_,
                    self.precision,
                )
            ).encode()
        ).hexdigest()[:32]
        self.n_features_out_ = self._output_width(backbone, net, device)
        self._network(device)  # build the inference copy now, not in transform
        return self

    def _output_width(self, backbone, net: nn.Module, device: torch.device) -> int:
        """The embedding width: from the registry, or one dry run per configuration."""
        if self.layer is None and backbone.n_features is not None:
            return backbone.n_features
        if self._digest not in _WIDTHS:
            size = self.preprocessing_.image_size
            with torch.inference_mode():
                probe = torch.zeros(1, 3, size, size, device=device)
                _WIDTHS[self._digest] = int(_pool(net(probe), self.pooling).shape[1])
        return _WIDTHS[self._digest]

    # -------------------------------------------------------------- transform
    def transform(self, X):
        """Embed images.

        Parameters
        ----------
        X : images
            See :mod:`sktransfer.images` for the accepted forms.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features_out_), dtype float32
        """
        check_is_fitted(self)
        images = self._check_input(X, reset=False)
        n = len(images)
        if not self.cache:
            return self._embed(images)
        store = EmbeddingCache(self._digest, self.memory)
        keys = [images.key(i) for i in range(n)]
        found = store.get(keys)
        out = np.empty((n, self.n_features_out_), dtype=np.float32)
        for i, row in found.items():
            out[i] = row
        missing = np.array([i for i in range(n) if i not in found], dtype=int)
        if missing.size:

            def keep(start, rows):  # store batch by batch: an interrupted run keeps
                store.put([keys[i] for i in missing[start : start + len(rows)]], rows)

            out[missing] = self._embed(images[missing], on_batch=keep)
        return out

    def _network(self, device: torch.device) -> nn.Module:
        net = self.backbone_
        if module_device(net) != device:
            net = self.backbone_ = net.to(device)
        # Inference copy with BatchNorm folded into convolutions, built once per
        # network (never pickled); backbone_ itself is left as loaded.
        folded = getattr(self, "_folded", None)
        if folded is None or folded[0] is not net or module_device(folded[1]) != device:
            folded = self._folded = (net, _inference_copy(net))
            self.__dict__.pop("_compiled", None)
        net = folded[1]
        if self.compile:
            compiled = getattr(self, "_compiled", None)
            if compiled is None:
                compiled = self._compiled = torch.compile(net, dynamic=False)
            return compiled
        return net

    def _embed(self, images, on_batch=None) -> np.ndarray:
        device = resolve_device(self.device)
        net = self._network(device)
        batch_size = resolve_batch_size(self.batch_size, device)
        # Compiled graphs stay in one thread (and one static batch shape).
        streams = (
            1
            if self.compile
            else resolve_streams(
                self.streams, device, getattr(self, "_thread_safe", False)
            )
        )

        def embed(batch):  # runs in a stream's thread: set its own modes
            n = batch.shape[0]
            x = normalize_batch(
                batch.to(device, non_blocking=True), self.preprocessing_
            )
            if self.compile and n < batch_size:  # keep shapes static
                x = torch.cat([x, x.new_zeros((batch_size - n, *x.shape[1:]))])
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode(), autocast(device, self.precision):
                features = _pool(net(x), self.pooling)
            return features[:n].float().cpu().numpy()

        results = map_batches(
            embed,
            ImageDataset(images, self.preprocessing_),
            batch_size,
            num_workers=self.num_workers,
            streams=streams,
            pin_memory=device.type == "cuda",
        )
        out = np.empty((len(images), self.n_features_out_), dtype=np.float32)
        bar = tqdm(
            total=len(images),
            desc=f"Embedding with {self.backbone_name_}",
            unit="img",
            disable=(not self.progress) or (None if self.progress == "auto" else False),
            delay=2.0 if self.progress == "auto" else 0.0,
            leave=False,
        )
        start = 0
        with bar:
            for rows in results:
                n = rows.shape[0]
                out[start : start + n] = rows
                if on_batch is not None:
                    on_batch(start, out[start : start + n])
                start += n
                bar.update(n)
        return out

    # ----------------------------------------------------------------- output
    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: ``"<model>_<i>"``.

        Parameters
        ----------
        input_features : None
            Ignored; present for API consistency.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self, "n_features_out_")
        prefix = self.backbone_name_.replace(TIMM_PREFIX, "").replace(".", "_").lower()
        return np.asarray(
            [f"{prefix}_{i}" for i in range(self.n_features_out_)], dtype=object
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = self.image_shape is not None
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    # ------------------------------------------------------------ persistence
    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_compiled", None)  # compiled graphs do not pickle; rebuilt lazily
        state.pop("_folded", None)  # the inference copy is rebuilt from backbone_
        net = state.get("backbone_")
        if net is not None and module_device(net).type != "cpu":
            # Files hold CPU tensors, so they load on machines without a GPU.
            state["backbone_"] = module_to_cpu(net)
        return state
