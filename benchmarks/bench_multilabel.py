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

import argparse
import json
import os
import time
from pathlib import Path

import torch
from _data import animal_mnist, pairs, per_class_split
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor
from sktransfer.offline import efficientnet_lite_weights

RESULTS = Path(__file__).parent / "results"
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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="substrings of model names")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    Xtr, Ytr, Xte, Yte = data()
    weights = str(efficientnet_lite_weights("lite0"))
    rows = []
    for name, make in models(weights).items():
        if args.only and not any(s in name for s in args.only):
            continue
        start = time.perf_counter()
        pred = make().fit(Xtr, Ytr).predict(Xte)
        seconds = time.perf_counter() - start
        rows.append(
            dict(
                model=name,
                micro_f1=float(f1_score(Yte, pred, average="micro")),
                subset_accuracy=float(accuracy_score(Yte, pred)),
                seconds=round(seconds, 1),
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
    print(f"| {'model':42s} | micro-F1 | subset acc. | fit+predict (s) |")
    print(f"|{'-' * 44}|----------|-------------|-----------------|")
    for r in rows:
        print(
            f"| {r['model']:42s} | {r['micro_f1']:.3f}    | "
            f"{r['subset_accuracy']:.3f}       | {r['seconds']:15.1f} |"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "bench_multilabel.json"
    with open(out, "w") as f:
        json.dump(
            dict(
                rows=rows,
                n_train=len(Ytr),
                n_test=len(Yte),
                image_size=SIZE,
                threads=torch.get_num_threads(),
                cpu_count=os.cpu_count(),
            ),
            f,
            indent=2,
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
