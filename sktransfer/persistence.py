"""Saving and sharing fitted models: skops, safetensors, ONNX, model cards.

Four ways out of a Python session, from the most to the least general:

* **joblib** (pickle): everything, including your own ``nn.Module`` and
  callbacks; loading a file *executes code from it*. Unchanged.
* **skops** (:mod:`skops.io`): every fitted sktransfer estimator built from a
  model name, and pipelines of them with scikit-learn steps. A file holds plain
  values, numpy arrays and each network's tensors as safetensors bytes; on load
  the network is rebuilt from the estimator's parameters (the architecture by
  name, randomly initialised, on the CPU, nothing downloaded) and the saved
  tensors are loaded into it::

      import skops.io as sio
      from sktransfer.persistence import trusted_types

      sio.dump(model, "model.skops")
      model = sio.load("model.skops", trusted=trusted_types())

  :func:`trusted_types` lists the only types beyond skops's defaults that such
  files contain; check with ``sio.get_untrusted_types(file=...)``.
* **safetensors** (:func:`save_weights`): the trained network alone, for other
  tools, or as ``weights=`` of a new estimator.
* **ONNX** (:func:`export_onnx`): the network with its layer tap, pooling and
  normalisation (extractor) or head and output activation (fine-tuned
  estimators), or a whole extractor + scikit-learn pipeline, for serving with
  onnxruntime. The resize and centre crop stay the caller's part.

:func:`model_card` describes a fitted model in markdown; ``sktransfer fit``
writes one next to the model file.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import warnings
from importlib import metadata as importlib_metadata

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from torch import nn

from . import __version__
from ._files import atomic_write
from ._portable import tensors_to_bytes
from .embedding import pool
from .feature_extraction import PretrainedFeatureExtractor
from .fine_tuning._base import BaseFineTuner
from .images import Preprocessing, normalize_batch

__all__ = [
    "WEIGHTS_LAYOUT_KEY",
    "export_onnx",
    "model_card",
    "save_weights",
    "trusted_types",
    "weights_digest",
]

# The one metadata entry of a safetensors file written by save_weights: a JSON
# object with sorted keys (one entry, so that the file is byte-for-byte
# reproducible; safetensors writes several entries in no fixed order).
WEIGHTS_LAYOUT_KEY = "sktransfer"
# The ONNX opset of exported graphs (also the scikit-learn part's, so that the
# two merge into one graph).
ONNX_OPSET = 18
# Packages whose versions a model card records.
_CARD_PACKAGES = (
    "sktransfer",
    "torch",
    "torchvision",
    "timm",
    "scikit-learn",
    "skorch",
    "numpy",
    "skops",
)


# ---------------------------------------------------------------- skops
def trusted_types() -> list[str]:
    """The types to trust when loading a skops file of sktransfer models.

    sktransfer's estimators (extractor, fine-tuned estimators, weighters,
    importance-weighted meta-estimators) and its
    :class:`~sktransfer.images.Preprocessing`: the only types beyond skops's
    defaults (built-in containers, numpy, scikit-learn) that
    ``skops.io.dump`` writes for them. No torch or skorch type and no
    function is among them: networks travel as safetensors bytes and are
    rebuilt by sktransfer's code.

    Returns
    -------
    types : list of str
        Sorted ``"module.Class"`` names, as
        ``skops.io.get_untrusted_types`` reports them.

    Examples
    --------
    >>> from sktransfer.persistence import trusted_types
    >>> "sktransfer.images.Preprocessing" in trusted_types()
    True
    """
    from . import adaptation, fine_tuning

    exported = [getattr(adaptation, n) for n in adaptation.__all__]
    exported += [getattr(fine_tuning, n) for n in fine_tuning.__all__]
    estimators = [
        cls
        for cls in exported
        if isinstance(cls, type) and issubclass(cls, BaseEstimator)
    ]
    classes = [PretrainedFeatureExtractor, Preprocessing, *estimators]
    return sorted({f"{cls.__module__}.{cls.__qualname__}" for cls in classes})


# ----------------------------------------------------------- safetensors
def _network_step(estimator):
    """The step of ``estimator`` (a Pipeline or not) holding a network."""
    steps = [s for _, s in estimator.steps] if isinstance(estimator, Pipeline) else []
    for step in steps or [estimator]:
        if isinstance(step, (PretrainedFeatureExtractor, BaseFineTuner)):
            check_is_fitted(step)
            return step
    raise TypeError(
        f"{type(estimator).__name__} holds no sktransfer network: pass a fitted "
        "PretrainedFeatureExtractor, a fine-tuned estimator such as "
        "FineTunedClassifier, or a Pipeline containing one."
    )


def _weights_and_layout(step):
    if isinstance(step, PretrainedFeatureExtractor):
        state, layout = step.backbone_.trunk.state_dict(), "backbone"
    else:
        state, layout = step.module_.state_dict(), "fine-tuned"
    info = {
        "layout": layout,
        "model": step.model if isinstance(step.model, str) else step.backbone_name_,
        "sktransfer_version": __version__,
    }
    if layout == "backbone":
        info.update(layer=step.layer, pooling=step.pooling)
    if hasattr(step, "classes_"):
        info["classes"] = [str(c) for c in step.classes_]
    return state, {WEIGHTS_LAYOUT_KEY: json.dumps(info, sort_keys=True)}


def _weights_bytes(estimator) -> bytes:
    state, meta = _weights_and_layout(_network_step(estimator))
    return tensors_to_bytes(state, metadata=meta)


def save_weights(estimator, path) -> str:
    """Write the fitted network's tensors as a safetensors file.

    Key layout:

    * extractor (``"backbone"`` layout): the headless backbone's state_dict,
      with the architecture's own names (``conv1.weight``,
      ``layer4.1.bn2.running_var``, ... for resnet18): the file is a valid
      ``weights=`` of a new extractor or fine-tuning estimator;
    * fine-tuned estimators (``"fine-tuned"`` layout):
      ``estimator.module_.state_dict()``, i.e. ``trunk.<backbone key>`` and
      ``head.1.weight``, ``head.1.bias`` (the linear head). As ``weights=``,
      its ``trunk.*`` tensors initialise the backbone.

    The file's metadata holds one entry, ``"sktransfer"``: a JSON object with
    the layout, the model name, the sktransfer version, the extractor's
    ``layer`` and ``pooling`` and a classifier's ``classes`` (as strings).
    The file is byte-for-byte reproducible; see :func:`weights_digest`.

    Parameters
    ----------
    estimator : estimator or Pipeline
        A fitted extractor or fine-tuned estimator, or a Pipeline with one
        (its first).
    path : str or path-like
        The file to write (atomically).

    Returns
    -------
    digest : str
        The SHA-256 of the file written (:func:`weights_digest`).
    """
    data = _weights_bytes(estimator)
    with atomic_write(path) as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def weights_digest(estimator) -> str:
    """SHA-256 of the safetensors file :func:`save_weights` writes.

    Parameters
    ----------
    estimator : estimator or Pipeline
        As for :func:`save_weights`.

    Returns
    -------
    digest : str
        64 hexadecimal digits, as ``sha256sum`` prints for the file.
    """
    return hashlib.sha256(_weights_bytes(estimator)).hexdigest()


# ------------------------------------------------------------------ ONNX
class _Features(nn.Module):
    """Normalise, run the network to its layer, pool: what ``transform`` does."""

    def __init__(self, network, preprocessing, pooling):
        super().__init__()
        self.network = network
        self.preprocessing = preprocessing
        self.pooling = pooling

    def forward(self, images):
        x = normalize_batch(images, self.preprocessing)
        return pool(self.network(x), self.pooling)


class _Outputs(nn.Module):
    """A fine-tuned network and its output activation: ``predict_proba``."""

    def __init__(self, module, nonlinearity):
        super().__init__()
        self.module = module
        self.nonlinearity = nonlinearity

    def forward(self, images):
        return self.nonlinearity(self.module(images))


def _sliced_network(extractor) -> nn.Module:
    """A copy of the extractor's network that ends at its layer, without hooks.

    A module tap runs through a forward hook that stops the pass, which
    ``torch.export`` cannot trace; the copy is sliced at the layer with
    torch.fx instead. Working on a copy leaves the shared trunk untouched.
    """
    network = copy.deepcopy(extractor.backbone_)
    layer = network.layer
    if layer is None or network.graph_module is not None:
        return network.graph_module or network.trunk
    trunk = network.trunk
    if extractor.backbone_name_.startswith("timm:"):
        from timm.models import create_feature_extractor
    else:
        from torchvision.models.feature_extraction import create_feature_extractor
    try:
        sliced = create_feature_extractor(trunk, return_nodes={layer: "out"})
    except Exception as exc:  # torch.fx cannot trace every model
        raise ValueError(
            f"layer={layer!r} of this {extractor.backbone_name_} cannot be exported "
            f"to ONNX: torch.fx could not slice the network there ({exc}). Use a "
            "torch.fx graph node name as layer (see "
            "torchvision.models.feature_extraction.get_graph_node_names), or "
            "layer=None."
        ) from exc
    return _DictOutput(sliced.eval())


class _DictOutput(nn.Module):
    def __init__(self, graph_module):
        super().__init__()
        self.graph_module = graph_module

    def forward(self, x):
        return self.graph_module(x)["out"]


def _export_graph(module: nn.Module, image_size: int, output: str):
    """The ONNX model of ``module`` (images in, ``output`` out), dynamic batch."""
    import onnx

    module = module.eval()
    example = torch.zeros(2, 3, image_size, image_size)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's progress and notes
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            verbose=False,
            input_names=["images"],
            output_names=[output],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=ONNX_OPSET,
        )
    return onnx.load_from_string(program.model_proto.SerializeToString())


def _network_graph(step):
    """The ONNX model of a fitted extractor or fine-tuned estimator."""
    size = step.preprocessing_.image_size
    if isinstance(step, PretrainedFeatureExtractor):
        module = _Features(_sliced_network(step), step.preprocessing_, step.pooling)
        return _export_graph(module, size, "features")
    module = copy.deepcopy(step.module_).cpu().eval()
    return _export_graph(
        _Outputs(module, step.net_.predict_nonlinearity), size, "outputs"
    )


def _sklearn_graph(steps, n_features):
    """The ONNX model of scikit-learn steps taking ``features`` (skl2onnx)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    head = Pipeline(steps)
    options = (
        {id(steps[-1][1]): {"zipmap": False}}
        if hasattr(steps[-1][1], "predict_proba")
        else None
    )
    return convert_sklearn(
        head,
        initial_types=[("features", FloatTensorType([None, n_features]))],
        options=options,
        target_opset={"": ONNX_OPSET, "ai.onnx.ml": 3},
    )


