"""What every page shares: the settings, the open workspace, the job runner, the job panel and safe text.

Nothing here computes anything about the data; it wires Streamlit to ``labeler``. Long-lived objects are held
with ``st.cache_resource`` (keyed by the workspace) and only used through their own methods; which folder is open
is UI state and lives in ``st.session_state``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from labeler import pipeline
from labeler.config import Settings
from labeler.jobs import JobRunner
from labeler.store import DEFAULT_COLOURS, ClassInfo, Job
from labeler.workspace import Workspace
from pages import uploads

APP_DIR = Path(__file__).resolve().parent.parent
SAMPLE_DIR = APP_DIR / "sample_data"
GROUND_TRUTH_NAME = "ground_truth.csv"
# Polling period of the job panel while a job is active (seconds) and when idle.
POLL_ACTIVE_S = 1.0
POLL_IDLE_S = 5.0
# Keys a class can be given: "u" is undo and "s" skip on the Label page; Streamlit reserves "c" and "r".
HOTKEYS = ["", *"123456789", *"abdefghijklmnopqtvwxyz"]

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text: object) -> str:
    """``text`` with Markdown and HTML specials escaped, so a user string renders as itself inside st.markdown."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


# ----------------------------------------------------------------------------------------------- settings


def startup_options(argv: list[str] | None = None) -> dict[str, Path | None]:
    """Options given after ``--`` to ``streamlit run app.py`` (or by environment variables).

    ``--data-dir`` / ``LABELER_DATA_DIR`` (default: the bundled ``sample_data/``), ``--workspace`` /
    ``LABELER_WORKSPACE`` and ``--ground-truth`` / ``LABELER_GROUND_TRUTH`` (teaching mode).
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--data-dir", "--data_dir", dest="data_dir")
    parser.add_argument("--workspace", dest="workspace")
    parser.add_argument("--ground-truth", "--ground_truth", dest="ground_truth")
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)

    def pick(value: str | None, env: str) -> Path | None:
        chosen = value or os.environ.get(env) or None
        return Path(chosen).expanduser() if chosen else None

    return {
        "data_dir": pick(known.data_dir, "LABELER_DATA_DIR") or SAMPLE_DIR,
        "workspace": pick(known.workspace, "LABELER_WORKSPACE"),
        "ground_truth": pick(known.ground_truth, "LABELER_GROUND_TRUTH"),
    }


def allowed_roots() -> list[Path]:
    """Folders under which the home page may open a dataset: home, the bundled sample, the start folder's parent,
    and any listed in ``LABELER_ALLOWED_ROOTS`` (separated by the OS path separator)."""
    start = startup_options()["data_dir"]
    roots = [Path.home(), SAMPLE_DIR, Path(str(start)).parent]
    extra = os.environ.get("LABELER_ALLOWED_ROOTS", "")
    roots += [Path(p) for p in extra.split(os.pathsep) if p.strip()]
    return [root.expanduser().resolve() for root in roots]


def check_folder(text: str) -> tuple[Path | None, str | None]:
    """(resolved folder, None) when ``text`` names a readable folder under an allowed root, else (None, why)."""
    if not text.strip():
        return None, "Type the path of a folder."
    folder = Path(text.strip()).expanduser().resolve()
    roots = allowed_roots()
    if not any(folder == root or root in folder.parents for root in roots):
        listed = ", ".join(str(root) for root in roots)
        return None, f"{folder} is outside the folders this app may open ({listed})."
    if not folder.exists():
        return None, f"{folder} does not exist."
    if not folder.is_dir():
        return None, f"{folder} is a file, not a folder."
    if not os.access(folder, os.R_OK | os.X_OK):
        return None, f"{folder} is not readable by this user."
    return folder, None


def settings() -> Settings:
    """The settings of the dataset open in this browser session."""
    options = startup_options()
    data_dir = Path(st.session_state.get("data_dir") or options["data_dir"] or SAMPLE_DIR)
    workspace = options["workspace"] if data_dir == options["data_dir"] else None
    ground_truth = options["ground_truth"]
    if ground_truth is None and st.session_state.get("teaching") and (data_dir / GROUND_TRUTH_NAME).is_file():
        ground_truth = data_dir / GROUND_TRUTH_NAME
    return Settings(data_dir=data_dir, workspace_dir=workspace or Path(), ground_truth_path=ground_truth)


@st.cache_resource(show_spinner=False, max_entries=8)
def _workspace(settings: Settings) -> Workspace:
    return Workspace.open(settings)


def workspace() -> Workspace:
    """The open workspace (one object per settings, shared by reruns and browser tabs)."""
    return _workspace(settings())


@st.cache_resource(show_spinner=False, max_entries=8)
def _runner(settings: Settings) -> JobRunner:
    return JobRunner(settings)


def runner() -> JobRunner:
    """The background job runner of the open workspace (shared by every browser session on it)."""
    # One runner per workspace: teaching mode changes the settings but must not start a second runner.
    return _runner(settings().with_(ground_truth_path=None))


def has_images(ws: Workspace) -> bool:
    return bool(ws.store.images())


def import_with_progress(ws: Workspace, labels_from_folders: bool = False) -> None:
    """Import the data folder, showing a progress bar; the report lands in session state for the home page."""
    bar = st.progress(0.0, text="Reading images…")

    def progress(fraction: float, message: str) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=message)

    report = ws.import_folder(labels_from_folders=labels_from_folders, progress=progress)
    bar.empty()
    st.session_state["import_lines"] = report.lines()


def require_images() -> Workspace:
    """The open workspace, imported on first use; stops the page with a message when it holds no images."""
    ws = workspace()
    if not has_images(ws):
        try:
            import_with_progress(ws)
        except (FileNotFoundError, PermissionError) as error:
            st.error(f"Cannot read the data folder: {error}")
            st.stop()
    if not ws.records():
        st.warning(f"No readable images in {ws.data_dir}. Open another folder on the Home page.")
        st.stop()
    return ws


def annotator(ws: Workspace) -> str:
    return ws.settings.annotator


def request_refresh() -> None:
    """Ask the runner to re-propagate in the background (returns at once)."""
    runner().request_refresh()


# ----------------------------------------------------------------------------------------------- job panel


def jobs(ws: Workspace) -> list[Job]:
    """Recent jobs of the open workspace, newest first (from the store, so every session sees them)."""
    return ws.store.jobs(limit=10)


def render_jobs(ws: Workspace, limit: int = 6) -> bool:
    """Progress bars of recent jobs; returns whether any is still active."""
    recent = jobs(ws)[:limit]
    if not recent:
        st.caption("No background jobs yet.")
        return False
    for job in recent:
        label = f"{job.kind} · {job.status}"
        if job.message:
            label += f" · {job.message}"
        if job.status in {"queued", "running"}:
            st.progress(min(max(float(job.progress), 0.0), 1.0), text=plain(label))
        elif job.status == "failed":
            st.error(f"{job.kind} failed: {job.error or 'unknown error'}. Every label is kept; it can be retried.")
        else:
            st.caption(plain(label))
    return any(job.status in {"queued", "running"} for job in recent)


# ----------------------------------------------------------------------------------------------- counts


def label_counts(ws: Workspace) -> dict[str, int]:
    """Readable images, human labels (live from the store), propagated and unreached (from the last propagation)."""
    records = ws.records()
    labeled = set(ws.store.human_labels())
    human = sum(r.id in labeled for r in records)
    current = state(ws)
    propagated = 0
    if current is not None:
        propagated = sum(
            1 for s, record_id in zip(current.source, current.image_ids, strict=True)
            if s == "propagated" and int(record_id) not in labeled
        )
    return {"images": len(records), "human": human, "propagated": propagated,
            "none": max(len(records) - human - propagated, 0)}


@st.fragment(run_every=POLL_ACTIVE_S)
def sidebar_status() -> None:
    """Dataset name, label counts and active jobs, refreshed every second without rerunning the page."""
    current = settings()
    st.caption(f"Dataset: {plain(current.data_dir.name)}")
    if not current.data_dir.is_dir():
        st.warning("The data folder is missing.")
        return
    ws = workspace()
    if not has_images(ws):
        return
    counts = label_counts(ws)
    st.caption(
        f"{counts['human']} human · {counts['propagated']} propagated · {counts['none']} unreached "
        f"of {counts['images']}"
    )
    for job in jobs(ws)[:3]:
        if job.status in {"queued", "running"}:
            st.progress(min(max(float(job.progress), 0.0), 1.0), text=plain(f"{job.kind}: {job.message}"))


def dataset_summary(ws: Workspace) -> dict[str, Any]:
    """{"images": readable count, "unreadable": [(path, reason)], "duplicates": [(path, original)]}."""
    records = ws.store.images()
    return {
        "images": sum(r.status == "ok" for r in records),
        "unreadable": [(r.path, r.reason or "unreadable") for r in records if r.status == "unreadable"],
        "duplicates": [(r.path, r.duplicate_of) for r in records if r.duplicate_of and r.status == "ok"],
    }


def _audit_pairs(ws: Workspace) -> tuple[list[int], list[int], list[float]]:
    """(answers, propagated labels, confidences) of the blind audits, as class ids."""
    rows = [a for a in ws.store.audits() if a["predicted_class_id"] is not None]
    return ([a["class_id"] for a in rows], [a["predicted_class_id"] for a in rows],
            [float(a["confidence"] or 0.0) for a in rows])


def accuracy_estimate(ws: Workspace) -> dict[str, Any] | None:
    """The blind-audit accuracy estimate with its 95% Wilson interval, per class and by confidence; None before
    any audit."""
    from labeler import audit

    true, predicted, confidence = _audit_pairs(ws)
    if not true:
        return None
    classes = ws.store.classes()
    estimate = audit.audit_estimate(true, predicted, [c.id for c in classes])
    correct = [t == p for t, p in zip(true, predicted, strict=True)]
    table = audit.reliability_table(np.asarray(confidence), np.asarray(correct))
    per_class = [
        {"class": c.name, "audited": estimate.per_class[c.id][3], "precision": estimate.per_class[c.id][0],
         "95% low": estimate.per_class[c.id][1], "95% high": estimate.per_class[c.id][2]}
        for c in classes if estimate.per_class[c.id][3] > 0
    ]
    return {
        "accuracy": estimate.accuracy, "low": estimate.interval[0], "high": estimate.interval[1], "n": estimate.n,
        "per_class": per_class,
        "reliability": {"confidence": [r.mean_confidence for r in table], "accuracy": [r.accuracy for r in table],
                        "count": [r.n for r in table], "low": [r.lo for r in table], "high": [r.hi for r in table]},
        "true": None,
    }


# ----------------------------------------------------------------------------------------------- classes


def next_colour(n_classes: int) -> str:
    return DEFAULT_COLOURS[n_classes % len(DEFAULT_COLOURS)]


def default_hotkey_index(classes: list[ClassInfo]) -> int:
    """Index in HOTKEYS of the first digit no class uses yet (0, no key, when all nine are taken)."""
    used = {c.hotkey for c in classes}
    for digit in "123456789":
        if digit not in used:
            return HOTKEYS.index(digit)
    return 0


def hotkey_owner(classes: list[ClassInfo], hotkey: str | None) -> str | None:
    """Name of the class that already uses ``hotkey`` (None when the key is free or empty)."""
    return next((c.name for c in classes if hotkey and c.hotkey == hotkey), None)


def save_uploads(current: Settings, files: list[Any]) -> Path:
    """Save uploaded images (and the images inside uploaded zips) into the upload dataset folder; returns it.

    The upload dataset is ``<workspace>/uploads`` of the dataset open now, or the open dataset itself when it
    already is an upload dataset. Problems are shown as warnings; good files still land.
    """
    folder = current.data_dir if uploads.is_upload_dataset(current.data_dir) else current.workspace_dir / "uploads"
    saved, problems = uploads.save_files(folder, [(f.name, f.getvalue()) for f in files])
    for name, reason in problems:
        st.warning(f"{name}: {reason}")
    st.session_state["import_lines"] = [f"{saved} files saved into {folder}"]
    return folder


# ----------------------------------------------------------------------------------------------- propagation state


def state(ws: Workspace) -> pipeline.PipelineState | None:
    """The latest propagation if it matches the images on record (row i is image i), else None."""
    current = pipeline.load_state(ws)
    if current is None:
        return None
    ids = [r.id for r in ws.records()]
    if len(ids) != len(current.image_ids) or any(int(a) != b for a, b in zip(current.image_ids, ids, strict=False)):
        return None
    return current


# ----------------------------------------------------------------------------------------------- label queue

STRATEGIES = ["Suggested", "Random", "In order"]


def _as_result(current: pipeline.PipelineState) -> Any:
    """The saved propagation as the ``PropagationResult`` the review functions take."""
    from labeler.propagate import PropagationResult, Source

    codes = {"human": Source.HUMAN, "propagated": Source.PROPAGATED, "none": Source.NONE}
    return PropagationResult(
        label=current.label, source=np.array([codes[str(s)] for s in current.source], dtype=np.int8),
        confidence=current.confidence, margin=current.margin, entropy=current.entropy,
        stability=current.stability, proba=current.proba, scores=current.proba,
    )


@st.cache_data(show_spinner="Choosing typical, diverse images to label first…", max_entries=8)
def _cold_start(_ws: Workspace, key: str, n: int) -> list[int]:
    from labeler import review

    reps = pipeline.representations(_ws)
    X = reps["simclr"].X if "simclr" in reps else reps["pixels-pca"].X
    return [int(i) for i in review.cold_start(X, n, random_state=_ws.settings.random_state)]


def candidate_rows(
    ws: Workspace, current: pipeline.PipelineState | None, strategy: str, n: int, exclude: set[int]
) -> list[tuple[int, str]]:
    """Up to ``n`` (row, why it was picked) of images without a human label, chosen by ``strategy``.

    Suggested: before any propagation, typical and diverse images (k-means centres); then the review queue (least
    certain first, a share of random ones). Random: uniform. In order: file order.
    """
    labeled = set(ws.store.human_labels())
    records = ws.records()
    free = [i for i, r in enumerate(records) if r.id not in labeled and i not in exclude]
    if not free or n <= 0:
        return []
    if strategy == "Suggested":
        from labeler import review

        if current is None or not labeled:
            picks = _cold_start(ws, f"{ws.workspace_dir}:{ws.fingerprint(records)}", max(n, 12))
            free_set = set(free)
            chosen = [(row, "typical of a cluster") for row in picks if row in free_set]
            if chosen:
                return chosen[:n]
        if current is not None:
            taken = sorted(set(range(len(records))) - set(free))
            try:
                W = pipeline.graph_for_state(ws, current)
            except LookupError:
                W = None
            items = review.review_queue(None, _as_result(current), n_items=n, exclude=np.asarray(taken, dtype=np.int64),
                                        W=W, random_state=ws.store.labels_version())
            if items:
                return [(item.index, item.rule) for item in items]
    if strategy in {"Suggested", "Random"}:
        import random

        picker = random.Random(ws.store.labels_version())
        return [(row, "random") for row in picker.sample(free, min(n, len(free)))]
    return [(row, "") for row in free[:n]]


def label_queue(ws: Workspace, current: pipeline.PipelineState | None, strategy: str, n: int) -> list[int]:
    """The rows the Label page shows, kept stable across reruns (UI state), refilled when half are labeled."""
    key = (str(ws.workspace_dir), strategy)
    saved = st.session_state.get("label_queue")
    labeled = set(ws.store.human_labels())
    records = ws.records()
    skipped: set[int] = set(st.session_state.get("skipped_rows", set()))
    if saved is None or saved["key"] != key:
        saved = {"key": key, "rows": [], "reasons": {}}
    rows = [r for r in saved["rows"] if r < len(records) and records[r].id not in labeled and r not in skipped]
    if len(rows) <= n // 2:
        fresh = candidate_rows(ws, current, strategy, n - len(rows), set(rows) | skipped)
        if not fresh and skipped:  # everything left was skipped once: show those again
            st.session_state["skipped_rows"] = set()
            fresh = candidate_rows(ws, current, strategy, n - len(rows), set(rows))
        rows += [row for row, _ in fresh]
        saved["reasons"].update({row: why for row, why in fresh})
    saved["rows"] = rows
    st.session_state["label_queue"] = saved
    return rows


def forget_row(row: int) -> None:
    saved = st.session_state.get("label_queue")
    if saved is not None and row in saved["rows"]:
        saved["rows"].remove(row)


def skip_row(row: int) -> None:
    skipped = set(st.session_state.get("skipped_rows", set()))
    skipped.add(row)
    st.session_state["skipped_rows"] = skipped
    forget_row(row)


def undo_last(ws: Workspace) -> int | None:
    """Undo this annotator's last label action; the image it touched goes back to the front of the queue."""
    if not ws.store.undo(ws.settings.annotator):
        return None
    last = ws.store.history(limit=1)
    rows = {r.id: i for i, r in enumerate(ws.records())}
    row = rows.get(int(last[0]["image_id"])) if last else None
    saved = st.session_state.get("label_queue")
    if row is not None and saved is not None:
        saved["rows"] = [row, *[r for r in saved["rows"] if r != row]]
    return row


