"""Regression on real images: the rotation angle of Animal-MNIST silhouettes.

Each silhouette (28x28, padded to 40x40) is rotated by an angle drawn uniformly
in [-60, 60] degrees, the target (see ``_data.rotated``). Train: 30 per class
(300 images); test: 30 other images per class (300). Flips would negate the
angle and crops move the silhouette, so no configuration augments
(``augment=False``: see FineTunedRegressor's Notes).

Compared by R^2 and mean absolute error in degrees on the test set:
ridge on raw pixels; RidgeCV on frozen pretrained embeddings (extractor +
RidgeCV); FineTunedRegressor with the frozen backbone (head only, fast path);
full fine-tuning from pretrained EfficientNet-Lite0 weights; the same from
random initialisation.

Run:  python benchmarks/bench_regression.py [--only NAME ...] [--threads N]
Writes benchmarks/results/bench_regression.json and prints a table.
"""

from __future__ import annotations

import json

import numpy as np
import torch
from _data import animal_mnist, per_class_split, rotated
from _report import RESULTS, arguments, fit_predict, parse, selected, table, write_json
from sklearn.linear_model import RidgeCV
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import FineTunedRegressor, PretrainedFeatureExtractor
from sktransfer.offline import efficientnet_lite_weights

N_TRAIN, N_TEST, SIZE, EPOCHS = 30, 30, 64, 12
ALPHAS = np.logspace(-2, 5, 15)


def data(seed=0):
    X, y = animal_mnist()
    train, test = per_class_split(y, N_TRAIN, N_TEST, seed)
    Xtr, atr = rotated(X[train], seed=1)
    Xte, ate = rotated(X[test], seed=2)
    return Xtr, atr, Xte, ate


def models(weights):
    common = dict(
        model="timm:tf_efficientnet_lite0",
        image_size=SIZE,
        batch_size=32,
        augment=False,
        random_state=0,
        progress=False,
    )
    tuned = dict(common, freeze="none", lr=1e-3, lr_schedule="cosine")
    return {
        # Pixels unscaled: standardising pixels that are always dark in training
        # blows up the corners the test rotations uncover.
        "ridge on raw pixels": lambda: make_pipeline(
            _Flatten(), RidgeCV(alphas=ALPHAS)
        ),
        "RidgeCV on frozen embeddings": lambda: make_pipeline(
            PretrainedFeatureExtractor(
                "timm:tf_efficientnet_lite0",
                weights=weights,
                image_size=SIZE,
                progress=False,
            ),
            StandardScaler(),
            RidgeCV(alphas=ALPHAS),
        ),
        "FineTunedRegressor, frozen backbone": lambda: FineTunedRegressor(
            **dict(common, weights=weights, freeze="backbone", lr=1e-3),
            max_epochs=60,
            early_stopping=True,
            validation_fraction=0.2,
        ),
        "full fine-tuning, pretrained": lambda: FineTunedRegressor(
            **tuned, weights=weights, max_epochs=EPOCHS
        ),
        "full fine-tuning, random init": lambda: FineTunedRegressor(
            **tuned, weights=None, max_epochs=EPOCHS
        ),
    }


class _Flatten:
    """Raw pixels as features (a stateless transformer for the pipeline)."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X[..., 0], dtype=np.float64).reshape(len(X), -1) / 255

    def get_params(self, deep=True):
        return {}


def main():
    args = parse(arguments(__doc__))
    Xtr, atr, Xte, ate = data()
    weights = str(efficientnet_lite_weights("lite0"))
    names = list(models(weights))
    rows = []
    for name, make in selected(models(weights), args.only):
        pred, seconds = fit_predict(make, Xtr, atr, Xte)
        rows.append(
            dict(
                model=name,
                r2=float(r2_score(ate, pred)),
                mae_degrees=float(mean_absolute_error(ate, pred)),
                seconds=seconds,
            )
        )
        print(f"{name:40s} R2={rows[-1]['r2']:.3f} {seconds:.0f}s", flush=True)
    previous = RESULTS / "bench_regression.json"
    if args.only and previous.exists():  # keep the rows of the models not rerun
        done = {r["model"] for r in rows}
        kept = [
            r
            for r in json.loads(previous.read_text())["rows"]
            if r["model"] not in done
        ]
        rows = sorted(kept + rows, key=lambda r: names.index(r["model"]))
    print()
    print(
        f"Rotation angle in [-60, 60] degrees of Animal-MNIST silhouettes: "
        f"{len(atr)} train, {len(ate)} test; Lite0 at {SIZE} px, "
        f"{EPOCHS} epochs of fine-tuning, CPU threads {torch.get_num_threads()}"
    )
    table(
        [
            ("model", "s"),
            ("R^2", ".3f"),
            ("MAE (deg)", ".1f"),
            ("fit+predict (s)", ".1f"),
        ],
        [(r["model"], r["r2"], r["mae_degrees"], r["seconds"]) for r in rows],
    )
    write_json(
        "bench_regression",
        rows=rows,
        n_train=len(atr),
        n_test=len(ate),
        image_size=SIZE,
        epochs=EPOCHS,
    )


if __name__ == "__main__":
    main()
