"""A model fitted on CUDA, saved in each format, predicts alike on a CPU-only process.

Run by hand on a machine with a GPU (under 2 minutes; nothing is downloaded)::

    python benchmarks/check_cuda_persistence.py

Fits a tiny FineTunedClassifier and a PretrainedFeatureExtractor pipeline
(resnet18, random initialisation, 32 px) with ``device="cuda"``, saves each as
joblib, skops, safetensors and ONNX, then loads every file in a subprocess
with ``CUDA_VISIBLE_DEVICES=""`` and compares its outputs with the outputs
computed on the CPU from the fitted model. Prints one PASS/FAIL line per
check and exits 1 if any fails (2 without CUDA).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import joblib
import numpy as np
import skops.io as sio
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor
from sktransfer.persistence import export_onnx, save_weights

# joblib/skops: identical; ONNX: within 1e-4 (another runtime); safetensors:
# the tensors bit for bit.
CHILD = textwrap.dedent(
    """
    import sys, numpy as np, torch, joblib, skops.io as sio
    assert not torch.cuda.is_available(), "CUDA should be hidden"
    from sktransfer.persistence import trusted_types
    fmt, path, X_path, out = sys.argv[1:]
    X = np.load(X_path)
    if fmt == "safetensors":
        from safetensors.torch import load_file
        state = load_file(path)
        with open(out, "wb") as f:
            np.savez(f, **{k: v.numpy() for k, v in state.items()})
        sys.exit(0)
    if fmt == "onnx":
        import onnxruntime
        session = onnxruntime.InferenceSession(path)
        with open(out, "wb") as f:
            np.save(f, session.run(None, {"images": X})[-1])
        sys.exit(0)
    model = joblib.load(path) if fmt == "joblib" else sio.load(
        path, trusted=trusted_types()
    )
    model.set_params(**{("device" if hasattr(model, "device") else
                         model.steps[0][0] + "__device"): "cpu"})
    with open(out, "wb") as f:
        np.save(f, model.predict_proba(X))
    """
)


def _onnx_input(images, preprocessing):
    from sktransfer.images import ImageDataset, check_images

    data = ImageDataset(check_images(images), preprocessing)
    batch = torch.stack([data[i] for i in range(len(data))])
    return (batch.float() / 255 if batch.dtype == torch.uint8 else batch).numpy()


def main(device="cuda") -> int:
    if device == "cuda" and not torch.cuda.is_available():
        print("FAIL no CUDA device: run this on a GPU machine")
        return 2
    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, (24, 40, 40, 3), np.uint8)
    y = np.array(["a", "b", "c"] * 8)
    common = dict(weights=None, image_size=32, random_state=0, device=device)
    models = {
        "classifier": FineTunedClassifier(
            "resnet18", max_epochs=2, batch_size=8, progress=False, **common
        ).fit(X, y),
        "pipeline": make_pipeline(
            PretrainedFeatureExtractor(
                "resnet18", layer="layer3", progress=False, **common
            ),
            LogisticRegression(max_iter=1000),
        ).fit(X, y),
    }
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
        for name, model in models.items():
            network = model if name == "classifier" else model[0]
            # Saved as fitted: the fine-tuned network lives on the GPU.
            joblib.dump(model, tmp / f"{name}.joblib")
            sio.dump(model, tmp / f"{name}.skops")
            save_weights(model, tmp / f"{name}.safetensors")
            export_onnx(model, tmp / f"{name}.onnx")
            # The reference: the fitted model predicting on the CPU.
            if name == "classifier":
                model.set_params(device="cpu")
            else:
                model.set_params(**{model.steps[0][0] + "__device": "cpu"})
            reference = model.predict_proba(X)
            np.save(tmp / "X.npy", X)
            np.save(tmp / "X_onnx.npy", _onnx_input(X, network.preprocessing_))
            state = (
                network.module_ if name == "classifier" else network.backbone_.trunk
            ).state_dict()
            for fmt in ("joblib", "skops", "safetensors", "onnx"):
                out = tmp / f"{name}.{fmt}.out.npz"
                data = tmp / ("X_onnx.npy" if fmt == "onnx" else "X.npy")
                run = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        CHILD,
                        fmt,
                        str(tmp / f"{name}.{fmt}"),
                        str(data),
                        str(out),
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                if run.returncode != 0:
                    ok, detail = False, run.stderr.strip().splitlines()[-1:]
                elif fmt == "safetensors":
                    saved = np.load(out)
                    ok = set(saved) == set(state) and all(
                        np.array_equal(saved[k], v.cpu().numpy())
                        for k, v in state.items()
                    )
                    detail = f"{len(state)} tensors bit-identical"
                else:
                    got = np.load(out)
                    diff = float(np.abs(got - reference).max())
                    ok = diff < 1e-4 if fmt == "onnx" else diff == 0.0
                    detail = f"max abs diff {diff:.2e}"
                failures += not ok
                print(f"{'PASS' if ok else 'FAIL'} {name} {fmt}: {detail}")
    return 1 if failures else 0


if __name__ == "__main__":
    # "cpu" as the first argument runs the same checks without a GPU.
    sys.exit(main(*sys.argv[1:2]))
