"""The shipped ImageNet backbone in a workspace: when it is used, its vectors, the SimCLR head adapted to the
folder's photos, and what the user is told when it cannot be used.

Folders of colour photographs (:func:`labeler.embed.folder_kind.is_photo_folder`, 32 px and up) get two more
representation candidates: ``pretrained`` (EfficientNet-Lite0's pooled features, computed once per image and
cached by content digest in the cache folder, so a changed file is the only one recomputed, and compared from the
folder's mean, :mod:`labeler.embed.centred`) and, once training has run,
``pretrained-simclr`` (those features next to the hidden layer of a head trained with NT-Xent on augmented views,
:mod:`labeler.embed.adapted`); below 64 px they also get edge histograms and pixels, which the labels may prefer
(colour digits). Small or grey images get edge histograms and pixels (``hog-pixels``) as the instant
representation, pixels -> PCA alone as a candidate, and train the from-scratch encoder, used beside the edges and
pixels (``simclr-hog``); when the folder is small enough for the backbone to fit in a third of the training budget,
training computes ``pretrained`` too, as one more candidate that must win leave-one-out to be used (it beats the
from-scratch encoder on Fashion-MNIST and loses to it on MNIST digits, ``benchmarks/results/quality.md``).
When the weights are missing or damaged (:class:`~labeler.embed.backbones.BackboneUnavailable`) the folder falls
back to those, and the reason is kept in the store's meta for the state's reason and ``labeler status`` to show.

torch is imported only inside the functions that run the backbone: pages import this module to read a name.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeler.embed.folder_kind import is_photo_folder, is_small_folder
from labeler.io.artifacts import write_bytes_atomic
from labeler.io.chunked import NpyWriter
from labeler.io.scan import file_sha256
from labeler.progress import Progress, StopCheck, quiet
from labeler.store import ImageRecord
from labeler.workflow.workspace import Workspace

BACKBONE = "efficientnet_lite0"
BACKBONE_TITLE = "ImageNet EfficientNet-Lite0"
PROBLEM_META = "pretrained_unavailable"  # why the backbone cannot be used here; absent when it can
HEAD_META = "adapted_head"  # path of the head of the last finished adaptation
BLOCK_ROWS = 4096  # images per block of features read or written: bounds memory whatever the folder's size

# What each representation is, in the words the state's reason and the Model page use.
DESCRIPTIONS = {
    "pixels-pca": "pixels -> PCA (instant, no model)",
    "hog-pixels": "edge-orientation histograms (HOG) and pixels, each -> PCA (instant, no model)",
    "simclr-hog": "the from-scratch SimCLR encoder beside edge histograms and pixels",
    "simclr": "the small SimCLR encoder trained from scratch on these images",
    "simclr-projection": "the projection-head output of the from-scratch SimCLR encoder",
    "pretrained": f"{BACKBONE_TITLE} features (colour photos)",
    "pretrained-simclr": f"{BACKBONE_TITLE} features adapted to these photos by SimCLR",
    "pretrained-finetuned": f"{BACKBONE_TITLE} with its last stages fine-tuned on these photos by SimCLR",
}
# Kept while the labels cannot tell the representations apart, the first one present wins. Photos: an adapted head
# was trained for this folder, the pretrained features beat pixels on photos; the fine-tuned last stages did not beat
# either on pets37 (benchmarks/results/gpu.md), so they must win leave-one-out to be used. Small or grey images: the
# trained encoder beats edge histograms and pixels on digits and loses to them on clothing, and the two side by side
# match the better of them on both; edges and pixels beat pixels alone; the pretrained features are never kept by
# default there (on MNIST they lose to all of these). Small colour photos have edges and pixels too, behind the
# backbone: on natural thumbnails it is far ahead, on colour digits behind (labeler.embed.folder_kind).
PREFERENCE = {True: ("pretrained-simclr", "pretrained", "pretrained-finetuned", "simclr-hog", "simclr", "hog-pixels",
                     "pixels-pca"),
              False: ("simclr-hog", "simclr", "hog-pixels", "pixels-pca")}
# Images per second the backbone embeds small images at on two busy cores (18 measured): training computes the
# pretrained candidate for small or grey images only when the folder takes at most a third of the budget.
SMALL_IMAGES_PER_S = 15.0


# ------------------------------------------------------------------------------------------ when it is used
def _folder_kind(ws: Workspace, records: list[ImageRecord] | None) -> tuple[bool, bool]:
    """(colour photographs, small images) of the workspace's images; (False, False) without images."""
    records = ws.records() if records is None else records
    if not records:
        return False, False
    # Asked by every refresh (after each label): answered once per set of images, kept in this process.
    key = ws.fingerprint(records)
    kept = ws.memo.get("folder-kind")
    if kept is None or kept[0] != key:
        sizes = [(r.width, r.height) for r in records]
        kept = (key, (is_photo_folder(sizes, ws.training_images()), is_small_folder(sizes)))
        ws.memo["folder-kind"] = kept
    photos, small = kept[1]
    return bool(photos), bool(small)


