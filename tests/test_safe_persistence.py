"""Safe persistence: skops files, safetensors weights, ONNX export, model cards."""

import hashlib
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
import torch
from _helpers import fresh_process_env, make_tiny_cnn
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import (
    DiscriminativeWeighter,
    FineTunedClassifier,
    ImportanceWeightedClassifier,
    ImportanceWeightedRegressor,
    KLIEPWeighter,
    KMMWeighter,
    PretrainedFeatureExtractor,
    ULSIFWeighter,
)
from sktransfer._portable import (
    PORTABLE_KEY,
    optimizer_from_name,
    rebuild_backbone,
    tensors_from_bytes,
)
from sktransfer.backbones import load_state_dict_file
from sktransfer.images import ImageDataset, check_images
from sktransfer.persistence import (
    export_onnx,
    model_card,
    save_weights,
    trusted_types,
    weights_digest,
)

DOCS = Path(__file__).parents[1] / "docs" / "user_guide" / "persistence.rst"


def _extractor(**kwargs):
    params = dict(weights=None, image_size=32, random_state=0, progress=False)
    return PretrainedFeatureExtractor("resnet18", **{**params, **kwargs})


def _classifier(**kwargs):
    params = dict(weights=None, image_size=32, max_epochs=2, batch_size=4)
    params.update(random_state=0, progress=False, early_stopping=True)
    params.update(validation_fraction=0.34)
    return FineTunedClassifier("resnet18", **{**params, **kwargs})


@pytest.fixture(scope="module")
def labels():
    return np.array(["a", "b", "c"] * 4)


@pytest.fixture(scope="module")
def images():
    return np.random.RandomState(0).randint(0, 256, (12, 40, 44, 3), np.uint8)


@pytest.fixture(scope="module")
def fitted_classifier(images, labels):
    """A FineTunedClassifier with a validation history (don't refit)."""
    return _classifier().fit(images, labels)


@pytest.fixture(scope="module")
def fitted_pipeline(images, labels):
    """Extractor tapped at layer3 + scaler + logistic regression (don't refit)."""
    return make_pipeline(
        _extractor(layer="layer3"), StandardScaler(), LogisticRegression()
    ).fit(images, labels)


def _domains(n=60, seed=0):
    rng = np.random.RandomState(seed)
    X = np.r_[rng.randn(n, 2), rng.randn(n, 2) + 0.7]
    domain = np.r_[np.ones(n), -np.ones(n)].astype(int)
    y_class = np.r_[(X[:n, 0] > 0).astype(int), -np.ones(n, int)]
    y_reg = np.r_[X[:n, 0] * 2.0, np.full(n, np.nan)]
    return X, domain, y_class, y_reg


def _load_outputs_in_fresh_process(cases, tmp_path):
    """Load each ``{name: (file, method, X file)}`` in a new process; outputs."""
    code = textwrap.dedent(
        """
        import socket, sys, numpy as np, skops.io as sio, torch
        def _no_network(*args, **kwargs):
            raise OSError("network disabled in this test")
        socket.socket.connect = _no_network
        assert not torch.cuda.is_available()
        from sktransfer.persistence import trusted_types
        for line in sys.stdin.read().splitlines():
            name, path, method, data, out = line.split("\\t")
            model = sio.load(path, trusted=trusted_types())
            np.save(out, np.asarray(getattr(model, method)(np.load(data))))
        """
    )
    lines = []
    for name, (path, method, data) in cases.items():
        lines.append("\t".join([name, str(path), method, str(data)]))
        lines[-1] += f"\t{tmp_path / (name + '.out.npy')}"
    subprocess.run(
        [sys.executable, "-c", code],
        input="\n".join(lines),
        text=True,
        check=True,
        env=fresh_process_env(tmp_path),
        timeout=600,
    )
    return {name: np.load(tmp_path / (name + ".out.npy")) for name in cases}


