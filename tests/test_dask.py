"""Scaling out on Dask: distributed grid searches and embedding partitions.

The same code runs against a real cluster with ``Client("tcp://scheduler:8786")``
(see docs/user_guide/scaling.rst); here a LocalCluster with two worker
*processes*, so estimators really are pickled to the workers.
"""

import os

import joblib
import numpy as np
import pytest
from _helpers import make_tiny_cnn
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import PretrainedFeatureExtractor

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    # distributed writes its workers' settings (OMP_NUM_THREADS=1, ...) into
    # this process's os.environ; later tests' subprocesses must not inherit them.
    environ = dict(os.environ)
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()
    os.environ.clear()
    os.environ.update(environ)


@pytest.fixture(scope="module")
def images():
    """40 images in two classes that a tiny CNN separates."""
    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    y = np.repeat(["a", "b"], 20)
    X[y == "a", :8] = 0
    X[y == "b", :8] = 255
    return X, y


# Workers run torch with one thread, this process with several: float
# reductions are summed in another order, so scores may differ by a sample.
SCORE_TOLERANCE = 0.06


def _extractor():
    # weights=None re-initialises the module, so it needs a random_state for
    # the workers and this process to build the same network (without one,
    # every fit draws a new network and the scores compared below differ by
    # chance: seen in CI).
    return PretrainedFeatureExtractor(
        make_tiny_cnn(), weights=None, image_size=16, random_state=0, progress=False
    )


def _search_on(client, search, X, y):
    with distributed.get_task_stream(client) as stream:
        with joblib.parallel_backend("dask"):
            search.fit(X, y)
    return len(stream.data)


def test_grid_search_pipeline_on_dask(client, images):
    X, y = images
    pipe = make_pipeline(_extractor(), StandardScaler(), LogisticRegression())
    grid = {"logisticregression__C": [0.1, 1.0]}
    remote = GridSearchCV(pipe, grid, cv=2)
    n_tasks = _search_on(client, remote, X, y)
    assert n_tasks >= 4  # 2 candidates x 2 folds ran on the workers
    local = GridSearchCV(pipe, grid, cv=2).fit(X, y)
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"],
        local.cv_results_["mean_test_score"],
        atol=SCORE_TOLERANCE,
    )
    assert remote.best_estimator_.score(X, y) > 0.9
    # The network fitted on a worker is the one fitted here.
    np.testing.assert_allclose(
        remote.best_estimator_[0].transform(X),
        local.best_estimator_[0].transform(X),
        atol=1e-5,
    )


def test_grid_search_fine_tuned_classifier_on_dask(client, images):
    from sktransfer import FineTunedClassifier

    X, y = images
    clf = FineTunedClassifier(
        make_tiny_cnn(),
        weights=None,
        image_size=16,
        max_epochs=2,
        batch_size=8,
        augment=False,
        random_state=0,
        progress=False,
    )
    grid = {"lr": [1e-3, 1e-2]}
    remote = GridSearchCV(clf, grid, cv=2)
    assert _search_on(client, remote, X, y) >= 4
    local = GridSearchCV(clf, grid, cv=2).fit(X, y)
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"],
        local.cv_results_["mean_test_score"],
        atol=SCORE_TOLERANCE,
    )
    assert len(remote.best_estimator_.history_) == 2


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory, images):
    folder = tmp_path_factory.mktemp("many_images")
    paths = []
    for i, arr in enumerate(images[0][:12]):
        path = folder / f"{i:03d}.png"
        Image.fromarray(arr).save(path)
        paths.append(str(path))
    return paths


def test_embed_partitions_with_bag(client, image_paths):
    import dask.bag as db

    extractor = _extractor().fit(image_paths[:1])
    bag = db.from_sequence(image_paths, npartitions=3)
    parts = bag.map_partitions(lambda part: [extractor.transform(list(part))])
    features = np.concatenate(parts.compute())
    np.testing.assert_allclose(features, extractor.transform(image_paths), atol=1e-5)


def test_embed_partitions_with_dataframe(client, image_paths):
    dd = pytest.importorskip("dask.dataframe")
    import pandas as pd

    extractor = _extractor().fit(image_paths[:1])
    columns = extractor.get_feature_names_out().tolist()

    def embed(frame):
        features = extractor.transform(frame["path"].tolist())
        return pd.DataFrame(features, columns=columns, index=frame.index)

    frame = dd.from_pandas(pd.DataFrame({"path": image_paths}), npartitions=2)
    meta = pd.DataFrame({c: pd.Series(dtype="float32") for c in columns})
    features = frame.map_partitions(embed, meta=meta).compute()
    assert list(features.index) == list(range(len(image_paths)))
    np.testing.assert_allclose(
        features.to_numpy(), extractor.transform(image_paths), atol=1e-5
    )
