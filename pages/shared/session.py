"""The browser session's dataset: startup options, settings, the open workspace and its job runner.

Long-lived objects are held with ``st.cache_resource`` (keyed by the settings) and used only through their own
methods; which folder is open is UI state and lives in ``st.session_state``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import secrets
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from numpy.typing import NDArray

from labeler.config import WORKSPACE_DIRNAME, Settings
from labeler.install_paths import sample_data_dir, sample_photos_dir
from labeler.io import folders, uploads
from labeler.store import ImageRecord
from labeler.workflow.label_queue import image_key
from labeler.workflow.representations import graph_for_state
from labeler.workflow.runner import JobRunner
from labeler.workflow.state import PipelineState, current_state
from labeler.workflow.state import state_version as saved_state_version
from labeler.workflow.workspace import ImportReport, Workspace
from pages.shared import auth, remembered, text

SAMPLE_DIR = sample_data_dir()
SAMPLE_PHOTOS_DIR = sample_photos_dir()


GROUND_TRUTH_NAME = "ground_truth.csv"
# Session keys that outlive page changes (no widget owns them).
TEACHING_KEY = "teaching_mode"
ANNOTATOR_KEY = "annotator"
TAB_KEY = "tab_id"
# This browser tab's id in the address bar (``?tab=...``): a reload is a new Streamlit session of the same tab.
TAB_PARAM = "tab"
_TAB_ID = re.compile(r"[0-9a-f]{6}")


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


RAY_ENV = "LABELER_RAY_ADDRESS"


def startup_ray_address(argv: list[str] | None = None) -> str:
    """The Ray cluster the models' embeddings go to by default (``--ray`` after ``--``, or ``LABELER_RAY_ADDRESS``;
    "" = this machine): ``Settings.ray_address`` of every dataset this app opens."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--ray", dest="ray")
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return str(known.ray or os.environ.get(RAY_ENV) or "").strip()


def allowed_roots() -> list[Path]:
    """Folders under which the home page may open a dataset (see ``labeler.io.folders.allowed_roots``)."""
    roots = folders.allowed_roots(Path(str(startup_options()["data_dir"])), SAMPLE_DIR)
    return [*roots, SAMPLE_PHOTOS_DIR.resolve()]


def check_folder(text: str) -> tuple[Path | None, str | None]:
    """(resolved folder, None) when ``text`` names a readable folder under an allowed root, else (None, why)."""
    return folders.check_folder(text, allowed_roots())


def teaching_mode() -> bool:
    """Whether this browser session shows teaching mode (the Home toggle; on by default with ``--ground-truth``).

    Kept under its own session key, not the toggle's: Streamlit drops a widget's key when a page without that
    widget runs, and the setting must hold on every page.
    """
    if TEACHING_KEY not in st.session_state:
        remembered.restore(TEACHING_KEY)  # a reload: as the tab had it (this may run before app.py's sync_url)
    if TEACHING_KEY not in st.session_state:
        st.session_state[TEACHING_KEY] = startup_options()["ground_truth"] is not None
    return bool(st.session_state[TEACHING_KEY])


def set_teaching_mode(on: bool) -> None:
    st.session_state[TEACHING_KEY] = bool(on)


def ground_truth_for(data_dir: Path) -> Path | None:
    """The ground truth of ``data_dir``: the ``--ground-truth`` option, else ``ground_truth.csv`` in the folder."""
    truth = startup_options()["ground_truth"]
    if truth is None and (data_dir / GROUND_TRUTH_NAME).is_file():
        truth = data_dir / GROUND_TRUTH_NAME
    return truth


def fallback_workspace(data_dir: Path) -> Path:
    """Where the workspace of a read-only ``data_dir`` goes: a folder of its own under the user's cache."""
    digest = hashlib.sha1(str(data_dir).encode("utf-8")).hexdigest()[:10]
    return (Path.home() / ".cache" / "labeler" / "workspaces" / f"{data_dir.name or 'root'}-{digest}").resolve()


