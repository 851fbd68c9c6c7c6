"""The pretrained backbone's last stages fine-tuned to the workspace's photos by SimCLR: when training does it, the
checkpoint, its vectors, and what ``labeler status`` says about it.

Training a colour-photo folder always adapts a SimCLR head on cached views (``pretrained-simclr``,
:func:`labeler.workflow.backbone.train_adapted`), the form two CPU cores afford. Fine-tuning the last stages
(:mod:`labeler.embed.finetune`) costs a backward pass through them for every view, so by default
(``Settings.finetune = "auto"``) it runs only where training runs on a GPU; ``"always"`` runs it on the CPU too and
``"never"`` not at all. It then gets :data:`FINETUNE_SHARE` of the budget, after the head. Its checkpoint (the
trained stages only) is kept under its digest beside the heads; its vectors are one more candidate,
``pretrained-finetuned``, that leave-one-out on the human labels must pick to be used.

torch is imported only inside the functions that train or embed: ``labeler status`` imports this module.
"""

from __future__ import annotations

import time
from pathlib import Path

from labeler.config import FINETUNE_CHOICES, Settings
from labeler.io.artifacts import write_bytes_atomic
from labeler.progress import Progress, StopCheck, quiet
from labeler.workflow import backbone
from labeler.workflow.workspace import Workspace

FINETUNE_META = "finetuned_backbone"  # path of the checkpoint of the last finished fine-tuning
FINETUNE_SHARE = 0.6  # of a training budget, for fine-tuning (the adapted head takes the rest first)
TRAINABLE_STAGES = 2  # of EfficientNet-Lite0's 7 stages, with conv_head: 2.7M of its 3.4M feature parameters
# Epochs at most when no number is asked for: an H100 runs about 700 over pets37's 370 photos in 1.5 minutes, and
# there the NT-Xent loss kept falling while label spreading did not get better (breed@1 0.63 after 700, 0.66 after
# 44; benchmarks/results/gpu.md).
MAX_EPOCHS = 50


def finetune_wanted(settings: Settings, choice: str | None = None) -> tuple[bool, str]:
    """Whether training fine-tunes the backbone, and, when it does not, why (in words for the job's message).

    ``choice`` ("auto", "always" or "never") overrides ``settings.finetune`` for one run (the Model page's choice).
    """
    choice = choice or settings.finetune
    if choice not in FINETUNE_CHOICES:
        raise ValueError(f"finetune must be auto, always or never, got {choice!r}")
    if choice == "never":
        return False, "backbone not fine-tuned (finetune = never)"
    if choice == "always":
        return True, ""
    from labeler.embed.ssl.device import select_device

    if select_device(settings.device).type == "cuda":
        return True, ""
    return False, ("last backbone stages not fine-tuned: no GPU here (choose 'always', or `labeler train --finetune "
                   "always`, to fine-tune on the CPU, slowly)")


def finetuned_checkpoint(ws: Workspace) -> Path | None:
    """The checkpoint of the last finished fine-tuning, if any."""
    name = ws.store.get_meta(FINETUNE_META)
    path = Path(name) if name else None
    return path if path is not None and path.is_file() else None


def finetuned_path(ws: Workspace, fingerprint: str, digest: str) -> Path:
    """The (N, 1280) float32 ``.npy`` of the fine-tuned network's features of the images of ``fingerprint``."""
    return ws.settings.cache_dir / f"embedding-pretrained-finetuned-{fingerprint}-{digest}.npy"


def train_finetuned(
    ws: Workspace,
    minutes: float,
    epochs: int | None = None,
    progress: Progress = quiet,
    should_stop: StopCheck | None = None,
) -> str | None:
    """Fine-tune the backbone's last stages on the workspace's photos within ``minutes`` (or for ``epochs``), then
    compute the fine-tuned features of every image into the cache (outside the budget: one forward pass each).

    Returns the job's message, or None when the backbone is unavailable (the reason recorded). A run stopped by the
    user swaps nothing in.
    """
    from labeler.embed.backbones import BackboneUnavailable
    from labeler.embed.finetune import finetune_backbone
    from labeler.embed.ssl.device import select_device

    s = ws.settings
    records = ws.records()
    started = time.monotonic()

    def part(lo: float, hi: float) -> Progress:
        return lambda fraction, message: progress(lo + (hi - lo) * fraction, message)

    try:
        result = finetune_backbone(
            [ws.data_dir / r.path for r in records], s.cache_dir, minutes=minutes, trainable_stages=TRAINABLE_STAGES,
            max_epochs=epochs or MAX_EPOCHS, random_state=s.random_state, backbone=backbone.BACKBONE,
            device=select_device(s.device), progress=part(0.0, 0.8), should_stop=should_stop,
        )
    except BackboneUnavailable as error:
        backbone.record_problem(ws, str(error))
        return None
    if should_stop is not None and should_stop():
        return "fine-tuning stopped; nothing swapped in"
    path = backbone.head_dir(ws) / f"finetuned-{result.digest}.pt"
    write_bytes_atomic(path, result.checkpoint)
    ws.store.set_meta(FINETUNE_META, str(path))
    out = finetuned_path(ws, ws.fingerprint(records), result.digest)
    backbone.compute_features(ws, records, out, part(0.8, 1.0), finetuned=path)
    loss = f", NT-Xent {result.losses[-1]:.3f}" if result.losses else ""
    return (f"fine-tuned the last {TRAINABLE_STAGES} stages of {backbone.BACKBONE_TITLE}: {result.steps} steps, "
            f"{result.epochs:.1f} epochs, {result.views} views{loss}, {time.monotonic() - started:.0f} s: {path.name}")


def status_lines(ws: Workspace) -> list[str]:
    """``labeler status`` lines about fine-tuning: the checkpoint in use, or, once a head was adapted (a photo
    folder) without one, how to have it."""
    checkpoint = finetuned_checkpoint(ws)
    if checkpoint is not None:
        return [f"fine-tuned backbone: last {TRAINABLE_STAGES} stages of {backbone.BACKBONE_TITLE}, SimCLR on these "
                f"photos: {checkpoint}"]
    if backbone.adapted_head(ws) is not None:
        return [f"fine-tuned backbone: none (finetune = {ws.settings.finetune}: 'auto' fine-tunes where training runs "
                "on a GPU, `labeler train --finetune always` on the CPU too)"]
    return []