# ------------------------------------------------------------------- skops
def test_skops_round_trip_in_fresh_process_without_cuda(
    images, labels, fitted_classifier, fitted_pipeline, lite0_weights, tmp_path
):
    X, domain, y_class, y_reg = _domains()
    lite0 = PretrainedFeatureExtractor(
        "timm:tf_efficientnet_lite0",
        weights=lite0_weights,
        image_size=32,
        # Two streams agree with one only to float rounding, and depend on
        # this process's thread history (see ``streams``): bit-for-bit
        # equality across processes needs one.
        streams=1,
        progress=False,
    )
    objects = {
        "extractor": (_extractor(layer="layer2", pooling="avgmax"), "transform"),
        "lite0": (lite0, "transform"),
        "classifier": (fitted_classifier, "predict_proba"),
        "pipeline": (fitted_pipeline, "predict_proba"),
    }
    for cls in (DiscriminativeWeighter, KLIEPWeighter, ULSIFWeighter, KMMWeighter):
        weighter = cls() if cls is KMMWeighter else cls(random_state=0)
        objects[cls.__name__] = (
            weighter.fit(X, sample_domain=domain),
            "compute_weights",
        )
    objects["iw_classifier"] = (
        ImportanceWeightedClassifier(
            LogisticRegression(), weighter=KLIEPWeighter(random_state=0)
        ).fit(X, y_class, sample_domain=domain),
        "predict_proba",
    )
    objects["iw_regressor"] = (
        ImportanceWeightedRegressor(Ridge()).fit(X, y_reg, sample_domain=domain),
        "predict",
    )
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "rows.npy", X)
    cases, expected = {}, {}
    for name, (model, method) in objects.items():
        on_rows = name.startswith("iw_") or name.endswith("Weighter")
        data = "rows.npy" if on_rows else "images.npy"
        if name in ("extractor", "lite0"):
            model.fit(images)
        inputs = np.load(tmp_path / data)
        expected[name] = np.asarray(getattr(model, method)(inputs))
        path = tmp_path / f"{name}.skops"
        sio.dump(model, path)
        untrusted = sio.get_untrusted_types(file=path)
        assert untrusted and set(untrusted) <= set(trusted_types()), untrusted
        cases[name] = (path, method, tmp_path / data)
    loaded = _load_outputs_in_fresh_process(cases, tmp_path)
    for name, output in loaded.items():
        np.testing.assert_array_equal(output, expected[name], err_msg=name)


def test_skops_round_trip_keeps_parameters_history_and_state(fitted_classifier):
    clf = fitted_classifier
    twin = sio.loads(sio.dumps(clf), trusted=trusted_types())
    assert twin.get_params(deep=False) == clf.get_params(deep=False)
    assert twin.history_.to_list() == clf.history_.to_list()
    assert twin.net_.history is twin.history_ and "valid_acc" in twin.history_[-1]
    assert twin.layer_groups_ == clf.layer_groups_
    np.testing.assert_array_equal(twin.classes_, clf.classes_)
    assert PORTABLE_KEY not in vars(twin)
    for (key, a), b in zip(
        clf.module_.state_dict().items(),
        twin.module_.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b), key
    assert not twin.module_.training


def test_untrusted_types_are_the_documented_list(fitted_pipeline, fitted_classifier):
    documented = re.findall(r"^\s*- ``(sktransfer\.[\w.]+)``", DOCS.read_text(), re.M)
    assert documented == trusted_types()
    found = set()
    for model in (fitted_pipeline, fitted_classifier, _extractor()):
        found |= set(sio.get_untrusted_types(data=sio.dumps(model)))
    assert found <= set(documented)
    assert not any("torch" in t or "skorch" in t for t in found)


def test_joblib_pickles_exactly_as_before(fitted_classifier):
    state = fitted_classifier.__reduce_ex__(4)[2]
    assert type(state["net_"]).__name__ == "FineTuneNet"
    assert PORTABLE_KEY not in state
    twin = pickle.loads(pickle.dumps(fitted_classifier))
    assert type(twin.net_).__name__ == "FineTuneNet"
    ext = _extractor().fit(np.zeros((2, 8, 8, 3), np.uint8))
    assert type(pickle.loads(pickle.dumps(ext)).backbone_).__name__ == "FrozenNetwork"


class Marker:
    """A type whose construction from a file would write a marker file."""

    path = None

    def __setstate__(self, state):
        Path(state["path"]).write_text("code ran")


