"""Fixed-feature-extractor speed: our fast path vs skorch's Freezer recipe.

10 epochs on 512 images at 224 px with a frozen resnet18 (``weights=None``,
fixed seed: no download; a frozen random trunk still gives features a linear
head can use). Images: Animal-MNIST silhouettes (PyPI ``animal-mnist``),
upscaled to 224 px; 512 for training, 512 held out.

* ours: ``FineTunedClassifier(freeze="backbone", augment=False)`` embeds each
  image once, then trains the head for 10 epochs;
* skorch: ``NeuralNetClassifier`` on the same trunk + linear head with
  ``Freezer`` on the trunk, which runs the trunk on every batch of every epoch
  (and, being skorch's recipe, lets BatchNorm statistics drift).

Both use the same preprocessing (images resized and normalised beforehand for
skorch), AdamW at lr 1e-3, batch size 32, no validation split.

Run:  python benchmarks/bench_frozen_speed.py
Writes benchmarks/results/bench_frozen_speed.json and prints a table.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
from bench_finetune import load_animal_mnist
from skorch import NeuralNetClassifier
from skorch.callbacks import Freezer
from torch import nn

from sktransfer import FineTunedClassifier, load_backbone
from sktransfer.images import ImageDataset, check_images, normalize_batch

RESULTS = Path(__file__).parent / "results"
N, EPOCHS, SIZE = 512, 10, 224


def data():
    import animal_mnist  # noqa: F401  (fails early with a hint if missing)

    Xtr, ytr, Xte, yte, _ = load_animal_mnist()
    X = np.concatenate([Xtr, Xte])
    y = np.concatenate([ytr, yte])
    idx = np.random.RandomState(0).permutation(len(X))
    return X[idx[:N]], y[idx[:N]], X[idx[N : 2 * N]], y[idx[N : 2 * N]]


def preprocess(X, preprocessing):
    ds = ImageDataset(check_images(X), preprocessing)
    batch = torch.stack([ds[i] for i in range(len(ds))])
    return normalize_batch(batch, preprocessing).numpy()


class TrunkHead(nn.Module):
    def __init__(self, trunk, n_features, n_classes):
        super().__init__()
        self.trunk = trunk
        self.head = nn.Linear(n_features, n_classes)

    def forward(self, x):
        return self.head(self.trunk(x))


class TrunkHeadFrozenBN(TrunkHead):
    """skorch's recipe with the one fix it lacks: the frozen trunk stays in eval mode."""

    def train(self, mode=True):
        super().train(mode)
        self.trunk.eval()
        return self


def main():
    Xtr, ytr, Xte, yte = data()
    rows = []

    clf = FineTunedClassifier(
        "resnet18",
        weights=None,
        freeze="backbone",
        augment=False,
        lr=1e-3,
        max_epochs=EPOCHS,
        batch_size=32,
        random_state=0,
        progress=False,
    )
    start = time.perf_counter()
    clf.fit(Xtr, ytr)
    fit_s = time.perf_counter() - start
    rows.append(
        ("sktransfer fast path", fit_s, float(np.mean(clf.predict(Xte) == yte)))
    )
    print(rows[-1])

    backbone = load_backbone("resnet18", None, random_state=0)
    prep = backbone.preprocessing
    Ptr, Pte = preprocess(Xtr, prep), preprocess(Xte, prep)
    for name, cls in [
        ("skorch NeuralNetClassifier + Freezer", TrunkHead),
        ("same, trunk kept in eval mode (BN fixed)", TrunkHeadFrozenBN),
    ]:
        torch.manual_seed(0)
        module = cls(copy.deepcopy(backbone.trunk), backbone.n_features, 10)
        net = NeuralNetClassifier(
            module,
            criterion=nn.CrossEntropyLoss,  # the module returns logits
            optimizer=torch.optim.AdamW,
            lr=1e-3,
            max_epochs=EPOCHS,
            batch_size=32,
            train_split=None,
            iterator_train__shuffle=True,
            callbacks=[("freezer", Freezer("trunk.*"))],
            verbose=0,
        )
        start = time.perf_counter()
        net.fit(Ptr, ytr.astype(np.int64))
        fit_s = time.perf_counter() - start
        rows.append((name, fit_s, float(np.mean(net.predict(Pte) == yte))))
        print(rows[-1])

    speedup = rows[1][1] / rows[0][1]
    print(
        f"\n{N} images at {SIZE} px, {EPOCHS} epochs, frozen resnet18 (random init), "
        f"CPU threads {torch.get_num_threads()}"
    )
    print(f"| {'recipe':38s} | fit (s) | test accuracy |")
    print(f"|{'-' * 40}|---------|---------------|")
    for name, s, acc in rows:
        print(f"| {name:38s} | {s:7.1f} | {acc:13.3f} |")
    print(
        f"speed-up over skorch's recipe: {speedup:.1f}x; over the BN-fixed one: "
        f"{rows[2][1] / rows[0][1]:.1f}x"
    )
    print(
        f"accuracy: ours {rows[0][2]:.3f}, skorch's recipe {rows[1][2]:.3f}, "
        f"BN-fixed {rows[2][2]:.3f} (difference to ours "
        f"{abs(rows[2][2] - rows[0][2]) * 100:.1f} points)"
    )
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "bench_frozen_speed.json", "w") as f:
        json.dump(
            dict(
                rows=[dict(recipe=n, fit_s=s, accuracy=a) for n, s, a in rows],
                speedup=speedup,
                n=N,
                epochs=EPOCHS,
                image_size=SIZE,
            ),
            f,
            indent=2,
        )


if __name__ == "__main__":
    main()