def export_onnx(estimator, path):
    """Export a fitted model to ONNX, with a dynamic batch dimension.

    The graph's input ``images`` is a float32 batch ``(n, 3, S, S)`` of RGB
    pixel values in [0, 1] (uint8 values divided by 255), already resized
    and centre-cropped as ``preprocessing_`` says: ``S`` is
    ``preprocessing_.image_size``. That resize and crop is the caller's part;
    the normalisation by ``mean`` and ``std`` is in the graph. Outputs:

    * :class:`~sktransfer.PretrainedFeatureExtractor`: ``features``
      ``(n, n_features_out_)``, as ``transform`` gives (its layer and pooling
      included);
    * a fine-tuned estimator: ``outputs``, as ``predict_proba`` gives for a
      classifier (the head and the output activation included);
    * a :class:`~sklearn.pipeline.Pipeline` of an extractor followed by
      scikit-learn steps that skl2onnx converts: one merged graph whose
      outputs are the last step's (``label`` and ``probabilities`` for a
      classifier).

    The fitted estimator is not changed: a copy of its network is exported
    (the extractor's shared trunk keeps its modes and tensors).

    Parameters
    ----------
    estimator : estimator or Pipeline
        The fitted model.
    path : str or path-like
        The ``.onnx`` file to write (atomically).

    Returns
    -------
    model : onnx.ModelProto
        The model written.
    """
    steps = estimator.steps if isinstance(estimator, Pipeline) else None
    if steps is None:
        graph = _network_graph(_network_step(estimator))
    else:
        first = steps[0][1]
        if not isinstance(first, PretrainedFeatureExtractor) or len(steps) < 2:
            raise TypeError(
                "export_onnx exports a Pipeline whose first step is a "
                "PretrainedFeatureExtractor followed by scikit-learn steps; got "
                f"steps {[type(s).__name__ for _, s in steps]}. Export a fine-tuned "
                "estimator on its own."
            )
        check_is_fitted(first)
        import onnx.compose

        network = _network_graph(first)
        head = _sklearn_graph(steps[1:], first.n_features_out_)
        # skl2onnx writes an older IR version; a newer one reads it unchanged.
        head.ir_version = network.ir_version = max(head.ir_version, network.ir_version)
        # The head's inner names get a prefix (no clash with the network's);
        # its input and outputs keep theirs.
        head = onnx.compose.add_prefix(
            head, "head_", rename_inputs=False, rename_outputs=False
        )
        graph = onnx.compose.merge_models(
            network, head, io_map=[("features", "features")]
        )
    with atomic_write(path) as f:
        f.write(graph.SerializeToString())
    return graph


