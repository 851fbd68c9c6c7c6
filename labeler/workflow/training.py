"""SimCLR training of the workspace's encoder, and the checkpoint propagation uses.

Colour photos adapt the shipped pretrained backbone instead (:func:`labeler.workflow.backbone.train_adapted`, and,
on a GPU or when asked, :func:`labeler.workflow.finetuning.train_finetuned` after it); small
or grey images, or photos when the backbone is unavailable, train the small encoder from scratch (small folders of
them, in a budget of minutes, get the backbone's features too, as one more candidate).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from labeler.io.artifacts import (
    write_bytes_atomic,
)
from labeler.progress import Progress, StopCheck, quiet
from labeler.workflow import backbone, finetuning
from labeler.workflow.workspace import Workspace


def checkpoint_dir(ws: Workspace) -> Path:
    return ws.workspace_dir / "ssl"


def trained_checkpoint(ws: Workspace) -> Path | None:
    """The encoder checkpoint of the last finished training run, if any."""
    name = ws.store.get_meta("ssl_checkpoint")
    if not name:
        return None
    path = Path(name)
    return path if path.is_file() else None


def train(
    ws: Workspace,
    minutes: float | None = None,
    epochs: int | None = None,
    progress: Progress | None = None,
    should_stop: StopCheck | None = None,
    finetune: str | None = None,
) -> str:
    """Train (or resume) the SimCLR encoder on the workspace's images, then make it available to propagation.

    For colour photos, adapt the pretrained backbone within the same budget instead, and fine-tune its last stages
    too where ``finetune`` (default ``settings.finetune``: "auto", "always" or "never") says so.
    """
    from labeler.embed.ssl import train as ssl_train

    progress = progress or quiet
    fallback = ""
    if backbone.photo_folder(ws):
        adapted = _train_photos(ws, minutes, epochs, progress, should_stop, finetune)
        if adapted is not None:
            return adapted
        fallback = f"pretrained backbone unavailable ({backbone.backbone_problem(ws)}); from-scratch encoder: "
        progress(0.0, fallback)
    elif minutes is not None and epochs is None:  # a budget to share (a run of so many epochs has none)
        started = time.monotonic()
        fallback = backbone.features_when_cheap(ws, minutes, lambda f, m: progress(0.0, m), should_stop)
        minutes = max(minutes - (time.monotonic() - started) / 60, 0.05)
    settings = ws.settings
    images = ws.training_images()
    if len(images) < 2:
        raise ValueError("training needs at least two readable images")

    def report(p: Any) -> None:
        progress(
            float(p.fraction),
            f"epoch {p.epoch} · loss {p.loss:.3f} · {p.images_per_s:.0f} images/s · {p.seconds_left:.0f} s left",
        )

    checkpoint = ssl_train.train_simclr(
        images, checkpoint_dir(ws),
        minutes=minutes if epochs is None else None, epochs=epochs,
        width=settings.ssl_width, batch_size=settings.ssl_batch_size, temperature=settings.ssl_temperature,
        preset=settings.ssl_preset, device=settings.device, random_state=settings.random_state,
        progress=report, should_stop=should_stop,
    )
    if should_stop is not None and should_stop():
        # Stopped by the user: keep the checkpoint for "Resume", but do not swap a half-trained encoder in.
        return f"{fallback}training stopped; resume continues from {checkpoint.name}"
    # Freeze a copy under its digest: training may resume and rewrite the live checkpoint, and embeddings,
    # graph and map must stay keyed to the encoder that produced them.
    frozen = checkpoint_dir(ws) / f"encoder-{ssl_train.file_digest(checkpoint)}.pt"
    if not frozen.exists():
        write_bytes_atomic(frozen, checkpoint.read_bytes())
    ws.store.set_meta("ssl_checkpoint", str(frozen))
    info = ssl_train.load_checkpoint_info(frozen)
    return f"{fallback}encoder trained for {info.get('epoch', '?')} epochs: {frozen.name}"


def _train_photos(
    ws: Workspace, minutes: float | None, epochs: int | None, progress: Progress, should_stop: StopCheck | None,
    finetune: str | None,
) -> str | None:
    """The head adapted on cached views, then, when wanted, the last stages fine-tuned in the rest of the budget
    (:data:`~labeler.workflow.finetuning.FINETUNE_SHARE` of it). None when the backbone is unavailable."""
    wanted, why_not = finetuning.finetune_wanted(ws.settings, finetune)
    if not wanted:
        adapted = backbone.train_adapted(ws, minutes, epochs, progress, should_stop)
        return None if adapted is None else f"{adapted}; {why_not}"
    budget = minutes if minutes is not None else (math.inf if epochs else ws.settings.ssl_minutes)
    started = time.monotonic()
    share = finetuning.FINETUNE_SHARE
    adapted = backbone.train_adapted(ws, budget * (1 - share) if math.isfinite(budget) else None, epochs,
                                     lambda f, m: progress((1 - share) * f, m), should_stop)
    if adapted is None or (should_stop is not None and should_stop()):
        return adapted
    left = budget - (time.monotonic() - started) / 60
    tuned = finetuning.train_finetuned(ws, max(left, 0.05), epochs, lambda f, m: progress(1 - share + share * f, m),
                                       should_stop)
    return adapted if tuned is None else f"{adapted}; {tuned}"
