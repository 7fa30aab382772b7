"""What every benchmark script shares: its command line, its table, its JSON."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def arguments(doc, *, only=True):
    """A parser with ``--threads`` (and ``--only``); parse with :func:`parse`."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if only:
        parser.add_argument("--only", nargs="*", help="substrings of row names")
    parser.add_argument("--threads", type=int, default=None)
    return parser


def parse(parser):
    """Parse the command line and apply ``--threads``."""
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def selected(models, only):
    """The ``(name, factory)`` items of ``models`` whose name ``--only`` names."""
    return [(k, v) for k, v in models.items() if not only or any(s in k for s in only)]


def fit_predict(make, X, y, X_test):
    """Predictions on ``X_test`` of ``make()`` fitted on ``X, y``, and the seconds."""
    start = time.perf_counter()
    pred = make().fit(X, y).predict(X_test)
    return pred, round(time.perf_counter() - start, 1)


def table(columns, rows):
    """Print a Markdown table: ``columns`` are ``(header, format)`` pairs."""
    cells = [
        [format(value, fmt) for value, (_, fmt) in zip(row, columns, strict=True)]
        for row in rows
    ]
    widths = [
        max([len(header)] + [len(r[i]) for r in cells])
        for i, (header, _) in enumerate(columns)
    ]
    line = "| " + " | ".join(
        h.ljust(w) for (h, _), w in zip(columns, widths, strict=True)
    )
    print(line + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print(
            "| "
            + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
            + " |"
        )


def cpu_bf16_units():
    """The CPU's bfloat16 flags (``amx_bf16``, ``avx512_bf16``), as Linux lists them.

    bfloat16 training speed depends on them (see the fine-tuning guide's
    *Training speed*). Empty where ``/proc/cpuinfo`` is missing or lists neither.
    """
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return []
    return sorted({"amx_bf16", "avx512_bf16"} & set(flags.split()))


def write_json(name, **data):
    """Write ``results/<name>.json`` with the machine's facts added."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}.json"
    data.update(
        threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
        load_average=os.getloadavg(),
        cpu_bf16_units=cpu_bf16_units(),
    )
    out.write_text(json.dumps(data, indent=2))
    print(f"wrote {out}")
    return out