def workspace_dir_for(data_dir: Path, given: Path | None) -> Path | None:
    """The workspace for ``data_dir``: ``given`` if any; ``DATA_DIR/.labeler`` when it exists or can be made;
    else (a read-only folder) :func:`fallback_workspace`."""
    if given is not None:
        return given
    default = data_dir / WORKSPACE_DIRNAME
    if default.is_dir() and os.access(default, os.W_OK) or not data_dir.is_dir() or os.access(data_dir, os.W_OK):
        return None
    return fallback_workspace(data_dir)


def settings() -> Settings:
    """The settings of the dataset open in this browser session."""
    auth.require_token()  # every way to the labels passes here: without the token nothing is read or written
    options = startup_options()
    data_dir = Path(st.session_state.get("data_dir") or options["data_dir"] or SAMPLE_DIR)
    given = options["workspace"] if data_dir == options["data_dir"] else None
    workspace = workspace_dir_for(data_dir, given)
    ground_truth = ground_truth_for(data_dir) if teaching_mode() else None
    return Settings(data_dir=data_dir, workspace_dir=workspace or Path(), ground_truth_path=ground_truth,
                    ray_address=startup_ray_address())


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
    return _runner(current.with_(ground_truth_path=ground_truth_for(current.data_dir)))


# ----------------------------------------------------------------------------------------------- cached reads
# The images table, the thumbnails and the state are loaded once per version stamp and shared by every rerun,
# fragment and browser tab (st.cache_resource: never mutate what these return). A poll costs a stat and one small
# query; the arrays are reloaded only when a stamp changes.

# The images table changes only on import: its version (one indexed read) is read at most twice a second, however
# many helpers of one run ask, and cleared by this app's own imports.
IMAGES_VERSION_TTL_S = 0.5


@st.cache_data(ttl=IMAGES_VERSION_TTL_S, show_spinner=False, max_entries=8)
def _images_version(_ws: Workspace, db_path: str) -> int:
    return _ws.store.images_version()


def images_version(ws: Workspace) -> int:
    """The store's images version (bumped by every import), re-read at most every IMAGES_VERSION_TTL_S."""
    return _images_version(ws, str(ws.settings.db_path))


@st.cache_resource(show_spinner=False, max_entries=4)
def _records(_ws: Workspace, db_path: str, version: int) -> list[ImageRecord]:
    return _ws.records()


def records(ws: Workspace) -> list[ImageRecord]:
    """``ws.records()`` (readable images in row order), cached until the images table changes."""
    return _records(ws, str(ws.settings.db_path), images_version(ws))


@st.cache_resource(show_spinner=False, max_entries=4)
def _image_ids(_ws: Workspace, db_path: str, version: int) -> NDArray[np.int64]:
    return np.array([record.id for record in _records(_ws, db_path, version)], dtype=np.int64)


def image_ids(ws: Workspace) -> NDArray[np.int64]:
    """Image ids in row order (N,), cached until the images table changes."""
    return _image_ids(ws, str(ws.settings.db_path), images_version(ws))


@st.cache_resource(show_spinner=False, max_entries=4)
def _paths(_ws: Workspace, db_path: str, version: int) -> list[str]:
    return [record.path for record in _records(_ws, db_path, version)]


def paths(ws: Workspace) -> list[str]:
    """File paths in row order, cached until the images table changes."""
    return _paths(ws, str(ws.settings.db_path), images_version(ws))


@st.cache_resource(show_spinner=False, max_entries=4)
def _rows_by_key(_ws: Workspace, db_path: str, version: int) -> dict[str, int]:
    return {image_key(record): row for row, record in enumerate(_records(_ws, db_path, version))}


def rows_by_key(ws: Workspace) -> dict[str, int]:
    """{image key (id and content hash): row}, for UI state kept by image identity."""
    return _rows_by_key(ws, str(ws.settings.db_path), images_version(ws))


def keys_of(ws: Workspace, rows: list[int]) -> list[str]:
    found = records(ws)
    return [image_key(found[row]) for row in rows]


def rows_of(ws: Workspace, keys: Iterable[str]) -> list[int]:
    """Rows of the images ``keys`` name that are still on record with the same content, in order."""
    index = rows_by_key(ws)
    return [index[key] for key in keys if key in index]


