"""How far off is the simulated prior's level, and how wide should the calibrator's prior on it be?

The calibrator's prior mean is simulated on the graph (:mod:`labeler.core.simulated_prior`); its width on the level
(``SimulatedPrior.intercept_sd``) joins ``BIAS_SD`` and the simulation's own spread, in probability, converted to
logits at the simulated level. This script measures what they stand for: per set and number of labels per class, the
simulated level (mean P(right) the prior mapping gives the propagated images) minus their share right, beside the
simulation's spread; at one label per class, where no leave-one-out evidence exists and the prior and the audits alone
decide, the root mean square of the sets' average errors (their bias). It then compares the ECE after 30 blind
audits with the former fixed width (1.0 logit) and with the app's.

Sets: the instant representations of the shared digits and clothing, scikit-learn's digits and MNIST at 16 px (edge
histograms beside pixels), pets37's breeds and species (pretrained features, centred), and the small colour images
of ``benchmarks/thumbnails.py`` (pets37 at 32 px, MNIST digits on photo crops) on the backbone's features. Results:
``benchmarks/results/prior_width.md``.

    python -m benchmarks.prior_width --seeds 12
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from benchmarks.digit_variants import variants
from benchmarks.quality import SHARED_DATASETS, draw_seeds, instant_representations, load_dataset, machine
from benchmarks.thumbnails import N_DIGITS, colour_digits, pet_thumbnails
from benchmarks.thumbnails import representations as thumbnail_representations

RESULTS = Path(__file__).parent / "results" / "prior_width.md"
N_AUDITS = 30


def digit_and_clothing_sets(data_dir: Path) -> dict[str, tuple[NDArray[np.float32], NDArray[np.int64]]]:
    """{set name: (edge histograms beside pixels, truth)}: MNIST's first 3,000 and Fashion-MNIST's 1,000, as the app
    starts on small images."""
    sets = {}
    for name, file, rows in (("MNIST", "mnist_a.npz", 3000), ("Fashion-MNIST", "fashion_1000.npz", 1000)):
        _, cache, y = load_dataset(data_dir / file, 32)
        sets[name] = (instant_representations(cache[:rows])["hog-pixels"], y[:rows])
    return sets


def pets37_sets(data_dir: Path) -> dict[str, tuple[NDArray[np.float32], NDArray[np.int64]]]:
    """{"pets37 breed" and "pets37 species": (the backbone's features, centred as the app does, truth)}."""
    from labeler.embed.centred import centred_features
    from labeler.embed.pretrained import pretrained_features

    folder = data_dir / "pets37"
    table = pd.read_csv(folder / "ground_truth.csv")
    paths = [folder / "images" / p for p in table["path"]]
    with tempfile.TemporaryDirectory() as tmp:
        X, _ = pretrained_features(paths, [p.name for p in paths], Path(tmp))
    X = centred_features(X)
    return {f"pets37 {task}": (X, pd.factorize(table[task])[0].astype(np.int64)) for task in ("breed", "species")}


def representations(data_dir: Path) -> dict[str, tuple[NDArray[np.float32], NDArray[np.int64]]]:
    """{set name: (representation the app starts with, truth)}."""
    sets = digit_and_clothing_sets(data_dir)
    for name, (cache, y) in variants(data_dir).items():
        if "inverted" not in name:  # the same distances as MNIST (benchmarks/results/digit_variants.md)
            sets[name] = (instant_representations(cache)["hog-pixels"], y)
    sets.update(pets37_sets(data_dir))
    folder = data_dir / "pets37"
    table = pd.read_csv(folder / "ground_truth.csv")
    # Small colour images (benchmarks/thumbnails.py), on the backbone's features: the app's choice at one label.
    with np.load(data_dir / "mnist_a.npz") as mnist:
        digits, digit_labels = mnist["images"][:N_DIGITS], mnist["labels"][:N_DIGITS].astype(np.int64)
    for title, images in (("pets37 at 32 px", pet_thumbnails(folder, 32)),
                          ("colour digits", colour_digits(digits, folder, 32))):
        with tempfile.TemporaryDirectory() as tmp:
            X = thumbnail_representations(images, Path(tmp))[0]["pretrained"]
        if title == "colour digits":
            sets[title] = (X, digit_labels)
        else:
            for task in ("breed", "species"):
                sets[f"{title} {task}"] = (X, pd.factorize(table[task])[0].astype(np.int64))
    return sets


def draw(W: object, y: NDArray[np.int64], k: int, seed: int) -> dict[str, float]:
    """One draw: the simulated level's error and the ECE after ``N_AUDITS`` audits with either width."""
    from labeler.core import diagnostics, propagate
    from labeler.core.calibration_evidence import calibration_features
    from labeler.core.reliability import expected_calibration_error
    from labeler.core.simulated_prior import MAX_INTERCEPT_SD, simulated_prior
    from labeler.workflow import calibration

    n_classes = int(y.max()) + 1
    y_seen = draw_seeds(y, k, seed)
    result = propagate.propagate(W, y_seen, n_classes, n_bootstrap=0, random_state=seed)
    propagated = result.source == propagate.Source.PROPAGATED
    rows = np.flatnonzero(propagated)
    right = result.label == y
    prior = simulated_prior(W, y_seen, result.label, n_classes, random_state=seed)
    level = prior.calibrator().fit(np.zeros((0, 1)), np.zeros(0, dtype=bool))
    audited = np.random.default_rng(1000 + seed).choice(rows, size=N_AUDITS, replace=False)
    scored = np.setdiff1d(rows, audited)
    loo = diagnostics.loo_scores(W, y_seen, n_classes)
    confidence, evidence = calibration.calibrate(result.confidence, result.proba, result.label, propagated, y_seen,
                                                 loo, audited, y[audited], prior)
    fixed = prior.calibrator(intercept_sd=MAX_INTERCEPT_SD).fit(
        evidence.X, evidence.correct, evidence.sample_weight, proxy=evidence.proxy)
    features = calibration_features(result.proba[scored])
    return {
        "accuracy": float(right[rows].mean()),
        "level error": float(level.predict_confidence(calibration_features(result.proba[rows])).mean()
                             - right[rows].mean()),
        "width": prior.intercept_sd,
        "spread": prior.spread,
        "ece fixed": expected_calibration_error(fixed.predict_confidence(features), right[scored]),
        "ece app": expected_calibration_error(confidence[scored], right[scored]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(SHARED_DATASETS))
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    from labeler.core import graph
    from labeler.core.simulated_prior import BIAS_SD

    started = dt.datetime.now().astimezone()
    t = time.perf_counter()
    records = []
    for name, (X, y) in representations(Path(args.data_dir)).items():
        W = graph.knn_graph(X, 15)
        ks = (1, 3, 5) if y.max() + 1 > 30 else (1, 3, 10)  # pets37 has 10 photos per breed
        for k in ks:
            for seed in range(args.seeds):
                records.append({"set": name, "k": k, **draw(W, y, k, seed)})
        print(name, flush=True)
    runs = pd.DataFrame(records)

    def cell(values: pd.Series) -> str:
        return f"{values.mean():.3f} ± {values.std(ddof=0):.3f}"

    table = [
        "| set | k | accuracy | simulated level - share right | simulated spread | width (logits) | ECE, width 1.0 "
        "| ECE, app's width |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (name, k), group in runs.groupby(["set", "k"], sort=False):
        table.append(f"| {name} | {k} | {cell(group['accuracy'])} | {cell(group['level error'])} | "
                     f"{group['spread'].mean():.3f} | {group['width'].mean():.2f} | {cell(group['ece fixed'])} | "
                     f"{cell(group['ece app'])} |")
    one = runs[runs["k"] == 1]
    bias = one.groupby("set", sort=False)["level error"].mean()
    rms = float(np.sqrt(np.mean(bias**2)))  # each set weighs the same, whatever its number of draws
    lines = [
        "# The simulated prior's level, and the width of the calibrator's prior on it (benchmarks/prior_width.py)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M %Z}",
        f"- machine: {machine()}",
        f"- command: `python -m benchmarks.prior_width --seeds {args.seeds}`",
        "- per draw: k random labels per class, label spreading on the 15-NN graph of the representation the app "
        "starts with, the prior simulated on that graph (`labeler.core.simulated_prior`); 'simulated level - share "
        "right': the mean P(right) the prior mapping alone gives the propagated images minus their share right; "
        f"then {N_AUDITS} blind audits answered with the truth and the calibration a refresh makes, its ECE "
        "(10 equal bins) on the propagated images not audited, with the prior's width on the level fixed at 1.0 "
        "logit (before) and as the app sets it (`SimulatedPrior.intercept_sd`); mean ± std over "
        f"{args.seeds} draws",
        "",
        *table,
        "",
        "At one label per class the error is a bias per set (its mean over the draws) plus a spread from draw to "
        "draw, of about the size of the simulation's own spread (the agreement's standard deviation over its "
        "re-seedings) or smaller. "
        f"Root mean square of the biases, each set weighing the same: {rms:.3f} (per set: "
        f"{', '.join(f'{name} {value:+.3f}' for name, value in bias.items())}); the app's BIAS_SD is {BIAS_SD}.",
        "",
        f"{time.perf_counter() - t:.0f} s.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
