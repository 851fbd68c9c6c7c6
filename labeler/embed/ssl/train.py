"""Time-budgeted, resumable, cancellable SimCLR training; embedding with the trained encoder; an embedding cache.

Speed on a CPU comes from three things measured on this project's 2-core Xeon (AMX, AVX-512 bf16): augmenting whole
batches as tensor ops (``augment.py``), bf16 autocast, and channels-last memory format (together about 3x fp32).
The loss is computed in float32 whatever the autocast dtype, and if it ever turns non-finite under autocast the run
drops to float32 for the rest of the call, so bf16 can only cost speed, never the result.
"""

from __future__ import annotations

import io
import math
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from labeler.embed.ssl.augment import BatchAugment, choose_preset
from labeler.embed.ssl.device import (
    ThreadChooser,
    autocast,
    autocast_dtype,
    cpu_threads,
    select_device,
    thread_candidates,
    training_memory_format,
)
from labeler.embed.ssl.loss import nt_xent
from labeler.embed.ssl.model import Encoder, SimCLR, load_pretrained_encoder
from labeler.io.artifacts import load_npy, save_npy_atomic, write_bytes_atomic
from labeler.io.scan import file_sha256

CHECKPOINT_NAME = "simclr.pt"
CHECKPOINT_FORMAT = "labeler-simclr-v1"
DEFAULT_BLOCKS = (1, 1, 1, 1)
_SAVE_EVERY_S = 60.0  # crash safety: a checkpoint at least this often, besides the one at the end
_PROGRESS_EVERY_S = 0.5


@dataclass(frozen=True)
class TrainProgress:
    """One progress report. ``images_per_s`` counts source images (each gives two augmented views)."""

    epoch: int
    step: int
    loss: float
    images_per_s: float
    seconds_left: float
    fraction: float


def _check_images(images: NDArray[np.uint8]) -> None:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, S, S, 3), got {images.dtype} {images.shape}")
    if len(images) < 2:
        raise ValueError("SimCLR needs at least 2 images")


def _to_float(batch: torch.Tensor, view_size: int) -> torch.Tensor:
    """uint8 (B, S, S, 3) -> float (B, 3, view_size, view_size) in [0, 1]."""
    x = batch.permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-1] != view_size:
        x = F.interpolate(x, size=(view_size, view_size), mode="bilinear", antialias=True, align_corners=False)
    return x


def _lr_at(fraction: float, base_lr: float, warmup: float) -> float:
    """Linear warm-up over the first ``warmup`` of the budget, then cosine decay to zero at its end."""
    if fraction < warmup:
        return base_lr * max(fraction / warmup, 0.02)
    progress = min(1.0, (fraction - warmup) / max(1e-9, 1 - warmup))
    return base_lr * 0.5 * (1 + math.cos(math.pi * progress))