def reason_caption(row: int) -> str:
    saved = st.session_state.get("label_queue") or {}
    why = saved.get("reasons", {}).get(row, "")
    return f" · {plain(why)}" if why else ""


def full_image(ws: Workspace, row: int) -> Any:
    """The original image of ``row``, decoded (EXIF orientation applied), for the larger view."""
    from labeler.data import UnreadableImage, decode_image

    try:
        return decode_image(ws.data_dir / ws.records()[row].path, ws.settings.max_image_pixels)
    except (UnreadableImage, OSError):  # changed or removed since import: the thumbnail still shows it
        return ws.thumbnails()[row]


# ----------------------------------------------------------------------------------------------- map helpers


def needs_review(ws: Workspace, current: pipeline.PipelineState) -> Any:
    """(N,) bool: images the review tools would show (possible new class, or in the review queue)."""
    flagged = current.new_class.copy()
    return flagged


def _state_key(current: pipeline.PipelineState | None) -> float | None:
    return current.computed_at if current is not None and current.umap is not None else None


@st.fragment(run_every=POLL_ACTIVE_S)
def rerun_when_state_changes(ws: Workspace, shown_at: float | None) -> None:
    """Rerun the page when a newer propagation (with its map) has been saved by the background job."""
    if _state_key(state(ws)) != shown_at:
        st.rerun(scope="app")


