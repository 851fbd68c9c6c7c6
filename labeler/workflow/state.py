"""The one propagation state of a workspace: every image's label, source, confidence and map position.

Saved after each refresh and read by the pages, the CLI and the export.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeler.io.artifacts import (
    load_json,
    load_npy,
    load_npz,
    save_json_atomic,
    save_npz_atomic,
)
from labeler.store import ImageRecord
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
    confidence: NDArray[np.float64]
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

    @property
    def counts(self) -> dict[str, int]:
        return {name: int(np.sum(self.source == name)) for name in SOURCES}

    def label_names(self) -> list[str]:
        return [self.class_names[i] if i >= 0 else "" for i in self.label]


def state_dir(ws: Workspace) -> Path:
    return ws.workspace_dir / "state"


def cached_map(ws: Workspace, embedding_key: str) -> NDArray[np.float32] | None:
    path = ws.settings.cache_dir / f"map-{embedding_key}-k{ws.settings.n_neighbors}.npy"
    return load_npy(path) if path.exists() else None


_ARRAY_FIELDS = (
    "image_ids", "label", "source", "confidence", "margin", "entropy", "stability", "proba", "scores", "new_class",
)


def save_state(ws: Workspace, state: PipelineState) -> None:
    directory = state_dir(ws)
    arrays = {name: getattr(state, name) for name in _ARRAY_FIELDS}
    save_npz_atomic(directory / "propagation.npz", arrays)
    meta = {
        "paths": state.paths, "class_ids": state.class_ids, "class_names": state.class_names,
        "class_colours": state.class_colours, "representation": state.representation,
        "embedding_key": state.embedding_key, "representation_scores": state.representation_scores,
        "representation_reason": state.representation_reason, "labels_version": state.labels_version,
        "computed_at": state.computed_at,
    }
    save_json_atomic(directory / "propagation.json", meta)


def load_state(ws: Workspace) -> PipelineState | None:
    """The last saved propagation, with the map if it has been computed; None before the first one.

    Saved state that no longer matches the images on record (a re-import since) is ignored.
    """
    directory = state_dir(ws)
    try:
        meta = load_json(directory / "propagation.json")
        arrays = load_npz(directory / "propagation.npz")
    except (OSError, ValueError, KeyError):
        return None
    if len(arrays["image_ids"]) != len(meta["paths"]):
        return None  # written by two different runs: the json and npz are replaced one after the other
    fields: dict[str, Any] = {name: arrays[name] for name in _ARRAY_FIELDS}
    state = PipelineState(**fields, **meta)
    state.umap = cached_map(ws, state.embedding_key)
    return state


def current_state(ws: Workspace, records: list[ImageRecord] | None = None) -> PipelineState | None:
    """The last saved propagation if it matches the images on record (row i is image i), else None."""
    state = load_state(ws)
    if state is None:
        return None
    records = ws.records() if records is None else records
    ids = np.array([r.id for r in records], dtype=np.int64)
    if ids.shape != state.image_ids.shape or not np.array_equal(ids, state.image_ids):
        return None
    return state


def is_stale(ws: Workspace, state: PipelineState | None) -> bool:
    """True when labels, classes or images changed since ``state`` was computed."""
    if state is None:
        return True
    return state.labels_version != ws.store.labels_version() or state.class_ids != [c.id for c in ws.classes()]
