"""The representations images can be compared in, the choice among them, and the kNN graph and map of each.

Each is cached in the workspace, keyed by what it depends on: a new encoder re-embeds and rebuilds the graph,
and the UMAP map is computed once per embedding.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeler.config import Settings
from labeler.core import diagnostics, graph, umap_map
from labeler.core.selection import SelectionEstimate
from labeler.embed import instant as representation
from labeler.embed.centred import write_centred
from labeler.embed.chunked_embed import BatchFunction, embed_in_chunks, load_embedding
from labeler.io.artifacts import (
    load_json,
    load_npy,
    load_npz,
    save_json_atomic,
    save_npy_atomic,
    save_npz_atomic,
)
from labeler.io.caches import read_training_image
from labeler.io.scan import file_sha256
from labeler.progress import Progress, quiet
from labeler.store import ImageRecord
from labeler.workflow import backbone, finetuning
from labeler.workflow.state import PipelineState, load_state, state_dir, touch_state
from labeler.workflow.training import trained_checkpoint
from labeler.workflow.workspace import Workspace


@dataclass
class Representation:
    # "pixels-pca", "hog-pixels", "simclr", "simclr-hog", "simclr-projection", "pretrained", "pretrained-simclr",
    # "pretrained-finetuned"
    name: str
    key: str  # changes whenever the vectors change
    X: NDArray[np.float32]


# The backbone's pooled features (plain or fine-tuned) are compared from the folder's mean (labeler.embed.centred).
CENTRED = ("pretrained", "pretrained-finetuned")


def centred_copy(path: Path, X: NDArray[np.float32]) -> NDArray[np.float32]:
    """The centred, normalised rows of the features ``X`` stored at ``path``: beside it (``-centred.npy``), computed
    once per features file and memory-mapped after."""
    out = path.with_name(f"{path.stem}-centred.npy")
    centred = load_embedding(out, len(X))
    if centred is None:
        write_centred(X, out)
        centred = load_embedding(out, len(X))
        assert centred is not None
    return centred


def pca_path(ws: Workspace, fingerprint: str) -> Path:
    return ws.settings.cache_dir / f"embedding-pixels-pca-{fingerprint}.npy"


def hog_path(ws: Workspace, fingerprint: str) -> Path:
    return ws.settings.cache_dir / f"embedding-hog-pixels-{fingerprint}.npy"


@dataclass(frozen=True)
class ModelEmbedding:
    """A representation computed by a model, batch by batch: what the local and the Ray path both need.

    ``batch_function()`` loads the model as a function from uint8 images (B, S, S, 3) to vectors (B, D) that
    pickles small (the weights travel as bytes); ``decode`` turns one file into the model's input exactly as the
    local path sees it, for workers that read the files themselves. ``compute(progress)``, when given, is how this
    machine computes the vectors instead of running the batch function over the training-image cache (the
    pretrained backbone reads the files at its own resolution); it returns None when the model is unavailable.
    """

    name: str
    key: str
    path: Path
    batch_function: Callable[[], BatchFunction]
    decode: Callable[[Path], NDArray[np.uint8]]
    compute: Callable[[Progress], NDArray[np.float32] | None] | None = None


def model_embeddings(
    ws: Workspace, fingerprint: str, records: list[ImageRecord] | None = None
) -> list[ModelEmbedding]:
    """The model-computed representations available now: the pretrained backbone's for colour photos, and the
    trained encoder's features and projections."""
    found = photo_embeddings(ws, fingerprint, ws.records() if records is None else records)
    checkpoint = trained_checkpoint(ws)
    if checkpoint is None:
        return found
    s = ws.settings
    digest = file_sha256(checkpoint)[:16]  # ssl_train.file_digest, without importing torch for a name
    decode = functools.partial(read_training_image, thumb_size=s.thumb_size, train_size=s.train_size,
                               max_pixels=s.max_image_pixels)
    # Encoder features (the SimCLR recipe) and, as a candidate the labels may prefer, the projection output.
    # File names as :func:`labeler.embed.ssl.train.load_or_embed` writes them.
    return found + [
        ModelEmbedding(
            name, f"{name}-{fingerprint}-{digest}",
            s.cache_dir / f"embeddings-{fingerprint}-{digest}{'-projection' if projection else ''}.npy",
            functools.partial(_encoder_batches, checkpoint, s.device, projection), decode,
        )
        for name, projection in (("simclr", False), ("simclr-projection", True))
    ]


