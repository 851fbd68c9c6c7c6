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

import streamlit as st

from labeler import folders, learning_curve, pipeline, report, uploads
from labeler import queue as label_queue_rules
from labeler.config import Settings
from labeler.jobs import JobRunner
from labeler.store import DEFAULT_COLOURS, ClassInfo, Job
from labeler.workspace import Workspace

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
    """Folders under which the home page may open a dataset (see ``labeler.folders.allowed_roots``)."""
    return folders.allowed_roots(Path(str(startup_options()["data_dir"])), SAMPLE_DIR)


def check_folder(text: str) -> tuple[Path | None, str | None]:
    """(resolved folder, None) when ``text`` names a readable folder under an allowed root, else (None, why)."""
    return folders.check_folder(text, allowed_roots())


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
    # One runner per workspace, whether this session shows teaching mode or not. It knows the ground truth
    # whenever one exists (the --ground-truth option, else ground_truth.csv in the folder) only to record the
    # learning curve; nothing is shown unless teaching mode is on.
    current = settings()
    truth = startup_options()["ground_truth"]
    if truth is None and (current.data_dir / GROUND_TRUTH_NAME).is_file():
        truth = current.data_dir / GROUND_TRUTH_NAME
    return _runner(current.with_(ground_truth_path=truth))


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
    return report.label_counts(ws, state(ws))


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
    return pipeline.current_state(ws)


# ----------------------------------------------------------------------------------------------- label queue

STRATEGIES = list(label_queue_rules.STRATEGIES)


@st.cache_data(show_spinner="Choosing typical, diverse images to label first…", max_entries=8)
def _cold_start(_ws: Workspace, key: str, n: int) -> list[int]:
    return label_queue_rules.cold_start_rows(_ws, n)


def cold_start(ws: Workspace, n: int) -> list[int]:
    """The cold-start rows, cached per workspace and image set (k-means takes a moment on large folders)."""
    return _cold_start(ws, f"{ws.workspace_dir}:{ws.fingerprint()}", n)


def label_queue(ws: Workspace, current: pipeline.PipelineState | None, strategy: str, n: int) -> list[int]:
    """The rows the Label page shows, kept stable across reruns (UI state), refilled when half are labeled."""
    key = (str(ws.workspace_dir), strategy)
    saved = st.session_state.get("label_queue")
    if saved is None or saved["key"] != key:
        saved = {"key": key, "rows": [], "reasons": {}}
    skipped: set[int] = set(st.session_state.get("skipped_rows", set()))
    rows, reasons, skips_reset = label_queue_rules.refill(
        ws, current, strategy, n, saved["rows"], skipped, cold_start=cold_start
    )
    if skips_reset:
        st.session_state["skipped_rows"] = set()
    saved["reasons"].update(reasons)
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
    row = label_queue_rules.undo_last(ws)
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
    return label_queue_rules.review_rows(ws, current, n, st.session_state.get("review_first", []),
                                         cold_start=cold_start)


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
    """The image being audited now, kept in UI state until answered (see ``labeler.queue.next_audit_row``)."""
    row = label_queue_rules.next_audit_row(ws, current, st.session_state.get("audit_row"))
    if row is None:
        st.session_state.pop("audit_row", None)
    else:
        st.session_state["audit_row"] = row
    return row


def record_audit(ws: Workspace, current: pipeline.PipelineState, row: int, class_id: int) -> None:
    """Store a blind audit answer (never a seed) and draw the next image."""
    label_queue_rules.record_audit(ws, current, row, class_id)
    st.session_state.pop("audit_row", None)


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
def _diagnostics(_ws: Workspace, _state: pipeline.PipelineState, key: str) -> dict[str, float] | None:
    return report.diagnostics(_ws, _state)


def diagnostics(ws: Workspace, current: pipeline.PipelineState) -> dict[str, float] | None:
    """Leave-one-out accuracy of propagation and of the supervised-only baseline, None when not measurable."""
    if not report.can_diagnose(current):
        return None
    return _diagnostics(ws, current, f"{ws.workspace_dir}:{current.embedding_key}:{current.labels_version}")


def teaching(ws: Workspace, current: pipeline.PipelineState) -> dict[str, Any] | None:
    """Teaching mode: true accuracy of the propagated labels, the audit estimate and the learning curve."""
    return learning_curve.teaching_report(ws, current)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"