def photo_folder(ws: Workspace, records: list[ImageRecord] | None = None) -> bool:
    """Whether the workspace's images are colour photographs (see :func:`is_photo_folder`)."""
    return _folder_kind(ws, records)[0]


def edges_wanted(ws: Workspace, records: list[ImageRecord] | None = None) -> bool:
    """Whether edge histograms and pixels (``hog-pixels``) are a representation here: every folder but one of large
    colour photographs (small colour images may be photos or colour digits, so they get both and the labels
    decide)."""
    records = ws.records() if records is None else records
    if not records:
        return False
    photos, small = _folder_kind(ws, records)
    return small or not photos


def backbone_problem(ws: Workspace) -> str | None:
    """Why the backbone could not be used the last time it was needed; None when it worked (or was not needed)."""
    return ws.store.get_meta(PROBLEM_META) or None


def record_problem(ws: Workspace, problem: str | None) -> None:
    """Remember (or, with None, forget) why the backbone cannot be used; writes only on a change."""
    if (ws.store.get_meta(PROBLEM_META) or None) != problem:
        ws.store.set_meta(PROBLEM_META, problem or "")


def preferred_representation(names: Any, photos: bool = True) -> str:
    """The representation kept while leave-one-out cannot decide: the first of :data:`PREFERENCE` in ``names``."""
    return next((name for name in PREFERENCE[photos] if name in names), "pixels-pca")


def explain_choice(name: str, reason: str, problem: str | None = None) -> str:
    """The state's representation reason: what ``name`` is, then why it was chosen, then any backbone problem."""
    why = reason.removeprefix(f"{name}: ")
    text = f"{name}: {DESCRIPTIONS[name]}; {why}" if name in DESCRIPTIONS else reason
    if problem:
        text += (f". The pretrained backbone is unavailable ({problem}): these photos fall back to pixels and the "
                 "from-scratch encoder")
    return text


# ------------------------------------------------------------------------------------------ pretrained features
def representation_tag() -> str:
    """Changes whenever the backbone's weights or preprocessing do (12 hex digits)."""
    from labeler.embed.backbones import backbone_spec
    from labeler.embed.pretrained import cache_tag

    return cache_tag(backbone_spec(BACKBONE)).rsplit("-", 1)[-1]


def feature_stores() -> tuple[str, ...]:
    """Names of the backbone's per-image feature stores that this version reads (features, augmented views): a
    store of the same backbone under another name holds features of other weights, decoding or preprocessing."""
    from labeler.embed.backbones import backbone_spec
    from labeler.embed.pretrained import cache_tag
    from labeler.embed.views import views_tag

    spec = backbone_spec(BACKBONE)
    return cache_tag(spec), views_tag(spec)


def features_path(ws: Workspace, fingerprint: str, tag: str) -> Path:
    """The (N, 1280) float32 ``.npy`` of the pretrained features of the images of ``fingerprint``."""
    return ws.settings.cache_dir / f"embedding-pretrained-{fingerprint}-{tag}.npy"


def adapted_path(ws: Workspace, fingerprint: str, digest: str) -> Path:
    """The (N, 1280 + 512) float32 ``.npy`` of the adapted embedding of the images of ``fingerprint``."""
    # "-c": the features' half is centred, not standardised (since 2026-11-27); files without it are of the old kind.
    return ws.settings.cache_dir / f"embedding-pretrained-simclr-{fingerprint}-{digest}-c.npy"


def stored_features(ws: Workspace, fingerprint: str, n: int) -> Path | None:
    """The features file of the current backbone for ``fingerprint`` when it is complete; None otherwise.

    Looks for any such file first, so that folders without one never import torch for the name.
    """
    from labeler.embed.chunked_embed import load_embedding

    if not any(ws.settings.cache_dir.glob(f"embedding-pretrained-{fingerprint}-*.npy")):
        return None
    path = features_path(ws, fingerprint, representation_tag())
    return path if load_embedding(path, n) is not None else None


