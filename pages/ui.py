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

from labeler.config import Settings
from labeler.store import DEFAULT_COLOURS, ClassInfo
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
def _runner(settings: Settings) -> Any:
    from labeler.jobs import JobRunner

    return JobRunner(settings)


def runner() -> Any:
    """The background job runner of the open workspace, or None until ``labeler.jobs`` exists."""
    try:
        return _runner(settings())
    except ImportError:
        return None


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
    job_runner = runner()
    if job_runner is not None:
        job_runner.request_refresh()


# ----------------------------------------------------------------------------------------------- job panel


def jobs(ws: Workspace) -> list[Any]:
    job_runner = runner()
    if job_runner is not None:
        return list(job_runner.status())
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
    """Images, human, propagated and unreached counts of the open workspace (from its summary when available)."""
    summary = getattr(ws, "summary", None)
    if summary is not None:
        values = summary()
        return {key: int(values.get(key, 0)) for key in ("images", "human", "propagated", "none")}
    images = len(ws.records())
    human = len(ws.store.human_labels())
    return {"images": images, "human": human, "propagated": 0, "none": images - human}


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


def accuracy_estimate(ws: Workspace) -> dict[str, Any] | None:
    """The blind-audit accuracy estimate with its 95% Wilson interval, or None before any audit."""
    return None


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
