"""The ``fit``, ``predict`` and ``embed`` commands of the command line.

Each ``run_<command>(args)`` takes the parsed arguments of :mod:`sktransfer.cli`
and returns an exit code. Heavy modules (torch, scikit-learn, the estimators)
are imported inside the commands, never at module level.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from pathlib import Path

from ._cli_support import (
    EXIT_INPUT,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    atomic_write,
    backbone_params,
    check_output,
    given,
    log,
    print_table,
    progress,
    set_progress,
    sktransfer_steps,
)

__all__ = ["run_embed", "run_fit", "run_predict"]

# The fine-tuning options, as FineTunedClassifier's parameters.
FINETUNE_PARAMS = {"freeze": "--freeze", "max_epochs": "--epochs", "lr": "--lr"}


# --------------------------------------------------------------------- fit
def build_estimator(args):
    """The estimator ``sktransfer fit`` trains, from the command-line options.

    Only the options a user gave are passed; the others keep the estimators'
    defaults.
    """
    params = {
        **backbone_params(args),
        **given(args, "image_size", "batch_size", "device"),
        "random_state": args.random_state,
        "progress": progress(args),
    }
    if args.method == "probe":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from . import PretrainedFeatureExtractor

        return make_pipeline(
            PretrainedFeatureExtractor(**params),
            StandardScaler(),
            LogisticRegression(max_iter=3000),
        )
    from . import FineTunedClassifier

    return FineTunedClassifier(**params, **given(args, *FINETUNE_PARAMS))


def _check_method_options(args) -> None:
    if args.method == "probe":
        misplaced = [FINETUNE_PARAMS[p] for p in given(args, *FINETUNE_PARAMS)]
        if misplaced:
            raise CommandError(
                f"{', '.join(misplaced)} apply to --method finetune only; the default "
                "--method probe fits a logistic regression on frozen embeddings.",
                EXIT_USAGE,
            )


def _read_training_folder(args):
    import numpy as np

    from .datasets import load_image_folder

    try:
        paths, labels = load_image_folder(args.directory)
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    classes, counts = np.unique(labels, return_counts=True)
    log(
        args,
        f"Found {len(paths)} images in {len(classes)} classes: "
        + ", ".join(f"{c} ({n})" for c, n in zip(classes, counts, strict=True)),
    )
    check_readable(args, paths, "repair or remove them, then run again.")
    return paths, labels, counts


def _split(args, paths, labels, counts):
    """The stratified held-out split of ``--test-size``, or a one-line error."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    # A stratified split needs two images per class and one image per class on
    # each side (scikit-learn rounds the test side up).
    n_test = int(np.ceil(args.test_size * len(paths)))
    n_train = len(paths) - n_test
    if counts.min() < 2 or min(n_test, n_train) < len(counts):
        raise CommandError(
            f"--test-size {args.test_size:g}: cannot split {len(paths)} images "
            f"({len(counts)} classes, the smallest with {counts.min()}) into "
            f"{n_train} for training and {n_test} for evaluation with every class "
            "on both sides. Add images, choose a --test-size that leaves at least "
            "one image per class on each side, or pass --test-size 0 to skip the "
            "evaluation.",
            EXIT_INPUT,
        )
    return train_test_split(
        paths,
        labels,
        test_size=args.test_size,
        stratify=labels,
        random_state=args.random_state,
    )


def _evaluate(args, estimator, paths, labels, counts, rows):
    """Fit a clone on the training split, report held-out scores; return it."""
    from sklearn.base import clone
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    p_train, p_test, y_train, y_test = _split(args, paths, labels, counts)
    log(args, f"Fitting on {len(p_train)} images, evaluating on {len(p_test)}")
    start = time.perf_counter()
    held_out = clone(estimator).fit(p_train, y_train)
    fit_seconds = time.perf_counter() - start
    pred = held_out.predict(p_test)
    rows.append(("held-out accuracy", f"{accuracy_score(y_test, pred):.3f}"))
    rows.append(
        ("held-out balanced accuracy", f"{balanced_accuracy_score(y_test, pred):.3f}")
    )
    rows.append(("fit seconds (train split)", f"{fit_seconds:.1f}"))
    return held_out, len(p_train)