def features_when_cheap(
    ws: Workspace, minutes: float, progress: Progress = quiet, should_stop: StopCheck | None = None
) -> str:
    """For small or grey images: the pretrained features as one more candidate, when they fit a third of the
    ``minutes`` budget (:data:`SMALL_IMAGES_PER_S`) and are not stored yet. Returns what was done, in words
    ("" when nothing)."""
    records = ws.records()
    fingerprint = ws.fingerprint(records)
    if len(records) / SMALL_IMAGES_PER_S > minutes * 60 / 3 or (should_stop is not None and should_stop()):
        return ""
    if stored_features(ws, fingerprint, len(records)) is not None:
        return ""
    path = features_path(ws, fingerprint, representation_tag())
    if compute_features(ws, records, path, progress) is None:
        return f"pretrained features unavailable ({backbone_problem(ws)}); "
    return "pretrained features computed as a candidate; "


def compute_features(
    ws: Workspace, records: list[ImageRecord], out_path: Path, progress: Progress = quiet,
    finetuned: Path | None = None,
) -> NDArray[np.float32] | None:
    """Pretrained features of ``records`` into ``out_path`` (from the per-image cache where present), memory-mapped;
    with ``finetuned`` (a checkpoint of :mod:`labeler.embed.finetune`), the fine-tuned network's.

    Streams blocks of :data:`BLOCK_ROWS` images, so memory does not grow with the folder. A file that no longer
    decodes (changed or removed since the import, which a new import notices) gets the mean row. Returns None, with
    the reason recorded (:func:`backbone_problem`), when the backbone cannot be loaded.
    """
    from labeler.embed.backbones import BackboneUnavailable, backbone_spec
    from labeler.embed.chunked_embed import load_embedding
    from labeler.embed.finetune import finetuned_features
    from labeler.embed.pretrained import pretrained_features
    from labeler.embed.ssl.device import select_device

    s = ws.settings
    n = len(records)
    checkpoint = finetuned.read_bytes() if finetuned is not None else b""
    title = f"{'fine-tuned' if finetuned is not None else 'pretrained'} {BACKBONE_TITLE}"
    device = select_device(s.device)
    dim = backbone_spec(BACKBONE).feature_dim
    failed: list[int] = []
    total = np.zeros(dim, np.float64)
    writer = NpyWriter(out_path, (n, dim), np.float32)
    try:
        for lo in range(0, n, BLOCK_ROWS):
            block = records[lo : lo + BLOCK_ROWS]

            def report(fraction: float, message: str, lo: int = lo, size: int = len(block)) -> None:
                progress((lo + fraction * size) / n, f"{title}: {message}")

            paths, digests = [ws.data_dir / r.path for r in block], [r.sha256 or r.path for r in block]
            if finetuned is None:
                X, ok = pretrained_features(paths, digests, s.cache_dir, BACKBONE, device, progress=report)
            else:
                X, ok = finetuned_features(paths, digests, s.cache_dir, checkpoint, device, progress=report)
            writer.write(lo, X)
            total += np.asarray(X, np.float64).sum(axis=0)  # failed rows are zero
            failed += [lo + int(i) for i in np.flatnonzero(~ok)]
        if failed:
            mean = (total / max(n - len(failed), 1)).astype(np.float32)
            for row in failed:
                writer.write(row, mean[None])
            progress(1.0, f"{len(failed)} images no longer decode: run `labeler import` again")
    except BackboneUnavailable as error:
        writer.abort()
        record_problem(ws, str(error))
        progress(0.0, f"pretrained backbone unavailable: {error}")
        return None
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    record_problem(ws, None)
    return load_embedding(out_path, n)


# ------------------------------------------------------------------------------------------ the adapted head
def head_dir(ws: Workspace) -> Path:
    """Where heads are kept: the encoder checkpoints' folder (``training.checkpoint_dir``)."""
    return ws.workspace_dir / "ssl"


def adapted_head(ws: Workspace) -> Path | None:
    """The head of the last finished adaptation, if any."""
    name = ws.store.get_meta(HEAD_META)
    path = Path(name) if name else None
    return path if path is not None and path.is_file() else None


def head_digest(path: Path) -> str:
    return file_sha256(path)[:16]


def compute_adapted(head_path: Path, X: NDArray[np.floating], out_path: Path) -> NDArray[np.float32]:
    """The adapted embedding of pretrained features ``X`` (N, 1280) into ``out_path``, block by block, memory-mapped."""
    from labeler.embed.backbone_model import read_head
    from labeler.embed.chunked_embed import load_embedding

    head = read_head(head_path.read_bytes())
    n = len(X)
    width = len(head.mean) + head.head.project.in_features if head.output == "concat" else None
    with NpyWriter(out_path, (n, width or head.embed(X[:1]).shape[1]), np.float32) as writer:
        for lo in range(0, n, BLOCK_ROWS):
            writer.write(lo, head.embed(X[lo : lo + BLOCK_ROWS]))
    done = load_embedding(out_path, n)
    assert done is not None
    return done