def _encoder_batches(checkpoint: Path, device: str, projection: bool) -> BatchFunction:
    from labeler.embed.ssl.train import EncoderBatches

    return EncoderBatches(checkpoint.read_bytes(), device=device, projection=projection)


def plain_features_key(fingerprint: str) -> str:
    """The key of the backbone's plain (uncentred) features of the images ``fingerprint`` names: its embedding's and
    its kNN lists' cache files are named by it."""
    return f"pretrained-{fingerprint}-{backbone.representation_tag()}"


def photo_embeddings(ws: Workspace, fingerprint: str, records: list[ImageRecord]) -> list[ModelEmbedding]:
    """``pretrained`` and, once a head is adapted, ``pretrained-simclr`` for a colour-photo folder, and
    ``pretrained-finetuned`` once its last stages are fine-tuned; for small or grey images, ``pretrained`` only where
    training computed it (:mod:`labeler.workflow.backbone`)."""
    photos = backbone.photo_folder(ws, records)
    if not photos and backbone.stored_features(ws, fingerprint, len(records)) is None:
        return []
    tag = backbone.representation_tag()
    path = backbone.features_path(ws, fingerprint, tag)
    device = ws.settings.device

    def features(progress: Progress) -> NDArray[np.float32] | None:
        X = load_embedding(path, len(records))
        return X if X is not None else backbone.compute_features(ws, records, path, progress)

    found = [ModelEmbedding("pretrained", plain_features_key(fingerprint), path, backbone.pretrained_batches(device),
                            backbone.decode_for_backbone, compute=features)]
    head = backbone.adapted_head(ws) if photos else None
    if head is not None:
        digest = backbone.head_digest(head)
        adapted = backbone.adapted_path(ws, fingerprint, digest)

        def embed(progress: Progress) -> NDArray[np.float32] | None:
            X = features(progress)
            return None if X is None else backbone.compute_adapted(head, X, adapted)

        found.append(ModelEmbedding("pretrained-simclr", f"pretrained-simclr-{fingerprint}-{digest}-c", adapted,
                                    functools.partial(backbone.backbone_batches, head, device),
                                    backbone.decode_for_backbone, compute=embed))
    tuned = finetuning.finetuned_checkpoint(ws) if photos else None
    if tuned is not None:
        digest = backbone.head_digest(tuned)
        tuned_path = finetuning.finetuned_path(ws, fingerprint, digest)

        def tuned_features(progress: Progress) -> NDArray[np.float32] | None:
            X = load_embedding(tuned_path, len(records))
            return X if X is not None else backbone.compute_features(ws, records, tuned_path, progress, tuned)

        found.append(ModelEmbedding("pretrained-finetuned", f"pretrained-finetuned-{fingerprint}-{digest}", tuned_path,
                                    functools.partial(backbone.backbone_batches, None, device, tuned),
                                    backbone.decode_for_backbone, compute=tuned_features))
    return found


