"""Small torch helpers shared by the estimators: devices, precision, batching."""

from __future__ import annotations

import contextlib
import copy
import io
import queue
import threading

import torch
from threadpoolctl import threadpool_limits
from torch import nn

__all__ = [
    "PRECISIONS",
    "autocast",
    "fold_batch_norms",
    "map_streams",
    "module_device",
    "module_to_cpu",
    "resolve_batch_size",
    "resolve_device",
    "resolve_streams",
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


def resolve_streams(streams, device: torch.device, thread_safe=True) -> int:
    """Number of concurrent inference streams (see :func:`map_streams`).

    ``"auto"`` is 2 on a CPU running torch with at least 2 intra-op threads,
    for a network that may run from two threads at once (``thread_safe``);
    else 1 (a GPU already overlaps with the host: it queues work
    asynchronously). A number is used as given.
    """
    if streams != "auto":
        return int(streams)
    cpu_pair = device.type == "cpu" and torch.get_num_threads() >= 2
    return 2 if cpu_pair and thread_safe else 1


def map_streams(fn, items, streams: int):
    """Yield ``fn(item)`` for each of ``items``, in order, from ``streams`` threads.

    Stream ``k`` computes items ``k, k + streams, ...`` with
    ``torch.get_num_threads() // streams`` intra-op threads (the calling
    thread's count, shared out, so the process never runs more threads than
    torch was set to). Work that is serial or memory-bound in one stream --
    decoding images, small layers -- then overlaps with another stream's
    compute instead of idling the other cores; each result is the same as in
    one stream. Grad mode and autocast are per thread: ``fn`` sets them.

    An exception in a stream is raised here, at the position of the item that
    raised it; stopping early (an error, ``KeyboardInterrupt``, closing the
    generator) lets each stream finish its current item, then joins it. One
    stream, or a single item, runs in the calling thread.
    """
    items = list(items)
    streams = max(1, min(int(streams), len(items)))
    if streams == 1:
        for item in items:
            yield fn(item)
        return
    threads_each = max(1, torch.get_num_threads() // streams)
    stop = threading.Event()
    # Two results in flight per stream: memory stays bounded if this loop lags.
    results = [queue.Queue(maxsize=2) for _ in range(streams)]

    def put(k, entry):
        while not stop.is_set():
            try:
                results[k].put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work(k):
        try:
            # torch sets a new thread's OpenMP thread count at its first
            # parallel op; trigger that first, or it would undo the limit.
            torch.get_num_threads()
            with threadpool_limits(threads_each, user_api="openmp"):
                for item in items[k::streams]:
                    if stop.is_set() or not put(k, (True, fn(item))):
                        return
        except BaseException as exc:  # re-raised in the caller's thread
            put(k, (False, exc))

    threads = [
        threading.Thread(target=work, args=(k,), name=f"sktransfer-stream-{k}")
        for k in range(streams)
    ]
    for thread in threads:
        thread.daemon = True
        thread.start()
    try:
        for position in range(len(items)):
            ok, value = results[position % streams].get()
            if not ok:
                raise value
            yield value
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def fold_batch_norms(module: nn.Module, keep=()) -> nn.Module:
    """An inference copy of ``module`` with BatchNorm folded into convolutions.

    Every ``BatchNorm2d`` that only normalises the output of a ``Conv2d`` (found
    by tracing ``module`` with :mod:`torch.fx`) is merged into that convolution's
    weight and bias and replaced by ``nn.Identity``, which removes one pass over
    every activation map (about 10-15% of resnet18's CPU time). Outputs agree
    with ``module`` in evaluation mode up to float rounding (relative error
    about 1e-7), and module names stay valid. Convolutions named in ``keep``
    (a tapped layer, whose own output must stay un-normalised) are left alone.
    ``module`` itself is never modified; it is returned unchanged when nothing
    can be folded or it cannot be traced.
    """
    from collections import Counter

    import torch.fx
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    try:
        graph = torch.fx.symbolic_trace(module).graph
    except Exception:  # not every model traces; folding is only an optimisation
        return module
    named = dict(module.named_modules())
    calls = Counter(n.target for n in graph.nodes if n.op == "call_module")
    pairs = []
    for node in graph.nodes:
        if (
            node.op != "call_module"
            or type(named.get(node.target)) is not nn.BatchNorm2d
        ):
            continue
        source = node.args[0] if len(node.args) == 1 and not node.kwargs else None
        if (
            isinstance(source, torch.fx.Node)
            and source.op == "call_module"
            and type(named.get(source.target)) is nn.Conv2d
            and source.target not in keep
            and len(source.users) == 1
            and calls[source.target] == calls[node.target] == 1
            and named[node.target].running_mean is not None
        ):
            pairs.append((source.target, node.target))
    if not pairs:
        return module
    folded = copy.deepcopy(module).eval()
    for conv_name, bn_name in pairs:
        conv, bn = folded.get_submodule(conv_name), folded.get_submodule(bn_name)
        _replace(folded, conv_name, fuse_conv_bn_eval(conv, bn))
        _replace(folded, bn_name, nn.Identity())
    return folded


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, attr, new)


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


class seeded:
    """Run a block under torch's CPU RNG seeded from ``random_state``.

    The global generator is forked and restored, so user code sees no change.
    """

    def __init__(self, random_state):
        from sklearn.utils import check_random_state

        self.seed = int(check_random_state(random_state).randint(2**31 - 1))
        self._fork = torch.random.fork_rng(devices=[])

    def __enter__(self):
        self._fork.__enter__()
        torch.manual_seed(self.seed)
        return self.seed

    def __exit__(self, *exc):
        return self._fork.__exit__(*exc)
