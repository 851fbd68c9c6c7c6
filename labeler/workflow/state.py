"""The one propagation state of a workspace: every image's label, source, confidence and map position.

Saved after each refresh (one file, replaced atomically) and read by the pages, the CLI and the export; a state
that no longer fits the images on record is never returned.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeler.io.artifacts import load_npy, load_npz, save_npz_atomic
from labeler.store import ImageRecord
from labeler.wording import counted
from labeler.workflow.workspace import Workspace

SOURCES = ("human", "propagated", "none")


@dataclass
class PipelineState:
    """The latest propagation, aligned with ``Workspace.records()`` (row i is image i)."""

    image_ids: NDArray[np.int64]
    paths: list[str]
    class_ids: list[int]
    class_names: list[str]
    class_colours: list[str]
    label: NDArray[np.int64]  # class index, -1 where none
    source: NDArray[np.str_]  # human / propagated / none
    confidence: NDArray[np.float64]  # P(label is right): calibrated for propagated rows, 1 human, 0 none
    margin: NDArray[np.float64]
    entropy: NDArray[np.float64]
    stability: NDArray[np.float64]
    proba: NDArray[np.float64]  # (N, C)
    scores: NDArray[np.float64]  # (N, C) raw spreading scores: the warm start of the next run
    new_class: NDArray[np.bool_]
    representation: str
    embedding_key: str
    representation_scores: dict[str, float] = field(default_factory=dict)
    representation_reason: str = ""
    labels_version: int = 0
    computed_at: float = 0.0
    umap: NDArray[np.float32] | None = None
    # Raw spreading score (normalised top mass): ranks well, but is not a probability; exported as ``score``.
    score: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    # What ``confidence`` was calibrated on (labeler.workflow.calibration): features (m, n_features), whether each
    # label was right, and True for leave-one-out rows of human labels (False for blind audits).
    evidence_X: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 1)))
    evidence_correct: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    evidence_proxy: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    # The calibrator's simulated prior (labeler.core.simulated_prior.SimulatedPrior fields); empty: the default one.
    calibration_prior: dict[str, float] = field(default_factory=dict)
    # Selection-corrected accuracy of the representation choice ({} when there was no choice to make).
    representation_selection: dict[str, Any] = field(default_factory=dict)
    # Stopping rule: share of propagated labels each recent batch of human labels changed, oldest first, and how
    # many human labels each batch held.
    recent_changes: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    recent_batch_sizes: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # Unlike every other image (labeler.core.review.isolated; human labels never): also ``new_class``, and their
    # confidence is chance (labeler.workflow.calibration.calibrate_state). Empty in states saved before it existed.
    isolated: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def counts(self) -> dict[str, int]:
        return {name: int(np.sum(self.source == name)) for name in SOURCES}

    def label_names(self) -> list[str]:
        return [self.class_names[i] if i >= 0 else "" for i in self.label]

    def isolated_rows(self) -> NDArray[np.bool_]:
        """``isolated`` aligned with the rows: all False where the state has none (saved before it existed)."""
        if self.isolated.shape != self.label.shape:
            return np.zeros(self.label.shape, dtype=bool)
        return np.asarray(self.isolated, dtype=bool)


def state_dir(ws: Workspace) -> Path:
    return ws.workspace_dir / "state"


def state_path(ws: Workspace) -> Path:
    return state_dir(ws) / STATE_FILE


def cached_map(ws: Workspace, embedding_key: str) -> NDArray[np.float32] | None:
    path = ws.settings.cache_dir / f"map-{embedding_key}-k{ws.settings.n_neighbors}.npy"
    try:
        return load_npy(path) if path.exists() else None
    except (OSError, ValueError):
        return None  # unreadable (not written by us, or damaged): as if there were none; the map is recomputed


# The whole state is one file: every array field, and the other fields as JSON inside it (``_META``), written to a
# temporary file and renamed into place. A reader therefore never sees the arrays of one run with the class names
# of another. Fields are discovered from the dataclass, so a field added to PipelineState is saved with no change
# here (arrays as arrays, anything else must be JSON-serialisable).
STATE_FILE = "propagation.npz"
STATE_FORMAT = 3  # 3: confidence is calibrated (P(label is right)); the raw value moved to score
_META = "__meta__"
_NOT_SAVED = frozenset({"umap"})  # the map is cached per embedding (cached_map), not per propagation
_LEGACY_FILES = ("propagation.json",)  # format 1 kept the metadata beside the arrays


def save_state(ws: Workspace, state: PipelineState) -> None:
    """Write ``state`` atomically (one file, one rename)."""
    arrays: dict[str, NDArray[Any]] = {}
    meta: dict[str, Any] = {}
    for item in fields(state):
        if item.name in _NOT_SAVED:
            continue
        value = getattr(state, item.name)
        if isinstance(value, np.ndarray):
            arrays[item.name] = value
        else:
            meta[item.name] = value
    arrays[_META] = np.frombuffer(
        json.dumps({"format": STATE_FORMAT, "fields": meta}, sort_keys=True, default=_plain).encode("utf-8"),
        dtype=np.uint8,
    )
    save_npz_atomic(state_path(ws), arrays)
    for name in _LEGACY_FILES:
        (state_dir(ws) / name).unlink(missing_ok=True)


def touch_state(ws: Workspace) -> None:
    """Change :func:`state_version` without changing the state (the map of its embedding appeared meanwhile), so
    pages that poll it load it again; nothing when there is no state."""
    path = state_path(ws)
    try:
        before = os.stat(path).st_mtime_ns
        now = max(time.time_ns(), before + 1)
        os.utime(path, ns=(now, now))
    except OSError:
        return


def _plain(value: Any) -> Any:
    """numpy scalars as the Python numbers JSON knows."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"a PipelineState field of type {type(value).__name__} cannot be saved")


