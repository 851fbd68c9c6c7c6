"""The browser session's dataset: startup options, settings, the open workspace and its job runner.

Long-lived objects are held with ``st.cache_resource`` (keyed by the settings) and used only through their own
methods; which folder is open is UI state and lives in ``st.session_state``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import streamlit as st

from labeler.config import Settings
from labeler.install_paths import sample_data_dir
from labeler.io import folders, uploads
from labeler.workflow.runner import JobRunner
from labeler.workflow.state import PipelineState, current_state
from labeler.workflow.workspace import Workspace
from pages.shared import auth

SAMPLE_DIR = sample_data_dir()


GROUND_TRUTH_NAME = "ground_truth.csv"


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
    """Folders under which the home page may open a dataset (see ``labeler.io.folders.allowed_roots``)."""
    return folders.allowed_roots(Path(str(startup_options()["data_dir"])), SAMPLE_DIR)


def check_folder(text: str) -> tuple[Path | None, str | None]:
    """(resolved folder, None) when ``text`` names a readable folder under an allowed root, else (None, why)."""
    return folders.check_folder(text, allowed_roots())


def settings() -> Settings:
    """The settings of the dataset open in this browser session."""
    auth.require_token()  # every way to the labels passes here: without the token nothing is read or written
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


def state(ws: Workspace) -> PipelineState | None:
    """The latest propagation if it matches the images on record (row i is image i), else None."""
    return current_state(ws)
