"""Small torch helpers shared by the estimators: devices, precision, batching."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["autocast", "resolve_batch_size", "resolve_device", "PRECISIONS"]

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