def run_fit(args) -> int:
    """``sktransfer fit``: fit, evaluate on a held-out split, refit and save."""
    import joblib

    _check_method_options(args)
    output = check_output(args.output, (".joblib",))
    paths, labels, counts = _read_training_folder(args)
    estimator = build_estimator(args)
    rows = []
    final = None
    if args.test_size > 0:
        final, n_train = _evaluate(args, estimator, paths, labels, counts, rows)
    scores = {name: value for name, value in rows if name.startswith("held-out")}
    if args.refit or final is None:
        log(args, f"Fitting the final model on all {len(paths)} images")
        start = time.perf_counter()
        final, n_train = estimator.fit(paths, labels), len(paths)
        rows.append(("fit seconds (all images)", f"{time.perf_counter() - start:.1f}"))
    with atomic_write(output) as tmp:
        joblib.dump(final, tmp)
    size_mb = output.stat().st_size / 1e6
    rows.append(("model file", f"{output} ({size_mb:.1f} MB)"))
    rows.append(("model card", str(_write_card(output, final, n_train, scores))))
    print_table(rows, ["", "value"])
    return EXIT_OK


def _write_card(output, model, n_train, scores) -> Path:
    """Write the model card next to the model file (``model.md``), atomically."""
    from .persistence import model_card

    card = output.with_suffix(".md")
    text = model_card(model, title=output.name, n_train=n_train, scores=scores)
    with atomic_write(card) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return card


# ----------------------------------------------------------------- predict
def load_model(path):
    """Load a model saved by ``sktransfer fit`` (or any joblib file of a model)."""
    import joblib

    path = Path(path)
    if not path.is_file():
        raise CommandError(f"Model file not found: {str(path)!r}.", EXIT_INPUT)
    try:
        model = joblib.load(path)
    except (ImportError, AttributeError) as exc:
        # A pickle that names a module or class this environment lacks.
        raise CommandError(
            f"Cannot load model file {str(path)!r}: {type(exc).__name__}: {exc}. It "
            "was saved with other package versions: install the versions it was "
            "saved with, or fit it again here.",
            EXIT_INPUT,
        ) from exc
    except Exception as exc:
        raise CommandError(
            f"Cannot load {str(path)!r}: the file is not a model saved by "
            f"sktransfer (or joblib) ({type(exc).__name__}: {exc}). Pass the file "
            "written by 'sktransfer fit -o'.",
            EXIT_INPUT,
        ) from exc
    if not hasattr(model, "predict"):
        raise CommandError(
            f"{str(path)!r} holds a {type(model).__name__}, not a fitted model.",
            EXIT_INPUT,
        )
    return model


def _expand_paths(items) -> list[str]:
    from .datasets import find_images, image_extensions

    paths = []
    for item in items:
        if os.path.isdir(item):
            try:
                paths.extend(find_images(item))
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        elif os.path.isfile(item):
            if Path(item).suffix.lower() not in image_extensions():
                raise CommandError(f"Not an image file: {item!r}.", EXIT_INPUT)
            paths.append(item)
        else:
            raise CommandError(f"No such file or folder: {item!r}.", EXIT_INPUT)
    return paths


def check_readable(args, paths, fix: str) -> list[str]:
    """Decode every image once; report all unreadable files in one error.

    Returns the unreadable paths when ``args.skip_unreadable`` allows them.
    """
    from .datasets import find_unreadable_images

    log(args, f"Checking that the {len(paths)} images decode")
    unreadable = find_unreadable_images(paths)
    if not unreadable:
        return []
    lines = [f"unreadable image: {path} ({reason})" for path, reason in unreadable]
    n = len(unreadable)
    if getattr(args, "skip_unreadable", False) and n < len(paths):
        for line in lines:
            print(f"sktransfer {args.command}: skipped {line}", file=sys.stderr)
        return [path for path, _ in unreadable]
    raise CommandError(
        f"{n} of the {len(paths)} images cannot be read (listed above): {fix}",
        EXIT_INPUT,
        details=lines,
    )


def set_device(model, device) -> None:
    """Put every sktransfer step of ``model`` on ``device``.

    Without ``device``, a step saved for a device this machine lacks (a model
    fitted with ``device="cuda"``, used where there is no GPU) falls back to the
    CPU, with a warning.
    """
    import warnings

    from ._torch_utils import resolve_device

    if device is not None:
        resolve_device(device)  # a bad --device fails before any work
    for step in sktransfer_steps(model):
        if "device" not in step.get_params(deep=False):
            continue
        if device is not None:
            step.set_params(device=device)
            continue
        try:
            resolve_device(step.device)
        except ValueError:
            warnings.warn(
                f"the model was saved with device={step.device!r}, which this "
                "machine lacks; predicting on the CPU (choose with --device).",
                UserWarning,
                stacklevel=2,
            )
            step.set_params(device="cpu")


