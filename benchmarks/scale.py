"""Refresh latency at app scale: after one new label, how long until counts (and the map) are up to date?

    python -m benchmarks.scale [--n 10000]

Builds a folder of N PNGs from ``../shared/datasets/mnist_a.npz`` (digits, shifted copies when N > 5,000), imports
it, labels 10 per class, runs the first full refresh (representation, kNN graph, propagation, UMAP map), then times
the steps a label triggers: store one label, re-propagate (warm start, cached graph and map), export.
Results go to ``benchmarks/results/scale.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from labeler.config import Settings
from labeler.workflow import export
from labeler.workflow.refresh import refresh
from labeler.workflow.workspace import Workspace

DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist_a.npz"
RESULTS = Path(__file__).resolve().parent / "results" / "scale.md"


def _write_images(root: Path, n: int) -> dict[str, str]:
    data = np.load(DATASET)
    images, labels, names = data["images"], data["labels"], data["class_names"]
    truth = {}
    for i in range(n):
        image = images[i % len(images)]
        if i >= len(images):  # a shifted copy, so no two files are identical
            image = np.roll(image, shift=(i // len(images), 1), axis=(0, 1))
        path = f"img_{i:06d}.png"
        Image.fromarray(image).save(root / path)
        truth[path] = str(names[labels[i % len(images)]])
    return truth


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        root.mkdir()
        truth, t_write = _timed(_write_images, root, args.n)
        ws = Workspace.open(Settings(root))
        _, t_import = _timed(ws.import_folder)
        seeds: dict[str, list[str]] = {}
        for path, name in truth.items():
            seeds.setdefault(name, [])
            if len(seeds[name]) < 10:
                seeds[name].append(path)
        ws.store.label_paths([(p, name) for name, paths in seeds.items() for p in paths], "bench")
        _, t_first = _timed(refresh, ws, compute_map=True)
        # The steps one click triggers.
        record = ws.records()[123]
        _, t_label = _timed(ws.store.label, record.id, ws.classes()[0].id, "bench")
        state, t_refresh = _timed(refresh, ws, compute_map=True)
        _, t_refresh2 = _timed(refresh, ws, compute_map=True)
        frame, t_export = _timed(export.export_frame, ws, state=state)
        correct = np.mean([state.label_names()[i] == truth[p] for i, p in enumerate(state.paths)
                           if state.source[i] == "propagated"])
    lines = [
        f"# Refresh latency at app scale ({dt.date.today().isoformat()})",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}. N = {args.n} MNIST-derived PNGs, 10 human labels per class, "
        f"representation {state.representation}.",
        "",
        "| step | seconds |",
        "| --- | --- |",
        f"| write PNGs (setup) | {t_write:.2f} |",
        f"| import (scan, hash, decode, caches) | {t_import:.2f} |",
        f"| first refresh (PCA, kNN graph, propagation, UMAP map) | {t_first:.2f} |",
        f"| store one label | {t_label * 1000:.1f} ms |",
        f"| refresh after one label (warm start, cached graph and map) | {t_refresh:.2f} |",
        f"| refresh again | {t_refresh2:.2f} |",
        f"| export frame ({len(frame)} rows) | {t_export:.2f} |",
        "",
        f"Accuracy of the {int(np.sum(state.source == 'propagated'))} propagated labels: {correct:.3f}.",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
