"""Time and peak memory of every step at 10,000 to 100,000 images, each step in its own process.

    python -m benchmarks.scale --n 100000            # 10k, 30k and 100k (every size in --sizes up to --n)
    python -m benchmarks.scale --sizes 2000 --out /tmp/scale.md   # a quick look

Builds N 28x28 PNGs like MNIST digits (``../shared/datasets/mnist_a.npz`` tiled with noise, so no two files are
equal; synthetic digits-like blobs when the file is absent), then runs the steps one after the other, each as
``python -m benchmarks.scale --step NAME`` in a fresh process: the parent reads the child's peak resident memory
from ``os.wait4`` (``ru_maxrss`` of that child alone, file pages it mapped included) and the child reports the time
of the step itself (interpreter and imports excluded). Steps: import; re-import after one file changed; the instant
representation (pixels -> PCA); a short SimCLR training (setup, 15 s); embedding with the small encoder; embedding
with the pretrained backbone (on generated 640x480 colour JPEGs, a fixed sample); kNN graphs; propagation
(the first refresh: representation choice and label spreading); the UMAP map; export; the cheap reads pages poll
with; and label -> refreshed counts through the app's own path (``JobRunner.request_refresh`` then ``wait``).
Results go to ``benchmarks/results/scale.md`` (or ``--out``); ``--steps import,reimport,propagate,label`` reruns some;
``--steps import,reimport-append,reimport-insert`` times re-imports that add 100 files after every other name (rows
appended in place) and in the middle (caches copied).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import importlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared" / "datasets" / "mnist_a.npz"
RESULTS = ROOT / "benchmarks" / "results" / "scale.md"
SEEDS_PER_CLASS = 10
PRETRAINED_SAMPLE = 1000  # photos embedded by the pretrained backbone
PHOTO_SIZE = (640, 480)  # of the generated photos (width, height)


# ---------------------------------------------------------------------------------------------- data
def _digits() -> tuple[np.ndarray, list[str]]:
    """(images (M, 28, 28) uint8, class name of each)."""
    if DATASET.is_file():
        data = np.load(DATASET)
        return data["images"], [str(data["class_names"][label]) for label in data["labels"]]
    rng = np.random.default_rng(0)  # ten kinds of blob, so that propagation has something to find
    images = np.zeros((1000, 28, 28), dtype=np.uint8)
    yy, xx = np.mgrid[:28, :28]
    names = []
    for i in range(1000):
        c = i % 10
        cy, cx = 8 + 12 * (c // 5) + rng.normal(0, 1.5), 4 + 5 * (c % 5) + rng.normal(0, 1.5)
        images[i] = np.clip(255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18), 0, 255)
        names.append(str(c))
    return images, names


def write_pool(folder: Path, n: int) -> dict[str, str]:
    """N shifted, noisy copies of the digits as PNGs in ``folder``; returns {file name: true class}."""
    images, names = _digits()
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i in range(n):
        # Shifted by up to 2 pixels and noisy: copies of one digit are neighbours, not a clique of near-duplicates.
        base = np.roll(images[i % len(images)], tuple(rng.integers(-2, 3, size=2)), axis=(0, 1)).astype(np.int16)
        noisy = np.clip(base + rng.integers(-12, 13, size=base.shape), 0, 255).astype(np.uint8)
        name = f"img_{i:06d}.png"
        Image.fromarray(noisy).save(folder / name, optimize=False, compress_level=1)
        truth[name] = names[i % len(images)]
    (folder / "truth.json").write_text(json.dumps(truth))
    return truth


def link_subset(pool: Path, root: Path, n: int) -> None:
    """The first N pool images as hard links in ``root`` (no copy; a benchmark that edits a file replaces it)."""
    root.mkdir(parents=True)
    for i in range(n):
        os.link(pool / f"img_{i:06d}.png", root / f"img_{i:06d}.png")


# ---------------------------------------------------------------------------------------------- steps (children)
def _workspace(root: Path) -> Any:
    from labeler.config import Settings
    from labeler.workflow.workspace import Workspace

    return Workspace.open(Settings(root, device="cpu"))


def _timed(function: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def step_import(root: Path, truth: dict[str, str]) -> dict[str, Any]:
    ws = _workspace(root)
    report, seconds = _timed(ws.import_folder)
    seeds: dict[str, list[str]] = {}
    for record in ws.records():
        name = truth[record.path]
        if len(seeds.setdefault(name, [])) < SEEDS_PER_CLASS:
            seeds[name].append(record.path)
    ws.store.label_paths([(path, name) for name, paths in sorted(seeds.items()) for path in paths], "bench")
    return {"seconds": seconds, "decoded": report.decoded}


def step_reimport(root: Path, truth: dict[str, str]) -> dict[str, Any]:
    ws = _workspace(root)
    name = "img_000123.png"
    pixels = np.asarray(Image.open(root / name)).copy()
    pixels[:4] = 255
    Image.fromarray(pixels).save(root / ".changed.png")
    os.replace(root / ".changed.png", root / name)  # a new inode: the pool's file stays as it was
    report, seconds = _timed(ws.import_folder)
    return {"seconds": seconds, "decoded": report.decoded}


def _add_files(root: Path, names: list[str], first: int) -> None:
    for i, name in enumerate(names):
        pixels = np.asarray(Image.open(root / f"img_{first + i:06d}.png")).copy()
        pixels[-4:] = 255  # new content: decoded, not reused
        Image.fromarray(pixels).save(root / name)


def step_reimport_append(root: Path, truth: dict[str, str]) -> dict[str, Any]:
    """100 new files whose names sort after every other (a camera's next numbers): their rows are appended."""
    ws = _workspace(root)
    _add_files(root, [f"img_{len(truth) + i:06d}z.png" for i in range(100)], first=0)
    report, seconds = _timed(ws.import_folder)
    return {"seconds": seconds, "decoded": report.decoded}


def step_reimport_insert(root: Path, truth: dict[str, str]) -> dict[str, Any]:
    """100 new files whose names sort in the middle: the rows after them shift, so the caches are copied."""
    ws = _workspace(root)
    _add_files(root, [f"img_{len(truth) // 2:06d}{i:03d}.png" for i in range(100)], first=100)
    report, seconds = _timed(ws.import_folder)
    return {"seconds": seconds, "decoded": report.decoded}


def step_pca(root: Path, truth: dict[str, str]) -> dict[str, Any]:
    from labeler.workflow.representations import representations

    reps, seconds = _timed(lambda: representations(_workspace(root)))
    return {"seconds": seconds, "dims": int(reps["pixels-pca"].X.shape[1])}


def step_train(root: Path, truth: dict[str, str]) -> dict[str, Any]:
    from labeler.workflow.training import train

    message, seconds = _timed(lambda: train(_workspace(root), minutes=0.25))
    return {"seconds": seconds, "note": message}


def step_embed_small(root: Path, truth: dict[str, str]) -> dict[str, Any]:
    from labeler.workflow.representations import representations

    reps, seconds = _timed(lambda: representations(_workspace(root)))
    return {"seconds": seconds, "dims": int(reps["simclr"].X.shape[1])}


def write_photos(folder: Path, n: int, size: tuple[int, int] = PHOTO_SIZE) -> list[Path]:
    """N colour JPEGs at a photo size: smooth random colour fields (bicubic-upsampled coarse noise) with grain."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    paths = []
    for i in range(n):
        coarse = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
        field = np.asarray(Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC), dtype=np.int16)
        grain = rng.integers(-10, 11, size=field.shape, dtype=np.int16)
        path = folder / f"photo_{i:05d}.jpg"
        Image.fromarray(np.clip(field + grain, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def step_embed_pretrained(root: Path, truth: dict[str, str]) -> dict[str, Any]:
    """The pretrained backbone on PRETRAINED_SAMPLE generated colour photos (PHOTO_SIZE JPEGs; the digits are too
    small to be what it is for), decoding included, into an empty feature cache."""
    import hashlib

    from labeler.embed import pretrained

    photos = write_photos(root.parent / f"{root.name}-photos", PRETRAINED_SAMPLE)  # not timed
    digests = [hashlib.sha256(path.read_bytes()).hexdigest() for path in photos]
    cache = Path(tempfile.mkdtemp(dir=root.parent))
    try:
        (X, _), seconds = _timed(lambda: pretrained.pretrained_features(photos, digests, cache, device="cpu"))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(photos[0].parent, ignore_errors=True)
    return {"seconds": seconds, "sample": len(photos), "dims": int(X.shape[1]),
            "photos_per_s": len(photos) / seconds}


def step_knn(root: Path, truth: dict[str, str]) -> dict[str, Any]:
    from labeler.workflow.representations import knn_for, representations

    ws = _workspace(root)
    reps = representations(ws)
    times = {}
    for name, rep in reps.items():
        _, times[name] = _timed(functools.partial(knn_for, ws, rep))
    return {"seconds": sum(times.values()), "per_graph": times}


PLAIN_DIMS = 1280  # the pretrained backbone's pooled features (EfficientNet-Lite0), the head's input


def step_knn_plain(root: Path, truth: dict[str, str]) -> dict[str, Any]:
    """The second kNN search a photo folder's refresh makes, on the backbone's plain features, for the isolation rule
    (:func:`labeler.workflow.representations.plain_backbone_distances`): N synthetic 1280-d rows, non-negative and in
    300 clumps like pooled activations (embedding N real photos is the embed-pretrained row's cost, not this one's),
    memory-mapped from disk as the stored features are; not timed: writing them."""
    from labeler.core import graph

    n = sum(1 for _ in root.glob("img_*.png"))  # the folder's N (truth names the whole pool)
    rng = np.random.default_rng(0)
    path = root.parent / f"{root.name}-plain.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, PLAIN_DIMS))
    centres = rng.random((300, PLAIN_DIMS), dtype=np.float32) * 2
    for start in range(0, n, 10_000):
        rows = min(10_000, n - start)
        X[start:start + rows] = centres[rng.integers(0, 300, rows)] + rng.random((rows, PLAIN_DIMS), dtype=np.float32)
    X.flush()
    del X
    try:
        X = np.load(path, mmap_mode="r")
        _, seconds = _timed(lambda: graph.knn_indices(X, 15, random_state=0))
    finally:
        path.unlink(missing_ok=True)
    return {"seconds": seconds, "dims": PLAIN_DIMS}


def step_propagate(root: Path, truth: dict[str, str]) -> dict[str, Any]:
    from labeler.workflow.refresh import refresh

    state, seconds = _timed(lambda: refresh(_workspace(root), compute_map=False))
    propagated = state.source == "propagated"
    names = state.label_names()
    correct = np.mean([names[i] == truth[state.paths[i]] for i in np.flatnonzero(propagated)])
    return {"seconds": seconds, "representation": state.representation, "accuracy": float(correct)}


def step_umap(root: Path, truth: dict[str, str]) -> dict[str, Any]:
    from labeler.workflow.refresh import refresh

    _, seconds = _timed(lambda: refresh(_workspace(root), compute_map=True))
    return {"seconds": seconds}


def step_export(root: Path, truth: dict[str, str]) -> dict[str, Any]:
    from labeler.workflow import export

    ws = _workspace(root)
    out = ws.workspace_dir / "export.csv"
    frame, seconds = _timed(lambda: export.write_csv(export.export_frame(ws), out))
    return {"seconds": seconds, "bytes": out.stat().st_size}


def step_reads(root: Path, truth: dict[str, str]) -> dict[str, Any]:
    from labeler.workflow.state import load_state

    ws = _workspace(root)
    times = {}
    _, times["records() first"] = _timed(ws.records)
    _, times["records() again"] = _timed(ws.records)
    _, times["image_count()"] = _timed(ws.image_count)
    _, times["records_page(0, 60)"] = _timed(lambda: _workspace(root).records_page(0, 60))
    _, times["thumbnails()[:60]"] = _timed(lambda: np.asarray(ws.thumbnails()[:60]))
    _, times["load_state()"] = _timed(lambda: load_state(ws))
    return {"seconds": sum(times.values()), "reads": times}


def step_label_latency(root: Path, truth: dict[str, str]) -> dict[str, Any]:
    """One click on the Label page: store the label, ask the job runner for a refresh, see the counts change.

    "Counts" is when the saved state (what pages poll) holds the new label; "done" is when the refresh job ends
    (stability re-runs and calibration). A missing map is the map lane's job, not the refresh's: "map" is when it
    ends after the first label (waited for before the warm labels, so they do not share the cores with it).
    """
    from labeler.workflow.runner import JobRunner
    from labeler.workflow.state import load_state, state_version

    runner = JobRunner(_workspace(root).settings)
    ws = runner.workspace
    classes = ws.classes()

    def label_and_wait(row: int) -> tuple[float, float]:
        row = row % ws.image_count()
        start = time.perf_counter()
        ws.store.label(ws.records()[row].id, classes[row % len(classes)].id, "bench")
        version = ws.store.labels_version()
        before = state_version(ws)
        runner.request_refresh(compute_map=True)  # what a click on the Label page does
        counts = math.nan
        while math.isnan(counts) and time.perf_counter() - start < 600:
            if state_version(ws) != before:  # what a polling page does: a stat, then a load when it changed
                before = state_version(ws)
                state = load_state(ws)
                if state is not None and state.labels_version == version:
                    counts = time.perf_counter() - start
            time.sleep(0.02)
        runner.wait("refresh", timeout=600)
        return counts, time.perf_counter() - start

    start = time.perf_counter()
    first = label_and_wait(1001)  # a fresh app process: reads graph and state once
    runner.wait("map", timeout=1800)
    map_done = time.perf_counter() - start
    warm = [label_and_wait(row) for row in (2002, 3003, 4004)]
    return {"seconds": float(np.median([c for c, _ in warm])), "first (counts, done)": first,
            "first label -> map done": map_done, "map job": runner.store.jobs(kind="map", limit=1)[0].message
            if runner.store.jobs(kind="map", limit=1) else None,
            "warm (counts, done)": warm, "done median": float(np.median([d for _, d in warm]))}


STEPS: dict[str, tuple[str, Callable[[Path, dict[str, str]], dict[str, Any]]]] = {
    "import": ("import (find, hash, decode once, caches)", step_import),
    "reimport": ("re-import, one file changed", step_reimport),
    "reimport-append": ("re-import, 100 files added after every other name", step_reimport_append),
    "reimport-insert": ("re-import, 100 files added in the middle", step_reimport_insert),
    "pca": ("instant representations (pixels -> PCA; HOG beside pixels)", step_pca),
    "train": ("SimCLR training, 15 s budget (setup)", step_train),
    "embed-small": ("embedding, small encoder (features + projection)", step_embed_small),
    "embed-pretrained": (f"embedding, pretrained backbone ({PRETRAINED_SAMPLE} generated {PHOTO_SIZE[0]}x"
                         f"{PHOTO_SIZE[1]} JPEGs)", step_embed_pretrained),
    "knn": ("kNN graphs (one per representation)", step_knn),
    "knn-plain": (f"kNN of the plain backbone features, photo folders' isolation rule ({PLAIN_DIMS}-d, synthetic)",
                  step_knn_plain),
    "propagate": ("first refresh: representation choice + propagation", step_propagate),
    "umap": ("UMAP map", step_umap),
    "export": ("export CSV", step_export),
    "reads": ("cheap reads a page polls with (total)", step_reads),
    "label": ("label -> refreshed counts (app refresh path, warm median)", step_label_latency),
}


# The re-imports that add files change N (and files the ground truth does not know): only when asked for.
DEFAULT_STEPS = [name for name in STEPS if name not in {"reimport-append", "reimport-insert"}]


# Modules a step imports lazily: imported before its clock starts (numba's compilation still counts).
PREIMPORTS = {
    "pca": ("sklearn.decomposition",),
    "train": ("torch", "labeler.embed.ssl.train"),
    "embed-small": ("torch", "labeler.embed.ssl.train"),
    "embed-pretrained": ("torch",),
    "knn": ("pynndescent",),
    "knn-plain": ("pynndescent",),
    "propagate": ("pynndescent",),
    "umap": ("umap",),
}


# ---------------------------------------------------------------------------------------------- parent
def run_step(name: str, root: Path, truth_path: Path) -> dict[str, Any]:
    """Run one step in a child process; its result plus ``peak_mib`` (the child's own peak RSS) and ``wall``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.scale", "--step", name, "--root", str(root), "--truth",
             str(truth_path)], cwd=ROOT, env=env, stdout=out,
        )
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage (not the sum over all children)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        lines = out.read().strip().splitlines()
    if child.returncode != 0 or not lines:
        return {"error": f"exit {child.returncode}", "peak_mib": usage.ru_maxrss / 1024, "wall": wall}
    result: dict[str, Any] = json.loads(lines[-1])
    result.update(peak_mib=usage.ru_maxrss / 1024, wall=wall)  # ru_maxrss is in KiB on Linux
    return result


