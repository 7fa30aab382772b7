"""``PretrainedFeatureExtractor``: images in, embeddings out."""

from __future__ import annotations

import os
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._params import IMAGE_ESTIMATOR_CONSTRAINTS, set_up_backbone
from ._portable import (
    PortableState,
    rebuild_backbone,
    tensors_from_bytes,
    tensors_to_bytes,
)
from ._torch_utils import resolve_device
from .backbones import TIMM_PREFIX
from .embedding import (
    POOLINGS,
    embed,
    embedding_digest,
    embedding_network,
    inference_network,
    output_width,
)
from .images import validate_images

__all__ = ["PretrainedFeatureExtractor"]


class PretrainedFeatureExtractor(TransformerMixin, PortableState, BaseEstimator):
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
        ``"auto"`` uses CUDA when available, then Apple's MPS, else the CPU.
    num_workers : int, default=0
        DataLoader worker processes decoding images; 0 decodes in this process.
    streams : int or "auto", default="auto"
        Batches in flight at once when ``num_workers=0``, each decoded and run
        by its own thread with an equal share of torch's intra-op threads, so
        that decoding one batch overlaps the forward pass of another. ``"auto"``
        is 2 on a CPU with at least 2 torch threads for the networks built from
        a model name (about 1.1-1.4x faster here), and 1 on GPUs and for your
        own ``nn.Module``, whose forward pass (or hooks) may keep state that two
        threads must not share: set 2 if yours does not. Embeddings agree
        with one stream's to float rounding only (up to about 1e-5 for
        EfficientNet-Lite0 at 32 px): each stream's kernels run on fewer
        threads and may sum in another order, and with 2 streams the result
        can also depend on earlier ``torch.set_num_threads`` calls in the
        process. Use ``streams=1`` for embeddings reproducible bit for bit
        across processes. ``compile=True`` and ``num_workers > 0`` run one
        stream.
    precision : {"float32", "bfloat16", "float16"}, default="float32"
        ``"bfloat16"`` runs under autocast: about 2.4x faster than float32
        for resnet18 on a 2-core CPU with bf16 units (see the GPU and speed
        guide), with embeddings within about 1% of float32. ``"float16"`` is
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
    backbone_ : sktransfer.embedding.FrozenNetwork
        The network that computes the features (head removed, tapped at
        ``layer``): a read-only view of a trunk that every extractor of the
        same model and weights shares. It stays in eval mode with frozen
        parameters whatever it is asked (``backbone_.train()`` and
        ``torch.onnx.export(backbone_, ...)`` change nothing), and lives on the
        CPU: ``transform`` runs a BatchNorm-folded copy on ``device``. Copy the
        trunk to train it: ``copy.deepcopy(extractor.backbone_.trunk)``.
    backbone_name_ : str
        The model's name (``"resnet18"``, ``"timm:<name>"``, or the class name
        of your module).
    preprocessing_ : sktransfer.images.Preprocessing
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
        return self._fit()

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Build the network and embed ``X``, checking ``X`` once.

        Parameters
        ----------
        X : images
            See :mod:`sktransfer.images` for the accepted forms.
        y : None
            Ignored.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features_out_), dtype float32
        """
        images = self._check_input(X, reset=True)
        return self._fit()._transform(images)

    def _fit(self):
        backbone, preprocessing, device = set_up_backbone(self)
        self.preprocessing_ = preprocessing
        self.backbone_ = embedding_network(backbone.trunk, self.layer, backbone.source)
        self.backbone_name_ = backbone.name
        # Networks built from a model name are known to run safely from two
        # threads at once; a user's module may keep state in its forward pass.
        self._thread_safe = backbone.source != "module"
        self._digest = embedding_digest(
            backbone, self.layer, self.pooling, preprocessing, self.precision
        )
        if self.layer is None and backbone.n_features is not None:
            self.n_features_out_ = backbone.n_features
        else:
            self.n_features_out_ = output_width(
                self.backbone_, preprocessing, self.pooling, self._digest
            )
        inference_network(self.backbone_, device)  # build it now, not in transform
        return self

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
        return self._transform(self._check_input(X, reset=False))

    def _transform(self, images):
        return embed(
            self.backbone_,
            images,
            preprocessing=self.preprocessing_,
            pooling=self.pooling,
            device=resolve_device(self.device),
            precision=self.precision,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            streams=self.streams,
            thread_safe=getattr(self, "_thread_safe", False),
            compile=self.compile,
            progress=self.progress,
            desc=f"Embedding with {self.backbone_name_}",
            cache_digest=self._digest if self.cache else None,
            memory=self.memory,
            n_features=self.n_features_out_,
        )

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

    # ------------------------------------------------------ portable state
    # (see sktransfer._portable: what skops stores; pickling is unchanged)
    def _to_portable(self, state, record):
        network = state.pop("backbone_", None)
        if network is not None:
            record["trunk"] = tensors_to_bytes(network.trunk.state_dict())

    def _from_portable(self, record):
        if "trunk" in record:
            backbone = rebuild_backbone(self.model, tensors_from_bytes(record["trunk"]))
            self.backbone_ = embedding_network(
                backbone.trunk, self.layer, backbone.source
            )
