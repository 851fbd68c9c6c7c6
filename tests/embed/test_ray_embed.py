"""Embedding on Ray (a local instance with 2 CPUs): the same vectors as the local path, resumable by chunk."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labeler import cli
from labeler.config import Settings
from labeler.embed.chunked_embed import chunked_run
from labeler.io.caches import read_training_image
from labeler.workflow.representations import model_embeddings, representations
from labeler.workflow.training import train
from labeler.workflow.workspace import Workspace

ray = pytest.importorskip("ray", reason='Ray is not installed (pip install -e ".[ray]" runs these tests)')
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray() -> str:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def trained(tmp_path: Path) -> Workspace:
    """40 small images (PNG and JPEG, so decoding paths differ) imported, with an encoder trained for an epoch."""
    from conftest import make_colour_folder

    root = tmp_path / "data"
    make_colour_folder(root, per_class=12)
    rng = np.random.default_rng(3)
    for i in range(4):
        pixels = rng.integers(0, 255, size=(150, 200, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"photo_{i}.jpg", quality=85)
    ws = Workspace.open(Settings(root, ssl_width=4, ssl_batch_size=16, device="cpu"))
    ws.import_folder()
    train(ws, epochs=1)
    return ws


def test_cli_embeds_on_ray_like_the_local_path(trained: Workspace, local_ray: str, capsys) -> None:
    ws = trained
    assert cli.main(["embed", str(ws.data_dir), "--ray", local_ray]) == 0
    models = model_embeddings(ws, ws.fingerprint())
    assert [m.name for m in models] == ["simclr", "simclr-projection"]
    assert capsys.readouterr().out.count("wrote ") == 2
    on_ray = {m.name: np.load(m.path) for m in models}
    for model in models:
        model.path.unlink()  # now compute them here, from the cached training images
    local = representations(ws)
    for name, X in on_ray.items():
        assert X.shape == (ws.image_count(), local[name].X.shape[1])
        np.testing.assert_allclose(X, local[name].X, atol=1e-4)


def test_a_partial_run_resumes_by_chunk(trained: Workspace, local_ray: str) -> None:
    from labeler.embed.ray_embed import ImagesChanged, embed_with_ray

    ws = trained
    records = ws.records()
    (model, _) = model_embeddings(ws, ws.fingerprint())
    paths = [ws.data_dir / r.path for r in records]
    digests = [r.sha256 or "" for r in records]
    expected = representations(ws)["simclr"].X
    out = ws.settings.cache_dir / "resumed.npy"
    run = chunked_run(out, digests, chunk_rows=16)
    assert run.n_chunks == 3
    run.save(1, np.full((16, expected.shape[1]), 7.0, np.float32))  # a chunk left by an interrupted run
    X = embed_with_ray(paths, digests, model.batch_function(), out, decode=model.decode, chunk_rows=16,
                       batch_size=8)
    assert X is not None
    assert np.all(X[16:32] == 7.0)  # reused, not recomputed
    np.testing.assert_allclose(X[:16], expected[:16], atol=1e-4)
    np.testing.assert_allclose(X[32:], expected[32:], atol=1e-4)

    (ws.data_dir / records[20].path).write_bytes(b"changed since the import")
    shutil.rmtree(out.parent / "broken.npy.parts", ignore_errors=True)
    decode = functools.partial(read_training_image, thumb_size=96, train_size=32)
    with pytest.raises(ImagesChanged, match="1 images no longer decode") as raised:
        embed_with_ray(paths, digests, model.batch_function(), out.parent / "broken.npy", decode=decode,
                       chunk_rows=16, batch_size=8)
    assert list(raised.value.failures.values()) == ["not an image"]
    assert [p.name[:6] for p in sorted((out.parent / "broken.npy.parts").iterdir())] == ["000000", "000002"]