def test_crafted_file_with_an_untrusted_type_is_refused(tmp_path):
    marker = tmp_path / "marker"
    evil = Marker()
    evil.__dict__["path"] = str(marker)
    ext = _extractor()
    ext.note = evil  # an extra attribute: saved through __getstate__
    path = tmp_path / "evil.skops"
    sio.dump(ext, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert "test_safe_persistence.Marker" in untrusted
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException, match="Marker"):
        sio.load(path, trusted=trusted_types())
    assert not marker.exists()
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException, match="Marker"):
        sio.load(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "params, match",
    [
        ({"model": make_tiny_cnn()}, "own torch.nn.Module.*cannot be rebuilt.*joblib"),
        ({"optimizer": type("MyAdam", (torch.optim.Adam,), {})}, "not a torch.optim"),
        ({"callbacks": [("x", object())]}, "callbacks=.*joblib"),
        ({"augment": lambda image: image}, "augment=.*joblib"),
    ],
)
def test_code_cannot_go_into_a_portable_file(params, match):
    estimator = FineTunedClassifier(**params)
    with pytest.raises(TypeError, match=match):
        sio.dumps(estimator)


def test_extractor_of_own_module_points_at_joblib():
    with pytest.raises(TypeError, match="joblib.dump"):
        sio.dumps(PretrainedFeatureExtractor(make_tiny_cnn()))


def test_portable_state_errors():
    state = _extractor().__getstate__()
    state[PORTABLE_KEY]["format"] = 99
    with pytest.raises(ValueError, match="portable format 99"):
        PretrainedFeatureExtractor.__new__(PretrainedFeatureExtractor).__setstate__(
            state
        )
    with pytest.raises(ValueError, match="not a torch.optim optimizer"):
        optimizer_from_name("Optimizer_")
    with pytest.raises(ValueError, match="cannot be read as safetensors"):
        tensors_from_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="do not fit the architecture 'resnet18'"):
        rebuild_backbone("resnet18", {"conv1.weight": torch.zeros(1)})


def test_torch_device_parameter_is_saved_as_text():
    twin = sio.loads(
        sio.dumps(_extractor(device=torch.device("cpu"))), trusted=trusted_types()
    )
    assert twin.device == "cpu"