def train_adapted(
    ws: Workspace,
    minutes: float | None = None,
    epochs: int | None = None,
    progress: Progress = quiet,
    should_stop: StopCheck | None = None,
) -> str | None:
    """Adapt the pretrained backbone to the workspace's photos (SimCLR head on cached views) within ``minutes``.

    Returns the job's message, or None when the backbone is unavailable (the reason recorded; the caller trains
    the from-scratch encoder instead). A run stopped by the user swaps nothing in; the views it computed stay
    cached, so the next run starts further on.
    """
    from labeler.embed.adapted import adapted_features
    from labeler.embed.backbone_model import head_to_bytes
    from labeler.embed.backbones import BackboneUnavailable
    from labeler.embed.ssl.device import select_device

    s = ws.settings
    records = ws.records()
    if len(records) < 2:
        raise ValueError("training needs at least two readable images")
    fingerprint = ws.fingerprint(records)
    budget = minutes if minutes is not None else (math.inf if epochs else s.ssl_minutes)
    started = time.monotonic()
    try:
        result = adapted_features(
            [ws.data_dir / r.path for r in records], [r.sha256 or r.path for r in records], s.cache_dir,
            minutes=budget, max_epochs=epochs or 100, random_state=s.random_state, backbone=BACKBONE,
            device=select_device(s.device), progress=progress, should_stop=should_stop,
        )
    except BackboneUnavailable as error:
        record_problem(ws, str(error))
        return None
    record_problem(ws, None)
    if should_stop is not None and should_stop():
        return "adaptation stopped; the views computed so far are kept for the next run"
    data = head_to_bytes(result, backbone=BACKBONE, output="concat",
                         info={"minutes": budget, "elapsed_s": time.monotonic() - started, "images": len(records)})
    digest = hashlib.sha256(data).hexdigest()[:16]
    path = head_dir(ws) / f"adapted-{digest}.pt"
    write_bytes_atomic(path, data)
    ws.store.set_meta(HEAD_META, str(path))
    if result.ok is not None and result.ok.all():  # else refresh embeds from the (retried) pretrained features
        with NpyWriter(adapted_path(ws, fingerprint, head_digest(path)), result.embedding.shape, np.float32) as out:
            out.write(0, result.embedding)
    loss = f", NT-Xent {result.losses[-1]:.3f}" if result.losses else ""
    return (f"adapted {BACKBONE_TITLE} to these photos: SimCLR head, {result.epochs} epochs on {result.n_views} "
            f"views per image{loss}: {path.name}")


# ------------------------------------------------------------------------------------------ batch functions
def backbone_batches(
    head_path: Path | None, device: str, finetuned: Path | None = None
) -> Callable[[NDArray[np.uint8]], NDArray[np.float32]]:
    """The backbone (with the adapted head when ``head_path`` is given; fine-tuned when ``finetuned`` is) as a
    picklable batch function (Ray)."""
    from labeler.embed.backbone_model import BackboneBatches

    return BackboneBatches(BACKBONE, head_path.read_bytes() if head_path is not None else None, device,
                           finetuned.read_bytes() if finetuned is not None else None)


def decode_for_backbone(path: Path) -> NDArray[np.uint8]:
    """One file as the backbone sees it, (224, 224, 3) uint8; raises ``UnreadableImage``."""
    from labeler.embed.backbone_model import decode_photo

    return decode_photo(path, BACKBONE)


def pretrained_batches(device: str) -> Callable[[], Callable[[NDArray[np.uint8]], NDArray[np.float32]]]:
    return functools.partial(backbone_batches, None, device)


# ------------------------------------------------------------------------------------------ what status says
def status_lines(ws: Workspace) -> list[str]:
    """``labeler status`` lines about the pretrained backbone: unavailable (and why), or the adapted head."""
    problem = backbone_problem(ws)
    if problem:
        return [f"pretrained backbone: unavailable ({problem}); photos fall back to pixels and the from-scratch "
                "encoder"]
    head = adapted_head(ws)
    if head is not None:
        return [f"pretrained backbone: {BACKBONE_TITLE}, SimCLR head adapted to these photos: {head}"]
    return []