def state_version(ws: Workspace) -> tuple[int, int, int] | None:
    """A cheap stamp that changes whenever a new state is saved (inode, mtime in ns, size); None before any.

    For pages that poll: compare stamps and call :func:`load_state` only when it changed. One ``stat``, no
    arrays read.
    """
    try:
        info = os.stat(state_path(ws))
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def read_state(ws: Workspace) -> PipelineState | None:
    """The saved state as written, or None when there is none or it cannot be read (damaged, older format,
    fields missing). Not checked against the current images; see :func:`load_state`."""
    try:
        arrays = load_npz(state_path(ws))
        meta = json.loads(arrays.pop(_META).tobytes().decode("utf-8"))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, UnicodeDecodeError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != STATE_FORMAT:
        return None
    stored: dict[str, Any] = {**meta.get("fields", {}), **arrays}
    known = {item.name: item for item in fields(PipelineState)}
    values = {name: value for name, value in stored.items() if name in known and name not in _NOT_SAVED}
    missing = [
        name for name, item in known.items()
        if name not in values and item.default is MISSING and item.default_factory is MISSING
    ]
    if missing:
        return None
    state = PipelineState(**values)
    if len(state.image_ids) != len(state.label) or len(state.paths) != len(state.image_ids):
        return None
    return state


def load_state(ws: Workspace, records: list[ImageRecord] | None = None) -> PipelineState | None:
    """The last saved propagation, with the map if it has been computed; None before the first one.

    None too when the saved state no longer fits the workspace: other images on record (a re-scan since), or a
    class it refers to that no longer exists. (A class added since leaves it valid but stale: see
    :func:`is_stale`.)
    """
    state = read_state(ws)
    if state is None:
        return None
    records = ws.records() if records is None else records
    ids = np.array([r.id for r in records], dtype=np.int64)
    if ids.shape != state.image_ids.shape or not np.array_equal(ids, state.image_ids):
        return None
    if not set(state.class_ids) <= {c.id for c in ws.classes()}:
        return None
    if len(state.class_ids) != len(state.class_names) or (
        state.proba.ndim != 2 or state.proba.shape[1] != len(state.class_ids)
    ):
        return None
    state.umap = cached_map(ws, state.embedding_key)
    if state.umap is not None and len(state.umap) != len(state.image_ids):
        state.umap = None
    return state


def current_state(ws: Workspace, records: list[ImageRecord] | None = None) -> PipelineState | None:
    """The last saved propagation if it matches the images on record (row i is image i), else None.

    The same as :func:`load_state`, which checks this itself now; kept for the pages that call it.
    """
    return load_state(ws, records)


def images_digest(state: PipelineState) -> str:
    """A digest of the images ``state`` covers, in row order: part of the keys of what is kept per image set."""
    return hashlib.sha1(np.asarray(state.image_ids, dtype=np.int64).tobytes()).hexdigest()