# ------------------------------------------------------------- safetensors
def test_safetensors_weights_out_and_in_bit_identical(images, tmp_path):
    from safetensors.torch import load_file

    ext = _extractor(layer="layer3")
    ref = ext.fit_transform(images)
    path = tmp_path / "backbone.safetensors"
    digest = save_weights(ext, path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == weights_digest(ext)
    saved = load_file(path)
    state = ext.backbone_.trunk.state_dict()
    assert list(saved) == sorted(state) or set(saved) == set(state)
    assert all(torch.equal(saved[k], state[k]) for k in state)
    # weights= takes the file back: the same network, the same features.
    again = _extractor(
        layer="layer3",
        weights=path,
        mean=ext.preprocessing_.mean,
        std=ext.preprocessing_.std,
    )
    np.testing.assert_array_equal(again.fit_transform(images), ref)
    save_weights(ext, tmp_path / "again.safetensors")
    assert (tmp_path / "again.safetensors").read_bytes() == path.read_bytes()


def test_fine_tuned_weights_layout(fitted_classifier, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = tmp_path / "clf.safetensors"
    save_weights(fitted_classifier, path)
    saved = load_file(path)
    state = fitted_classifier.module_.state_dict()
    assert set(saved) == set(state) and {"head.1.weight", "head.1.bias"} <= set(saved)
    assert all(torch.equal(saved[k], state[k]) for k in state)
    with safe_open(str(path), "pt") as f:
        assert '"layout": "fine-tuned"' in f.metadata()["sktransfer"]
    # As weights=, the file gives the fine-tuned backbone.
    trunk = load_state_dict_file(path)
    assert all(
        torch.equal(trunk[k[6:]], v) for k, v in state.items() if k[:6] == "trunk."
    )
    assert not any(k.startswith(("trunk.", "head.")) for k in trunk)


def test_save_weights_needs_a_network():
    with pytest.raises(TypeError, match="holds no sktransfer network"):
        save_weights(make_pipeline(StandardScaler()), "x.safetensors")


# -------------------------------------------------------------------- ONNX
def _onnx_input(images, model):
    """The resize and crop the caller does: float32 (n, 3, S, S) in [0, 1]."""
    data = ImageDataset(check_images(images), model.preprocessing_)
    batch = torch.stack([data[i] for i in range(len(data))])
    return (batch.float() / 255 if batch.dtype == torch.uint8 else batch).numpy()


def _modes(module):
    return [
        (m.training, [p.requires_grad for p in m.parameters(recurse=False)])
        for m in module.modules()
    ]


def test_onnx_extractor_with_module_tap_and_pooling(images, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    ext = _extractor(layer="layer3", pooling="avgmax")
    ref = ext.fit_transform(images)
    trunk = ext.backbone_.trunk
    modes, tensors = (
        _modes(trunk),
        {k: v.clone() for k, v in trunk.state_dict().items()},
    )
    export_onnx(ext, tmp_path / "ext.onnx")
    assert _modes(trunk) == modes  # the shared trunk keeps every mode
    assert all(torch.equal(v, tensors[k]) for k, v in trunk.state_dict().items())
    session = ort.InferenceSession(str(tmp_path / "ext.onnx"))
    for batch in (slice(0, 12), slice(0, 5), slice(3, 4)):  # dynamic batch size
        out = session.run(None, {"images": _onnx_input(images[batch], ext)})[0]
        assert np.abs(out - ref[batch]).max() < 1e-4
    np.testing.assert_array_equal(ext.transform(images), ref)


def test_onnx_classifier_gives_predict_proba(images, fitted_classifier, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    export_onnx(fitted_classifier, tmp_path / "clf.onnx")
    session = ort.InferenceSession(str(tmp_path / "clf.onnx"))
    (proba,) = session.run(None, {"images": _onnx_input(images, fitted_classifier)})
    assert np.abs(proba - fitted_classifier.predict_proba(images)).max() < 1e-4


def test_onnx_whole_pipeline_as_in_the_user_guide(images, fitted_pipeline, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pipe = fitted_pipeline
    export_onnx(pipe, tmp_path / "pipeline.onnx")
    session = ort.InferenceSession(str(tmp_path / "pipeline.onnx"))
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    label, proba = session.run(None, {"images": _onnx_input(images, pipe[0])})
    assert np.abs(proba - pipe.predict_proba(images)).max() < 1e-4
    np.testing.assert_array_equal(label, pipe.predict(images))


def test_onnx_export_errors(fitted_classifier):
    with pytest.raises(TypeError, match="first step is a PretrainedFeatureExtractor"):
        export_onnx(make_pipeline(StandardScaler(), fitted_classifier), "x.onnx")
    with pytest.raises(TypeError, match="holds no sktransfer network"):
        export_onnx(LogisticRegression(), "x.onnx")


# -------------------------------------------------------------- model card
def test_model_card_lists_classes_digest_and_scores(fitted_classifier, tmp_path):
    card = model_card(
        fitted_classifier, n_train=12, scores={"held-out accuracy": 0.5}, date="D"
    )
    save_weights(fitted_classifier, tmp_path / "w.safetensors")
    digest = hashlib.sha256((tmp_path / "w.safetensors").read_bytes()).hexdigest()
    assert f"| Trained weights SHA-256 | `{digest}` |" in card
    assert "| Classes | a, b, c |" in card
    assert "| Training images | 12 |" in card
    assert "- held-out accuracy: 0.5" in card
    assert re.search(r"- valid_acc \(epoch 2\): \d\.\d{4}", card)
    assert "| Image size | 32 (resize 37, bilinear) |" in card
    assert f"- torch {torch.__version__.split('+')[0]}" in card
    assert "Date: D" in card


# ------------------------------------------------------------------ MLflow
def test_mlflow_default_format_round_trip(fitted_pipeline, images, tmp_path):
    mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
    path = tmp_path / "model"
    # MLflow 3's default format is skops; it records the types to trust.
    mlflow_sklearn.save_model(
        fitted_pipeline,
        str(path),
        skops_trusted_types=trusted_types(),
        pip_requirements=["sktransfer"],  # no requirement inference (a subprocess)
    )
    assert "skops" in (path / "MLmodel").read_text()
    loaded = mlflow_sklearn.load_model(str(path))
    np.testing.assert_array_equal(
        loaded.predict_proba(images), fitted_pipeline.predict_proba(images)
    )