def representations(
    ws: Workspace, progress: Progress = quiet, records: list[ImageRecord] | None = None
) -> dict[str, Representation]:
    """Every representation available now: the instant pixel PCA always, edge histograms and pixels (HOG -> PCA
    beside pixels -> PCA) for small or grey images, the pretrained backbone's for colour photos, SimCLR once an
    encoder is trained (or, for photos, a head adapted), and for small images the encoder beside the edges and
    pixels.

    Vectors are computed once per dataset version (and encoder) and memory-mapped from the cache afterwards;
    a model's vectors may also come from a Ray cluster (:func:`embed_on_ray`), into the same file.
    """
    records = ws.records() if records is None else records
    fingerprint = ws.fingerprint(records)
    found: dict[str, Representation] = {}
    seed = ws.settings.random_state

    def pixels() -> NDArray[np.float32]:
        progress(0.0, "computing the instant representation (pixels -> PCA)")
        return representation.pca_representation(ws.training_images(), random_state=seed)

    pixels_X = _cached(pca_path(ws, fingerprint), len(records), pixels)
    found["pixels-pca"] = Representation("pixels-pca", f"pixels-pca-{fingerprint}", pixels_X)
    if not records:
        return found
    if backbone.edges_wanted(ws, records):  # large colour photos have the pretrained backbone, far ahead of both

        def edges_and_pixels() -> NDArray[np.float32]:
            progress(0.05, "computing the instant representation (edge histograms -> PCA)")
            edges = representation.hog_representation(ws.training_images(), random_state=seed)
            return representation.joint_representation(edges, pixels_X)

        found["hog-pixels"] = Representation("hog-pixels", f"hog-pixels-{fingerprint}",
                                             _cached(hog_path(ws, fingerprint), len(records), edges_and_pixels))
    for model in model_embeddings(ws, fingerprint, records):
        X = load_embedding(model.path, len(records))
        if X is None:
            progress(0.1, f"embedding images ({model.name})")
            if model.compute is not None:
                X = model.compute(lambda fraction, message: progress(0.1 + 0.2 * fraction, message))
                if X is None:  # the pretrained backbone is unavailable: the reason is recorded for the state
                    continue
            else:
                X = embed_in_chunks(ws.training_images(), model.batch_function(), model.path,
                                    [r.sha256 or "" for r in records])
                assert X is not None  # no should_stop: runs to the end
        key = model.key
        if model.name in CENTRED:
            X, key = centred_copy(model.path, X), f"{key}-centred"
        found[model.name] = Representation(model.name, key, X)
    if "simclr" in found and "hog-pixels" in found:
        # The trained encoder beside the edges and pixels: two images are near where both put them near. It labels
        # as the encoder does where the encoder is better (digits) and as the edges do where they are (clothing).
        encoder, edges_X = found["simclr"], found["hog-pixels"].X
        path = ws.settings.cache_dir / f"embedding-{encoder.key}-hog.npy"  # named after the encoder: collected with it
        found["simclr-hog"] = Representation(
            "simclr-hog", f"{encoder.key}-hog",
            _cached(path, len(records), lambda: representation.joint_representation(encoder.X, edges_X)))
    return found


def _cached(path: Path, n_rows: int, compute: Callable[[], NDArray[np.float32]]) -> NDArray[np.float32]:
    """The vectors kept at ``path`` (memory-mapped) when they are there for ``n_rows`` images, else ``compute()``'s,
    saved there first."""
    X = load_embedding(path, n_rows)
    if X is None:
        X = compute()
        save_npy_atomic(path, X)
    return X


def embed_on_ray(
    ws: Workspace, address: str | None, *, actors: int = 1, gpus_per_actor: float = 0.0, batch_size: int = 256,
    progress: Progress = quiet,
) -> list[Path]:
    """Compute every model representation on a Ray cluster into the workspace's cache; returns the files.

    Raises ValueError when there is no model to run (nothing trained yet), ``ImagesChanged`` when files no
    longer decode.
    """
    from labeler.embed.ray_embed import embed_with_ray

    records = ws.records()
    models = model_embeddings(ws, ws.fingerprint(records))
    if not models:
        raise ValueError("no trained encoder yet: run `labeler train` first (the instant representation needs no "
                         "cluster)")
    paths = [ws.data_dir / r.path for r in records]
    digests = [r.sha256 or "" for r in records]
    for i, model in enumerate(models):

        def report(fraction: float, message: str, i: int = i, name: str = model.name) -> None:
            progress((i + fraction) / len(models), f"{name}: {message}")

        embed_with_ray(paths, digests, model.batch_function(), model.path, decode=model.decode, address=address,
                       actors=actors, gpus_per_actor=gpus_per_actor, batch_size=batch_size, progress=report)
    return [model.path for model in models]


def models_to_embed(ws: Workspace) -> list[ModelEmbedding]:
    """The model representations whose vectors are not in the cache yet for the images as they are now (the
    pretrained backbone's for a newly imported photo folder, the trained encoder's for new images)."""
    records = ws.records()
    if not records:
        return []
    return [model for model in model_embeddings(ws, ws.fingerprint(records), records)
            if load_embedding(model.path, len(records)) is None]


