"""Garbage collection deletes exactly the cache files and encoder copies nothing current refers to."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import numpy as np

from labeler.io.artifacts import temp_file_writer
from labeler.io.caches import cache_lock
from labeler.io.chunked import NpyWriter
from labeler.workflow import backbone
from labeler.workflow.garbage import collect_garbage
from labeler.workflow.refresh import refresh
from labeler.workflow.workspace import Workspace


def test_only_unreferenced_files_are_deleted(ws: Workspace) -> None:
    cache = ws.settings.cache_dir
    ssl = ws.workspace_dir / "ssl"
    ssl.mkdir()
    old_time = time.time() - 3600
    older = ssl / "encoder-aaaa.pt"
    older.write_bytes(b"an older encoder")
    os.utime(older, (old_time, old_time))
    current = ssl / "encoder-bbbb.pt"
    current.write_bytes(b"the current encoder")
    os.utime(current, (old_time + 60, old_time + 60))
    newer = ssl / "encoder-cccc.pt"  # written by a training run that has not named it in the store yet
    newer.write_bytes(b"a newer encoder")
    (ssl / "simclr.pt").write_bytes(b"the live checkpoint that training resumes from")
    ws.store.set_meta("ssl_checkpoint", str(current))
    digest = hashlib.sha256(b"the current encoder").hexdigest()[:16]
    fp = ws.fingerprint()
    tag, features, views = backbone.representation_tag(), *backbone.feature_stores()
    keep = {
        *(p.name for p in ws.cache_paths()),
        f"embedding-pixels-pca-{fp}.npy",
        f"knn-pixels-pca-{fp}-k15.npz",
        f"map-pixels-pca-{fp}-k15.npy",
        f"embeddings-{fp}-{digest}.npy",
        f"embeddings-{fp}-{digest}-projection.npy",
        f"embeddings-{fp}-{digest}.npy.parts",  # an interrupted run of the current encoder: resumable
        f"knn-simclr-{fp}-{digest}-k15.npz",
        f"embedding-hog-pixels-{fp}.npy",
        f"embedding-simclr-{fp}-{digest}-hog.npy",  # the encoder beside the edges and pixels
        "files.json",
        "pretrained-resnet18-0123456789ab",  # another representation's feature store: not ours to judge
        features,  # the backbone's per-image stores this version reads
        views,
        f"embedding-pretrained-{fp}-{tag}-centred.npy",
        f"knn-pretrained-{fp}-{tag}-centred-k15.npz",
        f".fresh.npy.{os.getpid()}.ab12.tmp",  # a live writer may be about to rename it
        ".fresh.npy.ab12.tmp",  # no writer named: only age tells
    }
    drop = {
        "thumbs-96-0000000000000000.npy",
        f"thumbs-{ws.settings.thumb_size}-{fp}.npy",  # this dataset, decoded by the first decoding (no version)
        "train-32-0000000000000000.npy",
        "embedding-pixels-pca-0000000000000000.npy",
        "knn-pixels-pca-0000000000000000-k15.npz",
        "map-pixels-pca-0000000000000000-k15.npy",
        f"embeddings-{fp}-ffffffffffffffff.npy",  # this dataset, an older encoder
        f"map-simclr-{fp}-ffffffffffffffff-k15.npy",
        f"embedding-simclr-{fp}-ffffffffffffffff-hog.npy",
        "embedding-hog-pixels-0000000000000000.npy",
        "embeddings-0000000000000000-ffffffffffffffff.npy.parts",
        ".stale.npy.99.tmp",
        f"pretrained-{backbone.BACKBONE}-000000000000",  # features of another decoding, preprocessing or weights
        f"views-{backbone.BACKBONE}-000000000000",
        f"embedding-pretrained-{fp}-000000000000-centred.npy",  # this dataset, such features
        f"map-pretrained-{fp}-000000000000-centred-k15.npy",
    }
    for name in (keep | drop) - {p.name for p in cache.iterdir()}:
        if name.endswith((".parts", "0123456789ab")) or name.startswith(("pretrained-", "views-")):
            (cache / name).mkdir()
            (cache / name / "part.npy").write_bytes(b"x")
        else:
            (cache / name).write_bytes(b"x")
    os.utime(cache / ".stale.npy.99.tmp", (0, 0))

    with cache_lock(cache):  # an import is writing: nothing is touched
        assert collect_garbage(ws) == []

    deleted = collect_garbage(ws)
    assert {p.name for p in deleted} == drop | {"encoder-aaaa.pt"}
    assert {p.name for p in cache.iterdir()} == keep | {".lock"}
    assert sorted(p.name for p in ssl.iterdir()) == ["encoder-bbbb.pt", "encoder-cccc.pt", "simclr.pt"]


def test_refresh_collects_garbage_of_older_images(ws: Workspace) -> None:
    stale = ws.settings.cache_dir / "embedding-pixels-pca-0000000000000000.npy"
    stale.write_bytes(b"x")
    state = refresh(ws, compute_map=False)
    assert not stale.exists()
    assert (ws.settings.cache_dir / f"knn-{state.embedding_key}-k15.npz").exists()


def test_a_dead_writers_temporary_file_goes_at_once_and_a_live_ones_stays(ws: Workspace) -> None:
    """A process killed in the middle of an NpyWriter leaves its temporary file: the next collection removes it
    however young it is, while this process's own write in progress is kept."""
    cache = ws.settings.cache_dir
    script = (
        "import os, signal, sys\n"
        "import numpy as np\n"
        "from labeler.io.chunked import NpyWriter\n"
        "writer = NpyWriter(sys.argv[1], (4, 2), np.float32)\n"
        "writer.write(0, np.ones((2, 2), dtype=np.float32))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    child = subprocess.run([sys.executable, "-c", script, str(cache / "thumbs-dead.npy")], check=False)
    assert child.returncode == -signal.SIGKILL
    (dead,) = cache.glob(".thumbs-dead.npy.*.tmp")
    assert temp_file_writer(dead) not in (None, os.getpid())
    with NpyWriter(cache / "thumbs-live.npy", (4, 2), np.float32) as live:
        assert temp_file_writer(live.temp_path) == os.getpid()
        deleted = collect_garbage(ws)
        assert dead in deleted
        assert not dead.exists()
        assert live.temp_path.exists()
        live.write(0, np.zeros((4, 2), dtype=np.float32))
    assert (cache / "thumbs-live.npy").exists()  # and the live write completes
