"""The portable state of the estimators that hold a network: what skops stores.

Pickle and skops read an object's state through different doors. Pickle
(joblib, ``copy``, cloudpickle, dask) calls ``__reduce_ex__``; skops calls
``__getstate__``, then rebuilds the object with ``cls.__new__`` and
``__setstate__``. :class:`PortableState` uses that:

* ``__reduce_ex__`` returns the full state, exactly what pickling gave before
  (torch modules included), so joblib files are unchanged;
* ``__getstate__`` returns a *portable* state of plain values -- the
  estimator's parameters and fitted attributes, with the network replaced by
  the safetensors bytes of its tensors (:func:`tensors_to_bytes`) -- which
  skops stores without any torch type;
* ``__setstate__`` takes either; from a portable state it rebuilds the network
  from the estimator's parameters: the architecture by name with random
  initialisation (:func:`rebuild_backbone`, on the CPU, no download), then the
  saved tensors, loaded strictly.

Only networks built from a model name can be rebuilt; a user's ``nn.Module``
is code, which a portable state cannot carry (:func:`check_portable`).
"""

from __future__ import annotations

import copyreg
import os

import torch

from .backbones import load_backbone

__all__ = [
    "PORTABLE_KEY",
    "PortableState",
    "check_portable",
    "optimizer_from_name",
    "rebuild_backbone",
    "tensors_from_bytes",
    "tensors_to_bytes",
]

# The key of the portable record in a portable state, and its format version.
PORTABLE_KEY = "_sktransfer_portable"
PORTABLE_FORMAT = 1


class PortableState:
    """Mixin: pickle the full state as before; skops gets a portable state.

    A class using it implements ``_to_portable(state, record)``, which
    replaces the network attributes of ``state`` (a copy) by plain values in
    ``record``, and ``_from_portable(state, record)``, which rebuilds them.
    ``_pickled_state()`` is the state pickle stores.
    """

    def _pickled_state(self) -> dict:
        return super().__getstate__()

    def __reduce_ex__(self, protocol):
        # What object.__reduce_ex__ gives, with the pickled state explicit.
        return copyreg.__newobj__, (type(self),), self._pickled_state()

    def __reduce__(self):
        # skops calls __reduce__ first; this form sends it on to __getstate__.
        return self.__reduce_ex__(2)

    def __getstate__(self):
        state = dict(self._pickled_state())
        check_portable(self, state)
        record = {"format": PORTABLE_FORMAT}
        optimizer = state.get("optimizer")
        if isinstance(optimizer, type):
            state["optimizer"] = None
            record["optimizer"] = optimizer_name(optimizer)
        # Paths (weights=, memory=) and devices are saved as text.
        for key, value in state.items():
            if isinstance(value, os.PathLike):
                state[key] = os.fspath(value)
            elif isinstance(value, torch.device):
                state[key] = str(value)
        self._to_portable(state, record)
        state[PORTABLE_KEY] = record
        return state

    def __setstate__(self, state):
        record = state.pop(PORTABLE_KEY, None) if isinstance(state, dict) else None
        if record is not None:
            if record.get("format") != PORTABLE_FORMAT:
                raise ValueError(
                    f"This {type(self).__name__} was saved in portable format "
                    f"{record.get('format')!r}; this version of sktransfer reads "
                    f"format {PORTABLE_FORMAT}. Load it with the sktransfer "
                    "version that saved it."
                )
            if "optimizer" in record:
                state["optimizer"] = optimizer_from_name(record["optimizer"])
        super().__setstate__(state)
        if record is not None:
            self._from_portable(record)


def check_portable(estimator, state: dict) -> None:
    """Raise when ``estimator`` holds code that a portable state cannot carry."""
    name = type(estimator).__name__
    model = state.get("model")
    if not isinstance(model, str):
        raise TypeError(
            f"This {name} uses your own torch.nn.Module "
            f"({type(model).__name__}), which cannot be rebuilt from parameters: "
            "a portable (skops) file holds tensors and plain values, never code. "
            "Save it with joblib.dump (and load only files you trust), or build "
            "it from a model name such as 'resnet18' or 'timm:<name>'."
        )
    for param in ("callbacks", "augment"):
        value = state.get(param)
        if value is not None and not isinstance(value, bool):
            raise TypeError(
                f"This {name} has {param}={value!r}: objects of your own code "
                "cannot be saved in a portable (skops) file. Save it with "
                f"joblib.dump, or set {param} to "
                f"{'None' if param == 'callbacks' else 'True or False'}."
            )


def optimizer_name(optimizer: type) -> str:
    """The name of a ``torch.optim`` optimizer class, or raise."""
    name = optimizer.__name__
    if getattr(torch.optim, name, None) is not optimizer:
        raise TypeError(
            f"optimizer={optimizer.__module__}.{optimizer.__qualname__} is not a "
            "torch.optim optimizer: a portable (skops) file only names torch.optim "
            "classes (AdamW, SGD, ...). Save this model with joblib.dump."
        )
    return name


def optimizer_from_name(name: str) -> type:
    """The ``torch.optim`` class named ``name``: nothing else is ever resolved."""
    optimizer = getattr(torch.optim, str(name), None)
    is_class = isinstance(optimizer, type)
    if not (is_class and issubclass(optimizer, torch.optim.Optimizer)):
        raise ValueError(
            f"The file names optimizer {name!r}, which is not a torch.optim "
            "optimizer class; the file is damaged or was not written by sktransfer."
        )
    return optimizer


def tensors_to_bytes(state_dict: dict, metadata: dict | None = None) -> bytes:
    """The safetensors bytes of a state_dict (each tensor copied to the CPU)."""
    from safetensors.torch import save

    # Own contiguous copies: safetensors refuses tensors that share storage.
    tensors = {
        key: value.detach().to("cpu", copy=True).contiguous()
        for key, value in state_dict.items()
    }
    return save(tensors, metadata=metadata)


def tensors_from_bytes(data: bytes) -> dict:
    """The state_dict of safetensors bytes (parsed without executing anything)."""
    from safetensors.torch import load

    try:
        return load(bytes(data))
    except Exception as exc:  # SafetensorError
        raise ValueError(
            f"The network's tensors in this file cannot be read as safetensors "
            f"({type(exc).__name__}: {exc}); the file is damaged."
        ) from exc


def rebuild_backbone(model: str, tensors: dict):
    """The backbone ``model`` (by name) with ``tensors``, frozen, on the CPU.

    The architecture is built with random initialisation -- nothing is
    downloaded -- and the tensors are loaded strictly (every key, every
    shape). The trunk is frozen, in eval mode and channels-last, as the
    estimators' shared trunks are (:func:`sktransfer.backbones.cached_backbone`),
    so that it computes exactly what the saved one did.
    """
    backbone = load_backbone(model, None, random_state=0)
    try:
        backbone.trunk.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise ValueError(
            f"The saved tensors do not fit the architecture {model!r}: {exc}. The "
            "file is damaged, or was saved with other versions of torchvision "
            "or timm."
        ) from exc
    backbone.trunk.eval().requires_grad_(False)
    backbone.trunk.to(memory_format=torch.channels_last)
    return backbone
