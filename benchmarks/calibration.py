"""Is ``confidence`` a probability? Calibration of label spreading from the evidence the app has without the truth.

    python -m benchmarks.calibration [--datasets mnist_a,fashion_1000,digits,pets37-species] [--seeds 3] [--audits 30]
    python -m benchmarks.calibration --ks 1 --typical "" --growth "" --selection "" --out /tmp/x.md   # a quick look

For k = 1, 3, 10 human labels per class (``--seeds`` random draws), on pixels -> PCA-50, the shared kNN graph and
label spreading as the app runs them: the propagated labels' accuracy and the expected calibration error (10 equal
bins) of the raw top mass and of :class:`~labeler.core.calibrate.ConfidenceCalibrator` fitted on the seeds'
leave-one-out evidence only, on that plus ``--audits`` blind audits (simulated with the truth), on the audits only,
and with the seed-hop feature, and centred on the prior simulated on the graph (:mod:`labeler.core.simulated_prior`);
the accuracy of the most confident half; the threshold picker's promise (expected precision with its 95 % interval)
against the realised precision; whether the audit's 95 % interval holds the true accuracy. Also: ECE as audits
accumulate (``--growth``), selection-corrected accuracy of the best of three representations (``--selection``), and
seeds chosen near each class's mean instead of drawn (``--typical``). Writes ``benchmarks/results/calibration.md``.
Needs ``/work/shared/datasets`` (or ``--data-dir``) except for ``digits`` (scikit-learn's); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.decomposition import PCA

from benchmarks.machine import cpu_name
from labeler.core.calibrate import ConfidenceCalibrator
from labeler.core.calibration_evidence import calibration_evidence, calibration_features, seed_hops
from labeler.core.intervals import wilson_interval
from labeler.core.reliability import expected_calibration_error
from labeler.core.selection import nested_selection_accuracy
from labeler.core.simulated_prior import SimulatedPrior, simulated_prior
from labeler.core.threshold import pick_threshold

try:  # the package layout is being reorganised: new home first
    from labeler.core import diagnostics, graph, propagate
except ImportError:  # pragma: no cover - the layout before labeler/core
    from labeler import diagnostics, graph, propagate  # type: ignore[attr-defined,no-redef]

KS = (1, 3, 10)
RESULTS = Path(__file__).parent / "results" / "calibration.md"
COLUMNS = ("raw", "loo", "loo+audit", "audit", "loo+audit+hops", "sim+loo", "sim+loo+audit", "truth")
GROWTH_AUDITS = (0, 30, 100, 300, 1000)


def load(name: str, data_dir: Path) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Pixels in [0, 1] as (N, d) and labels (N,)."""
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64)
    if name == "pets37-species":
        import csv

        from PIL import Image

        folder = data_dir / "pets37"
        with open(folder / "ground_truth.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        names = sorted({row["species"] for row in rows})
        pixels = []
        for row in rows:
            with Image.open(folder / "images" / row["path"]) as image:
                pixels.append(np.asarray(image.convert("RGB").resize((32, 32)), dtype=np.float32).ravel() / 255.0)
        return np.stack(pixels), np.array([names.index(row["species"]) for row in rows], dtype=np.int64)
    with np.load(data_dir / f"{name}.npz", allow_pickle=False) as data:
        images, labels = data["images"], data["labels"].astype(np.int64)
    return images.reshape(len(images), -1).astype(np.float32) / 255.0, labels


def draw_seeds(y: NDArray[np.int64], k: int, seed: int, P: NDArray[Any] | None = None) -> NDArray[np.int64]:
    """``y`` with all but ``k`` labels per class hidden (-1): random ones, or with ``P`` (features) typical ones,
    as a person picking clear examples would: drawn from the quarter of each class nearest its mean."""
    rng = np.random.default_rng(seed)
    y_seen = np.full_like(y, -1)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        if P is not None:
            distance = np.linalg.norm(P[members] - P[members].mean(axis=0), axis=1)
            members = members[np.argsort(distance)[: max(k, members.size // 4)]]
        y_seen[rng.choice(members, size=k, replace=False)] = c
    return y_seen


def spread_and_loo(
    W: Any, y: NDArray[np.int64], k: int, seed: int, P: NDArray[Any] | None = None
) -> tuple[Any, ...]:
    """What the app has after ``k`` labels per class: the propagation, leave-one-out at the seeds, who is propagated."""
    n_classes = int(y.max()) + 1
    y_seen = draw_seeds(y, k, seed, P)
    result = propagate.propagate(W, y_seen, n_classes, random_state=seed)
    seeds, loo_label, loo_proba = diagnostics.loo_scores(W, y_seen, n_classes)
    propagated = np.flatnonzero(result.source == propagate.Source.PROPAGATED)
    return y_seen, result, seeds, loo_label, loo_proba, propagated


def one_run(
    W: Any, y: NDArray[np.int64], k: int, seed: int, args: argparse.Namespace, P: NDArray[Any] | None = None
) -> dict[str, float]:
    """Every number of one (dataset, k, draw); ``P`` given: typical seeds instead of random ones."""
    n_classes = int(y.max()) + 1
    y_seen, result, seeds, loo_label, loo_proba, propagated = spread_and_loo(W, y, k, seed, P)
    right = result.label == y
    rng = np.random.default_rng(1000 + seed)
    audited = rng.choice(propagated, size=min(args.audits, propagated.size), replace=False)
    rest = np.setdiff1d(propagated, audited)  # scored images: the audited ones carry their answer in the app
    hops = seed_hops(W, y_seen)
    X_rest = calibration_features(result.proba[rest])
    X_rest_hops = calibration_features(result.proba[rest], seed_hops=hops[rest])

    prior = simulated_prior(W, y_seen, result.label, n_classes, n_repeats=args.sim_repeats, random_state=seed)

    def fit(use_loo: bool, use_audit: bool, use_hops: bool, simulated: bool = False) -> ConfidenceCalibrator:
        keep = slice(None) if use_loo else slice(0, 0)
        evidence = calibration_evidence(
            y_seen[seeds][keep], loo_label[keep], loo_proba[keep],
            audit_proba=result.proba[audited] if use_audit else None,
            audit_label=result.label[audited], audit_answer=y[audited],
            loo_hops=hops[seeds][keep] if use_hops else None,
            audit_hops=hops[audited] if use_hops else None,
            audit_weight=args.audit_weight,
        )
        centre = prior if simulated else SimulatedPrior()  # SimulatedPrior(): the default mapping
        widths = {} if args.intercept_sd is None else {"intercept_sd": args.intercept_sd}  # None: as the app
        model = centre.calibrator(coef_sd=args.coef_sd, proxy_offset_sd=args.proxy_offset_sd, **widths)
        return model.fit(evidence.X, evidence.correct, evidence.sample_weight,
                         proxy=None if args.no_proxy else evidence.proxy)

    usable = (loo_label >= 0) & (np.bincount(y_seen[seeds], minlength=n_classes)[y_seen[seeds]] >= 2)
    # As the app does (labeler.workflow.calibration): the simulated prior at every k.
    simulated = args.prior in ("simulated", "app")
    best_model = fit(True, True, False, simulated)

    out: dict[str, float] = {"accuracy": float(right[rest].mean())}
    confidences = {
        "raw": result.confidence[rest],
        "loo": fit(True, False, False).predict_confidence(X_rest),
        "loo+audit": fit(True, True, False).predict_confidence(X_rest),
        "audit": fit(False, True, False).predict_confidence(X_rest),
        "loo+audit+hops": fit(True, True, True).predict_confidence(X_rest_hops),
        "sim+loo": fit(True, False, False, True).predict_confidence(X_rest),
        "sim+loo+audit": fit(True, True, False, True).predict_confidence(X_rest),
        # Reference: the logistic model (no isotonic stage, which is calibrated in-sample by construction) fitted on
        # the truth of the scored images themselves: how far the feature's logistic family can get at all.
        "truth": ConfidenceCalibrator(min_isotonic=np.inf).fit(X_rest, right[rest]).predict_confidence(X_rest),
    }
    for name, conf in confidences.items():
        out[f"ece {name}"] = expected_calibration_error(conf, right[rest])
    best = best_model.predict_confidence(X_rest)
    out["mean conf best"] = float(best.mean())
    out["sim coef"], out["sim intercept"] = prior.coef, prior.intercept
    out["loo evidence"] = float(usable.sum())
    half = np.argsort(-best, kind="stable")[: rest.size // 2]
    out["acc top half"] = float(right[rest][half].mean())
    draws = best_model.sample_confidence(X_rest, n_draws=200, random_state=seed)
    choice = pick_threshold(best, args.target, correct=right[rest], confidence_draws=draws)
    out["chosen"] = float(choice.threshold is not None)
    out["kept"] = choice.n_kept / rest.size
    out["expected"] = choice.expected_precision
    out["realised"] = choice.realised_precision
    lo_p, hi_p = choice.expected_interval
    out["expected lower"] = lo_p
    out["promise width"] = hi_p - lo_p
    chosen = choice.threshold is not None
    # NaN where nothing was kept: those draws make no promise, and the counts below say over how many draws.
    out["expected in realised"] = (float(choice.interval[0] <= choice.expected_precision <= choice.interval[1])
                                   if chosen else np.nan)
    out["realised in expected"] = float(lo_p <= choice.realised_precision <= hi_p) if chosen else np.nan
    out["target met"] = float(choice.realised_precision >= args.target) if chosen else np.nan
    out["gap"] = choice.expected_precision - choice.realised_precision
    # The rule before issue 10's honesty pass, for comparison: keep the most labels whose mean confidence reaches the
    # target (it promised exactly the target and met it about half the time).
    order = np.argsort(-best, kind="stable")
    mean_top = np.cumsum(best[order]) / np.arange(1, best.size + 1)
    ok = np.flatnonzero(mean_top >= args.target)
    out["mean rule kept"] = (ok[-1] + 1) / rest.size if ok.size else 0.0
    out["mean rule met"] = float(right[rest][order[: ok[-1] + 1]].mean() >= args.target) if ok.size else np.nan
    hits = int(right[audited].sum())
    lo, hi = wilson_interval(hits, audited.size)
    truth = float(right[propagated].mean())
    out["audit covers"] = float(lo <= truth <= hi)
    return out


def growth(W: Any, y: NDArray[np.int64], k: int, seed: int, args: argparse.Namespace) -> dict[str, float]:
    """ECE as blind audits accumulate (on top of the leave-one-out evidence), with and without the isotonic stage,
    centred on the app's prior (simulated on the graph) and on the default mapping."""
    n_classes = int(y.max()) + 1
    y_seen, result, seeds, loo_label, loo_proba, propagated = spread_and_loo(W, y, k, seed)
    right = result.label == y
    app = simulated_prior(W, y_seen, result.label, n_classes, n_repeats=args.sim_repeats, random_state=seed)
    order = np.random.default_rng(2000 + seed).permutation(propagated)
    out: dict[str, float] = {}
    for n_audits in GROWTH_AUDITS:
        if n_audits > propagated.size // 2:
            continue
        audited, rest = order[:n_audits], order[n_audits:]
        evidence = calibration_evidence(
            y_seen[seeds], loo_label, loo_proba,
            audit_proba=result.proba[audited], audit_label=result.label[audited], audit_answer=y[audited],
        )
        X_rest = calibration_features(result.proba[rest])
        for name, prior, min_isotonic in (("blend", app, 200.0), ("platt", app, np.inf),
                                          ("default", SimulatedPrior(), 200.0)):
            model = prior.calibrator(min_isotonic=min_isotonic)
            model.fit(evidence.X, evidence.correct, evidence.sample_weight, proxy=evidence.proxy)
            out[f"{name} {n_audits}"] = expected_calibration_error(model.predict_confidence(X_rest), right[rest])
            if name == "blend":
                out[f"weight {n_audits}"] = model.isotonic_weight_
    return out


def loo_correct(W: Any, y_seen: NDArray[np.int64], n_classes: int) -> NDArray[np.bool_]:
    """Whether leave-one-out spreading reproduces each human label, in the order of ``y_seen >= 0``."""
    seeds, loo_label, _ = diagnostics.loo_scores(W, y_seen, n_classes)
    return np.asarray(loo_label == y_seen[seeds])


def selection(X: NDArray[np.float32], y: NDArray[np.int64], k: int, seed: int) -> dict[str, float]:
    """Best of three representations by leave-one-out: naive winner's score, the shortcut nested estimate, exact
    nested leave-one-out (inner leave-one-out recomputed without each label) and the truth."""
    n_classes = int(y.max()) + 1
    graphs = {
        "pca-50": graph.knn_graph(PCA(n_components=min(50, X.shape[1]), random_state=0).fit_transform(X), 15),
        "pca-10": graph.knn_graph(PCA(n_components=10, random_state=0).fit_transform(X), 15),
        "pixels": graph.knn_graph(X, 15),
    }
    y_seen = draw_seeds(y, k, seed)
    seeds = np.flatnonzero(y_seen >= 0)
    M = {name: loo_correct(W, y_seen, n_classes) for name, W in graphs.items()}
    estimate = nested_selection_accuracy(M)
    exact = []
    for j, i in enumerate(seeds):
        y_minus = y_seen.copy()
        y_minus[i] = -1
        inner = {name: float(loo_correct(W, y_minus, n_classes).mean()) for name, W in graphs.items()}
        best = max(sorted(inner), key=lambda name: inner[name])  # same rule and tie-break as the shortcut
        exact.append(M[best][j])
    W = graphs[estimate.chosen]
    result = propagate.propagate(W, y_seen, n_classes, n_bootstrap=0)
    hidden = y_seen < 0
    return {
        "naive": estimate.naive_accuracy,
        "nested": estimate.accuracy,
        "exact": float(np.mean(exact)),
        "truth": float(np.mean(result.label[hidden] == y[hidden])),
    }


def machine() -> str:
    cpu = cpu_name(platform.processor() or platform.machine())
    return f"{cpu}, {os.cpu_count()} cores (shared); Python {platform.python_version()}, numpy {np.__version__}"


def load_text() -> str:
    try:
        return "load average " + " / ".join(Path("/proc/loadavg").read_text().split()[:3]) + " (1/5/15 min, at the end)"
    except OSError:
        return "unknown"


def fmt(values: list[float], digits: int = 3) -> str:
    v = np.asarray(values, dtype=np.float64)
    if np.all(np.isnan(v)):
        return "n/a"
    return f"{np.nanmean(v):.{digits}f} ± {np.nanstd(v):.{digits}f}"


def count(values: list[float]) -> str:
    """'hits/draws' over the draws where the value is defined (NaN: no promise was made)."""
    v = np.asarray(values, dtype=np.float64)
    return f"{int(np.nansum(v))}/{int(np.sum(~np.isnan(v)))}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="mnist_a,fashion_1000,digits,pets37-species")
    parser.add_argument("--data-dir", default="/work/shared/datasets")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--ks", default=",".join(map(str, KS)), help="labels per class to run, e.g. 1 for a quick look")
    parser.add_argument("--audits", type=int, default=30)
    parser.add_argument("--audit-weight", type=float, default=1.0)
    parser.add_argument("--coef-sd", type=float, default=1.5, help="prior sd of the calibrator's feature weights")
    parser.add_argument("--intercept-sd", type=float, default=None,
                        help="prior sd of the calibrator's intercept (default: as the app, the prior's own, "
                        "SimulatedPrior.intercept_sd)")
    parser.add_argument("--proxy-offset-sd", type=float, default=0.5,
                        help="prior sd of the leave-one-out rows' level offset (logit units)")
    parser.add_argument("--typical", default="mnist_a,fashion_1000,digits",
                        help="datasets also run with seeds from the quarter of each class nearest its mean")
    parser.add_argument("--no-proxy", action="store_true",
                        help="treat leave-one-out rows like audits (no level offset of their own)")
    parser.add_argument("--prior", choices=("app", "default", "simulated"), default="app",
                        help="prior mean of the calibrator behind the threshold picker and the mean confidence; app: "
                        "simulated on the graph (as labeler.workflow.calibration), like 'simulated'")
    parser.add_argument("--sim-repeats", type=int, default=8, help="re-seedings behind the simulated prior")
    parser.add_argument("--target", type=float, default=0.9, help="target precision of the threshold picker")
    parser.add_argument("--growth", default="mnist_a,fashion_1000", help="datasets that get the evidence-grows table")
    parser.add_argument("--growth-k", default="1,10", help="labels per class of the evidence-grows tables")
    parser.add_argument("--selection", default="digits,fashion_1000", help="datasets that get the selection-bias table")
    parser.add_argument("--selection-k", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    started = time.perf_counter()
    sections = []
    typical_rows: list[str] = []
    for name in args.datasets.split(","):
        X, y = load(name, Path(args.data_dir))
        P = PCA(n_components=min(50, X.shape[1]), random_state=0).fit_transform(X)
        W = graph.knn_graph(P, 15)
        ks = [int(k) for k in args.ks.split(",")]
        runs = {k: [one_run(W, y, k, seed, args) for seed in range(args.seeds)] for k in ks}
        if name in args.typical.split(","):
            for k in ks:
                rs = [one_run(W, y, k, seed, args, P) for seed in range(args.seeds)]
                col = {key: [r[key] for r in rs] for key in rs[0]}
                typical_rows.append(
                    f"| {name} | {k} | {fmt(col['accuracy'])} | "
                    + " | ".join(fmt(col[f"ece {c}"]) for c in ("loo", "loo+audit", "audit"))
                    + f" | {fmt(col['gap'])} | {count(col['realised in expected'])} |"
                )
        lines = [
            f"## {name} (N = {len(y)}, {int(y.max()) + 1} classes)",
            "",
            "| k | accuracy | LOO evidence | ECE raw top mass | ECE LOO only | ECE LOO + audits | ECE audits only "
            "| ECE LOO + audits, + hops | ECE simulated prior + LOO | ECE simulated prior + LOO + audits "
            "| ECE, Platt fit on the truth (reference) | simulated prior: slope, intercept | mean calibrated conf "
            "| accuracy, most confident half |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for k, rs in runs.items():
            col = {key: [r[key] for r in rs] for key in rs[0]}
            lines.append(
                f"| {k} | {fmt(col['accuracy'])} | {np.mean(col['loo evidence']):.0f} | "
                + " | ".join(fmt(col[f"ece {c}"]) for c in COLUMNS)
                + f" | {fmt(col['sim coef'], 2)}, {fmt(col['sim intercept'], 2)} | {fmt(col['mean conf best'])} "
                f"| {fmt(col['acc top half'])} |"
            )
        lines += [
            "",
            f"Threshold picker at target precision {args.target} (calibrated on LOO + audits, {args.prior} prior), "
            "against the truth of "
            "the scored images. The picker keeps the most labels whose 95 % predictive interval of the share right "
            "(calibrator posterior draws from `sample_confidence` plus the chance spread of a finite number of "
            "labels) has its lower end at or above the target; it shows the expected share right with that "
            "interval. Counts are over the draws where some threshold qualified ('chosen'). 'realised in promised "
            "interval' should be near 95 % of them; 'target met' near or above 97.5 %; 'promised inside realised' "
            "asks whether the expected value lies inside the Wilson 95 % interval of the realised precision (narrow: "
            "hundreds to thousands of images). 'mean rule' is the old picker (mean confidence of the kept labels = "
            "target). Audit headline: does the Wilson 95 % interval of the audits hold the true accuracy of the "
            "propagated labels?",
            "",
            "| k | chosen | kept share | expected precision | 95 % interval width | realised precision "
            "| realised in promised interval | target met | promised inside realised interval "
            "| expected - realised | mean rule: kept share | mean rule: target met | audit interval covers truth |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]

        for k, rs in runs.items():
            col = {key: [r[key] for r in rs] for key in rs[0]}
            lines.append(
                f"| {k} | {int(np.sum(col['chosen']))}/{len(rs)} | {fmt(col['kept'], 2)} | {fmt(col['expected'])} | "
                f"{fmt(col['promise width'], 2)} | {fmt(col['realised'])} | {count(col['realised in expected'])} | "
                f"{count(col['target met'])} | {count(col['expected in realised'])} | {fmt(col['gap'])} | "
                f"{fmt(col['mean rule kept'], 2)} | {count(col['mean rule met'])} | "
                f"{int(np.sum(col['audit covers']))}/{len(rs)} |"
            )
        for growth_k in ([int(k) for k in args.growth_k.split(",")] if name in args.growth.split(",") else []):
            grown = [growth(W, y, growth_k, seed, args) for seed in range(args.seeds)]
            lines += [
                "",
                f"Evidence grows (k = {growth_k}): ECE after the leave-one-out evidence plus n blind audits; "
                "'blend' is the app's calibrator (isotonic blended in from 200 effective points, weight shown; prior "
                "simulated on the graph), 'Platt only' never switches, 'default "
                "prior' is the blend centred on the default mapping instead.",
                "",
                "| audits | isotonic weight | ECE blend | ECE Platt only | ECE blend, default prior |",
                "|---|---|---|---|---|",
            ]
            for n_audits in GROWTH_AUDITS:
                if f"blend {n_audits}" in grown[0]:
                    lines.append(
                        f"| {n_audits} | {np.mean([g[f'weight {n_audits}'] for g in grown]):.2f} | "
                        f"{fmt([g[f'blend {n_audits}'] for g in grown])} | "
                        f"{fmt([g[f'platt {n_audits}'] for g in grown])} | "
                        f"{fmt([g[f'default {n_audits}'] for g in grown])} |"
                    )
        if name in args.selection.split(","):
            picked = [selection(X, y, args.selection_k, seed) for seed in range(args.seeds)]
            lines += [
                "",
                f"Best of three representations (pixels -> PCA-50, PCA-10, raw pixels) by leave-one-out, "
                f"k = {args.selection_k}: the winner's own leave-one-out accuracy (naive), the selection-corrected "
                "estimate of `nested_selection_accuracy` (shortcut), exact nested leave-one-out, and the true "
                "accuracy of the propagated labels on the chosen representation.",
                "",
                "| naive winner | nested (shortcut) | nested (exact) | truth |",
                "|---|---|---|---|",
                "| " + " | ".join(fmt([p[key] for p in picked]) for key in ("naive", "nested", "exact", "truth"))
                + " |",
            ]
        sections.append("\n".join(lines))
        print(sections[-1], "\n", flush=True)

    if typical_rows:
        sections.append("\n".join([
            "## Seeds chosen, not drawn",
            "",
            "People pick clear examples. Here the k seeds per class come from the quarter of the class nearest its "
            "mean, so leave-one-out on them is optimistic about the rest; the blind audits are still uniform over "
            "the propagated images. ECE as above, and the threshold picker's expected minus realised precision and "
            "how often the realised precision lay inside the promised 95 % interval.",
            "",
            "| set | k | accuracy | ECE LOO only | ECE LOO + audits | ECE audits only | expected - realised "
            "| realised in promised interval |",
            "|---|---|---|---|---|---|---|---|",
            *typical_rows,
        ]))
        print(sections[-1], "\n", flush=True)

    command = "python -m benchmarks.calibration " + " ".join(sys.argv[1:] if argv is None else argv)
    header = [
        "# Calibration of label spreading (benchmarks/calibration.py)",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}",
        f"- command: `{command.strip()}`",
        f"- representation: pixels -> PCA-50, cosine kNN graph (15 neighbours), label spreading alpha 0.99 with "
        f"bootstrap stability; k random labels per class, {args.seeds} draws (mean ± std)",
        f"- calibrator: ConfidenceCalibrator(coef_sd={args.coef_sd}, "
        f"intercept_sd={args.intercept_sd or 'as the prior mean sets it (SimulatedPrior.intercept_sd)'}, "
        f"proxy_offset_sd={args.proxy_offset_sd}{', no proxy offset' if args.no_proxy else ''}), "
        f"feature log(p1 / p2); "
        f"{args.audits} blind audits drawn uniformly from the propagated images (answered with the truth, "
        f"weight {args.audit_weight}); every number is on the propagated images that were not audited",
        "- LOO evidence: seeds whose leave-one-out prediction is usable (their class keeps another seed; with "
        "k = 1 there are none, so 'LOO only' is the prior's default mapping)",
        f"- simulated prior (`labeler.core.simulated_prior`, {args.sim_repeats} re-seedings): the calibrator's prior "
        "mean fitted on re-seeded spreading with the current labels standing in for the truth; its columns use it "
        "at every k, as the app does (the threshold picker below: `--prior "
        f"{args.prior}`)",
        "- load: " + load_text(),
        f"- total time {time.perf_counter() - started:.0f} s",
        "- reading: a 10-bin ECE has a sampling floor on a few hundred to a few thousand images; the 'Platt fit on "
        "the truth' column (in-sample, logistic in log(p1 / p2), slope free) shows what the feature can reach. "
        "pets37-species on pixels is a failure case kept on purpose: propagation is at or below chance and the more "
        "confident labels are not the better ones, so nothing monotone in the score can calibrate it well",
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(header) + "\n" + "\n\n".join(sections) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
