"""Full fine-tuning throughput: our estimators against a hand-written PyTorch loop.

resnet18 (``weights=None``: no download; speed does not depend on the values),
batch 32, ``freeze="none"``, ``augment=False``, AdamW, at 128 and 224 px, in
float32 and bfloat16:

* hand-written: the images preprocessed once into a float32 tensor
  (normalised, channels-last), then ``forward, cross-entropy, backward,
  AdamW step`` per batch, under ``torch.autocast`` for bfloat16;
* ours: ``FineTunedClassifier(freeze="none")`` fitting uint8 arrays of the
  final size, and JPEG files of that size (decoded every epoch);
  ``FineTunedRegressor`` and the multilabel ``FineTunedClassifier`` on the
  uint8 arrays.

Each configuration is warmed up once, then the configurations run one epoch
each, in turn, ``--repeats`` times, so that the load of a shared machine falls
on all of them alike; ours' epoch time is skorch's ``dur`` (the training loop
alone, not the set-up in ``fit``). The table gives images per second (median
and range over the repeats) and ratios taken within each repeat.

``--profile`` first breaks one epoch down: data (decode, resize, collate), the
batch normalisation on the device, forward, backward and the optimizer step,
and what is left of ours' epoch (callbacks, loss weighting, the loop).

Run:  python benchmarks/bench_training_speed.py [--sizes 128 224] [--batches 8]
      [--repeats 3] [--profile] [--threads N]
Writes benchmarks/results/bench_training_speed.json and prints a table.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np
import torch
from _report import arguments, cpu_bf16_units, parse, table, write_json
from PIL import Image
from torch import nn

from sktransfer import FineTunedClassifier, FineTunedRegressor, load_backbone
from sktransfer.images import (
    ImageDataset,
    check_images,
    collate_channels_last,
    normalize_batch,
)

BATCH = 32


def images(n, size, seed=0):
    rng = np.random.RandomState(seed)
    # Smooth random images: JPEG sizes like photos', not like noise.
    small = rng.randint(0, 256, (n, size // 8, size // 8, 3), dtype=np.uint8)
    return np.stack(
        [
            np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR))
            for a in small
        ]
    )


def jpeg_files(X, folder):
    paths = []
    for i, arr in enumerate(X):
        path = os.path.join(folder, f"{i}.jpg")
        Image.fromarray(arr).save(path, quality=90)
        paths.append(path)
    return paths


class HandLoop:
    """The hand-written loop: preloaded normalised tensors, AdamW, autocast."""

    def __init__(self, X, y, size, precision):
        backbone = load_backbone("resnet18", weights=None)
        preprocessing = backbone.preprocessing.with_overrides(size)
        batch = collate_channels_last(
            list(ImageDataset(check_images(X), preprocessing))
        )
        self.X = normalize_batch(batch, preprocessing).contiguous(
            memory_format=torch.channels_last
        )
        self.y = torch.as_tensor(y)
        torch.manual_seed(0)
        self.model = nn.Sequential(
            backbone.trunk, nn.Linear(backbone.n_features, int(self.y.max()) + 1)
        ).to(memory_format=torch.channels_last)
        self.model.train()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        self.dtype = torch.bfloat16 if precision == "bfloat16" else None
        self.times = dict(forward=0.0, backward=0.0, optimizer=0.0)

    def epoch(self):
        start = time.perf_counter()
        for i in range(0, len(self.X), BATCH):
            xb, yb = self.X[i : i + BATCH], self.y[i : i + BATCH]
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(self.dtype)):
                out = self.model(xb)
            loss = nn.functional.cross_entropy(out.float(), yb)
            t1 = time.perf_counter()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            t2 = time.perf_counter()
            self.optimizer.step()
            t3 = time.perf_counter()
            self.times["forward"] += t1 - t0
            self.times["backward"] += t2 - t1
            self.times["optimizer"] += t3 - t2
        return time.perf_counter() - start


class Ours:
    """One of our estimators, fitted for one epoch per call (after a warm-up)."""

    def __init__(self, cls, X, y, size, precision):
        self.X, self.y = X, y
        self.make = lambda: cls(
            "resnet18",
            weights=None,
            freeze="none",
            augment=False,
            image_size=size,
            batch_size=BATCH,
            max_epochs=1,
            precision=precision,
            random_state=0,
            progress=False,
        )

    def epoch(self):
        est = self.make().fit(self.X, self.y)
        return float(est.history_[-1, "dur"])


def profile(X, files, y, size):
    """Seconds per epoch of each step, ours' data path and the hand loop."""
    preprocessing = load_backbone("resnet18", weights=None).preprocessing
    preprocessing = preprocessing.with_overrides(size)
    out = {}
    for name, inputs in (("uint8 arrays", X), ("JPEG files", files)):
        dataset = ImageDataset(check_images(inputs), preprocessing)
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=BATCH, collate_fn=collate_channels_last
        )
        start = time.perf_counter()
        batches = list(loader)
        out[f"data: decode, resize, collate ({name})"] = time.perf_counter() - start
    start = time.perf_counter()
    for batch in batches:
        normalize_batch(batch, preprocessing).contiguous(
            memory_format=torch.channels_last
        )
    out["normalise on the device"] = time.perf_counter() - start
    hand = HandLoop(X, y, size, "float32")
    hand.epoch()  # warm-up
    hand.times = dict.fromkeys(hand.times, 0.0)
    out["hand-written epoch"] = hand.epoch()
    for step, seconds in hand.times.items():
        out[step] = seconds
    ours = Ours(FineTunedClassifier, X, y, size, "float32")
    ours.epoch()
    out["ours: epoch (uint8 arrays)"] = ours.epoch()
    data = out["data: decode, resize, collate (uint8 arrays)"]
    out["ours: rest (loop, callbacks, loss weighting)"] = (
        out["ours: epoch (uint8 arrays)"]
        - data
        - out["normalise on the device"]
        - out["hand-written epoch"]
    )
    return out