def selected_rows(event: Any) -> list[int]:
    """Rows of the points picked by a lasso or box selection on the map (from each point's customdata)."""
    try:
        points = event.selection.points
    except AttributeError:
        return []
    rows: list[int] = []
    for point in points:
        value = point.get("customdata")
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None:
            rows.append(int(value))
    return list(dict.fromkeys(rows))


def send_to_review(rows: list[int]) -> None:
    """Put rows at the top of this session's review queue (UI state)."""
    queued = [r for r in st.session_state.get("review_first", []) if r not in rows]
    st.session_state["review_first"] = [*rows, *queued]


# ----------------------------------------------------------------------------------------------- review helpers


def review_rows(ws: Workspace, current: pipeline.PipelineState, n: int) -> list[tuple[int, str]]:
    """(row, why) for the review queue: rows sent from the map first, then the review queue of ``labeler.review``."""
    labeled = set(ws.store.human_labels())
    records = ws.records()
    first = [(r, "sent from the map") for r in st.session_state.get("review_first", []) if records[r].id not in labeled]
    taken = {row for row, _ in first} | {i for i, r in enumerate(records) if r.id in labeled}
    return [*first, *candidate_rows(ws, current, "Suggested", n - len(first), taken)][:n]


def suspects(ws: Workspace, current: pipeline.PipelineState) -> list[Any]:
    """Suspect human labels not dismissed in this session."""
    dismissed = set(st.session_state.get("dismissed_suspects", set()))
    try:
        found = pipeline.suspects(ws, current)
    except LookupError:  # the representation changed since: the next propagation brings new suspects
        return []
    return [s for s in found if s.index not in dismissed]


