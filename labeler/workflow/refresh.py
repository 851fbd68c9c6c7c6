"""Refresh: representation -> shared kNN graph -> label spreading -> map, saved as the workspace's state.

A new label re-runs only propagation (warm-started); everything else comes from the caches.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from labeler.core import graph, propagate, review
from labeler.io.artifacts import (
    load_json,
    save_json_atomic,
)
from labeler.progress import Progress, quiet
from labeler.workflow import learning_curve
from labeler.workflow.garbage import collect_garbage
from labeler.workflow.representations import graph_for_state, knn_for, map_for, representations, select_representation
from labeler.workflow.state import PipelineState, cached_map, load_state, save_state, state_dir
from labeler.workflow.workspace import Workspace


class NoReadableImages(ValueError):
    """The workspace has no readable image (an empty folder, or every file unreadable)."""


def refresh(ws: Workspace, progress: Progress | None = None, compute_map: bool = True) -> PipelineState:
    """Bring everything up to date with the current images, encoder and human labels; save and return it."""
    progress = progress or quiet
    labels_version = ws.store.labels_version()
    records = ws.records()
    if not records:
        raise NoReadableImages(f"no readable images in {ws.data_dir}: nothing to propagate")
    classes = ws.classes()
    y = ws.human_label_vector(records)
    n_classes = len(classes)
    reps = representations(ws, progress, records)
    name, scores, reason = select_representation(ws, reps, y, n_classes)
    rep = reps[name]
    progress(0.3, f"kNN graph ({name})")
    indices, distances = knn_for(ws, rep)
    W = graph.affinity_from_knn(indices, distances)
    previous = load_state(ws)
    warm = None
    if (
        previous is not None
        and previous.embedding_key == rep.key
        and previous.scores.shape == (len(records), n_classes)
        and n_classes > 0
    ):
        warm = previous.scores
    progress(0.5, "spreading labels")
    settings = ws.settings

    def spread(n_bootstrap: int, F0: Any) -> propagate.PropagationResult:
        # Before any class exists there is nothing to spread: one dummy class with no seed gives "none" everywhere.
        return propagate.propagate(
            W, y, max(n_classes, 1), alpha=settings.alpha, max_iter=settings.max_iter, tol=settings.tol,
            n_bootstrap=n_bootstrap, drop=settings.bootstrap_drop, random_state=settings.random_state, F0=F0,
        )

    # Labels and counts first (one warm-started solve), saved at once so pages show them; the bootstrap re-runs
    # that measure stability (ten more solves, seconds at 100,000 images) follow and are saved after.
    result = spread(0, warm)
    new_class = review.possible_new_class(W, y) if n_classes else np.zeros(len(records), dtype=bool)
    state = PipelineState(
        image_ids=np.array([r.id for r in records], dtype=np.int64),
        paths=[r.path for r in records],
        class_ids=[c.id for c in classes],
        class_names=[c.name for c in classes],
        class_colours=[c.colour for c in classes],
        label=np.asarray(result.label, dtype=np.int64),
        source=result.source_names().astype(str),
        confidence=np.asarray(result.confidence, dtype=np.float64),
        margin=np.asarray(result.margin, dtype=np.float64),
        entropy=np.asarray(result.entropy, dtype=np.float64),
        stability=np.asarray(result.stability, dtype=np.float64),
        proba=np.asarray(result.proba, dtype=np.float64)[:, :n_classes],
        scores=np.asarray(result.scores, dtype=np.float64)[:, :n_classes],
        new_class=np.asarray(new_class, dtype=bool),
        representation=name,
        embedding_key=rep.key,
        representation_scores=scores,
        representation_reason=reason,
        labels_version=labels_version,
        computed_at=time.time(),
    )
    if previous is not None and np.array_equal(previous.image_ids, state.image_ids):
        # Until the re-runs end, an image keeps its last measured stability (one label seldom moves it far).
        state.stability = np.where(np.isnan(state.stability), previous.stability, state.stability)
    if compute_map:
        state.umap = map_for(ws, rep, progress)
    else:
        state.umap = cached_map(ws, rep.key)
    if settings.n_bootstrap > 0:
        save_state(ws, state)
        progress(0.7, "measuring stability (bootstrap re-runs)")
        # Warm-started from the solution just found, the full solve returns at once; only stability is new.
        state.stability = np.asarray(spread(settings.n_bootstrap, result.scores).stability, dtype=np.float64)
    save_state(ws, state)
    collect_garbage(ws)  # caches of older images or encoders can never be read again
    if settings.ground_truth_path is not None:  # teaching mode: one more point of the learning curve
        learning_curve.record_point(ws, state)
    progress(1.0, "labels propagated")
    return state


def suspect_labels(ws: Workspace, state: PipelineState) -> list[review.Suspect]:
    """Suspect human labels for ``state`` (``index`` is the row), cached per labels version and embedding."""
    path = state_dir(ws) / "suspects.json"
    key = f"{state.embedding_key}:{state.labels_version}:{len(state.class_ids)}"
    if path.exists():
        cached = load_json(path)
        if cached.get("key") == key:
            return [review.Suspect(**item) for item in cached["items"]]
    y = np.where(state.source == "human", state.label, -1)
    found: list[review.Suspect] = []
    if len(state.class_ids) >= 2 and np.sum(y >= 0) >= 2:
        W = graph_for_state(ws, state)
        found = review.suspect_human_labels(W, y, len(state.class_ids), alpha=ws.settings.alpha)
    save_json_atomic(path, {"key": key, "items": [s.__dict__ for s in found]})
    return found
