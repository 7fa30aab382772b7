"""Benchmark of the importance weighters: truth recovery, IWCV, time and memory.

Part 1 (known truth): the selection-bias construction of ``shared/DATA.md`` on
Fashion-MNIST. A source sample keeps each training image with probability
``s(x) = sigmoid(a * z(x))``, ``z`` the standardised first principal component
of the pixels (never the label), so ``P(y|x)`` is unchanged and the true
weight of a kept image is proportional to ``1 / s(x)``; the target is an
unbiased sample. For a moderate (a=1) and a severe (a=2.5) shift, each method
is scored by rank correlation and normalised error against the true weights,
effective sample size, and how far its importance-weighted validation (IWCV)
lands from the true target accuracy compared with plain validation.

Part 2 (scale): time and peak traced memory of ``fit`` against n (source =
target = n rows) on 512-d synthetic embeddings.

Run (Fashion-MNIST from ``apt-get install dataset-fashion-mnist``)::

    python benchmarks/bench_weighting.py [--features pca|lite0] [--sizes 1000 5000]

Prints two tables and writes JSON under ``benchmarks/results/``.
"""

import argparse
import gzip
import json
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from sktransfer.model_selection import SourceValidationKFold
from sktransfer.weighting import (
    DiscriminativeWeighter,
    ImportanceWeightedClassifier,
    KLIEPWeighter,
    KMMWeighter,
    ULSIFWeighter,
)

FASHION = Path("/usr/share/datasets/fashion-mnist")
METHODS = {
    "discriminative": lambda: DiscriminativeWeighter(random_state=0),
    "kliep": lambda: KLIEPWeighter(random_state=0),
    "ulsif": lambda: ULSIFWeighter(random_state=0),
    "kmm": lambda: KMMWeighter(random_state=0),
}
SHIFTS = {"moderate": 1.0, "severe": 2.5}