def dismiss_suspect(row: int) -> None:
    dismissed = set(st.session_state.get("dismissed_suspects", set()))
    dismissed.add(row)
    st.session_state["dismissed_suspects"] = dismissed


def new_class_rows(current: pipeline.PipelineState, n: int) -> list[int]:
    return [i for i, flagged in enumerate(current.new_class) if flagged and current.source[i] != "human"][:n]


def create_class_and_label(ws: Workspace, name: str, image_ids: list[int]) -> str | None:
    """Create a class and label images with it; returns an error message or None."""
    from labeler.store import InvalidClassName

    try:
        info = ws.store.add_class(name)
    except InvalidClassName as error:
        return str(error)
    if image_ids:
        ws.store.set_labels(image_ids, info.id, ws.settings.annotator)
    return None


def audit_row(ws: Workspace, current: pipeline.PipelineState) -> int | None:
    """The image being audited now (kept in UI state until answered): a uniform draw among unaudited propagated."""
    saved = st.session_state.get("audit_row")
    audited = {a["image_id"] for a in ws.store.audits()}
    labeled = set(ws.store.human_labels())
    records = ws.records()

    def eligible(row: int) -> bool:
        record_id = records[row].id
        return current.source[row] == "propagated" and record_id not in audited and record_id not in labeled

    if saved is not None and saved < len(records) and eligible(saved):
        return int(saved)
    from labeler import audit

    pool = [i for i in range(len(records)) if eligible(i)]
    seed = ws.settings.random_state * 7919 + len(audited)
    drawn = audit.audit_sample(np.asarray(pool, dtype=np.int64), 1, random_state=seed)
    if len(drawn) == 0:
        return None
    st.session_state["audit_row"] = int(drawn[0])
    return int(drawn[0])