def embed_as_configured(ws: Workspace, settings: Settings, progress: Progress = quiet) -> list[Path]:
    """The models' embeddings on the Ray cluster ``settings.ray_address`` names ("local" starts one here); nothing
    when it is empty (the next refresh embeds on this machine). Returns the files written.

    Raises RuntimeError when Ray is not installed, and what :func:`embed_on_ray` raises.
    """
    if not settings.ray_address:
        return []
    from labeler.embed.ray_embed import ray_available

    if not ray_available():
        raise RuntimeError('embedding on a Ray cluster needs Ray: pip install "labeler[ray]"')
    address = None if settings.ray_address == "local" else settings.ray_address
    return embed_on_ray(ws, address, progress=progress)


def selection_record(estimate: SelectionEstimate | None) -> dict[str, Any]:
    """The selection-corrected estimate as plain JSON values ({} without one), as the state keeps it."""
    if estimate is None:
        return {}
    return {"accuracy": estimate.accuracy, "low": estimate.interval[0], "high": estimate.interval[1],
            "n": estimate.n, "chosen": estimate.chosen, "naive_accuracy": estimate.naive_accuracy,
            "times_chosen": dict(estimate.times_chosen), "method": "nested leave-one-out"}


def select_representation(
    ws: Workspace, reps: dict[str, Representation], y: NDArray[np.int64], n_classes: int
) -> diagnostics.RepresentationChoice:
    """Pick the representation by leave-one-out propagation accuracy on the human labels; record why, and the
    accuracy to expect from choosing that way (selection-corrected: the winner's own score is optimistic).

    The choice is remeasured when the set of representations changes, when it becomes measurable, or when the
    number of human labels moved by a quarter (or four); not on every click. A choice read back from the record has
    no ``loo_correct`` vectors.
    """
    record_path = state_dir(ws) / "representation.json"
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
        recorded = previous.get("selection") or {}
        selection = None
        if recorded:
            selection = SelectionEstimate(
                recorded["accuracy"], (recorded["low"], recorded["high"]), recorded["n"], recorded["chosen"],
                recorded["naive_accuracy"], recorded.get("times_chosen", {}),
            )
        reason = previous.get("reason", "")
        if n_labels != before:  # its numbers are those of the labels then: say so, not as if of the labels now
            reason += (f" (measured when there were {before} human labels, {n_labels} now; remeasured once the "
                       "count moves by a quarter, or by more than four)")
        return diagnostics.RepresentationChoice(previous["name"], previous.get("scores", {}), reason,
                                                selection=selection)
    # The kNN lists propagation and the map use (cached on disk) serve the comparison too: not searched twice.
    graphs = {name: knn_for(ws, rep) for name, rep in reps.items()} if len(reps) > 1 and measurable else None
    photos = backbone.photo_folder(ws)
    choice = diagnostics.choose_representation(
        {name: rep.X for name, rep in reps.items()}, y, n_classes,
        preferred=backbone.preferred_representation(reps, photos),
        n_neighbors=ws.settings.n_neighbors, alpha=ws.settings.alpha, graphs=graphs,
    )
    problem = backbone.backbone_problem(ws) if photos and "pretrained" not in reps else None
    choice = dataclasses.replace(choice, reason=backbone.explain_choice(choice.name, choice.reason, problem))
    save_json_atomic(record_path, {"name": choice.name, "scores": choice.scores, "reason": choice.reason,
                                   "selection": selection_record(choice.selection), "keys": keys,
                                   "n_labels": n_labels, "measurable": measurable, "at": time.time()})
    return choice


def knn_for(ws: Workspace, rep: Representation) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """The kNN lists of one representation, computed once and shared by propagation and the map."""
    path = ws.settings.cache_dir / f"knn-{rep.key}-k{ws.settings.n_neighbors}.npz"
    if path.exists():
        stored = load_npz(path)
        return stored["indices"], stored["distances"]
    indices, distances = graph.knn_indices(rep.X, ws.settings.n_neighbors, random_state=ws.settings.random_state)
    save_npz_atomic(path, {"indices": indices, "distances": distances})
    return indices, distances


