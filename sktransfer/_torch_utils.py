"""Small torch helpers shared by the estimators: devices, precision, batching."""

from __future__ import annotations

import contextlib
import io

import torch
from torch import nn

__all__ = [
    "PRECISIONS",
    "autocast",
    "module_device",
    "module_to_cpu",
    "resolve_batch_size",
    "resolve_device",
]

PRECISIONS = ("float32", "bfloat16", "float16")


def resolve_device(device) -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... into a device.

    ``"auto"`` picks CUDA when available, then Apple's MPS, then the CPU. An
    explicit accelerator that is not available raises, with the fix.
    """
    if device == "auto" or device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device; use 'auto', 'cpu', "
            "'cuda' or 'cuda:<index>'."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this "
            "machine. Use device='auto' (or set_params(device='cpu')) to run on "
            "the CPU."
        )
    return resolved


def autocast(device: torch.device, precision: str):
    """The autocast context for ``precision`` on ``device`` (a no-op for float32)."""
    if precision == "float32":
        return contextlib.nullcontext()
    if precision == "float16" and device.type == "cpu":
        raise ValueError(
            "precision='float16' is only supported on CUDA; on the CPU use "
            "precision='bfloat16'."
        )
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def resolve_batch_size(batch_size, device: torch.device) -> int:
    """Batch size: ``"auto"`` is 8 on the CPU (larger is slower there), 64 on GPUs."""
    if batch_size == "auto":
        return 8 if device.type == "cpu" else 64
    return int(batch_size)


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter (the CPU for parameter-free ones)."""
    return next(module.parameters(), torch.empty(0)).device


def module_to_cpu(module: nn.Module, map_location="cpu") -> nn.Module:
    """Copy a module onto the CPU through ``torch.save`` / ``torch.load``.

    ``map_location`` remaps every storage while loading, so a module trained on
    a GPU becomes a CPU module without ever being deep-copied on the GPU, and
    the pickle written afterwards loads on machines without CUDA. The bytes
    read back are the ones just written here, never a user's file.
    """
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    return torch.load(buffer, map_location=map_location, weights_only=False)
