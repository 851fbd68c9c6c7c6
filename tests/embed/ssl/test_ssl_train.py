"""Training: loss goes down, resume, cancel, time budget, CPU fallback, embeddings and their cache."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from labeler.embed.ssl import train as ssl_train
from labeler.embed.ssl.device import MIN_CPU_CHANNELS_LAST, ThreadChooser, training_memory_format
from labeler.embed.ssl.model import Encoder, encoder_state
from labeler.embed.ssl.train import (
    TrainProgress,
    embed,
    load_checkpoint_info,
    load_or_embed,
    select_device,
    train_simclr,
)

TINY: dict[str, Any] = {"width": 4, "blocks": (1, 1), "batch_size": 32}


def toy_images(n: int = 64, size: int = 16, seed: int = 0) -> np.ndarray:
    """Two kinds of grey glyphs (a horizontal or a vertical bar at random places) plus noise."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, size=(n, size, size), dtype=np.uint8)
    for i in range(n):
        at = rng.integers(2, size - 6)
        if i % 2:
            images[i, at : at + 3, 2:-2] = 230
        else:
            images[i, 2:-2, at : at + 3] = 230
    return np.repeat(images[..., None], 3, axis=-1)


def test_training_lowers_the_loss(tmp_path):
    path = train_simclr(toy_images(), tmp_path, epochs=25, random_state=0, **TINY)
    history = load_checkpoint_info(path)["loss_history"]
    assert len(history) == 25 * 2  # 64 images / batch 32
    assert np.mean(history[-5:]) < np.mean(history[:5]) - 0.2


def test_resume_continues_counters_and_history(tmp_path):
    images = toy_images()
    path = train_simclr(images, tmp_path, epochs=2, **TINY)
    first = load_checkpoint_info(path)
    assert (first["epoch"], first["step"], first["finished"]) == (2, 4, True)
    path2 = train_simclr(images, tmp_path, epochs=1, **TINY)
    assert path2 == path
    second = load_checkpoint_info(path)
    assert (second["epoch"], second["step"]) == (3, 6)
    assert second["loss_history"][:4] == first["loss_history"]
    assert len(second["loss_history"]) == 6
    assert second["elapsed_s"] > first["elapsed_s"]


def test_should_stop_saves_a_valid_checkpoint(tmp_path):
    polls = []

    def stop() -> bool:
        polls.append(1)
        return len(polls) > 3  # allow three steps

    path = train_simclr(toy_images(), tmp_path, epochs=50, should_stop=stop, **TINY)
    info = load_checkpoint_info(path)
    assert info["step"] == 3
    assert info["finished"] is False
    assert embed(toy_images(), path).shape == (64, 8)


def test_time_budget_and_progress_reports(tmp_path):
    reports: list[TrainProgress] = []
    path = train_simclr(toy_images(), tmp_path, minutes=0.02, progress=reports.append, **TINY)
    info = load_checkpoint_info(path)
    assert 0.5 < info["elapsed_s"] < 5.0  # 1.2 s budget, plus at most one step and the save
    assert reports
    assert reports[-1].fraction == 1.0
    assert all(r.images_per_s > 0 for r in reports)
    assert [r.step for r in reports] == sorted(r.step for r in reports)


def test_cpu_path_when_no_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    with pytest.warns(RuntimeWarning, match="no GPU"):
        assert select_device("cuda") == torch.device("cpu")
    path = train_simclr(toy_images(), tmp_path, epochs=1, device="auto", **TINY)
    assert load_checkpoint_info(path)["step"] == 2
    with pytest.raises(ValueError, match="device"):
        select_device("tpu")


def test_embed_gives_unit_rows_deterministically(tmp_path):
    images = toy_images()
    path = train_simclr(images, tmp_path, epochs=1, **TINY)
    a = embed(images, path, batch_size=10)
    b = embed(images, path, batch_size=64)
    assert a.shape == (64, 8)
    assert a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(a, b, atol=2e-2)  # batching does not matter in eval mode (bf16 rounding aside)
    z = embed(images, path, projection=True)
    assert z.shape == (64, 128)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, rtol=1e-5)


