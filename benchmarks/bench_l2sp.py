"""L2-SP against plain fine-tuning on Animal-MNIST with few labels.

Per seed: a training set of K labelled images per class (K = 10, and 50 with
``--labels 50``) and a test set of 50 other images per class, both drawn
with the seed; EfficientNet-Lite0 from its real ImageNet weights (offline),
fully fine-tuned at 64 px.

Each method picks its own regularisation strength on an inner validation
split of the training data only (30 %, stratified; the test set is never
looked at): plain fine-tuning its AdamW weight decay (toward zero), L2-SP its
``l2sp`` strength (toward the pretrained weights; the head keeps AdamW's
default decay). The chosen setting is refitted on the whole training set and
scored once on the test set.

Run:  python benchmarks/bench_l2sp.py [--labels 10 50] [--seeds 5] [--threads N]
Writes benchmarks/results/bench_l2sp.json and prints a table.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from _data import animal_mnist, per_class_split
from _report import arguments, parse, table, write_json
from sklearn.model_selection import StratifiedShuffleSplit

from sktransfer import FineTunedClassifier
from sktransfer.offline import efficientnet_lite_weights

N_TEST, SIZE, EPOCHS = 50, 64, 6
GRIDS = {
    "plain (weight decay)": [
        dict(optimizer__weight_decay=0.01),
        dict(optimizer__weight_decay=0.1),
    ],
    "L2-SP": [dict(l2sp=3.0), dict(l2sp=30.0)],
}


def estimator(weights, seed, **params):
    return FineTunedClassifier(
        "timm:tf_efficientnet_lite0",
        weights=weights,
        image_size=SIZE,
        freeze="none",
        lr=1e-3,
        lr_schedule="cosine",
        max_epochs=EPOCHS,
        batch_size=16,
        random_state=seed,
        progress=False,
        **params,
    )


def select_and_score(weights, grid, X, y, X_test, y_test, seed):
    """Pick the grid point by inner validation, refit on all of X, score on test."""
    split = StratifiedShuffleSplit(n_splits=1, test_size=0.3, random_state=seed)
    inner, valid = next(split.split(X, y))
    scores = [
        float(
            np.mean(
                estimator(weights, seed, **p).fit(X[inner], y[inner]).predict(X[valid])
                == y[valid]
            )
        )
        for p in grid
    ]
    best = grid[int(np.argmax(scores))]
    clf = estimator(weights, seed, **best).fit(X, y)
    return float(np.mean(clf.predict(X_test) == y_test)), best, scores


def main():
    parser = arguments(__doc__, only=False)
    parser.add_argument("--labels", nargs="*", type=int, default=[10])
    parser.add_argument("--seeds", type=int, default=5)
    args = parse(parser)
    X_all, y_all = animal_mnist()
    weights = str(efficientnet_lite_weights("lite0"))
    runs = []
    for k in args.labels:
        for seed in range(args.seeds):
            train, test = per_class_split(y_all, k, N_TEST, seed)
            X, y, X_test, y_test = X_all[train], y_all[train], X_all[test], y_all[test]
            for method, grid in GRIDS.items():
                start = time.perf_counter()
                acc, best, inner = select_and_score(
                    weights, grid, X, y, X_test, y_test, seed
                )
                runs.append(
                    dict(
                        labels_per_class=k,
                        seed=seed,
                        method=method,
                        accuracy=acc,
                        chosen=best,
                        inner_scores=inner,
                        seconds=round(time.perf_counter() - start, 1),
                    )
                )
                print(
                    f"k={k} seed={seed} {method:22s} acc={acc:.3f} chosen={best} "
                    f"inner={inner} {runs[-1]['seconds']}s",
                    flush=True,
                )
            report(runs, args.labels)  # after each seed: partial results kept


def report(runs, labels):
    """Print the table and write the JSON (called after every seed)."""
    print()
    print(
        f"Animal-MNIST, {N_TEST} test images per class; Lite0 at {SIZE} px, "
        f"{EPOCHS} epochs, full fine-tuning; strengths chosen on an inner "
        f"validation split; CPU threads {torch.get_num_threads()}"
    )
    rows = []
    for k in labels:
        acc = {
            m: [
                r["accuracy"]
                for r in runs
                if r["labels_per_class"] == k and r["method"] == m
            ]
            for m in GRIDS
        }
        n = min(len(v) for v in acc.values())
        if n == 0:
            continue
        plain = np.array(acc["plain (weight decay)"][:n])
        l2sp = np.array(acc["L2-SP"][:n])
        wins = int(np.sum(l2sp > plain))
        rows.append(
            dict(
                labels_per_class=k,
                plain=plain.tolist(),
                l2sp=l2sp.tolist(),
                l2sp_wins=wins,
            )
        )
    table(
        [
            ("labels/class", "d"),
            ("seeds", "d"),
            ("plain (mean ± std)", "s"),
            ("L2-SP (mean ± std)", "s"),
            ("L2-SP wins", "s"),
        ],
        [
            (
                r["labels_per_class"],
                len(r["plain"]),
                _mean_std(r["plain"]),
                _mean_std(r["l2sp"]),
                f"{r['l2sp_wins']} of {len(r['plain'])}",
            )
            for r in rows
        ],
    )
    write_json(
        "bench_l2sp",
        runs=runs,
        summary=rows,
        grids=GRIDS,
        n_test_per_class=N_TEST,
        image_size=SIZE,
        epochs=EPOCHS,
    )


def _mean_std(values):
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


if __name__ == "__main__":
    main()