def train_simclr(
    images: NDArray[np.uint8],
    checkpoint_dir: Path,
    *,
    minutes: float | None = None,
    epochs: int | None = None,
    width: int = 16,
    batch_size: int = 64,
    temperature: float = 0.1,
    preset: str = "auto",
    device: str = "auto",
    random_state: int = 0,
    progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    init_checkpoint: Path | None = None,
    blocks: Sequence[int] = DEFAULT_BLOCKS,
    view_size: int | None = None,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
) -> Path:
    """Train (or continue training) SimCLR on ``images`` and return the checkpoint path.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, S, S, 3)
        The training-resolution image cache.
    checkpoint_dir : Path
        Holds ``simclr.pt``. If it exists (same architecture), training resumes from it: weights, optimizer,
        epoch and step counters, elapsed time and loss history all continue.
    minutes, epochs : float or int, optional
        Budget of *this call*: train this many more minutes and/or epochs, whichever ends first (5 minutes if
        neither is given). The learning rate warms up and then follows a cosine over this budget.
    width, blocks : int, sequence of int
        Encoder size (see :class:`labeler.embed.ssl.model.Encoder`). These defaults, like those of ``batch_size`` and
        ``temperature``, measured best for a 5-minute CPU budget (``benchmarks/results/quality.md``). Ignored
        when resuming (the checkpoint's architecture and view size win) or starting from ``init_checkpoint``
        (its architecture wins).
    batch_size : int
        Images per step (two views each); capped at N.
    temperature : float
        NT-Xent temperature.
    preset : "auto", "glyph" or "photo"
        Augmentation preset; "auto" uses :func:`labeler.embed.ssl.augment.choose_preset`.
    device : "auto", "cpu" or "cuda"
    random_state : int
        Seeds the model initialisation, batch order and augmentations.
    progress : callable, optional
        Called with a :class:`TrainProgress` about twice a second and at the end.
    should_stop : callable, optional
        Polled every step; when it returns True a checkpoint is saved and the function returns.
    init_checkpoint : Path, optional
        Starting weights for a fresh run (see :func:`labeler.embed.ssl.model.load_pretrained_encoder`).
    view_size : int, optional
        Side of the augmented views (default S). Smaller views train faster; embedding uses the same size.
    lr, weight_decay : float
        AdamW peak learning rate and weight decay.

    Returns
    -------
    Path
        ``checkpoint_dir / "simclr.pt"``.
    """
    _check_images(images)
    if minutes is None and epochs is None:
        minutes = 5.0
    if minutes is not None and minutes <= 0:
        raise ValueError(f"minutes must be positive, got {minutes}")
    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    n = len(images)
    checkpoint_dir = Path(checkpoint_dir)
    path = checkpoint_dir / CHECKPOINT_NAME
    dev = select_device(device)
    if preset == "auto":
        preset = choose_preset(images)
    config: dict[str, Any] = {
        "width": int(width),
        "blocks": [int(b) for b in blocks],
        "projection_dim": 128,
        "preset": preset,
        "temperature": float(temperature),
        "view_size": int(view_size or images.shape[1]),
    }
    state = _load_checkpoint(path) if path.exists() else None
    if state is not None:
        # The stored run's architecture and view size win: throwing away minutes of training would surprise more.
        stored = state["config"]
        config.update(width=stored["width"], blocks=stored["blocks"], view_size=stored["view_size"])

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        if state is None and init_checkpoint is not None:
            encoder = load_pretrained_encoder(init_checkpoint)
            config.update(encoder.config())
        else:
            encoder = Encoder(width=config["width"], blocks=config["blocks"])
        model = SimCLR(encoder, projection_dim=config["projection_dim"])
    if state is not None:
        model.load_state_dict(state["model"])
    # The encoder's narrowest strided convolution is the first downsample, of ``width`` input channels.
    memory_format = training_memory_format(dev, config["width"])
    model = model.to(dev).to(memory_format=memory_format).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
    epoch = int(state["epoch"]) if state else 0
    step = int(state["step"]) if state else 0
    elapsed_before = float(state["elapsed_s"]) if state else 0.0
    loss_history: list[float] = list(state["loss_history"]) if state else []

    batch = max(2, min(batch_size, n))
    steps_per_epoch = max(1, n // batch)  # drop the ragged last batch: BatchNorm and NT-Xent like full batches
    budget_s = None if minutes is None else minutes * 60.0
    budget_steps = None if epochs is None else epochs * steps_per_epoch
    amp_dtype = autocast_dtype(dev)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    generator = torch.Generator(device=dev).manual_seed(random_state * 1_000_003 + step)
    augment = BatchAugment(preset, generator=generator)
    rng = np.random.default_rng([random_state, step])
    source = torch.from_numpy(images)
    if dev.type == "cuda":
        source = source.to(dev)

    def save(finished: bool) -> None:
        payload = {
            "format": CHECKPOINT_FORMAT,
            "config": config,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "step": step,
            "elapsed_s": elapsed_before + (time.perf_counter() - start),
            "loss_history": loss_history,
            "finished": finished,
            "amp": str(amp_dtype) if amp_dtype else "float32",
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        write_bytes_atomic(path, buffer.getvalue())

    chooser = ThreadChooser(thread_candidates(dev))
    with cpu_threads(dev):
        start = time.perf_counter()
        last_save = last_report = start
        steps_done, images_seen, losses_since = 0, 0, []
        order, pos, cancelled = rng.permutation(n), 0, False
        while True:
            now = time.perf_counter()
            spent = now - start
            rate = steps_done / spent if steps_done and spent > 0 else 0.0
            fraction = _fraction(spent, steps_done, budget_s, budget_steps)
            step_s = 1.0 / rate if rate else 0.0
            # Stop before a step that would overrun the time budget.
            over_time = budget_s is not None and steps_done > 0 and spent + step_s > budget_s
            if should_stop is not None and should_stop():
                cancelled = True
                break
            if over_time or fraction >= 1.0:
                break
            if dev.type == "cpu" and torch.get_num_threads() != chooser.threads():
                torch.set_num_threads(chooser.threads())
            step_start = time.perf_counter()
            idx = torch.from_numpy(order[pos : pos + batch]).to(source.device)
            pos += batch
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(fraction, lr, warmup=0.05)
            x = _to_float(source[idx], config["view_size"])
            views = torch.cat([augment(x), augment(x)]).contiguous(memory_format=memory_format)
            with autocast(dev, amp_dtype):
                z = model(views)
            loss = nt_xent(z[:batch], z[batch:], temperature)
            if not torch.isfinite(loss):
                if amp_dtype is None:
                    raise FloatingPointError("SimCLR loss is not finite in float32; lower the learning rate")
                warnings.warn("non-finite loss under autocast; continuing in float32", RuntimeWarning, stacklevel=2)
                amp_dtype, scaler = None, None
                optimizer.zero_grad(set_to_none=True)
                continue
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            value = float(loss.detach())
            loss_history.append(value)
            losses_since.append(value)
            step += 1
            steps_done += 1
            images_seen += batch
            now = time.perf_counter()
            chooser.record(now - step_start, now)
            epoch_done = pos + batch > n
            if epoch_done:
                epoch += 1
                order, pos = rng.permutation(n), 0
            if progress is not None and (now - last_report >= _PROGRESS_EVERY_S or epoch_done):
                spent = now - start
                fraction = _fraction(spent, steps_done, budget_s, budget_steps)
                left = spent * (1 - fraction) / fraction if fraction > 0 else float("inf")
                progress(TrainProgress(epoch, step, float(np.mean(losses_since)), images_seen / spent, left, fraction))
                last_report, losses_since = now, []
            if now - last_save >= _SAVE_EVERY_S:
                save(finished=False)
                last_save = now
        save(finished=not cancelled)
        if progress is not None and steps_done:  # the final word: fraction 1 (or where cancelled)
            spent = time.perf_counter() - start
            fraction = 1.0 if not cancelled else _fraction(spent, steps_done, budget_s, budget_steps)
            left = 0.0 if not cancelled else spent * (1 - fraction) / max(fraction, 1e-9)
            progress(TrainProgress(epoch, step, loss_history[-1], images_seen / spent, left, fraction))
    return path


def _fraction(spent: float, steps_done: int, budget_s: float | None, budget_steps: int | None) -> float:
    parts = []
    if budget_s is not None:
        parts.append(spent / budget_s)
    if budget_steps is not None:
        parts.append(steps_done / budget_steps)
    return min(1.0, max(parts))


def _load_checkpoint(path: Path) -> dict[str, Any]:
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a labeler SimCLR checkpoint")
    return state


def load_checkpoint_info(path: Path) -> dict[str, Any]:
    """A checkpoint's bookkeeping (config, epoch, step, elapsed_s, loss_history, finished), without the weights."""
    state = _load_checkpoint(path)
    return {k: v for k, v in state.items() if k not in {"model", "optimizer"}}


class EncoderBatches:
    """A trained encoder as a batch function: uint8 images (B, S, S, 3) -> unit-length float32 rows (B, F).

    Holds the checkpoint's bytes rather than a path or a network, so it pickles small to another process or
    machine (a Ray worker) and builds the network there on first use.

    Parameters
    ----------
    checkpoint : bytes
        A checkpoint written by :func:`train_simclr`.
    device : "auto", "cpu" or "cuda"
    projection : bool
        The projection head's output (128-d) instead of the encoder features (see :func:`embed`).
    """

    def __init__(self, checkpoint: bytes, *, device: str = "auto", projection: bool = False) -> None:
        self.checkpoint = checkpoint
        self.device = device
        self.projection = projection
        state = torch.load(io.BytesIO(checkpoint), map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not a labeler SimCLR checkpoint")
        self._state: dict[str, Any] | None = state
        self._network: torch.nn.Module | None = None
        config = state["config"]
        self.view_size = int(config["view_size"])
        # Encoder.feature_dim, read from the config without building a network.
        features = int(config["width"]) * 2 ** (len(config["blocks"]) - 1)
        self.dim = int(config["projection_dim"]) if projection else features

    def __getstate__(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "device": self.device, "projection": self.projection,
                "view_size": self.view_size, "dim": self.dim, "_state": None, "_network": None}

    def _load(self) -> torch.nn.Module:
        state = self._state or torch.load(io.BytesIO(self.checkpoint), map_location="cpu", weights_only=True)
        config = state["config"]
        model = SimCLR(Encoder(width=config["width"], blocks=config["blocks"]),
                       projection_dim=config["projection_dim"])
        model.load_state_dict(state["model"])
        self._dev = select_device(self.device)
        self._amp = autocast_dtype(self._dev)
        network: torch.nn.Module = model if self.projection else model.encoder
        self._state = None
        return network.to(self._dev).to(memory_format=torch.channels_last).eval()

    def __call__(self, images: NDArray[np.uint8]) -> NDArray[np.float32]:
        if self._network is None:
            self._network = self._load()
        with cpu_threads(self._dev), torch.inference_mode():
            x = _to_float(torch.from_numpy(np.ascontiguousarray(images)).to(self._dev), self.view_size)
            with autocast(self._dev, self._amp):
                h = self._network(x.contiguous(memory_format=torch.channels_last))
            return F.normalize(h.float(), dim=1).cpu().numpy()


def embed(
    images: NDArray[np.uint8],
    checkpoint_path: Path,
    *,
    batch_size: int = 512,
    device: str = "auto",
    projection: bool = False,
) -> NDArray[np.float32]:
    """L2-normalised encoder features of ``images`` (the projection head is dropped, as in SimCLR).

    Parameters
    ----------
    images : ndarray of uint8, shape (N, S, S, 3)
    checkpoint_path : Path
        A checkpoint written by :func:`train_simclr`.
    batch_size : int
    device : "auto", "cpu" or "cuda"
    projection : bool
        Return the projection head's output (128-d) instead. The paper drops the head for linear probes, but
        for label spreading after short runs the projections cluster tighter (``benchmarks/results/quality.md``),
        so they are offered as a second representation for the leave-one-out choice.

    Returns
    -------
    ndarray of float32, shape (N, F), or (N, 128) with ``projection``
        Unit-length rows.
    """
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, S, S, 3), got {images.dtype} {images.shape}")
    network = EncoderBatches(Path(checkpoint_path).read_bytes(), device=device, projection=projection)
    out = np.empty((len(images), network.dim), dtype=np.float32)
    for lo in range(0, len(images), batch_size):
        out[lo : lo + batch_size] = network(images[lo : lo + batch_size])
    return out


def file_digest(path: Path, length: int = 16) -> str:
    """First ``length`` hex digits of the SHA-256 of a file's bytes."""
    return file_sha256(Path(path))[:length]


def load_or_embed(
    cache_dir: Path,
    images: NDArray[np.uint8],
    checkpoint_path: Path,
    dataset_fingerprint: str,
    *,
    batch_size: int = 512,
    device: str = "auto",
    projection: bool = False,
) -> NDArray[np.float32]:
    """:func:`embed`, cached as ``cache_dir/embeddings-{fingerprint}-{checkpoint hash}.npy``.

    (``embeddings-{fingerprint}-{checkpoint hash}-projection.npy`` for the projections.)

    Recomputed only when the dataset fingerprint or the checkpoint's bytes change.

    Returns
    -------
    ndarray of float32, shape (N, F)
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", dataset_fingerprint):
        raise ValueError(f"dataset_fingerprint must be a file-name-safe token, got {dataset_fingerprint!r}")
    suffix = "-projection" if projection else ""
    cache_path = Path(cache_dir) / f"embeddings-{dataset_fingerprint}-{file_digest(checkpoint_path)}{suffix}.npy"
    if cache_path.exists():
        cached = load_npy(cache_path)
        if cached.shape[0] == len(images):
            return cached.astype(np.float32, copy=False)
    features = embed(images, checkpoint_path, batch_size=batch_size, device=device, projection=projection)
    save_npy_atomic(cache_path, features)
    return features
