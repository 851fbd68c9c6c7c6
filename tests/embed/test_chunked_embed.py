"""Embedding a cache chunk by chunk: the same vectors as one pass, memory-mapped, resumed after a stop."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from labeler.embed.chunked_embed import embed_in_chunks
from labeler.embed.ssl.train import EncoderBatches, embed, train_simclr


def mean_colour(images: np.ndarray) -> np.ndarray:
    """A batch function with a known answer: each image's mean RGB."""
    return images.reshape(len(images), -1, 3).mean(axis=1).astype(np.float32)


def test_chunks_join_into_one_memory_mapped_file(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 255, size=(23, 4, 4, 3), dtype=np.uint8)
    out = tmp_path / "emb.npy"
    X = embed_in_chunks(images, mean_colour, out, [str(i) for i in range(23)], batch_size=3, chunk_rows=5)
    assert isinstance(X, np.memmap)
    np.testing.assert_allclose(X, mean_colour(images), rtol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["emb.npy"]


def test_a_stopped_run_resumes_with_the_missing_chunks_only(tmp_path: Path) -> None:
    images = np.random.default_rng(1).integers(0, 255, size=(20, 4, 4, 3), dtype=np.uint8)
    digests = [str(i) for i in range(20)]
    out = tmp_path / "emb.npy"
    seen: list[int] = []

    def counting(batch: np.ndarray) -> np.ndarray:
        seen.append(len(batch))
        return mean_colour(batch)

    checks = iter([False, False, True])  # stop before the third of four chunks
    assert embed_in_chunks(images, counting, out, digests, chunk_rows=5, should_stop=lambda: next(checks)) is None
    assert not out.exists()
    assert sum(seen) == 10
    seen.clear()
    X = embed_in_chunks(images, counting, out, digests, chunk_rows=5)
    assert sum(seen) == 10  # the two saved chunks were not recomputed
    assert X is not None
    np.testing.assert_allclose(X, mean_colour(images), rtol=1e-6)
    seen.clear()
    assert embed_in_chunks(images, counting, out, digests, chunk_rows=5) is not None
    assert seen == []  # complete: read back, nothing computed


def test_encoder_batches_pickle_and_match_embed(tmp_path: Path) -> None:
    images = np.random.default_rng(2).integers(0, 255, size=(40, 8, 8, 3), dtype=np.uint8)
    checkpoint = train_simclr(images, tmp_path, epochs=1, width=4, blocks=(1, 1), batch_size=20)
    batches = pickle.loads(pickle.dumps(EncoderBatches(checkpoint.read_bytes(), device="cpu")))
    X = embed_in_chunks(images, batches, tmp_path / "emb.npy", [str(i) for i in range(40)], batch_size=16,
                        chunk_rows=25)
    assert X is not None
    assert X.shape == (40, batches.dim)
    np.testing.assert_allclose(X, embed(images, checkpoint, device="cpu"), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
