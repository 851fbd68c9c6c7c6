"""Orchestration: representation -> shared kNN graph -> label spreading -> map, cached in the workspace.

Each step is keyed by what it depends on, so a new label re-runs only propagation (warm-started), a new encoder
re-embeds and rebuilds the graph, and the UMAP map is computed once per embedding.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeler import graph, propagate, representation, review
from labeler import map as umap_map
from labeler.artifacts import (
    load_json,
    load_npy,
    load_npz,
    save_json_atomic,
    save_npy_atomic,
    save_npz_atomic,
    write_bytes_atomic,
)
from labeler.store import ImageRecord
from labeler.workspace import Workspace

Progress = Callable[[float, str], None]
StopCheck = Callable[[], bool]
SOURCES = ("human", "propagated", "none")


def _quiet(fraction: float, message: str) -> None:
    return None


@dataclass
class Representation:
    name: str  # "pixels-pca" or "simclr"
    key: str  # changes whenever the vectors change
    X: NDArray[np.float32]


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


# ---------------------------------------------------------------------------- paths
def _state_dir(ws: Workspace) -> Path:
    return ws.workspace_dir / "state"


def checkpoint_dir(ws: Workspace) -> Path:
    return ws.workspace_dir / "ssl"


# ---------------------------------------------------------------------------- representations
def trained_checkpoint(ws: Workspace) -> Path | None:
    """The encoder checkpoint of the last finished training run, if any."""
    name = ws.store.get_meta("ssl_checkpoint")
    if not name:
        return None
    path = Path(name)
    return path if path.is_file() else None


def representations(
    ws: Workspace, progress: Progress = _quiet, records: list[ImageRecord] | None = None
) -> dict[str, Representation]:
    """Every representation available now: the instant pixel PCA always, SimCLR once an encoder is trained."""
    records = ws.records() if records is None else records
    fingerprint = ws.fingerprint(records)
    train_images = ws.training_images()
    cache = ws.settings.cache_dir
    found: dict[str, Representation] = {}
    pca_key = f"pixels-pca-{fingerprint}"
    pca_path = cache / f"embedding-{pca_key}.npy"
    if pca_path.exists():
        X = load_npy(pca_path)
    else:
        progress(0.0, "computing the instant representation (pixels -> PCA)")
        X = representation.pca_representation(train_images, random_state=ws.settings.random_state)
        save_npy_atomic(pca_path, X)
    found["pixels-pca"] = Representation("pixels-pca", pca_key, X.astype(np.float32, copy=False))
    checkpoint = trained_checkpoint(ws)
    if checkpoint is not None and len(records) > 0:
        from labeler.ssl import train as ssl_train

        progress(0.1, "embedding images with the trained encoder")
        digest = ssl_train.file_digest(checkpoint)
        # Encoder features (the SimCLR recipe) and, as a candidate the labels may prefer, the projection output.
        for name, projection in (("simclr", False), ("simclr-projection", True)):
            X = ssl_train.load_or_embed(
                cache, train_images, checkpoint, fingerprint, device=ws.settings.device, projection=projection
            )
            found[name] = Representation(name, f"{name}-{fingerprint}-{digest}", X.astype(np.float32, copy=False))
    return found


def choose_representation(
    ws: Workspace, reps: dict[str, Representation], y: NDArray[np.int64], n_classes: int
) -> tuple[str, dict[str, float], str]:
    """Pick the representation by leave-one-out propagation accuracy on the human labels; record why.

    The choice is remeasured when the set of representations changes, when it becomes measurable, or when the
    number of human labels moved by a quarter (or four); not on every click.
    """
    from labeler import diagnostics

    record_path = _state_dir(ws) / "representation.json"
    previous: dict[str, Any] = load_json(record_path) if record_path.exists() else {}
    n_labels = int(np.sum(y >= 0))
    keys = sorted(rep.key for rep in reps.values())
    measurable = diagnostics.loo_measurable(y, n_classes)
    before = int(previous.get("n_labels", -1))
    if (
        previous.get("keys") == keys
        and previous.get("name") in reps
        and previous.get("measurable") == measurable
        and abs(n_labels - before) <= max(0.25 * before, 4)
    ):
        return previous["name"], previous.get("scores", {}), previous.get("reason", "")
    best, scores, reason = diagnostics.choose_representation(
        {name: rep.X for name, rep in reps.items()}, y, n_classes,
        preferred="simclr" if "simclr" in reps else "pixels-pca",
        n_neighbors=ws.settings.n_neighbors, alpha=ws.settings.alpha,
    )
    save_json_atomic(record_path, {"name": best, "scores": scores, "reason": reason, "keys": keys,
                                   "n_labels": n_labels, "measurable": measurable, "at": time.time()})
    return best, scores, reason


# ---------------------------------------------------------------------------- graph and map
def knn_for(ws: Workspace, rep: Representation) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """The kNN lists of one representation, computed once and shared by propagation and the map."""
    path = ws.settings.cache_dir / f"knn-{rep.key}-k{ws.settings.n_neighbors}.npz"
    if path.exists():
        stored = load_npz(path)
        return stored["indices"], stored["distances"]
    indices, distances = graph.knn_indices(rep.X, ws.settings.n_neighbors, random_state=ws.settings.random_state)
    save_npz_atomic(path, {"indices": indices, "distances": distances})
    return indices, distances


def map_for(ws: Workspace, rep: Representation, progress: Progress = _quiet) -> NDArray[np.float32]:
    path = ws.settings.cache_dir / f"map-{rep.key}-k{ws.settings.n_neighbors}.npy"
    if path.exists():
        return load_npy(path)
    indices, distances = knn_for(ws, rep)
    progress(0.8, "computing the UMAP map")
    coords = umap_map.umap_coordinates(indices, distances, rep.X, random_state=ws.settings.random_state)
    save_npy_atomic(path, coords.astype(np.float32))
    return coords


def cached_map(ws: Workspace, embedding_key: str) -> NDArray[np.float32] | None:
    path = ws.settings.cache_dir / f"map-{embedding_key}-k{ws.settings.n_neighbors}.npy"
    return load_npy(path) if path.exists() else None


# ---------------------------------------------------------------------------- propagation
def refresh(ws: Workspace, progress: Progress | None = None, compute_map: bool = True) -> PipelineState:
    """Bring everything up to date with the current images, encoder and human labels; save and return it."""
    progress = progress or _quiet
    labels_version = ws.store.labels_version()
    records = ws.records()
    classes = ws.classes()
    y = ws.human_label_vector(records)
    n_classes = len(classes)
    reps = representations(ws, progress, records)
    name, scores, reason = choose_representation(ws, reps, y, n_classes)
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
    # Before any class exists there is nothing to spread: one dummy class with no seed gives "none" everywhere.
    result = propagate.propagate(
        W, y, max(n_classes, 1), alpha=settings.alpha, max_iter=settings.max_iter, tol=settings.tol,
        n_bootstrap=settings.n_bootstrap, drop=settings.bootstrap_drop, random_state=settings.random_state, F0=warm,
    )
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
    if compute_map:
        state.umap = map_for(ws, rep, progress)
    else:
        state.umap = cached_map(ws, rep.key)
    save_state(ws, state)
    if settings.ground_truth_path is not None:  # teaching mode: one more point of the learning curve
        from labeler import learning_curve

        learning_curve.record_point(ws, state)
    progress(1.0, "labels propagated")
    return state


_ARRAY_FIELDS = (
    "image_ids", "label", "source", "confidence", "margin", "entropy", "stability", "proba", "scores", "new_class",
)


def save_state(ws: Workspace, state: PipelineState) -> None:
    directory = _state_dir(ws)
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
    directory = _state_dir(ws)
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


def graph_for_state(ws: Workspace, state: PipelineState) -> Any:
    """The sparse affinity W the state was propagated on."""
    reps = representations(ws)
    rep = reps.get(state.representation)
    if rep is None or rep.key != state.embedding_key:
        raise LookupError("the representation of this state is no longer available; refresh first")
    return graph.affinity_from_knn(*knn_for(ws, rep))


def suspects(ws: Workspace, state: PipelineState) -> list[review.Suspect]:
    """Suspect human labels for ``state`` (``index`` is the row), cached per labels version and embedding."""
    path = _state_dir(ws) / "suspects.json"
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


# ---------------------------------------------------------------------------- training
def train(
    ws: Workspace,
    minutes: float | None = None,
    epochs: int | None = None,
    progress: Progress | None = None,
    should_stop: StopCheck | None = None,
) -> str:
    """Train (or resume) the SimCLR encoder on the workspace's images, then make it available to propagation."""
    from labeler.ssl import train as ssl_train

    progress = progress or _quiet
    settings = ws.settings
    images = ws.training_images()
    if len(images) < 2:
        raise ValueError("training needs at least two readable images")

    def report(p: Any) -> None:
        progress(
            float(p.fraction),
            f"epoch {p.epoch} · loss {p.loss:.3f} · {p.images_per_s:.0f} images/s · {p.seconds_left:.0f} s left",
        )

    checkpoint = ssl_train.train_simclr(
        images, checkpoint_dir(ws),
        minutes=minutes if epochs is None else None, epochs=epochs,
        width=settings.ssl_width, batch_size=settings.ssl_batch_size, temperature=settings.ssl_temperature,
        preset=settings.ssl_preset, device=settings.device, random_state=settings.random_state,
        progress=report, should_stop=should_stop,
    )
    if should_stop is not None and should_stop():
        # Stopped by the user: keep the checkpoint for "Resume", but do not swap a half-trained encoder in.
        return f"training stopped; resume continues from {checkpoint.name}"
    # Freeze a copy under its digest: training may resume and rewrite the live checkpoint, and embeddings,
    # graph and map must stay keyed to the encoder that produced them.
    frozen = checkpoint_dir(ws) / f"encoder-{ssl_train.file_digest(checkpoint)}.pt"
    if not frozen.exists():
        write_bytes_atomic(frozen, checkpoint.read_bytes())
    ws.store.set_meta("ssl_checkpoint", str(frozen))
    info = ssl_train.load_checkpoint_info(frozen)
    return f"encoder trained for {info.get('epoch', '?')} epochs: {frozen.name}"


