"""How long each page of the app takes to open at scale, run through Streamlit's AppTest (the page script, its
caches and the serialisation of every element, the browser's own drawing excluded).

    python -m benchmarks.pages [--n 100000] [--folder DIR]

Builds (or reuses, with ``--folder``) a folder of N noisy MNIST PNGs (``benchmarks.scale.write_pool``), imports
it, labels 10 per class and runs the first full refresh (representation, kNN graph, propagation, UMAP map). Then
opens every page three times in one process: the first open of the first page (home) also fills the shared caches
(images table, thumbnails, state); the next two runs are reruns, as after a click. "poll" times what a polling
fragment reads every second to decide whether anything changed.
Results go to ``benchmarks/results/pages-N.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from labeler.config import Settings
from labeler.workflow.refresh import refresh
from labeler.workflow.state import state_version
from labeler.workflow.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
PAGES = ["home", "label", "map", "review", "model", "export", "teaching"]


def prepare(root: Path, n: int) -> tuple[Workspace, dict[str, float]]:
    """The folder imported, labeled and refreshed once (skipped for the parts already done)."""
    from benchmarks.scale import write_pool

    timings: dict[str, float] = {}
    if not (root / "truth.json").is_file():
        start = time.perf_counter()
        write_pool(root, n)
        timings["write PNGs"] = time.perf_counter() - start
    truth: dict[str, str] = json.loads((root / "truth.json").read_text())
    ws = Workspace.open(Settings(root))
    if not ws.has_images():
        start = time.perf_counter()
        ws.import_folder()
        timings["import"] = time.perf_counter() - start
    if not ws.store.human_labels() or state_version(ws) is None:
        seeds: dict[str, list[str]] = {}
        for path, name in truth.items():
            if len(seeds.setdefault(name, [])) < 10:
                seeds[name].append(path)
        ws.store.label_paths([(p, name) for name, paths in seeds.items() for p in paths], "bench")
        start = time.perf_counter()
        refresh(ws, compute_map=True)
        timings["first refresh with map"] = time.perf_counter() - start
    record = root.parent / "setup.json"  # a reused folder reports the setup it was built with
    if timings:
        record.write_text(json.dumps(timings))
    elif record.is_file():
        timings = json.loads(record.read_text())
    return ws, timings


def open_pages(root: Path, repeats: int = 3) -> dict[str, list[float]]:
    """Seconds per run of each page, in the order opened (the first run of the first page is the cold one)."""
    from streamlit.testing.v1 import AppTest

    os.environ["LABELER_DATA_DIR"] = str(root)
    seconds: dict[str, list[float]] = {}
    for page in PAGES:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        at.switch_page(f"pages/{page}.py")
        for _ in range(repeats):
            start = time.perf_counter()
            at.run()
            seconds.setdefault(page, []).append(time.perf_counter() - start)
            if at.exception:
                raise RuntimeError(f"{page}: {[e.value for e in at.exception]}")
    return seconds


def poll_cost(ws: Workspace, repeats: int = 50) -> float:
    """Median seconds of what a polling fragment reads to decide whether anything changed."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state_version(ws)
        ws.store.images_version()
        ws.store.labels_version()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--folder", type=Path, help="build the dataset here and keep it (default: a temporary one)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        root = (args.folder or Path(tmp)) / f"pages-{args.n}" / "data"
        ws, setup = prepare(root, args.n)
        seconds = open_pages(root)
        poll = poll_cost(ws)
        n_images = len(ws.records())
    lines = [
        f"# Page open times at {n_images:,} images ({dt.date.today().isoformat()})",
        "",
        f"Command: `python -m benchmarks.pages --n {args.n}`. Machine: {platform.machine()}, {os.cpu_count()} cores "
        f"(shared with other work while measured), Python {platform.python_version()}. Each page is run with "
        "Streamlit's AppTest: the page script, its caches and the serialisation of every element; the browser's "
        "drawing is not included. The first page opened (home) also fills the shared caches (images table, "
        "thumbnails, state).",
        "",
        "| page | first open (s) | rerun (s) | rerun (s) |",
        "| --- | --- | --- | --- |",
        *[f"| {page} | {runs[0]:.2f} | {runs[1]:.2f} | {runs[2]:.2f} |" for page, runs in seconds.items()],
        "",
        f"What a polling fragment reads every second (state version, images version, labels version): "
        f"{poll * 1000:.1f} ms (median).",
    ]
    if setup:
        lines += ["", "Setup: " + ", ".join(f"{name} {value:.0f} s" for name, value in setup.items()) + "."]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"pages-{args.n}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
