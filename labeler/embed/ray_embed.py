"""Embedding on a Ray cluster: decoding and a model's batch function as a Ray Data ``map_batches`` pipeline.

Embedding is the step that outgrows one machine (millions of photos through a CNN), and it is embarrassingly
parallel: files are decoded by Ray tasks, batches go through the model in a pool of actors (each builds the network
once), and the driver collects the vectors in row order into the same chunk files as the local path
(:func:`labeler.embed.chunked_embed.embed_in_chunks`), so a run interrupted on the cluster resumes on the cluster or
on the laptop, chunk by chunk, and the finished file is the one the rest of labeler reads.

Workers read the images by path: on a real cluster the data folder must be mounted at the same path on every node
(NFS, a shared volume), and labeler must be installed there (or shipped with ``runtime_env``). ``ray`` is an optional
dependency (``pip install -e ".[ray]"``), imported only when this runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeler.embed.chunked_embed import CHUNK_ROWS, BatchFunction, finish_run, resume_run
from labeler.io.decode import UnreadableImage
from labeler.progress import Progress, StopCheck, quiet

Decoder = Callable[[Path], NDArray[np.uint8]]


class ImagesChanged(RuntimeError):
    """Some files no longer decode on the cluster (changed or removed since the import): ``failures`` says which."""

    def __init__(self, failures: dict[str, str]) -> None:
        listed = "; ".join(f"{path}: {reason}" for path, reason in list(failures.items())[:5])
        super().__init__(f"{len(failures)} images no longer decode ({listed}); run `labeler import` again")
        self.failures = failures


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def _decode_batch(batch: dict[str, NDArray[Any]], decode: Decoder) -> dict[str, NDArray[Any]]:
    """Ray task: {"row", "path"} -> {"row", "image" (B, S, S, 3) uint8, "error" (B,) str, "" where decoded}."""
    images: list[NDArray[np.uint8] | None] = []
    errors: list[str] = []
    for path in batch["path"]:
        try:
            images.append(decode(Path(str(path))))
            errors.append("")
        except UnreadableImage as error:
            images.append(None)
            errors.append(error.reason)
    shape = next((image.shape for image in images if image is not None), (1, 1, 3))
    stacked = np.stack([image if image is not None else np.zeros(shape, np.uint8) for image in images])
    return {"row": batch["row"], "image": stacked, "error": np.array(errors, dtype=object)}


class _EmbedActor:
    """Ray actor: holds one copy of the batch function (its network built on first use) for every batch it gets."""

    def __init__(self, embed_batch: BatchFunction) -> None:
        self.embed_batch = embed_batch

    def __call__(self, batch: dict[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        features = np.asarray(self.embed_batch(batch["image"]), dtype=np.float32)
        return {"row": batch["row"], "features": features, "error": batch["error"]}


def embed_with_ray(
    paths: Sequence[Path],
    digests: Sequence[str],
    embed_batch: BatchFunction,
    out_path: Path,
    *,
    decode: Decoder,
    address: str | None = None,
    batch_size: int = 256,
    chunk_rows: int = CHUNK_ROWS,
    actors: int = 1,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float = 0.0,
    progress: Progress = quiet,
    should_stop: StopCheck | None = None,
) -> NDArray[np.float32] | None:
    """Embed the images at ``paths`` on a Ray cluster into ``out_path`` (float32 (N, D) ``.npy``), resumably.

    Parameters
    ----------
    paths, digests : the images in row order and their content digests (which name the chunks)
    embed_batch : picklable batch function, uint8 (B, S, S, 3) -> float (B, D), e.g.
        :class:`labeler.embed.ssl.train.EncoderBatches`; it is shipped to every actor
    out_path : the embedding file; returned at once (memory-mapped) when already complete
    decode : picklable ``path -> uint8 (S, S, 3)`` run by the decoding tasks, e.g. a partial of
        :func:`labeler.io.caches.read_training_image` so that pixels equal the local cache's
    address : Ray address ("auto", "ray://host:10001", ...); None uses the Ray already initialised in this
        process or starts a local one
    batch_size, chunk_rows : images per model call; images per saved chunk
    actors, cpus_per_actor, gpus_per_actor : the model's actor pool and what each actor reserves

    Returns
    -------
    float32 memmap (N, D), or None when ``should_stop()`` interrupted the run (finished chunks are kept).

    Raises
    ------
    ImagesChanged
        When some files fail to decode; the chunks holding them are not saved.
    """
    import ray
    import ray.data

    done, run, todo = resume_run(out_path, digests, len(paths), chunk_rows)
    if done is not None:
        return done
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, log_to_driver=False, include_dashboard=False)
    try:
        if todo:
            failures = _run_pipeline(ray.data, run, todo, paths, embed_batch, decode, batch_size, actors,
                                     cpus_per_actor, gpus_per_actor, progress, should_stop)
            if failures is None:
                return None
            if failures:
                raise ImagesChanged(failures)
        return finish_run(run, progress)
    finally:
        if started_here:
            ray.shutdown()


def _run_pipeline(
    data: Any,
    run: Any,
    todo: list[int],
    paths: Sequence[Path],
    embed_batch: BatchFunction,
    decode: Decoder,
    batch_size: int,
    actors: int,
    cpus_per_actor: float,
    gpus_per_actor: float,
    progress: Progress,
    should_stop: StopCheck | None,
) -> dict[str, str] | None:
    """Stream the missing chunks through Ray; save each as soon as all its rows are back. None when stopped."""
    context = data.DataContext.get_current()
    context.execution_options.preserve_order = True  # chunks complete one after the other: bounded buffers
    items = [{"row": row, "path": str(paths[row])} for i in todo for row in range(*run.bounds(i))]
    dataset = (
        data.from_items(items, override_num_blocks=max(1, min(len(items) // batch_size, 1000)))
        .map_batches(_decode_batch, fn_kwargs={"decode": decode}, batch_size=batch_size, batch_format="numpy")
        .map_batches(_EmbedActor, fn_constructor_args=(embed_batch,), batch_size=batch_size, batch_format="numpy",
                     concurrency=actors, num_cpus=cpus_per_actor, num_gpus=gpus_per_actor)
    )
    buffers: dict[int, tuple[NDArray[np.float32], list[int]]] = {}  # chunk -> (rows, [filled])
    failures: dict[str, str] = {}
    failed_chunks: set[int] = set()
    received = 0
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        if should_stop is not None and should_stop():
            return None
        features = batch["features"]
        for row, vector, error in zip(batch["row"], features, batch["error"], strict=True):
            i = int(row) // run.chunk_rows
            lo, hi = run.bounds(i)
            if i not in buffers:
                buffers[i] = (np.empty((hi - lo, features.shape[1]), dtype=np.float32), [0])
            rows, filled = buffers[i]
            rows[int(row) - lo] = vector
            filled[0] += 1
            if error:
                failures[str(paths[int(row)])] = str(error)
                failed_chunks.add(i)
            if filled[0] == hi - lo:
                if i not in failed_chunks:
                    run.save(i, rows)
                del buffers[i]
        received += len(features)
        progress(received / max(len(items), 1), f"embedded {received}/{len(items)} images on Ray")
    return failures