def record_audit(ws: Workspace, current: pipeline.PipelineState, row: int, class_id: int) -> None:
    """Store a blind audit answer with the label propagation had given (never a seed)."""
    predicted = int(current.label[row])
    ws.store.record_audit(
        ws.records()[row].id, class_id,
        current.class_ids[predicted] if predicted >= 0 else None,
        float(current.confidence[row]), ws.settings.annotator,
    )
    st.session_state.pop("audit_row", None)


def threshold_for(ws: Workspace, current: pipeline.PipelineState, target: float) -> float | None:
    """The confidence threshold whose audited precision reaches ``target`` (lower Wilson bound), or None."""
    from labeler import audit

    true, predicted, confidence = _audit_pairs(ws)
    if not true:
        return None
    correct = [t == p for t, p in zip(true, predicted, strict=True)]
    return audit.threshold_for_precision(np.asarray(confidence), np.asarray(correct), target)


def suggested_threshold(ws: Workspace) -> float | None:
    current = state(ws)
    return None if current is None else threshold_for(ws, current, ws.settings.target_precision)


# ----------------------------------------------------------------------------------------------- model helpers


def latest_job(ws: Workspace, kind: str) -> Any:
    found = ws.store.jobs(kind=kind, limit=1)
    return found[0] if found else None