def plain_backbone_distances(ws: Workspace, records: list[ImageRecord] | None = None) -> NDArray[np.float32] | None:
    """On a colour-photo folder, the kNN distances (n, k) of the backbone's plain features: cosine, not centred;
    None elsewhere, or before the features are stored. For :func:`labeler.core.review.isolated`, beside the
    distances of the representation in use.

    Why plain: photos share a large common part of the features (:mod:`labeler.embed.centred`), which is what
    centring removes to tell them apart, and what a picture that is no photo of the folder's kind lacks. Centred, it
    is no farther from the photos than they are from each other: nine planted non-photos (1 px, flat colours,
    gradients, noise, a blank page, a screenshot) among pets37 got 0.85-0.93 from their 15th neighbour against up to
    0.88 for the photos, and Tukey's fence found 2. Plain, the fence found all 9, alone or together, and 4 of 7
    photos of other kinds (coffee, rocket, coins, the Hubble deep field; not skimage's cat), with no photo of pets37
    flagged, nor in 60 random subsets of 50-200 of them. Not reliable: the fence follows how spread the folder's
    photos are, and among a third of pets37 it found 3 of 4 non-photos, in a user trial's 120 photos none (above
    every photo, inside the fence; ``benchmarks/results/isolation.md``). The ImageNet head's max logit or softmax
    (Hendrycks and Gimpel 2017) did no better there: pets37's least confident photo lies among the non-photos. Held
    out (one species' folders, non-photo kinds never used to choose it) it caught 66 % / 99 % of the non-photos among
    dogs / cats and flagged 0.2 % / 1.2 % of the photos, unusual ones; no fitted fence, gap or head rule did better
    on both species. Not for small or grey images: there the plain features flagged 0.9-1.5% of Fashion-MNIST and
    MNIST, the representation's own lists 0-0.4%.
    """
    records = ws.records() if records is None else records
    if not records or not backbone.photo_folder(ws, records):
        return None
    fingerprint = ws.fingerprint(records)
    path = backbone.stored_features(ws, fingerprint, len(records))
    X = load_embedding(path, len(records)) if path is not None else None
    if X is None:
        return None
    # The plain features' own key (as photo_embeddings gives it): kept by the garbage collection with them.
    plain = Representation("pretrained-plain", plain_features_key(fingerprint), X)
    return knn_for(ws, plain)[1]


def map_for(ws: Workspace, rep: Representation, progress: Progress = quiet) -> NDArray[np.float32]:
    """The 2-D UMAP map of one representation (N, 2), computed once from its kNN lists, memory-mapped after."""
    path = ws.settings.cache_dir / f"map-{rep.key}-k{ws.settings.n_neighbors}.npy"
    if path.exists():
        return load_npy(path, mmap=True)
    indices, distances = knn_for(ws, rep)
    progress(0.8, "computing the UMAP map")
    coords = umap_map.umap_coordinates(indices, distances, rep.X, random_state=ws.settings.random_state)
    save_npy_atomic(path, coords.astype(np.float32))
    return coords


def map_for_state(ws: Workspace, progress: Progress = quiet) -> bool:
    """Compute the map of the saved propagation's representation if it has none; True when one was computed.

    The map is cached per embedding, not in the state: the state file is touched afterwards, so that pages polling
    its version load it again, now with the map. Nothing is written into the state itself, so a propagation saved
    meanwhile is never overwritten.
    """
    state = load_state(ws)
    if state is None or state.umap is not None:
        return False
    rep = representations(ws, progress).get(state.representation)
    if rep is None or rep.key != state.embedding_key:  # superseded: the newer pass asks for its own map
        return False
    map_for(ws, rep, progress)
    touch_state(ws)
    return True


def affinity_for(ws: Workspace, rep: Representation) -> Any:
    """The sparse affinity W of one representation's kNN graph, kept in this process while the graph is current.

    After a label the app's next refresh needs the same W: rebuilding it (read the lists, Gaussian weights,
    symmetrise) costs about half a second at 100,000 images.
    """
    key = f"{rep.key}-k{ws.settings.n_neighbors}"
    kept = ws.memo.get("affinity")
    if kept is None or kept[0] != key:
        kept = (key, graph.affinity_from_knn(*knn_for(ws, rep)))
        ws.memo["affinity"] = kept
    return kept[1]


def graph_for_state(ws: Workspace, state: PipelineState) -> Any:
    """The sparse affinity W the state was propagated on."""
    reps = representations(ws)
    rep = reps.get(state.representation)
    if rep is None or rep.key != state.embedding_key:
        raise LookupError("the representation of this state is no longer available; refresh first")
    return affinity_for(ws, rep)