# ------------------------------------------------------------ model card
def _versions(model) -> dict:
    versions = {"sktransfer": __version__}
    for name in _CARD_PACKAGES[1:]:
        if name == "timm" and not str(model).startswith("timm:"):
            continue
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def _history_scores(step) -> dict:
    """The last epoch's validation scores of a fine-tuned estimator."""
    history = getattr(step, "history_", None)
    if not history:
        return {}
    last = history[-1]
    return {
        f"{key} (epoch {last['epoch']})": f"{last[key]:.4f}"
        for key in sorted(last)
        if key.startswith("valid_")
        and not key.endswith("_best")
        and isinstance(last[key], (int, float, np.floating))
    }


def model_card(estimator, *, title=None, n_train=None, scores=None, date=None) -> str:
    """A short markdown model card of a fitted model.

    It lists the estimator, the backbone and its weights, the SHA-256 of the
    trained network (:func:`weights_digest`), the preprocessing, the classes,
    the training set size, validation scores, package versions and the date.

    Parameters
    ----------
    estimator : estimator or Pipeline
        A fitted extractor or fine-tuned estimator, or a Pipeline with one.
    title : str or None, default=None
        The card's heading; ``None`` gives ``"Model card: <estimator>"``.
    n_train : int or None, default=None
        Number of training images (estimators do not record it).
    scores : dict of str to object or None, default=None
        Validation scores to list (e.g. held-out accuracy); a fine-tuned
        estimator's last-epoch validation scores are added.
    date : str or None, default=None
        The date to print; ``None`` is today's (UTC, ISO 8601).

    Returns
    -------
    card : str
        Markdown text.
    """
    step = _network_step(estimator)
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    kind = (
        " -> ".join(type(s).__name__ for _, s in estimator.steps)
        if isinstance(estimator, Pipeline)
        else type(estimator).__name__
    )
    pre = step.preprocessing_
    weights = step.weights if step.weights is None else str(step.weights)
    rows = [
        ("Estimator", kind),
        (
            "Backbone",
            step.backbone_name_ if hasattr(step, "backbone_name_") else str(step.model),
        ),
    ]
    if isinstance(step, PretrainedFeatureExtractor):
        layer = step.layer or "penultimate"
        rows.append(("Layer, pooling", f"{layer}, {step.pooling}"))
    rows += [
        ("Initial weights", repr(weights)),
        ("Trained weights SHA-256", f"`{weights_digest(estimator)}`"),
        (
            "Image size",
            f"{pre.image_size} (resize {pre.resize_size}, {pre.interpolation})",
        ),
        ("Normalisation", f"mean {pre.mean}, std {pre.std}"),
    ]
    classes = getattr(final, "classes_", None)
    if classes is not None:
        rows.append(("Classes", ", ".join(str(c) for c in classes)))
    rows.append(("Training images", "not recorded" if n_train is None else n_train))
    all_scores = {**(scores or {}), **_history_scores(step)}
    lines = [f"# {title or f'Model card: {kind}'}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "## Validation scores", ""]
    lines += [f"- {k}: {v}" for k, v in all_scores.items()] or ["- none recorded"]
    lines += ["", "## Package versions", ""]
    lines += [f"- {k} {v}" for k, v in _versions(step.model).items()]
    when = date or datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    lines += [
        "",
        f"Date: {when}",
        "",
        "Load a skops file with "
        "`skops.io.load(path, trusted=sktransfer.persistence.trusted_types())`; "
        "a joblib file executes code when loaded: load only files you trust.",
        "",
    ]
    return "\n".join(lines)