def main():
    parser = arguments(__doc__, only=False)
    parser.add_argument("--sizes", nargs="*", type=int, default=[128, 224])
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precisions", nargs="*", default=["float32", "bfloat16"])
    parser.add_argument("--profile", action="store_true")
    args = parse(parser)
    n = BATCH * args.batches
    y = np.arange(n) % 10
    Y = np.eye(10, dtype=np.int64)[y] | np.eye(10, dtype=np.int64)[(y + 3) % 10]
    rows, profiles = [], {}
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            X = images(n, size)
            os.makedirs(f"{folder}/{size}", exist_ok=True)
            files = jpeg_files(X, f"{folder}/{size}")
            if args.profile:
                profiles[size] = profile(X, files, y, size)
                print(f"profile at {size} px, {n} images, float32 (s per epoch):")
                for step, seconds in profiles[size].items():
                    print(f"  {step:48s} {seconds:7.2f}")
            for precision in args.precisions:
                runners = {
                    "hand-written loop": HandLoop(X, y, size, precision),
                    "FineTunedClassifier, uint8": Ours(
                        FineTunedClassifier, X, y, size, precision
                    ),
                    "FineTunedClassifier, JPEG": Ours(
                        FineTunedClassifier, files, y, size, precision
                    ),
                    "FineTunedRegressor, uint8": Ours(
                        FineTunedRegressor, X, y.astype(float), size, precision
                    ),
                    "multilabel classifier, uint8": Ours(
                        FineTunedClassifier, X, Y, size, precision
                    ),
                }
                for runner in runners.values():
                    runner.epoch()  # warm-up
                times = {name: [] for name in runners}
                for _ in range(args.repeats):
                    for name, runner in runners.items():
                        times[name].append(runner.epoch())
                for name, ts in times.items():
                    rate = n / np.array(ts)
                    ratio = np.array(times["hand-written loop"]) / np.array(ts)
                    rows.append(
                        dict(
                            size=size,
                            precision=precision,
                            runner=name,
                            images_per_s=rate.tolist(),
                            vs_hand=ratio.tolist(),
                        )
                    )
                    print(
                        f"{size} px {precision:8s} {name:30s} "
                        f"{np.median(rate):6.1f} img/s ({rate.min():.1f}-"
                        f"{rate.max():.1f}), x{np.median(ratio):.2f} of hand",
                        flush=True,
                    )
    print()
    print(
        f"resnet18, batch {BATCH}, {n} images per epoch, {args.repeats} repeats, "
        f"CPU threads {torch.get_num_threads()}, load average "
        f"{os.getloadavg()[0]:.1f} at the end, CPU bfloat16 units: "
        f"{', '.join(cpu_bf16_units()) or 'none listed'}"
    )
    table(
        [
            ("size", "d"),
            ("precision", "s"),
            ("runner", "s"),
            ("img/s median (range)", "s"),
            ("x hand-written (range)", "s"),
        ],
        [
            (
                r["size"],
                r["precision"],
                r["runner"],
                _spread(r["images_per_s"], ".1f"),
                _spread(r["vs_hand"], ".2f"),
            )
            for r in rows
        ],
    )
    write_json(
        "bench_training_speed",
        rows=rows,
        profiles=profiles,
        batch_size=BATCH,
        images_per_epoch=n,
        repeats=args.repeats,
    )


def _spread(values, fmt):
    return (
        f"{format(np.median(values), fmt)} ({format(min(values), fmt)}-"
        f"{format(max(values), fmt)})"
    )


if __name__ == "__main__":
    main()
