"""Garbage collection of the workspace: caches and encoder copies that nothing current refers to.

Every cache file is named by what it was computed from: the dataset fingerprint (the ordered paths and contents of
the readable images), for pixels the decoding's version, and, for the trained encoder's vectors, the encoder's
digest. After an import or a refresh, files of another fingerprint, decoding or encoder can never be read again, and
at 100,000 images each generation of thumbnails alone is 2.8 GB, so they are deleted. Frozen encoder copies
(``ssl/encoder-*.pt``) other than the one the store names are deleted too, except newer ones: training writes its
copy before naming it in the store. The same holds for the heads adapted to the pretrained backbone
(``ssl/adapted-*.pt``), the checkpoints of its fine-tuned last stages (``ssl/finetuned-*.pt``) and the files derived
from them. The pretrained backbone's per-image feature stores (``pretrained-*``, ``views-*``) are keyed by image
content, not by fingerprint, and are kept while this version reads them (their names change with the weights, the
decoding and the preprocessing), as are the feature files named by them; those of a fine-tuned network
(``finetuned-<digest>-*``) are kept while that checkpoint is the current one.
"""

from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path

from labeler.io.artifacts import orphan_temp_file
from labeler.io.caches import cache_lock, superseded_caches
from labeler.io.scan import file_sha256
from labeler.workflow.backbone import BACKBONE, adapted_head, feature_stores, head_digest, representation_tag
from labeler.workflow.finetuning import finetuned_checkpoint
from labeler.workflow.training import checkpoint_dir, trained_checkpoint
from labeler.workflow.workspace import Workspace

# Files of these kinds are named after the fingerprint they belong to; anything else in the cache is left alone.
CACHE_PREFIXES = ("thumbs-", "train-", "embedding-", "embeddings-", "knn-", "map-")
FINETUNED_STORE = "finetuned-"  # per-image feature stores of a fine-tuned network: finetuned-<digest>-...
BACKBONE_STORES = (f"pretrained-{BACKBONE}-", f"views-{BACKBONE}-")  # the backbone's per-image feature stores
# Temporary files older than this belong to a run that died: a live writer renames its file within minutes. (A
# file whose name holds a writer's pid goes as soon as that process is gone; age decides for the others, and for a
# pid that another process may have taken since.)
STALE_TEMP_S = 6 * 3600.0


def _derived_from(name: str) -> str | None:
    """Which trained model a cache file's vectors come from: "head" (adapted), "finetuned" (the backbone's last
    stages), "encoder" (from scratch) or None."""
    if "pretrained-simclr" in name:
        return "head"
    if "pretrained-finetuned" in name:
        return "finetuned"
    if name.startswith("embeddings-") or "simclr" in name:
        return "encoder"
    return None


def collect_garbage(ws: Workspace, *, wait: bool = False) -> list[Path]:
    """Delete unreferenced cache files and encoder copies; return what was deleted.

    A file is kept when its name holds the current fingerprint and, if it derives from the trained encoder, the
    current encoder's digest. Skipped (returns ``[]``) while an import holds the cache lock, unless ``wait``.
    """
    cache = ws.settings.cache_dir
    if not cache.is_dir():
        return []
    deleted: list[Path] = []
    with cache_lock(cache, blocking=wait) as held:
        if not held:
            return []
        fingerprint = ws.fingerprint()
        checkpoint = trained_checkpoint(ws)
        head = adapted_head(ws)
        tuned = finetuned_checkpoint(ws)
        digests = {"encoder": file_sha256(checkpoint)[:16] if checkpoint is not None else None,
                   "head": head_digest(head) if head is not None else None,
                   "finetuned": head_digest(tuned) if tuned is not None else None}
        superseded = set(superseded_caches(cache))  # pixels of an older decoding, under the current fingerprint too
        backbone_features = f"pretrained-{fingerprint}-"  # embedding-, knn-, map-pretrained-<fingerprint>-<tag>...
        # The tag and the stores of this version, computed once and only if asked (they import torch).
        tags = functools.cache(lambda: (representation_tag(), *feature_stores()))

        now = time.time()
        for entry in sorted(cache.iterdir()):
            name = entry.name
            if name.startswith(CACHE_PREFIXES):
                model = _derived_from(name)
                digest = digests[model] if model is not None else None
                this_data = fingerprint in name and entry not in superseded and (
                    backbone_features not in name or name.split(backbone_features, 1)[1].startswith(tags()[0]))
                if this_data and (model is None or (digest is not None and digest in name)):
                    continue
            elif name.startswith(FINETUNED_STORE):
                # Features of an older fine-tuned network; one newer than the current checkpoint may belong to a
                # checkpoint being named in the store right now.
                newest_kept = _mtime(tuned) if tuned is not None else now - STALE_TEMP_S
                if name.startswith(f"{FINETUNED_STORE}{digests['finetuned']}-") or _mtime(entry) > newest_kept:
                    continue
            elif name.startswith(BACKBONE_STORES):
                if name in tags()[1:]:
                    continue
            elif not (name.startswith(".") and name.endswith(".tmp")
                      and (orphan_temp_file(entry) or now - _mtime(entry) > STALE_TEMP_S)):
                continue  # not ours (e.g. another representation's feature store), the lock, files.json, a live write
            _remove(entry)
            deleted.append(entry)
        for current, pattern in ((checkpoint, "encoder-*.pt"), (head, "adapted-*.pt"), (tuned, "finetuned-*.pt")):
            if current is None:
                continue
            newest_kept = _mtime(current)
            for copy in sorted(checkpoint_dir(ws).glob(pattern)):
                if copy.resolve() != current.resolve() and _mtime(copy) <= newest_kept:
                    _remove(copy)
                    deleted.append(copy)
    return deleted


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)