@st.cache_resource(show_spinner="Loading thumbnails…", max_entries=2)
def _thumbnails(_ws: Workspace, db_path: str, version: int) -> NDArray[np.uint8]:
    return _ws.thumbnails()


def thumbnails(ws: Workspace) -> NDArray[np.uint8]:
    """Thumbnails (N, T, T, 3) uint8 in row order, cached until the images table changes."""
    return _thumbnails(ws, str(ws.settings.db_path), images_version(ws))


@st.cache_resource(show_spinner=False, max_entries=4)
def _state(_ws: Workspace, db_path: str, images: int, saved: tuple[int, ...] | None) -> PipelineState | None:
    return current_state(_ws, _records(_ws, db_path, images))


def state(ws: Workspace) -> PipelineState | None:
    """The latest propagation if it matches the images on record (row i is image i), else None; loaded once per
    saved state and shared (never mutate it)."""
    return _state(ws, str(ws.settings.db_path), images_version(ws), state_version(ws))


@st.cache_resource(show_spinner=False, max_entries=4)
def _graph(_ws: Workspace, _state: PipelineState, key: tuple[str, str, int]) -> Any:
    try:
        return graph_for_state(_ws, _state)
    except LookupError:
        return None


def graph(ws: Workspace, current: PipelineState) -> Any:
    """The kNN affinity the state was propagated on (None when its representation is gone), loaded once per
    representation: building it loads every representation, seconds at 100,000 images."""
    return _graph(ws, current, (str(ws.workspace_dir), current.embedding_key, ws.settings.n_neighbors))


def state_version(ws: Workspace) -> tuple[int, ...] | None:
    """Changes whenever a new state is saved (one stat), for polling fragments; None before the first."""
    return saved_state_version(ws)


@st.cache_data(show_spinner=False, max_entries=4)
def _dataset_summary(_ws: Workspace, db_path: str, version: int) -> dict[str, Any]:
    readable = _records(_ws, db_path, version)  # already cached: the whole table is not read again
    return {
        "images": len(readable),
        "unreadable": [(r.path, r.reason or "unreadable") for r in _ws.store.images(status="unreadable")],
        "duplicates": [(r.path, r.duplicate_of) for r in readable if r.duplicate_of],
    }


def dataset_summary(ws: Workspace) -> dict[str, Any]:
    """What :func:`labeler.workflow.report.dataset_summary` says (readable count, unreadable files and why, exact
    duplicates), from the cached readable records and the unreadable rows only; cached until the images change."""
    return _dataset_summary(ws, str(ws.settings.db_path), images_version(ws))


def has_images(ws: Workspace) -> bool:
    """Whether the folder has been imported: its images version moved, or (an older store) one COUNT query."""
    return images_version(ws) > 0 or ws.has_images()


def start_import(labels_from_folders: bool = False) -> None:
    """Scan the folder in the background job lane (progress and cancel in the jobs list); every cached read
    reloads once the images version moves."""
    runner().start_import(labels_from_folders=labels_from_folders)
    _images_version.clear()


def last_import() -> ImportReport | None:
    """What the last import of this app found, None before one."""
    found = getattr(runner(), "last_import", None)
    return found if isinstance(found, ImportReport) else None


def _latest_import(ws: Workspace) -> Any:
    found = ws.store.jobs(kind="import", limit=1)
    return found[0] if found else None


@st.fragment(run_every=1.0)
def _import_progress(ws: Workspace) -> None:
    """The first import's progress; the page reruns when it is over."""
    job = _latest_import(ws)
    if job is not None and job.active:
        st.progress(min(max(float(job.progress), 0.0), 1.0), text=text.plain(job.message or "Reading images…"))
    else:
        _images_version.clear()
        st.rerun(scope="app")


