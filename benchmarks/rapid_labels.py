"""Labels given faster than a refresh finishes: how long until each one's counts show, through the app's runner.

    python -m benchmarks.rapid_labels DATA_DIR [--labels 5] [--gap 0.5] [--follow-up-always]

``DATA_DIR`` must be imported, with classes and a first refresh (e.g. the 100,000-image folder ``benchmarks.scale``
builds, after its ``propagate`` step). One label every ``--gap`` seconds, each followed by
``JobRunner.request_refresh`` as the Label page does; a poller does what a page does (a stat of the state file, a
read when it changed) and records when the saved state first holds each label. ``--follow-up-always`` measures the
behaviour before the runner let a pass leave its stability re-runs and calibration to the next one. Prints one
line; the labels stay in the folder's store (annotator ``rapid``).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path
from typing import Any

from labeler.config import Settings
from labeler.workflow import runner as runner_module
from labeler.workflow.runner import JobRunner
from labeler.workflow.state import read_state, state_version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--labels", type=int, default=5)
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between two labels (default 0.5)")
    parser.add_argument("--first-row", type=int, default=40_000, help="row of the first image labeled")
    parser.add_argument("--follow-up-always", action="store_true")
    args = parser.parse_args()
    if args.follow_up_always:
        real = runner_module.refresh

        def always(ws: Any, progress: Any, compute_map: bool = True, newer_labels: Any = None) -> Any:
            return real(ws, progress, compute_map)

        runner_module.refresh = always  # type: ignore[assignment]
    runner = JobRunner(Settings(args.data_dir, device="cpu"))
    ws = runner.workspace
    classes = ws.classes()
    runner.request_refresh(compute_map=False)  # graph and state read into this process before the clock
    runner.wait("refresh", timeout=900)
    versions: list[int] = []
    given: list[float] = []
    seen: dict[int, float] = {}
    last: list[Any] = [None]

    def poll() -> None:
        stamp = state_version(ws)
        if stamp == last[0]:
            return
        last[0] = stamp
        state = read_state(ws)
        if state is None:
            return
        for i, version in enumerate(versions):
            if i not in seen and state.labels_version >= version:
                seen[i] = time.perf_counter() - given[i]

    records = ws.records()
    for k in range(args.labels):
        row = (args.first_row + 1111 * k) % len(records)
        ws.store.label(records[row].id, classes[k % len(classes)].id, "rapid")
        versions.append(ws.store.labels_version())
        given.append(time.perf_counter())
        runner.request_refresh(compute_map=False)
        until = time.perf_counter() + args.gap
        while time.perf_counter() < until:
            poll()
            time.sleep(0.02)
    deadline = time.perf_counter() + 600
    while len(seen) < args.labels and time.perf_counter() < deadline:
        poll()
        time.sleep(0.02)
    runner.wait("refresh", timeout=900)
    done = time.perf_counter() - given[-1]
    counts = [round(seen.get(i, math.nan), 2) for i in range(args.labels)]
    print(f"{len(records)} images, {'follow-up always' if args.follow_up_always else 'follow-up deferred'}, "
          f"load {os.getloadavg()[0]:.1f}: counts after each label {counts} s; done {done:.2f} s after the last")


if __name__ == "__main__":
    main()
