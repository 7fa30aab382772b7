"""Persistence: joblib round trips in a fresh process, offline and without CUDA."""

import os
import subprocess
import sys
import textwrap

import joblib
import numpy as np
from _helpers import make_tiny_cnn
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from sktransfer import PretrainedFeatureExtractor


def _load_in_fresh_process(model_path, data_path, method):
    """Load with no network, no GPU, no torch hub cache, and print the outputs' path."""
    out = model_path.with_suffix(".out.npy")
    code = textwrap.dedent(
        f"""
        import joblib, numpy as np, socket
        def _no_network(*args, **kwargs):
            raise OSError("network disabled in this test")
        socket.socket.connect = _no_network
        model = joblib.load({str(model_path)!r})
        X = np.load({str(data_path)!r})
        np.save({str(out)!r}, np.asarray(getattr(model, {method!r})(X)))
        """
    )
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "TORCH_HOME": str(model_path.parent / "empty_torch_home"),
        # a user's own nn.Module class must be importable where the file is loaded
        "PYTHONPATH": os.pathsep.join([os.getcwd(), os.path.dirname(__file__)]),
    }
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)
    return np.load(out)


def test_extractor_round_trip_in_fresh_process(rgb_images, tmp_path):
    ext = PretrainedFeatureExtractor(
        "resnet18", weights=None, image_size=32, random_state=0, progress=False
    )
    ref = ext.fit_transform(rgb_images)
    joblib.dump(ext, tmp_path / "ext.joblib")
    np.save(tmp_path / "X.npy", rgb_images)
    assert (tmp_path / "ext.joblib").stat().st_size < 60e6  # resnet18's 11.7 M floats
    np.testing.assert_array_equal(
        _load_in_fresh_process(
            tmp_path / "ext.joblib", tmp_path / "X.npy", "transform"
        ),
        ref,
    )


def test_pipeline_round_trip_in_fresh_process(rgb_images, tmp_path):
    y = np.array(["a", "b", "c"] * 4)
    pipe = make_pipeline(
        PretrainedFeatureExtractor(make_tiny_cnn(), image_size=16, progress=False),
        LogisticRegression(),
    ).fit(rgb_images, y)
    ref = pipe.predict_proba(rgb_images)
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    np.save(tmp_path / "X.npy", rgb_images)
    np.testing.assert_array_equal(
        _load_in_fresh_process(
            tmp_path / "pipe.joblib", tmp_path / "X.npy", "predict_proba"
        ),
        ref,
    )


def test_clone_gives_unfitted_equal_params():
    ext = PretrainedFeatureExtractor(
        "resnet18", weights=None, layer="layer3", batch_size=4
    )
    twin = clone(ext)
    assert twin.get_params()["layer"] == "layer3" and not hasattr(twin, "backbone_")
