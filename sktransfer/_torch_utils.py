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
    "FORWARD_LOCK",
    "PRECISIONS",
    "TorchRNG",
    "autocast",
    "fold_batch_norms",
    "map_streams",
    "module_device",
    "module_to_cpu",
    "preserved_rng",
    "resolve_batch_size",
    "resolve_device",
    "resolve_streams",
    "seeded",
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
        with FORWARD_LOCK.exclusive():  # tracing patches nn.Module.__call__
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


# ------------------------------------------------------------ shared-state locks
class _SharedExclusiveLock:
    """A readers-writer lock: many forward passes, or one graph trace.

    ``torch.fx`` patches ``nn.Module.__call__`` for the whole process while it
    traces a network, so a forward pass in another thread would run through the
    tracer. Forward passes hold this lock shared (any number at once); tracing
    holds it exclusively. Waiting tracers block new readers, so a stream of
    forward passes cannot starve them. The shared side is re-entrant per thread.
    """

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = None
        self._writers_waiting = 0
        self._local = threading.local()

    @contextlib.contextmanager
    def shared(self):
        depth = getattr(self._local, "depth", 0)
        if depth == 0 and self._writer != threading.get_ident():
            with self._cond:
                while self._writer is not None or self._writers_waiting:
                    self._cond.wait()
                self._readers += 1
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0 and self._writer != threading.get_ident():
                with self._cond:
                    self._readers -= 1
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self):
        me = threading.get_ident()
        if self._writer == me:  # re-entrant for the tracing thread
            yield
            return
        if getattr(self._local, "depth", 0):
            raise RuntimeError(
                "internal error: a graph trace was started inside a forward pass"
            )
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer is not None or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = me
        try:
            yield
        finally:
            with self._cond:
                self._writer = None
                self._cond.notify_all()


#: Held shared by every forward pass the package runs and exclusively while it
#: traces a network with torch.fx (BatchNorm folding, graph-node taps).
FORWARD_LOCK = _SharedExclusiveLock()

# torch's default CPU generator is one per process. Every block of the package
# that draws from it (random initialisation, training steps with dropout or
# stochastic depth) runs under this lock with its own generator state swapped
# in, so that threads fitting at once cannot interleave their draws.
_RNG_LOCK = threading.RLock()


class TorchRNG:
    """A private stream of torch's CPU random numbers, owned by one estimator.

    ``with rng:`` swaps this stream's state into torch's default CPU generator
    (under a process-wide lock) and swaps the caller's state back on exit, so
    the block's draws are reproducible from the seed, the caller's global RNG
    is left alone, and other threads using a ``TorchRNG`` cannot interleave
    their draws with it. Code outside the package that draws from torch's
    global generator in another thread at the same time is not locked out.

    Parameters
    ----------
    random_state : int, RandomState instance or None
        Seeds the stream (``None``: a fresh random seed).
    """

    def __init__(self, random_state=None):
        from sklearn.utils import check_random_state

        self.seed = int(check_random_state(random_state).randint(2**31 - 1))
        generator = torch.Generator().manual_seed(self.seed)
        self._state = generator.get_state()
        self._saved = []

    def __enter__(self):
        _RNG_LOCK.acquire()
        try:
            self._saved.append(torch.random.get_rng_state())
            torch.random.set_rng_state(self._state)
        except BaseException:
            _RNG_LOCK.release()
            raise
        return self.seed

    def __exit__(self, *exc):
        try:
            self._state = torch.random.get_rng_state()
            torch.random.set_rng_state(self._saved.pop())
        finally:
            _RNG_LOCK.release()
        return False


@contextlib.contextmanager
def preserved_rng():
    """Restore torch's CPU RNG state on exit, holding the package's RNG lock.

    A locked ``torch.random.fork_rng``: the block's draws (a DataLoader's base
    seed, say) leave the caller's generator as it was, and no other thread's
    seeded block (:class:`TorchRNG`) can have its state restored away under it.
    """
    with _RNG_LOCK:
        state = torch.random.get_rng_state()
        try:
            yield
        finally:
            torch.random.set_rng_state(state)


def seeded(random_state) -> TorchRNG:
    """Run a block under torch's CPU RNG seeded from ``random_state``.

    The global generator's state is swapped out and restored, under a lock
    (see :class:`TorchRNG`): user code sees no change and concurrent seeded
    blocks in other threads draw the same numbers as they would alone.
    """
    return TorchRNG(random_state)