def test_embeddings_are_cached_and_reused(tmp_path, monkeypatch):
    images = toy_images()
    ckpt = train_simclr(images, tmp_path / "ssl", epochs=1, **TINY)
    calls = []
    real_embed = ssl_train.embed

    def counting_embed(*args, **kwargs):
        calls.append(1)
        return real_embed(*args, **kwargs)

    monkeypatch.setattr(ssl_train, "embed", counting_embed)
    first = load_or_embed(tmp_path / "cache", images, ckpt, "abc123")
    second = load_or_embed(tmp_path / "cache", images, ckpt, "abc123")
    assert len(calls) == 1
    np.testing.assert_array_equal(first, second)
    assert len(list((tmp_path / "cache").glob("embeddings-abc123-*.npy"))) == 1
    load_or_embed(tmp_path / "cache", images, ckpt, "def456")  # new dataset fingerprint
    assert len(calls) == 2
    projected = load_or_embed(tmp_path / "cache", images, ckpt, "abc123", projection=True)  # its own file
    assert len(calls) == 3
    assert projected.shape == (64, 128)
    train_simclr(images, tmp_path / "ssl", epochs=1, **TINY)  # new checkpoint bytes
    load_or_embed(tmp_path / "cache", images, ckpt, "abc123")
    assert len(calls) == 4
    with pytest.raises(ValueError, match="fingerprint"):
        load_or_embed(tmp_path / "cache", images, ckpt, "../escape")


def test_init_checkpoint_sets_the_starting_encoder(tmp_path):
    torch.manual_seed(0)
    start = Encoder(width=4, blocks=(1, 1, 1))
    init = tmp_path / "init.pt"
    torch.save(encoder_state(start), init)
    stop_now = iter([False, True])  # one step, then stop
    path = train_simclr(toy_images(), tmp_path / "run", epochs=5, width=16, init_checkpoint=init,
                        should_stop=lambda: next(stop_now), batch_size=32)
    info = load_checkpoint_info(path)
    assert info["config"]["width"] == 4  # the init checkpoint's architecture wins
    assert info["config"]["blocks"] == [1, 1, 1]


def test_rejects_bad_arguments(tmp_path):
    images = toy_images()
    with pytest.raises(ValueError, match="uint8"):
        train_simclr(images.astype(np.float32), tmp_path, epochs=1)
    with pytest.raises(ValueError, match="minutes"):
        train_simclr(images, tmp_path, minutes=0)
    with pytest.raises(ValueError, match="temperature"):
        train_simclr(images, tmp_path, epochs=1, temperature=0)


def test_thread_chooser_keeps_the_fastest_and_remeasures():
    chooser = ThreadChooser([2, 1], probe_steps=2, every_s=10.0)
    seconds = {2: 0.9, 1: 0.3}  # a busy machine: one thread is faster
    now = 0.0
    for _ in range(6):  # (1 warm-up + 2 timed steps) per candidate
        now += 1
        chooser.record(seconds[chooser.threads()], now)
    assert chooser.threads() == 1
    seconds = {2: 0.2, 1: 0.3}  # the machine went quiet
    chooser.record(0.3, now + 5)  # before the next probe: nothing changes
    assert chooser.threads() == 1
    now += 11
    chooser.record(0.3, now)  # probe due: measure again
    for _ in range(6):
        now += 1
        chooser.record(seconds[chooser.threads()], now)
    assert chooser.threads() == 2


def test_narrow_networks_train_contiguous_on_the_cpu():
    # channels_last backward with 2-7 input channels corrupts the heap in torch 2.14.1 on AVX2 CPUs; the tiny
    # encoders above (width 4) then abort the whole process, as they did on an AMD EPYC.
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert training_memory_format(cpu, 4) == torch.contiguous_format
    assert training_memory_format(cpu, MIN_CPU_CHANNELS_LAST) == torch.channels_last
    assert training_memory_format(cuda, 4) == torch.channels_last
