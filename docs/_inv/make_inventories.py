"""Write the small offline intersphinx inventories under docs/_inv/.

Sphinx cannot download ``objects.inv`` files without internet, and a failed
download is a warning (fatal under ``-W``). These inventories list only the
upstream names that sktransfer's pages and docstrings refer to, each with its
real URL in the upstream documentation, so links work while the build never
touches the network. Run ``python docs/_inv/make_inventories.py`` after adding
a name below.
"""

from pathlib import Path

import sphobjinv as soi

HERE = Path(__file__).parent

# project: (version, [(name, domain:role, relative URI), ...]); every "$" in a URI
# stands for the name and is expanded before writing.
INVENTORIES = {
    "python": (
        "3",
        [
            ("pathlib.Path", "py:class", "library/pathlib.html#$"),
            ("ValueError", "py:exception", "library/exceptions.html#$"),
            ("TypeError", "py:exception", "library/exceptions.html#$"),
            ("UserWarning", "py:exception", "library/exceptions.html#$"),
            ("FileNotFoundError", "py:exception", "library/exceptions.html#$"),
            ("NotADirectoryError", "py:exception", "library/exceptions.html#$"),
            ("str", "py:class", "library/stdtypes.html#$"),
            ("int", "py:class", "library/functions.html#$"),
            ("float", "py:class", "library/functions.html#$"),
            ("bool", "py:class", "library/functions.html#$"),
            ("dict", "py:class", "library/stdtypes.html#$"),
            ("list", "py:class", "library/stdtypes.html#$"),
            ("tuple", "py:class", "library/stdtypes.html#$"),
            ("collections.abc.Sequence", "py:class", "library/collections.abc.html#$"),
        ],
    ),
    "numpy": (
        "2",
        [
            ("numpy.ndarray", "py:class", "reference/generated/$.html#$"),
            ("numpy.reshape", "py:function", "reference/generated/$.html#$"),
            ("numpy.random.RandomState", "py:class", "reference/random/legacy.html#$"),
        ],
    ),
    "sklearn": (
        "1.9",
        [
            (name, role, "modules/generated/$.html#$")
            for name, role in [
                ("sklearn.pipeline.Pipeline", "py:class"),
                ("sklearn.pipeline.make_pipeline", "py:function"),
                ("sklearn.model_selection.GridSearchCV", "py:class"),
                ("sklearn.model_selection.cross_val_score", "py:function"),
                ("sklearn.model_selection.KFold", "py:class"),
                ("sklearn.model_selection.StratifiedKFold", "py:class"),
                ("sklearn.linear_model.LogisticRegression", "py:class"),
                ("sklearn.neighbors.NearestCentroid", "py:class"),
                ("sklearn.preprocessing.StandardScaler", "py:class"),
                ("sklearn.preprocessing.Normalizer", "py:class"),
                ("sklearn.datasets.fetch_openml", "py:function"),
                ("sklearn.metrics.make_scorer", "py:function"),
                ("sklearn.metrics.ConfusionMatrixDisplay", "py:class"),
                ("sklearn.base.BaseEstimator", "py:class"),
                ("sklearn.base.clone", "py:function"),
                ("sklearn.utils.estimator_checks.check_estimator", "py:function"),
            ]
        ],
    ),
    "torch": (
        "2",
        [
            ("torch.nn.Module", "py:class", "generated/$.html#$"),
            ("torch.Tensor", "py:class", "tensors.html#$"),
            ("torch.device", "py:class", "tensor_attributes.html#$"),
            ("torch.load", "py:function", "generated/$.html#$"),
            ("torch.autocast", "py:class", "amp.html#$"),
            ("torch.compile", "py:function", "generated/$.html#$"),
            ("torch.optim.AdamW", "py:class", "generated/$.html#$"),
            ("torch.utils.data.Dataset", "py:class", "data.html#$"),
            ("torch.utils.data.DataLoader", "py:class", "data.html#$"),
            ("torch.Generator", "py:class", "generated/$.html#$"),
        ],
    ),
    "skorch": (
        "1.4",
        [
            ("skorch.NeuralNet", "py:class", "net.html#skorch.net.NeuralNet"),
            ("skorch.net.NeuralNet", "py:class", "net.html#$"),
            (
                "skorch.NeuralNetClassifier",
                "py:class",
                "classifier.html#skorch.classifier.NeuralNetClassifier",
            ),
            ("skorch.History", "py:class", "history.html#skorch.history.History"),
            ("skorch.history.History", "py:class", "history.html#$"),
            ("skorch.callbacks.Callback", "py:class", "callbacks.html#$"),
            ("skorch.callbacks.EarlyStopping", "py:class", "callbacks.html#$"),
            ("skorch.callbacks.Freezer", "py:class", "callbacks.html#$"),
            ("skorch.callbacks.LRScheduler", "py:class", "callbacks.html#$"),
        ],
    ),
    "joblib": (
        "1.5",
        [
            ("joblib.Memory", "py:class", "generated/$.html#$"),
            ("joblib.dump", "py:function", "generated/$.html#$"),
            ("joblib.load", "py:function", "generated/$.html#$"),
            ("joblib.parallel_backend", "py:class", "generated/$.html#$"),
        ],
    ),
    "dask": (
        "2026",
        [
            ("dask.bag.from_sequence", "py:function", "generated/$.html#$"),
            ("dask.bag.Bag.map_partitions", "py:method", "generated/$.html#$"),
            ("dask.delayed", "py:function", "delayed-api.html#$"),
        ],
    ),
    "distributed": (
        "2026",
        [
            ("distributed.Client", "py:class", "api.html#$"),
            ("distributed.LocalCluster", "py:class", "api.html#$"),
        ],
    ),
}


def main():
    for project, (version, entries) in INVENTORIES.items():
        inv = soi.Inventory()
        inv.project, inv.version = project, version
        for name, role, uri in entries:
            uri = uri.replace("$", name)  # expanded here; sphobjinv re-contracts
            domain, role = role.split(":")
            inv.objects.append(
                soi.DataObjStr(
                    name=name,
                    domain=domain,
                    role=role,
                    priority="1",
                    uri=uri,
                    dispname="-",
                )
            )
        soi.writebytes(
            HERE / f"{project}.inv", soi.compress(inv.data_file(contract=True))
        )


if __name__ == "__main__":
    main()