# ---------------------------------------------------------------------------- reporting
def describe(state: PipelineState) -> list[str]:
    counts = state.counts
    lines = [
        f"representation: {state.representation} ({state.representation_reason})",
        f"{counts['human']} human, {counts['propagated']} propagated, {counts['none']} unreached",
    ]
    propagated = state.source == "propagated"
    if propagated.any():
        lines.append(f"mean confidence of propagated labels: {state.confidence[propagated].mean():.3f}")
    return lines


def status_lines(ws: Workspace) -> list[str]:
    images = ws.store.images()
    by_status = {s: sum(1 for r in images if r.status == s) for s in ("ok", "unreadable", "missing")}
    lines = [
        f"data: {ws.data_dir}",
        f"workspace: {ws.workspace_dir}",
        f"images: {by_status['ok']} readable, {by_status['unreadable']} unreadable, {by_status['missing']} missing",
        f"classes: {', '.join(c.name for c in ws.classes()) or '(none yet)'}",
        f"human labels: {len(ws.store.human_labels())}",
    ]
    state = load_state(ws)
    if state is not None:
        lines += describe(state)
        if is_stale(ws, state):
            lines.append("labels changed since the last propagation: run `labeler propagate`")
    checkpoint = trained_checkpoint(ws)
    lines.append(f"encoder: {checkpoint if checkpoint else 'not trained (instant pixel representation in use)'}")
    for job in ws.store.jobs(limit=5):
        line = f"job {job.id} {job.kind}: {job.status} {job.progress:.0%} {job.message} {job.error or ''}"
        lines.append(line.rstrip())
    return lines
