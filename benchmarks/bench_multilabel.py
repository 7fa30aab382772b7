"""Multilabel classification on real images: which animals are in the picture.

Each image holds one or two Animal-MNIST silhouettes of different classes side
by side (see ``_data.pairs``); the target is the indicator matrix of the 10
classes present. Train and test pairs are drawn from disjoint silhouettes.

Compared by micro-F1 (and subset accuracy) on the test set: a one-vs-rest
logistic regression on frozen pretrained EfficientNet-Lite0 embeddings, and
FineTunedClassifier given the indicator matrix (sigmoid outputs, binary
cross-entropy, one shared backbone), head only and fully fine-tuned.

Run:  python benchmarks/bench_multilabel.py [--only NAME ...] [--threads N]
Writes benchmarks/results/bench_multilabel.json and prints a table.
"""

from __future__ import annotations

import torch
from _data import animal_mnist, pairs, per_class_split
from _report import arguments, fit_predict, parse, selected, table, write_json
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor
from sktransfer.offline import efficientnet_lite_weights

N_TRAIN, N_TEST, SIZE, EPOCHS = 400, 400, 64, 10


def data(seed=0):
    X, y = animal_mnist()
    train, test = per_class_split(y, 60, 60, seed)
    Xtr, Ytr = pairs(X[train], y[train], N_TRAIN, seed=1)
    Xte, Yte = pairs(X[test], y[test], N_TEST, seed=2)
    return Xtr, Ytr, Xte, Yte


def models(weights):
    common = dict(
        model="timm:tf_efficientnet_lite0",
        weights=weights,
        image_size=SIZE,
        batch_size=32,
        random_state=0,
        progress=False,
    )
    return {
        "one-vs-rest logistic on frozen embeddings": lambda: make_pipeline(
            PretrainedFeatureExtractor(
                "timm:tf_efficientnet_lite0",
                weights=weights,
                image_size=SIZE,
                progress=False,
            ),
            StandardScaler(),
            OneVsRestClassifier(LogisticRegression(C=0.1, max_iter=2000)),
        ),
        "FineTunedClassifier, head only": lambda: FineTunedClassifier(
            **common, freeze="backbone", augment=False, lr=3e-3, max_epochs=60
        ),
        "FineTunedClassifier, full fine-tuning": lambda: FineTunedClassifier(
            **common, freeze="none", lr=1e-3, lr_schedule="cosine", max_epochs=EPOCHS
        ),
    }


def main():
    args = parse(arguments(__doc__))
    Xtr, Ytr, Xte, Yte = data()
    weights = str(efficientnet_lite_weights("lite0"))
    rows = []
    for name, make in selected(models(weights), args.only):
        pred, seconds = fit_predict(make, Xtr, Ytr, Xte)
        rows.append(
            dict(
                model=name,
                micro_f1=float(f1_score(Yte, pred, average="micro")),
                subset_accuracy=float(accuracy_score(Yte, pred)),
                seconds=seconds,
            )
        )
        print(
            f"{name:42s} micro-F1={rows[-1]['micro_f1']:.3f} {seconds:.0f}s", flush=True
        )
    print()
    print(
        f"Animal-MNIST pairs, 10 labels, 1-2 per image: {len(Ytr)} train, "
        f"{len(Yte)} test; Lite0 at {SIZE} px, CPU threads {torch.get_num_threads()}"
    )
    table(
        [
            ("model", "s"),
            ("micro-F1", ".3f"),
            ("subset accuracy", ".3f"),
            ("fit+predict (s)", ".1f"),
        ],
        [(r["model"], r["micro_f1"], r["subset_accuracy"], r["seconds"]) for r in rows],
    )
    write_json(
        "bench_multilabel",
        rows=rows,
        n_train=len(Ytr),
        n_test=len(Yte),
        image_size=SIZE,
    )


if __name__ == "__main__":
    main()