def load_fashion(n_pool):
    with gzip.open(FASHION / "train-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION / "train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    rng = np.random.RandomState(0)
    keep = rng.choice(len(images), n_pool, replace=False)
    return images[keep], labels[keep]


def pca_features(images):
    flat = images.reshape(len(images), -1) / 255.0
    return PCA(50, random_state=0).fit_transform(flat)


def lite0_features(images):
    from sktransfer import PretrainedFeatureExtractor
    from sktransfer.offline import efficientnet_lite_weights

    extractor = PretrainedFeatureExtractor(
        model="timm:tf_efficientnet_lite0",
        weights=str(efficientnet_lite_weights("lite0")),
        image_size=64,
        progress=False,
    )
    return extractor.fit(images).transform(images)


def selection_bias(images, labels, features, strength, n_source, n_target, seed):
    """Biased source, unbiased target and test; true source weights ~ 1/s(x)."""
    rng = np.random.RandomState(seed)
    flat = images.reshape(len(images), -1) / 255.0
    z = PCA(1, random_state=0).fit_transform(flat)[:, 0]
    z = (z - z.mean()) / z.std()
    s = 1 / (1 + np.exp(-strength * z))
    order = rng.permutation(len(images))
    target = order[:n_target]
    test = order[n_target : 3 * n_target]
    rest = order[3 * n_target :]
    kept = rest[rng.uniform(size=rest.size) < s[rest]][:n_source]
    true_weights = 1 / s[kept]
    X = StandardScaler().fit_transform(features)
    return (
        X[kept],
        labels[kept],
        X[target],
        X[test],
        labels[test],
        true_weights / true_weights.mean(),
    )


def iwcv(X_s, y_s, X_t, weighter, true_weights, seed=0):
    """Plain, importance-weighted (estimated and true weights) validation."""
    X = np.r_[X_s, X_t]
    y = np.r_[y_s, -np.ones(len(X_t), int)]
    domain = np.r_[np.ones(len(X_s)), -np.ones(len(X_t))]
    cv = SourceValidationKFold(5, shuffle=True, random_state=seed)
    plain, weighted, oracle = [], [], []
    for train, val in cv.split(X, groups=domain):
        src = train[domain[train] > 0]
        model = LogisticRegression(max_iter=300).fit(X[src], y[src])
        correct = model.predict(X[val]) == y[val]
        fold = ImportanceWeightedClassifier(
            LogisticRegression(max_iter=300), weighter=weighter
        ).fit(X[train], y[train], sample_domain=domain[train])
        w = fold.compute_weights(X[val])
        plain.append(correct.mean())
        weighted.append(np.sum(w * correct) / w.sum())
        oracle.append(np.sum(true_weights[val] * correct) / true_weights[val].sum())
    return np.mean(plain), np.mean(weighted), np.mean(oracle)


def truth_table(features_name, n_pool, n_source, n_target):
    images, labels = load_fashion(n_pool)
    features = (lite0_features if features_name == "lite0" else pca_features)(images)
    rows = []
    for shift, strength in SHIFTS.items():
        X_s, y_s, X_t, X_test, y_test, true_w = selection_bias(
            images, labels, features, strength, n_source, n_target, seed=0
        )
        base = LogisticRegression(max_iter=300).fit(X_s, y_s)
        true_acc = base.score(X_test, y_test)
        for method, make in METHODS.items():
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                weighter = make().fit(
                    np.r_[X_s, X_t],
                    sample_domain=np.r_[np.ones(len(X_s)), -np.ones(len(X_t))],
                )
            seconds = time.perf_counter() - start
            w = weighter.weights_[: len(X_s)]
            weighted = LogisticRegression(max_iter=300).fit(X_s, y_s, sample_weight=w)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                plain, iw, oracle = iwcv(X_s, y_s, X_t, make(), true_w)
            rows.append(
                {
                    "shift": shift,
                    "method": method,
                    "spearman": spearmanr(w, true_w)[0],
                    "nmae": np.mean(np.abs(w - true_w)),
                    "nmae_uniform": np.mean(np.abs(1 - true_w)),
                    "ess_ratio": weighter.effective_sample_size_ratio_,
                    "true_ess_ratio": 1 / np.mean(true_w**2),
                    "domain_auc": weighter.domain_auc_,
                    "acc_target_unweighted": true_acc,
                    "acc_target_weighted": weighted.score(X_test, y_test),
                    "err_plain_cv": abs(plain - true_acc),
                    "err_iwcv": abs(iw - true_acc),
                    "err_iwcv_true_w": abs(oracle - true_acc),
                    "fit_s": seconds,
                    "warnings": sorted({type(c.message).__name__ for c in caught}),
                }
            )
    return rows


def scale_table(sizes, dim=512):
    rows = []
    for n in sizes:
        rng = np.random.RandomState(0)
        X = np.r_[rng.normal(size=(n, dim)), rng.normal(size=(n, dim)) + 0.05]
        X = X.astype(np.float32)
        domain = np.r_[np.ones(n), -np.ones(n)]
        for method, make in METHODS.items():
            tracemalloc.start()
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                make().fit(X, sample_domain=domain)
            seconds = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            rows.append(
                {
                    "n": n,
                    "method": method,
                    "fit_s": seconds,
                    "peak_mib": peak / 2**20,
                    "input_mib": X.nbytes / 2**20,
                }
            )
            print(
                f"  n={n:>6} {method:<15} {seconds:8.1f} s {peak / 2**20:9.1f} MiB",
                flush=True,
            )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", choices=["pca", "lite0"], default="pca")
    parser.add_argument("--n-pool", type=int, default=30000)
    parser.add_argument("--n-source", type=int, default=3000)
    parser.add_argument("--n-target", type=int, default=3000)
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[1000, 5000, 10000, 20000]
    )
    args = parser.parse_args()

    truth = truth_table(args.features, args.n_pool, args.n_source, args.n_target)
    print(
        f"\nKnown truth: Fashion-MNIST selection bias, features={args.features}, "
        f"n_source={args.n_source}, n_target={args.n_target}"
    )
    print(
        "| shift | method | Spearman | NMAE (uniform) | ESS ratio (true) | AUC "
        "| target acc plain / weighted | |CV-truth| plain / IWCV / IWCV true w "
        "| fit s | warnings |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in truth:
        print(
            f"| {r['shift']} | {r['method']} | {r['spearman']:.3f} "
            f"| {r['nmae']:.3f} ({r['nmae_uniform']:.3f}) "
            f"| {r['ess_ratio']:.3f} ({r['true_ess_ratio']:.3f}) "
            f"| {r['domain_auc']:.3f} "
            f"| {r['acc_target_unweighted']:.3f} / {r['acc_target_weighted']:.3f} "
            f"| {r['err_plain_cv']:.3f} / {r['err_iwcv']:.3f} / "
            f"{r['err_iwcv_true_w']:.3f} | {r['fit_s']:.1f} "
            f"| {', '.join(r['warnings']) or '-'} |"
        )

    print(
        "\nScale: fit time and peak traced memory, 512-d float32, n source + n target"
    )
    scale = scale_table(args.sizes)
    print("| n (each domain) | method | fit s | peak MiB (input MiB) |")
    print("|---|---|---|---|")
    for r in scale:
        print(
            f"| {r['n']} | {r['method']} | {r['fit_s']:.1f} "
            f"| {r['peak_mib']:.0f} ({r['input_mib']:.0f}) |"
        )

    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_weighting.json").write_text(
        json.dumps(
            {"args": vars(args), "truth": truth, "scale": scale},
            indent=1,
            default=float,
        )
    )


if __name__ == "__main__":
    main()