def _predict_rows(args, model, paths) -> tuple[list[str], list[list]]:
    """The CSV header and one row per path (empty values for skipped files)."""
    import numpy as np

    header = ["path", "prediction"]
    if args.proba:
        if not hasattr(model, "predict_proba"):
            raise CommandError("This model has no predict_proba.", EXIT_USAGE)
        header += [f"proba_{c}" for c in model.classes_]
    skipped = set(
        check_readable(
            args,
            paths,
            "repair or remove them, or pass --skip-unreadable to predict the others.",
        )
    )
    keep = [i for i, p in enumerate(paths) if p not in skipped]
    log(args, f"Predicting {len(keep)} images")
    chosen = [paths[i] for i in keep]
    columns = [model.predict(chosen)]
    if args.proba:
        proba = model.predict_proba(chosen)
        columns += list(proba.T)
    rows = [[path] + [""] * (len(header) - 1) for path in paths]
    for k, i in enumerate(keep):
        rows[i][1:] = [
            f"{c[k]:.6g}" if isinstance(c[k], (float, np.floating)) else c[k]
            for c in columns
        ]
    return header, rows


def run_predict(args) -> int:
    """``sktransfer predict``: predict image files or folders; CSV out."""
    output = check_output(args.output, (".csv",)) if args.output else None
    model = load_model(args.model)
    paths = _expand_paths(args.paths)
    set_progress(model, progress(args))
    set_device(model, args.device)
    header, rows = _predict_rows(args, model, paths)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if output is None:
        sys.stdout.write(buffer.getvalue())
    else:
        with atomic_write(output) as tmp:
            tmp.write_text(buffer.getvalue())
        log(args, f"Wrote {len(rows)} rows to {output}")
    return EXIT_OK


# ------------------------------------------------------------------- embed
def _check_parquet(output) -> None:
    if output.suffix.lower() == ".parquet":
        try:
            import pandas  # noqa: F401
            import pyarrow  # noqa: F401
        except ImportError as exc:
            raise CommandError(
                "Writing .parquet needs pandas and pyarrow: "
                'pip install "sktransfer[dask]", or write .npy.',
                EXIT_USAGE,
            ) from exc


def _write_features(path, kind, features, paths, root, feature_names) -> None:
    """Write ``kind`` ``".npy"`` (the matrix) or ``".parquet"`` (path, label, ...)."""
    import numpy as np

    if kind == ".npy":
        with open(path, "wb") as f:
            np.save(f, features)
        return
    import pandas as pd

    frame = pd.DataFrame(features, columns=feature_names)
    frame.insert(0, "path", paths)
    relative = [Path(p).relative_to(root).parts for p in paths]
    if all(len(parts) > 1 for parts in relative):
        frame.insert(1, "label", [parts[0] for parts in relative])
    frame.to_parquet(path, index=False)


def run_embed(args) -> int:
    """``sktransfer embed``: embed every image under a folder."""
    from . import PretrainedFeatureExtractor
    from .datasets import find_images

    output = check_output(args.output, (".npy", ".parquet"))
    _check_parquet(output)
    try:
        paths = find_images(args.directory)
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    check_readable(args, paths, "repair or remove them, then run again.")
    extractor = PretrainedFeatureExtractor(
        **backbone_params(args),
        **given(args, "layer", "pooling", "image_size", "batch_size", "device"),
        random_state=args.random_state,
        progress=progress(args),
    )
    log(args, f"Embedding {len(paths)} images")
    start = time.perf_counter()
    features = extractor.fit_transform(paths)
    seconds = time.perf_counter() - start
    with atomic_write(output) as tmp:
        _write_features(
            tmp,
            output.suffix.lower(),
            features,
            paths,
            Path(args.directory),
            extractor.get_feature_names_out().tolist(),
        )
    print_table(
        [
            ("images", len(paths)),
            ("features per image", features.shape[1]),
            ("seconds", f"{seconds:.1f}"),
            ("output", output),
        ],
        ["", "value"],
    )
    return EXIT_OK