def is_stale(ws: Workspace, state: PipelineState | None, records: list[ImageRecord] | None = None) -> bool:
    """True when labels, classes or the images on record changed since ``state`` was computed."""
    if state is None:
        return True
    if state.labels_version != ws.store.labels_version() or state.class_ids != [c.id for c in ws.classes()]:
        return True
    records = ws.records() if records is None else records
    return len(records) != len(state.image_ids) or any(
        int(image_id) != r.id for image_id, r in zip(state.image_ids, records, strict=True)
    )


def refresh_due(ws: Workspace, state: PipelineState | None, records: list[ImageRecord] | None = None) -> bool:
    """Whether propagation must run before ``state`` can be shown as the labels: :func:`is_stale` (human labels,
    blind audits, classes or images changed since it ran), unless there is nothing to propagate and nothing
    propagated (no saved state and no human label).

    Also with no human label left: a state propagated from labels since taken back (undone) is stale like any other,
    and its propagated labels rest on labels that no longer exist.
    """
    if state is None and not ws.store.human_labels():
        return False
    return is_stale(ws, state, records)


@dataclass(frozen=True)
class PropagationLag:
    """What changed in the store since a propagation ran (see :func:`propagation_lag`)."""

    labels_added: int  # human labels on images the propagation had no human label for
    labels_removed: int  # human labels it propagated from that are gone (undone, unlabeled)
    labels_changed: int  # images whose human label is another class now
    audits: int  # blind audits answered since (negative: dropped)
    classes_added: int
    images_changed: bool

    @property
    def labels_behind(self) -> bool:
        """Whether the propagated labels themselves are behind (human labels, classes or images changed); False
        when only blind audits changed, which the calibration of the confidence has yet to take in."""
        return bool(self.labels_added or self.labels_removed or self.labels_changed or self.classes_added
                    or self.images_changed or not self.audits)

    def text(self) -> str:
        """E.g. "30 human labels taken off since it ran"."""
        parts = []
        if self.labels_removed:
            parts.append(f"{counted(self.labels_removed, 'human label')} taken off")
        if self.labels_added:
            parts.append(f"{counted(self.labels_added, 'human label')} added")
        if self.labels_changed:
            parts.append(f"{counted(self.labels_changed, 'human label')} changed")
        if self.audits > 0:
            parts.append(f"{counted(self.audits, 'blind audit')} answered")
        elif self.audits < 0:
            parts.append(f"{counted(-self.audits, 'blind audit')} dropped")
        if self.classes_added:
            parts.append(f"{counted(self.classes_added, 'class', 'classes')} added")
        if self.images_changed:
            parts.append("the images changed")
        if not parts:  # events that cancel out, e.g. a label set and undone: the same labels, a new version
            return "labels were changed (and changed back) since it ran"
        return ", ".join(parts) + " since it ran"


def propagation_lag(ws: Workspace, state: PipelineState,
                    records: list[ImageRecord] | None = None) -> PropagationLag | None:
    """How far ``state`` is behind the store, by what :func:`is_stale` compares; None when it is up to date."""
    records = ws.records() if records is None else records
    if not is_stale(ws, state, records):
        return None
    then = {
        int(image_id): state.class_ids[int(label)]
        for image_id, source, label in zip(state.image_ids, state.source, state.label, strict=True)
        if source == "human" and label >= 0
    }
    covered = {int(image_id) for image_id in state.image_ids}
    now = {image_id: class_id for image_id, class_id in ws.store.human_labels().items() if image_id in covered}
    audits_then = ws.store.audits_in_version(state.labels_version)
    return PropagationLag(
        labels_added=sum(1 for image_id in now if image_id not in then),
        labels_removed=sum(1 for image_id in then if image_id not in now),
        labels_changed=sum(1 for image_id, class_id in now.items() if then.get(image_id, class_id) != class_id),
        audits=len(ws.store.audits()) - audits_then,
        classes_added=len({c.id for c in ws.classes()} - set(state.class_ids)),
        images_changed=[r.id for r in records] != [int(image_id) for image_id in state.image_ids],
    )


def lag_text(ws: Workspace, state: PipelineState | None) -> str:
    """What a stale ``state`` is behind by, in words (:meth:`PropagationLag.text`); "none has run yet" without one."""
    lag = propagation_lag(ws, state) if state is not None else None
    return lag.text() if lag is not None else "none has run yet"