def measure(n: int, pool: Path, work: Path, steps: list[str]) -> dict[str, dict[str, Any]]:
    root = work / f"n{n}"
    link_subset(pool, root, n)
    results = {}
    for name in steps:
        before = os.getloadavg()[0]
        results[name] = run_step(name, root, pool / "truth.json")
        results[name]["load"] = (before, os.getloadavg()[0])  # other work on the machine, 1-minute average
        print(f"n={n} {name}: {json.dumps(results[name], default=str)}", flush=True)
    shutil.rmtree(root)
    return results


def growth(sizes: list[int], results: dict[int, dict[str, dict[str, Any]]], step: str, key: str) -> str:
    """Exponent b of cost ~ N^b between consecutive sizes, e.g. "1.0, 1.1"."""
    out = []
    for a, b in zip(sizes, sizes[1:], strict=False):
        x, y = results[a][step].get(key), results[b][step].get(key)
        out.append(f"{math.log(y / x) / math.log(b / a):.2f}" if x and y and x > 0 and y > 0 else "–")
    return ", ".join(out)


def report(sizes: list[int], results: dict[int, dict[str, dict[str, Any]]], seconds_total: float,
           steps: list[str] | None = None) -> str:
    head = " | ".join(f"{n:,} s | {n:,} MiB" for n in sizes)
    source = "mnist_a.npz tiled, shifted up to 2 px, with noise" if DATASET.is_file() else "synthetic blobs"
    lines = [
        f"# Scale: time and peak memory per step ({dt.date.today().isoformat()})",
        "",
        f"Command: `python -m benchmarks.scale --n {max(sizes)}`"
        + (f" (sizes {', '.join(map(str, sizes))})" if len(sizes) > 1 else ""),
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared with other work), "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, Python "
        f"{platform.python_version()}; data: 28x28 PNG digits ({source}), {SEEDS_PER_CLASS} human "
        f"labels per class; default settings (k = 15, 10 bootstrap runs). Total {seconds_total / 60:.0f} min.",
        "",
        "Seconds are the step itself (slow imports done before the clock starts; numba compiling pynndescent and "
        "UMAP counts); MiB is the peak resident memory of the step's own process (`ru_maxrss` from `os.wait4`: "
        "interpreter, imports and memory-mapped file pages included).",
        "",
        f"| step | {head} | time grows as N^b | memory grows as N^b |",
        "| --- | " + " | ".join("---: | ---:" for _ in sizes) + " | --- | --- |",
    ]
    for name, (title, _) in STEPS.items():
        if steps is not None and name not in steps:
            continue
        cells = []
        for n in sizes:
            r = results[n][name]
            if "skipped" in r or "error" in r:
                cells.append(f"{r.get('skipped') or r.get('error')} | {r['peak_mib']:.0f}")
            else:
                cells.append(f"{r['seconds']:.2f} | {r['peak_mib']:.0f}")
        lines.append(f"| {title} | {' | '.join(cells)} | {growth(sizes, results, name, 'seconds')} | "
                     f"{growth(sizes, results, name, 'peak_mib')} |")
    loads = [value for by_step in results.values() for r in by_step.values() for value in r.get("load", ())]
    if loads:
        lines += ["", f"Load average (1 minute) at the start and end of the steps: {min(loads):.1f} to "
                      f"{max(loads):.1f} on {os.cpu_count()} cores."]
    last = results[max(sizes)]
    lines += ["", f"Details at N = {max(sizes):,}:", ""]
    for name in ("import", "reimport", "embed-pretrained", "knn", "knn-plain", "propagate", "reads", "label"):
        if name not in last:
            continue
        extra = {k: v for k, v in last[name].items() if k not in {"seconds", "peak_mib", "wall", "load"}}
        lines.append(f"- {name}: `{json.dumps(extra, default=lambda v: round(v, 3))}`")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="largest size (default 100000)")
    parser.add_argument("--sizes", default="10000,30000,100000", help="sizes to measure, up to --n")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--steps", default=",".join(DEFAULT_STEPS),
                        help="steps to run, in the usual order (default all but the reimport-append and "
                             "reimport-insert ones, which add files; a step needs the ones it builds on, e.g. label "
                             "needs import and propagate)")
    parser.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--truth", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:  # a child: run one step, print its result as the last line
        for module in PREIMPORTS.get(args.step, ()):  # slow imports are process start-up, not the step
            importlib.import_module(module)
        truth = json.loads(args.truth.read_text())
        print(json.dumps(STEPS[args.step][1](args.root, truth), default=float))
        return
    sizes = sorted({int(s) for s in args.sizes.split(",") if int(s) <= args.n} | {args.n})
    wanted = set(args.steps.split(","))
    if wanted - set(STEPS):
        parser.error(f"unknown steps: {', '.join(sorted(wanted - set(STEPS)))}")
    steps = [name for name in STEPS if name in wanted]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="labeler-scale-") as tmp:
        work = Path(tmp)
        _, seconds = _timed(lambda: write_pool(work / "pool", max(sizes)))
        print(f"wrote {max(sizes)} PNGs in {seconds:.0f} s", flush=True)
        results = {n: measure(n, work / "pool", work, steps) for n in sizes}
    text = report(sizes, results, time.perf_counter() - start, steps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