def require_images(title: str | None = None) -> Workspace:
    """The open workspace, under the page's ``title`` (drawn once the browser may see the app); the first time,
    the folder is imported in the background while the page shows its progress. Stops the page with a message
    while it holds no images."""
    try:
        ws = workspace()
    except (PermissionError, OSError) as error:
        st.error(f"Cannot open a workspace for this folder: {text.plain(error)}. Start the app with "
                 "`labeler app FOLDER --workspace WRITABLE_FOLDER`, or open another folder on the Home page.")
        st.stop()
    if title is not None:
        st.title(title)
    if not has_images(ws):
        job = _latest_import(ws)
        if job is not None and job.status == "failed":
            st.error(f"Reading the data folder failed: {text.plain(job.error or 'unknown error')}")
            if st.button("Try again", key="retry_import"):
                start_import()
                st.rerun()
            st.stop()
        if job is None or not job.active:
            start_import()
        st.caption("Reading the images of this folder for the first time (in the background; you can open other "
                   "pages meanwhile).")
        _import_progress(ws)
        st.stop()
    if not records(ws):
        st.warning(f"No readable images in {text.plain(ws.data_dir)}. Open another folder on the Home page.")
        st.stop()
    return ws


def tab_id() -> str:
    """This browser tab's id, kept in its address bar (``?tab=...``) so that a reload, which starts a new
    Streamlit session, is still the same tab; a tab opened without it gets a fresh random one.

    Called by ``app.py`` on every run: Streamlit drops query parameters on a page switch, and the id must be in the
    address bar whenever the tab may be reloaded. (The id scopes undo to one tab's own actions; it is not a secret:
    anyone who may open the app may label anything anyway.)
    """
    if TAB_KEY not in st.session_state:
        given = st.query_params.get(TAB_PARAM)
        valid = isinstance(given, str) and _TAB_ID.fullmatch(given) is not None
        st.session_state[TAB_KEY] = given if valid else secrets.token_hex(3)
    tab = str(st.session_state[TAB_KEY])
    if st.query_params.get(TAB_PARAM) != tab:
        st.query_params[TAB_PARAM] = tab
    return tab


# How many tabs' memories the server keeps (the oldest go first): a few small lists each.
TAB_MEMORIES = 256


@st.cache_resource(show_spinner=False)
def _tab_memories() -> dict[str, dict[str, Any]]:
    return {}


def tab_memory() -> dict[str, Any]:
    """This browser tab's own state that a reload must keep (a reload starts a new Streamlit session, with an empty
    session state): held by the server under the tab's id (:func:`tab_id`), for the server's lifetime. For lists
    too long for the address bar, e.g. the images sent from the map to the review queue."""
    memories = _tab_memories()
    tab = tab_id()
    memory = memories.pop(tab, {})
    memories[tab] = memory  # most recently used last
    while len(memories) > TAB_MEMORIES:
        memories.pop(next(iter(memories)))
    return memory


def annotator(ws: Workspace) -> str:
    """Who labels in this browser tab: the user's name and the tab's id (:func:`tab_id`), so that undo in one tab
    never reverts another tab's labels, and still reaches this tab's own labels after a reload."""
    if ANNOTATOR_KEY not in st.session_state:
        st.session_state[ANNOTATOR_KEY] = f"{ws.settings.annotator}#{tab_id()}"
    return str(st.session_state[ANNOTATOR_KEY])


def request_refresh() -> None:
    """Ask the runner to re-propagate in the background (returns at once)."""
    runner().request_refresh()


def uploads_into_open_dataset(current: Settings) -> bool:
    """Whether :func:`save_uploads` saves into the dataset open now (it is an upload dataset) or a new one."""
    return uploads.is_upload_dataset(current.data_dir)


def save_uploads(current: Settings, files: list[Any]) -> Path:
    """Save uploaded images (and the images inside uploaded zips) into the upload dataset folder; returns it.

    The upload dataset is ``<workspace>/uploads`` of the dataset open now, or the open dataset itself when it
    already is an upload dataset. Problems are shown as warnings; good files still land.
    """
    folder = current.data_dir if uploads.is_upload_dataset(current.data_dir) else current.workspace_dir / "uploads"
    saved, problems = uploads.save_files(folder, [(f.name, f.getvalue()) for f in files])
    for name, reason in problems:
        st.warning(f"{text.plain(name)}: {text.plain(reason)}")
    st.session_state["import_lines"] = [f"{saved} files saved into {folder}"]
    return folder
