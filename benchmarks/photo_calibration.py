"""Honest numbers on real photos: calibration (ECE) and the audit headline on pets37, pretrained features.

    python -m benchmarks.photo_calibration [--data-dir /work/shared/datasets] [--seeds 10] [--audits 30]
        [--adapt-minutes 3] [--folders]

The same run as ``benchmarks.quality``'s honest numbers (:func:`benchmarks.quality.honest_run`: label spreading,
confidence calibrated as a refresh does from the seeds' leave-one-out predictions and blind audits answered with the
truth, the threshold picker at its default target), on the representation a photo folder gets before any training
(the pretrained EfficientNet-Lite0 features, centred on the folder's mean) and, with ``--adapt-minutes``, on the
one it chooses after training (leave-one-out between those and the head adapted for that long). Species (2
classes) at 1 / 5 labels per class, breed (37 classes of 10) at 1 / 3 / 5. Writes
``benchmarks/results/photo_calibration.md``. With ``--folders`` instead: the cats and the dogs each as a folder of
its own, their breeds the classes (``--out benchmarks/results/photo_folders.md``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from benchmarks.quality import SHARED_DATASETS, honest_run, machine, mean_sd, share_of
from labeler.core.stopping import MAX_WIDTH

RESULTS = Path(__file__).parent / "results" / "photo_calibration.md"
HEADER = [
    "| task | k | accuracy | ECE raw score | ECE confidence | ECE floor | mean confidence "
    "| accuracy, most confident half | audits | headline (audits) | truth in interval | picker: target met "
    "| picker: realised in promised |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
]
TASKS = {"species": (1, 5), "breed": (1, 3, 5)}
# --folders: each species' photos as a folder of its own (features centred on that folder's mean, its own graph),
# their breeds the classes: photo tasks the calibration was not developed on (12 cat breeds of 120 photos, 25 dog
# breeds of 250).
FOLDERS = {"cats": "cat", "dogs": "dog"}
FOLDER_KS = (1, 3, 5)


def draw_rows(reps: dict[str, NDArray[np.float32]], graphs: dict[str, Any], table: pd.DataFrame,
              args: argparse.Namespace, tasks: dict[str, tuple[int, ...]] | None = None) -> list[str]:
    """One markdown row per task and k: :func:`benchmarks.quality.honest_run` over ``args.seeds`` draws (the app's
    photo preference when there are several representations)."""
    lines = []
    for task, ks in (TASKS if tasks is None else tasks).items():
        y = np.unique(table[task].to_numpy(str), return_inverse=True)[1].astype(np.int64)
        for k in ks:
            runs = [honest_run(reps, graphs, y, k, seed, None if args.audits == "stop" else int(args.audits),
                               photos=True) for seed in range(args.seeds)]
            cells = [mean_sd(runs, key) for key in ("accuracy", "ece raw", "ece", "ece floor", "mean confidence",
                                                     "acc top half")]
            lines.append(
                f"| {table.attrs.get('folder', '') + ' ' if table.attrs.get('folder') else ''}{task} | {k} "
                f"| {' | '.join(cells)} | {mean_sd(runs, 'audits', 0)} | {mean_sd(runs, 'headline')} "
                f"| {share_of(runs, 'covers')} | {share_of(runs, 'target met')} "
                f"| {share_of(runs, 'realised in promised')} |"
            )
            print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(SHARED_DATASETS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--audits", default="30", help="a number, or 'stop': as many as the stopping rule asks for")
    parser.add_argument("--adapt-minutes", type=float, default=3.0,
                        help="also after training: the head adapted for this long (0: skip)")
    parser.add_argument("--folders", action="store_true",
                        help="instead: the cats and the dogs each as a folder of its own, their breeds the classes "
                             "(no training)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    from labeler.core import graph
    from labeler.embed.centred import centred_features
    from labeler.embed.pretrained import pretrained_features

    folder = Path(args.data_dir) / "pets37"
    table = pd.read_csv(folder / "ground_truth.csv")
    paths = [folder / "images" / p for p in table["path"]]
    started = dt.datetime.now().astimezone()
    audit_words = (f"as many as the stopping rule asks for (interval {MAX_WIDTH:.2f} wide)" if args.audits == "stop"
                   else args.audits)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        X_plain, ok = pretrained_features(paths, [p.name for p in paths], Path(tmp))
        X = centred_features(X_plain)  # compared from the folder's mean, as the app does
    if args.folders:
        lines = [
            "# Honest numbers on real photos: each species a folder of its own (benchmarks/photo_calibration.py)",
            "",
            f"- date: {started:%Y-%m-%d %H:%M %Z}",
            f"- machine: {machine()}; load average {load_before:.1f} before the run",
            f"- command: `python -m benchmarks.photo_calibration --folders --seeds {args.seeds} "
            f"--audits {args.audits}`",
            "- pets37's cats (12 breeds, 120 photos) and dogs (25 breeds, 250 photos), each a folder of its own: the "
            "pretrained features centred on that folder's mean, its own 15-NN graph, its breeds the classes; "
            f"otherwise as the main run (seeds' leave-one-out + {audit_words} blind audits; mean ± std over "
            f"{args.seeds} draws). Photo tasks the calibration was not developed on.",
            "",
            *HEADER,
        ]
        t = time.perf_counter()
        for folder_name, species in FOLDERS.items():
            rows = np.flatnonzero(table["species"].to_numpy(str) == species)
            sub = table.iloc[rows].reset_index(drop=True)
            sub.attrs["folder"] = folder_name
            X_sub = centred_features(X_plain[rows])
            lines += draw_rows({"pretrained": X_sub}, {"pretrained": graph.knn_graph(X_sub, 15)}, sub, args,
                               {"breed": FOLDER_KS})
        lines += ["", f"{time.perf_counter() - t:.0f} s for the draws.", ""]
        Path(args.out).write_text("\n".join(lines), encoding="utf-8")
        return
    reps = {"pretrained": X}
    W = {"pretrained": graph.knn_graph(X, 15)}
    lines = [
        "# Honest numbers on real photos (benchmarks/photo_calibration.py)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M %Z}",
        f"- machine: {machine()}; load average {load_before:.1f} before the run",
        f"- command: `python -m benchmarks.photo_calibration --seeds {args.seeds} --audits {args.audits} "
        f"--adapt-minutes {args.adapt_minutes:g}`",
        f"- pets37 (370 photos, {int(ok.sum())} decoded), representation: pretrained EfficientNet-Lite0 features, "
        "centred on the folder's mean (the instant one of a photo folder, no training); 15-NN graph, label "
        "spreading; confidence calibrated as a "
        f"refresh does (seeds' leave-one-out + {audit_words} blind audits answered with the truth; prior mean "
        "simulated on the graph); ECE (10 equal bins), accuracy and the most confident half on the propagated "
        "photos not audited; 'ECE floor' is what perfectly calibrated confidences would score on "
        "the same photos by chance (`labeler.core.reliability.calibration_error_floor`); "
        f"mean ± std over {args.seeds} draws",
        "",
        *HEADER,
    ]
    t = time.perf_counter()
    lines += draw_rows(reps, W, table, args)
    if args.adapt_minutes > 0:
        from labeler.embed.adapted import adapted_features

        started_adapt = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            adapted = adapted_features(paths, [p.name for p in paths], Path(tmp), minutes=args.adapt_minutes,
                                       random_state=0)
        seconds = time.perf_counter() - started_adapt
        reps = {"pretrained-simclr": adapted.embedding, "pretrained": X}
        W["pretrained-simclr"] = graph.knn_graph(adapted.embedding, 15)
        lines += [
            "", f"## After training: the head adapted for {args.adapt_minutes:g} minutes ({adapted.epochs} epochs, "
            f"{seconds:.0f} s)", "",
            "As above, on the representation the app chooses after training: leave-one-out between the adapted "
            "embedding (preferred, kept outright at one label per class) and the plain features.", "",
            *HEADER,
        ]
        lines += draw_rows(reps, W, table, args)
    lines += ["", f"{time.perf_counter() - t:.0f} s for the draws.", ""]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
