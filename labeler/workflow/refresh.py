"""Refresh: representation -> shared kNN graph -> label spreading -> calibration -> map, saved as the workspace's
state.

A new label re-runs only propagation (warm-started) and the calibration; everything else comes from the caches.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from labeler.core import propagate, review
from labeler.core.stopping import BATCH_LABELS, changed_fraction
from labeler.io.artifacts import (
    load_json,
    load_npz,
    save_json_atomic,
    save_npz_atomic,
)
from labeler.progress import Progress, quiet
from labeler.workflow import calibration, label_queue, learning_curve
from labeler.workflow.garbage import collect_garbage
from labeler.workflow.representations import (
    affinity_for,
    graph_for_state,
    knn_for,
    map_for,
    plain_backbone_distances,
    representations,
    select_representation,
    selection_record,
)
from labeler.workflow.state import (
    PipelineState,
    cached_map,
    images_digest,
    load_state,
    save_state,
    state_dir,
)
from labeler.workflow.workspace import Workspace


class NoReadableImages(ValueError):
    """The workspace has no readable image (an empty folder, or every file unreadable)."""


def refresh(
    ws: Workspace, progress: Progress | None = None, compute_map: bool = True,
    newer_labels: Callable[[], bool] | None = None,
) -> PipelineState:
    """Bring everything up to date with the current images, encoder and human labels; save and return it.

    ``newer_labels()``, asked once the labels and counts are saved, says a newer pass is already wanted (the app's
    runner: the person labeled again): the stability re-runs, new-class flags and calibration are then left to that
    pass, so they never delay its counts.
    """
    progress = progress or quiet
    labels_version = ws.store.labels_version()
    records = ws.records()
    if not records:
        raise NoReadableImages(f"no readable images in {ws.data_dir}: nothing to propagate")
    classes = ws.classes()
    y = ws.human_label_vector(records)
    n_classes = len(classes)
    reps = representations(ws, progress, records)
    choice = select_representation(ws, reps, y, n_classes)
    name = choice.name
    rep = reps[name]
    progress(0.3, f"kNN graph ({name})")
    W = affinity_for(ws, rep)
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
            should_stop=newer,
        )

    def newer() -> bool:
        return newer_labels is not None and newer_labels()

    # Labels and counts first (one warm-started solve), saved at once so pages show them; the bootstrap re-runs
    # that measure stability (ten more solves, seconds at 100,000 images) and the new-class flags follow.
    result = spread(0, warm)
    aligned = previous is not None and np.array_equal(previous.image_ids, [r.id for r in records])
    # Possible new classes, like stability, are measured after the counts are saved; until then the last ones show.
    new_class = previous.new_class if previous is not None and aligned else np.zeros(len(records), dtype=bool)
    isolated = previous.isolated_rows() if previous is not None and aligned else np.zeros(len(records), dtype=bool)
    score = np.asarray(result.confidence, dtype=np.float64)
    state = PipelineState(
        image_ids=np.array([r.id for r in records], dtype=np.int64),
        paths=[r.path for r in records],
        class_ids=[c.id for c in classes],
        class_names=[c.name for c in classes],
        class_colours=[c.colour for c in classes],
        label=np.asarray(result.label, dtype=np.int64),
        source=result.source_names().astype(str),
        confidence=score.copy(),
        margin=np.asarray(result.margin, dtype=np.float64),
        entropy=np.asarray(result.entropy, dtype=np.float64),
        stability=np.asarray(result.stability, dtype=np.float64),
        proba=np.asarray(result.proba, dtype=np.float64)[:, :n_classes],
        scores=np.asarray(result.scores, dtype=np.float64)[:, :n_classes],
        new_class=np.asarray(new_class, dtype=bool),
        isolated=np.asarray(isolated, dtype=bool) & (y < 0),
        representation=name,
        embedding_key=rep.key,
        representation_scores=choice.scores,
        representation_reason=choice.reason,
        labels_version=labels_version,
        computed_at=time.time(),
        score=score,
        representation_selection=selection_record(choice.selection),
    )
    if previous is not None and aligned:
        # Until the re-runs end, an image keeps its last measured stability (one label seldom moves it far).
        state.stability = np.where(np.isnan(state.stability), previous.stability, state.stability)
    track_label_batches(ws, state)
    if compute_map:
        state.umap = map_for(ws, rep, progress)
    else:
        state.umap = cached_map(ws, rep.key)
    same_graph = (previous is not None and previous.embedding_key == state.embedding_key
                  and previous.class_ids == state.class_ids and np.array_equal(previous.image_ids, state.image_ids))
    # Saved at once with a provisional calibration, refitted on the last evidence (no solve).
    calibration.calibrate_state(ws, state, W, previous if same_graph else None)
    save_state(ws, state)
    # The follow-up work below is abandoned as soon as newer labels wait (checked between its parts and between
    # the re-runs): the next pass does it all for them, and the saved state keeps this pass's labels and counts.
    deferred = "labels propagated (stability and calibration follow with the newer labels)"
    if newer():
        _finish(ws, state)
        progress(1.0, deferred)
        return state
    progress(0.7, "measuring stability (bootstrap re-runs) and possible new classes")
    new_class, isolated = state.new_class, state.isolated
    if n_classes:  # far from every seed in the graph, or isolated: far from its k-th neighbour (the cached lists)
        new_class = np.asarray(review.possible_new_class(W, y, knn_distances=knn_for(ws, rep)[1]), dtype=bool)
        # On photos, isolated in the backbone's plain features too (plain_backbone_distances says why): only these
        # lose their calibrated confidence, since only there was isolation measured to single out non-photos (in
        # other representations it also takes a few real images: 0.4% of Fashion-MNIST, half of them right).
        plain = plain_backbone_distances(ws, records)
        isolated = np.zeros(len(records), dtype=bool) if plain is None else review.isolated(plain) & (y < 0)
        new_class |= isolated
    stability = state.stability
    if settings.n_bootstrap > 0 and not newer():
        # Warm-started from the solution just found, the full solve returns at once; only stability is new.
        stability = np.asarray(spread(settings.n_bootstrap, result.scores).stability, dtype=np.float64)
    if newer():
        _finish(ws, state)
        progress(1.0, deferred)
        return state
    state.new_class, state.isolated, state.stability = new_class, isolated, stability
    progress(0.9, "calibrating confidence")
    calibration.calibrate_state(ws, state, W)  # on the new labels' leave-one-out predictions and every audit
    save_state(ws, state)
    if not newer():
        progress(0.95, "grouping the images for the Label page's suggestions")
        label_queue.cluster_rows(ws, state)  # k-means only when the labels doubled; kept on disk for the page
    _finish(ws, state)
    progress(1.0, "labels propagated")
    return state


def _finish(ws: Workspace, state: PipelineState) -> None:
    collect_garbage(ws)  # caches of older images or encoders can never be read again
    if ws.settings.ground_truth_path is not None:  # teaching mode: one more point of the learning curve
        learning_curve.record_point(ws, state)


def suspect_labels(ws: Workspace, state: PipelineState) -> list[review.Suspect]:
    """Suspect human labels for ``state`` (``index`` is the row), cached per labels version and embedding; those a
    person kept with that class (``store.keep_label``), or has relabeled since, left out."""
    path = state_dir(ws) / "suspects.json"
    # "fence:": suspects by the Tukey fence on leave-one-out log-ratios; lists cached by the older rule are not reused.
    key = f"fence:{state.embedding_key}:{state.labels_version}:{len(state.class_ids)}"
    found: list[review.Suspect] | None = None
    if path.exists():
        cached = load_json(path)
        if cached.get("key") == key:
            found = [review.Suspect(**item) for item in cached["items"]]
    if found is None:
        y = np.where(state.source == "human", state.label, -1)
        found = []
        if len(state.class_ids) >= 2 and np.sum(y >= 0) >= 2:
            W = graph_for_state(ws, state)
            found = review.suspect_human_labels(W, y, len(state.class_ids), alpha=ws.settings.alpha)
        with contextlib.suppress(OSError):  # only a cache: on a read-only workspace (an export elsewhere) it is
            save_json_atomic(path, {"key": key, "items": [s.__dict__ for s in found]})  # computed each time
    kept, now = ws.store.kept_labels(), ws.store.human_labels()

    def still_suspect(s: review.Suspect) -> bool:
        image_id, label = int(state.image_ids[s.index]), state.class_ids[s.human_label]
        # Changed (or taken back) since this state: the person has acted on it, though the next propagation is
        # what measures the new label against its neighbours.
        return kept.get(image_id) != label and now.get(image_id) == label

    return [s for s in found if still_suspect(s)]


# The stopping rule compares the labels before and after each batch of BATCH_LABELS changed human labels
# (labeler.core.stopping), and looks at the last few batches.
KEEP_BATCHES = 3


def track_label_batches(ws: Workspace, state: PipelineState) -> None:
    """Fill ``state.recent_changes`` and ``state.recent_batch_sizes`` for the stopping rule (in place).

    The labels at the start of the current batch are kept in the workspace; once ``BATCH_LABELS`` human labels
    differ from then, the share of propagated labels that changed is appended and a new batch starts. A new
    representation, class list or image set starts the history afresh: earlier batches measured another graph.
    """
    path = state_dir(ws) / "label_batches.npz"
    y = calibration.human_labels(state)
    digest = images_digest(state)
    key = f"{state.embedding_key}:{state.class_ids}:{digest}"
    try:
        start = load_npz(path)
        if str(start["key"]) != key:
            raise KeyError("another graph")
        changes, sizes = start["changes"], start["sizes"]
    except (OSError, ValueError, KeyError):
        start = None
        changes, sizes = np.zeros(0), np.zeros(0, dtype=np.int64)
    n_changed = 0 if start is None else int(np.sum(start["y"] != y))
    if start is None or n_changed >= BATCH_LABELS:
        if start is not None:
            moved = changed_fraction(start["label"], state.label, state.source == "propagated")
            changes = np.append(changes, moved)[-KEEP_BATCHES:]
            sizes = np.append(sizes, n_changed)[-KEEP_BATCHES:]
        save_npz_atomic(path, {"key": np.array(key), "y": y, "label": state.label, "changes": changes,
                               "sizes": sizes})
    state.recent_changes = np.asarray(changes, dtype=np.float64)
    state.recent_batch_sizes = np.asarray(sizes, dtype=np.int64)