def active_job(ws: Workspace, kind: str) -> Any:
    job = latest_job(ws, kind)
    return job if job is not None and job.status in {"queued", "running"} else None


@st.cache_data(show_spinner=False, max_entries=4)
def _checkpoint_info(path: str, mtime: float) -> dict[str, Any] | None:
    from labeler.ssl.train import load_checkpoint_info

    try:
        return load_checkpoint_info(Path(path))
    except (OSError, ValueError, RuntimeError):
        return None


def training_info(ws: Workspace) -> dict[str, Any] | None:
    """Bookkeeping of the encoder checkpoint (loss history, epochs, minutes), None before any training."""
    path = pipeline.checkpoint_dir(ws) / "simclr.pt"
    if not path.is_file():
        return None
    return _checkpoint_info(str(path), path.stat().st_mtime)


@st.cache_data(show_spinner="Measuring leave-one-out accuracy…", max_entries=16)
def _diagnostics(_ws: Workspace, _state: pipeline.PipelineState, key: str) -> dict[str, float]:
    from labeler import diagnostics as diag

    y = np.where(_state.source == "human", _state.label, -1)
    W = pipeline.graph_for_state(_ws, _state)
    X = pipeline.representations(_ws)[_state.representation].X
    return {
        "propagation": diag.loo_accuracy(W, y, len(_state.class_ids), alpha=_ws.settings.alpha),
        "supervised": diag.supervised_baseline_loo(X, y, random_state=_ws.settings.random_state),
    }


def diagnostics(ws: Workspace, current: pipeline.PipelineState) -> dict[str, float] | None:
    """Leave-one-out accuracy of propagation and of the supervised-only baseline, None when not measurable."""
    if current.counts["human"] < 2 or len(current.class_ids) < 2:
        return None
    try:
        return _diagnostics(ws, current, f"{ws.workspace_dir}:{current.embedding_key}:{current.labels_version}")
    except LookupError:
        return None


def teaching(ws: Workspace, current: pipeline.PipelineState) -> dict[str, Any] | None:
    """Teaching mode: true accuracy of the propagated labels (and the learning curve when recorded), else None."""
    from labeler import diagnostics as diag

    truth = ws.ground_truth()
    if truth is None:
        return None
    accuracy, n = diag.accuracy_against_truth(current.label, truth, current.source == "propagated")
    result: dict[str, Any] = {"accuracy": None if n == 0 else accuracy, "n": n, "curve": None}
    curve = getattr(pipeline, "learning_curve", None)
    if curve is not None:
        points = curve(ws)
        if points:
            result["curve"] = {"n_labels": [p["n_labels"] for p in points], "accuracy": [p["accuracy"] for p in points]}
    return result


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"
