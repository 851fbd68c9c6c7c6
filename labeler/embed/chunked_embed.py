"""Embedding a whole image cache chunk by chunk into one memory-mapped ``.npy``, resumable after an interruption.

Any representation whose model maps a batch of images to a batch of vectors (the SimCLR encoder today, a pretrained
backbone tomorrow) is a *batch function* ``uint8 (B, S, S, 3) -> float32 (B, D)``. This module runs one over a
cache on this machine; :mod:`labeler.embed.ray_embed` runs the same function on a Ray cluster. Both write the same
files (:class:`labeler.io.chunked.ChunkedRun`: finished chunks under ``{out}.parts/``, keyed by the content digests
of their images, joined into ``out`` at the end), so either can resume the other's interrupted run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeler.io.artifacts import load_npy
from labeler.io.chunked import ChunkedRun, chunk_key
from labeler.progress import Progress, StopCheck, quiet

BatchFunction = Callable[[NDArray[np.uint8]], NDArray[np.floating[Any]]]

# Images per saved chunk: what an interruption can lose, and one file per this many images.
CHUNK_ROWS = 4096


def chunked_run(out_path: Path, digests: Sequence[str], chunk_rows: int = CHUNK_ROWS) -> ChunkedRun:
    """The chunk layout of embedding the images with content ``digests`` (in row order) into ``out_path``."""
    n = len(digests)
    keys = [chunk_key(digests[lo : lo + chunk_rows]) for lo in range(0, n, chunk_rows)]
    return ChunkedRun(out_path, n, chunk_rows, keys)


def load_embedding(path: Path, n: int) -> NDArray[np.float32] | None:
    """A finished embedding file as a read-only memory map, or None when absent or not ``n`` rows of float32."""
    try:
        X = load_npy(path, mmap=True)
    except (OSError, ValueError):
        return None
    if X.ndim != 2 or X.shape[0] != n or X.dtype != np.float32:
        return None
    return X


def resume_run(
    out_path: Path, digests: Sequence[str], n: int, chunk_rows: int = CHUNK_ROWS
) -> tuple[NDArray[np.float32] | None, ChunkedRun, list[int]]:
    """Where an embedding of ``n`` images (content ``digests``) into ``out_path`` stands, local or on Ray.

    Returns ``(finished, run, todo)``: the complete file memory-mapped (None until it exists), the chunk layout,
    and the chunks still to compute (those an earlier run, here or on a cluster, did not save).
    """
    if len(digests) != n:
        raise ValueError(f"need one digest per image ({n}), got {len(digests)}")
    finished = load_embedding(out_path, n)
    run = chunked_run(out_path, digests, chunk_rows)
    return finished, run, [] if finished is not None else run.missing()


def finish_run(run: ChunkedRun, progress: Progress = quiet) -> NDArray[np.float32] | None:
    """Join the saved chunks of ``run`` (all of them) into its file; the embedding memory-mapped."""
    dim = int(load_npy(run.part_path(0), mmap=True).shape[1]) if run.n else 0
    run.assemble((dim,), np.float32)
    progress(1.0, "embedded")
    return load_embedding(run.path, run.n)


def embed_in_chunks(
    images: NDArray[np.uint8],
    embed_batch: BatchFunction,
    out_path: Path,
    digests: Sequence[str],
    *,
    batch_size: int = 512,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress = quiet,
    should_stop: StopCheck | None = None,
) -> NDArray[np.float32] | None:
    """Rows ``embed_batch(images[i])`` for every image, written to ``out_path`` and returned memory-mapped.

    Parameters
    ----------
    images : uint8 array (N, S, S, 3), typically the memory-mapped training-image cache
    embed_batch : batch function, uint8 (B, S, S, 3) -> float (B, D)
    out_path : where the (N, D) float32 ``.npy`` goes; returned at once when already complete
    digests : content digest of each image (N strings): names the chunks a resumed run may reuse
    batch_size, chunk_rows : images per call of ``embed_batch``; images per saved chunk

    Returns
    -------
    float32 memmap (N, D), or None when ``should_stop()`` interrupted the run (finished chunks are kept).
    """
    done, run, todo = resume_run(out_path, digests, len(images), chunk_rows)
    if done is not None:
        return done
    for count, i in enumerate(todo):
        if should_stop is not None and should_stop():
            return None
        progress(count / max(len(todo), 1), f"embedding chunk {count + 1}/{len(todo)}")
        lo, hi = run.bounds(i)
        parts = [np.asarray(embed_batch(np.asarray(images[b : min(b + batch_size, hi)])), dtype=np.float32)
                 for b in range(lo, hi, batch_size)]
        run.save(i, np.concatenate(parts))
    return finish_run(run, progress)
