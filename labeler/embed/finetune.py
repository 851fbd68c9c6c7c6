"""Representation ``pretrained-finetuned``: SimCLR fine-tuning of the shipped backbone's last stages.

SimCLR (Chen et al. 2020) started from the pretrained weights rather than from scratch: the last
``trainable_stages`` of the EfficientNet's ``blocks`` stages, ``conv_head`` and its BatchNorm are trained with a
projection head and NT-Xent on two augmented views per image; the stem and the earlier stages stay frozen (BatchNorm
folded into their convolutions, so they have no statistics to drift, and no gradients). The trained part keeps real
(unfolded) BatchNorm layers whose scale and shift train while their statistics stay ImageNet's (eval mode), as is
usual when fine-tuning with small batches: training and embedding then normalise alike, and no batch statistic lets
NT-Xent match two views through their batch-mates. Re-estimating the statistics on the folder's own photos instead
(AdaBN-style) ruined the embedding on pets37 (breed@1 0.60 -> 0.32 after a single step): standardising every one of
the 1280 final channels on the folder blows up the ones that hardly vary there.

Each photo is decoded once (shorter side to the backbone's input size, centre crop) into a memory-mapped uint8
file; every step draws a batch from it and makes both views on the device (random resized crop, flip, colour
jitter, grey: :class:`~labeler.embed.ssl.augment.BatchAugment`'s photo preset without blur, as for the cached views
of :mod:`labeler.embed.views`). Training stops at the time budget, after ``max_epochs``, or when ``should_stop``
says so; it runs under bf16 autocast on a GPU (and on CPUs with native bf16).

What is kept is small: a checkpoint of the trained parameters only (about 11 MB for two stages, against 19 MB for
the whole network; the frozen part comes from the weights package), named by its digest. Features of the fine-tuned
network are cached per image content digest like the plain ones, in a :class:`FeatureCache` folder whose name holds
the checkpoint's digest, so they are recomputed only for a new checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from labeler.embed.adapted import ProjectionHead
from labeler.embed.backbones import BackboneSpec, backbone_spec, fold_batchnorm, load_classifier
from labeler.embed.feature_cache import FeatureCache
from labeler.embed.pretrained import (
    Progress,
    cache_tag,
    cached_photo_features,
    decode_batches,
    default_device,
    load_photo,
    usable_cores,
)
from labeler.embed.ssl.augment import PRESETS, BatchAugment
from labeler.embed.ssl.device import autocast, autocast_dtype
from labeler.embed.ssl.loss import nt_xent

StopCheck = Callable[[], bool]
FINETUNE_FORMAT = "labeler-finetuned-backbone-v1"
# SimCLR's photo augmentations without blur: a pretrained CNN mostly ignores blur (as in labeler.embed.views), and
# the preset's sigma, stated for 32 px images, would be seven times SimCLR's at 224 px.
VIEW_AUGMENT = dataclasses.replace(PRESETS["photo"], blur_p=0.0)


class FinetuneNet(nn.Module):
    """The backbone split in two: ``trunk`` (stem and early stages, frozen, BatchNorm folded) and ``top`` (the last
    stages, ``conv_head`` with its BatchNorm, and global pooling; trained).

    Maps normalised images (B, 3, S, S) to pooled features (B, D). ``train()`` never puts the trunk, nor any
    BatchNorm, in training mode: the top's BatchNorm layers learn their affine parameters over fixed statistics.
    """

    def __init__(self, classifier: nn.Module, trainable_stages: int) -> None:
        super().__init__()
        blocks = list(classifier.get_submodule("blocks").children())
        if not 1 <= trainable_stages <= len(blocks):
            raise ValueError(f"trainable_stages must be in 1..{len(blocks)}, got {trainable_stages}")
        self.first = len(blocks) - trainable_stages
        folded = fold_batchnorm(classifier)
        folded_blocks = list(folded.get_submodule("blocks").children())
        self.trunk = nn.Sequential(folded.get_submodule("conv_stem"), folded.get_submodule("bn1"),
                                   *[folded_blocks[i] for i in range(self.first)]).eval()
        self.trunk.requires_grad_(False)
        self.top = nn.Sequential(*[blocks[i] for i in range(self.first, len(blocks))],
                                 classifier.get_submodule("conv_head"), classifier.get_submodule("bn2"),
                                 classifier.get_submodule("global_pool"))

    def train(self, mode: bool = True) -> FinetuneNet:
        super().train(mode)
        self.trunk.eval()
        for module in self.top.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            h = self.trunk(x)
        out: torch.Tensor = self.top(h)
        return out

    def trained_state(self) -> dict[str, torch.Tensor]:
        """The trained parameters and BatchNorm buffers, under the classifier's own (timm) names."""
        names = [f"blocks.{i}" for i in range(self.first, self.first + len(self.top) - 3)] + ["conv_head", "bn2"]
        return {f"{names[int(key.split('.', 1)[0])]}.{key.split('.', 1)[1]}": value.detach().cpu().clone()
                for key, value in self.top.state_dict().items() if not key.startswith(f"{len(names)}.")}


@dataclass
class FinetuneResult:
    """What :func:`finetune_backbone` gives back: ``checkpoint`` (bytes, see :func:`read_finetuned`) and its
    ``digest`` (16 hex digits), the network, the mean NT-Xent of each logged step window (``losses``), ``steps``,
    ``views`` seen, ``seconds`` of training (decoding apart), and ``ok`` (N,): False where a file did not decode."""

    checkpoint: bytes
    digest: str
    net: FinetuneNet
    losses: list[float] = field(default_factory=list)
    steps: int = 0
    epochs: float = 0.0
    views: int = 0
    seconds: float = 0.0
    decode_seconds: float = 0.0
    ok: NDArray[np.bool_] | None = None


@contextlib.contextmanager
def decoded_photos(
    paths: Sequence[Path], spec: BackboneSpec, folder: Path, workers: int | None = None,
    progress: Progress | None = None, should_stop: StopCheck | None = None,
) -> Iterator[tuple[NDArray[np.uint8], NDArray[np.bool_]]]:
    """Every photo decoded once, (N, S, S, 3) uint8 with S the backbone's input size, in a memory-mapped temporary
    file in ``folder`` (deleted on exit; its ``.tmp`` name lets garbage collection remove one a crash left), and
    ``ok`` (N,). Stops decoding early when ``should_stop()`` says so (the rest stay not ok)."""
    size = spec.input_size
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=".finetune-decoded-", suffix=".tmp")
    os.close(fd)
    try:
        images = np.lib.format.open_memmap(name, mode="w+", dtype=np.uint8, shape=(len(paths), size, size, 3))
        ok = np.zeros(len(paths), bool)
        batch = 64
        done = 0
        batches = decode_batches(list(paths), lambda p: load_photo(Path(p), size, spec.resize_size),
                                 (size, size, 3), batch, workers or usable_cores())
        for images_batch, good in batches:
            images[done : done + len(good)] = images_batch
            ok[done : done + len(good)] = good
            done += len(good)
            if progress is not None:
                progress(done / max(len(paths), 1), f"decoding photos: {done}/{len(paths)}")
            if should_stop is not None and should_stop():
                break
        yield images, ok
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _to_device(images: NDArray[np.uint8], device: torch.device) -> torch.Tensor:
    """uint8 (B, S, S, 3) -> float (B, 3, S, S) in [0, 1] on ``device``, channels-last."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device, non_blocking=True)
    return x.permute(0, 3, 1, 2).float().div_(255)


def _normalise(x: torch.Tensor, spec: BackboneSpec) -> torch.Tensor:
    mean = torch.tensor(spec.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def finetune_backbone(
    paths: Sequence[Path],
    cache_dir: Path,
    minutes: float = 5.0,
    trainable_stages: int = 2,
    max_epochs: int | None = None,
    batch_size: int = 64,
    temperature: float = 0.5,
    lr: float = 2e-5,
    head_lr: float = 1e-3,
    warmup_steps: int = 50,
    max_images: int = 10_000,
    random_state: int = 0,
    backbone: str = "efficientnet_lite0",
    device: torch.device | str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    should_stop: StopCheck | None = None,
) -> FinetuneResult:
    """Fine-tune the last ``trainable_stages`` of the pretrained backbone with SimCLR on ``paths``, within ``minutes``.

    Parameters
    ----------
    paths : sequence of Path, length N
    cache_dir : Path
        Where the decoded photos' temporary file goes.
    minutes : float
        Time budget, decoding included; at least one step always runs.
    trainable_stages : int
        How many of the last ``blocks`` stages train (with ``conv_head``); EfficientNet-Lite0 has 7.
    max_epochs : int, optional
        Stop after this many passes over the images (the budget still applies).
    batch_size : int
        Images per step (2 * batch_size views); at most the number of decoded images.
    temperature : float
        NT-Xent temperature, > 0; SimCLR's 0.5 (as :mod:`labeler.embed.adapted` found best on pets37).
    lr, head_lr : float
        AdamW learning rates of the backbone's trained stages (warmed up linearly over ``warmup_steps``, so that the
        random projection head's first gradients do not undo the pretraining) and of the projection head. On pets37
        (H100, ``benchmarks/results/gpu.md``) 1e-4 moved the features away from what labels follow (breed@1 0.56
        after 1.5 minutes, against 0.64 pretrained); 2e-5 kept them about where they were.
    max_images : int
        A larger folder trains on a random subset of this many (the decoded file is 150 kB per image at 224 px).
    device : torch.device or str, optional
        CUDA when available, else the CPU.

    Returns
    -------
    FinetuneResult

    Raises
    ------
    labeler.embed.backbones.BackboneUnavailable
        The weights cannot be loaded.
    ValueError
        Fewer than two photos decode.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    started = time.monotonic()
    deadline = started + minutes * 60
    device = torch.device(device) if device is not None else default_device()
    classifier, spec = load_classifier(backbone)
    classifier.reset_classifier(0)  # type: ignore[operator]  # timm API: keeps the global pool, drops the fc
    torch.manual_seed(random_state)
    net = FinetuneNet(classifier, trainable_stages).to(device).to(memory_format=torch.channels_last)
    head = ProjectionHead(spec.feature_dim).to(device)
    rng = np.random.default_rng(random_state)
    chosen = np.sort(rng.choice(len(paths), max_images, replace=False)) if len(paths) > max_images else None
    subset = [paths[i] for i in chosen] if chosen is not None else list(paths)

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    with decoded_photos(subset, spec, Path(cache_dir), workers, lambda f, m: report(0.1 * f, m),
                        should_stop) as (images, decoded):
        decode_seconds = time.monotonic() - started
        good = np.flatnonzero(decoded)
        if len(good) < 2:
            raise ValueError("fine-tuning needs at least two photos that decode")
        batch = min(batch_size, len(good))
        optimiser = torch.optim.AdamW([
            {"params": [p for p in net.top.parameters() if p.requires_grad], "lr": lr},
            {"params": head.parameters(), "lr": head_lr},
        ], weight_decay=1e-5)
        generator = torch.Generator(device=device).manual_seed(random_state)
        augment = BatchAugment(VIEW_AUGMENT, generator=generator)
        dtype = autocast_dtype(device)
        losses: list[float] = []
        window: list[float] = []
        steps_per_epoch = max(1, len(good) // batch)
        limit = math.inf if max_epochs is None else max_epochs * steps_per_epoch
        order = rng.permutation(good)
        cursor = step = 0
        train_start = time.monotonic()
        net.train()
        head.train()
        while step < limit:
            if cursor + batch > len(order):
                order, cursor = rng.permutation(good), 0
            idx = np.sort(order[cursor : cursor + batch])  # sorted: the memory map is read in order
            cursor += batch
            warm = min(1.0, (step + 1) / max(warmup_steps, 1))
            optimiser.param_groups[0]["lr"] = lr * warm
            x = _to_device(images[idx], device)
            views = _normalise(torch.cat([augment(x), augment(x)]), spec)
            with autocast(device, dtype):
                z = head(net(views))
            loss = nt_xent(z[:batch], z[batch:], temperature)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            step += 1
            window.append(float(loss.detach()))
            if len(window) == 10 or step == limit:
                losses.append(float(np.mean(window)))
                window = []
                elapsed = time.monotonic() - started
                report(0.1 + 0.9 * min(1.0, max(elapsed / (minutes * 60), step / limit)),
                       f"fine-tuning step {step}, epoch {step / steps_per_epoch:.1f}, NT-Xent {losses[-1]:.3f}")
            if time.monotonic() > deadline or (should_stop is not None and should_stop()):
                break
        if window:
            losses.append(float(np.mean(window)))
        train_seconds = time.monotonic() - train_start
    ok = np.zeros(len(paths), bool)
    ok[chosen[decoded] if chosen is not None else np.flatnonzero(decoded)] = True
    info = {"steps": step, "epochs": step / steps_per_epoch, "views": 2 * batch * step, "seconds": train_seconds,
            "images": int(len(good)), "losses": losses, "minutes": float(minutes), "batch_size": batch,
            "temperature": float(temperature), "lr": float(lr), "device": device.type}
    data = finetuned_to_bytes(net, backbone, trainable_stages, info)
    return FinetuneResult(data, checkpoint_digest(data), net.eval(), losses, step, step / steps_per_epoch,
                          2 * batch * step, train_seconds, decode_seconds, ok)


def checkpoint_digest(data: bytes) -> str:
    """16 hex digits of the SHA-256 of a checkpoint's bytes: its name, and part of its features' cache tag."""
    return hashlib.sha256(data).hexdigest()[:16]


def finetuned_to_bytes(net: FinetuneNet, backbone: str, trainable_stages: int, info: dict[str, Any]) -> bytes:
    """The trained part of ``net`` (tensors and plain values only: loads with ``weights_only=True``)."""
    buffer = io.BytesIO()
    torch.save({"format": FINETUNE_FORMAT, "backbone": backbone, "trainable_stages": int(trainable_stages),
                "state": net.trained_state(), "info": info}, buffer)
    return buffer.getvalue()


def read_finetuned(data: bytes) -> dict[str, Any]:
    """The checkpoint written by :func:`finetuned_to_bytes` (``backbone``, ``trainable_stages``, ``state``,
    ``info``); ``ValueError`` for anything else."""
    try:
        checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors have no common base class
        raise ValueError(f"not a labeler fine-tuned backbone checkpoint ({error})") from error
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FINETUNE_FORMAT:
        raise ValueError("not a labeler fine-tuned backbone checkpoint")
    return checkpoint


def load_finetuned(data: bytes, device: torch.device | str | None = None) -> tuple[nn.Module, BackboneSpec]:
    """The fine-tuned feature extractor, as :func:`~labeler.embed.backbones.load_backbone` gives the plain one
    (eval mode, BatchNorm folded, channels-last, no gradients; (B, 3, S, S) -> (B, D)).

    The pretrained weights come from the package; the checkpoint replaces the trained stages, and must name
    nothing else (``ValueError`` otherwise).
    """
    checkpoint = read_finetuned(data)
    classifier, spec = load_classifier(checkpoint["backbone"])
    classifier.reset_classifier(0)  # type: ignore[operator]
    stages = len(list(classifier.get_submodule("blocks").children()))
    prefixes = tuple(f"blocks.{i}." for i in range(stages - checkpoint["trainable_stages"], stages))
    expected = {key for key in classifier.state_dict() if key.startswith((*prefixes, "conv_head.", "bn2."))}
    if set(checkpoint["state"]) != expected:  # a layer left random, or one it does not have
        raise ValueError(f"the fine-tuned checkpoint does not fit {checkpoint['backbone']}")
    classifier.load_state_dict(checkpoint["state"], strict=False)
    model = fold_batchnorm(classifier).to(torch.device(device or "cpu")).to(memory_format=torch.channels_last)
    model.requires_grad_(False)
    return model, spec


def finetuned_tag(spec: BackboneSpec, digest: str) -> str:
    """The feature cache folder of a checkpoint: starts ``finetuned-<digest>-`` (garbage collection reads it)."""
    return cache_tag(spec, f"finetuned-{digest}", digest)


def finetuned_features(
    paths: Sequence[Path],
    digests: Sequence[str],
    cache_dir: Path,
    checkpoint: bytes,
    device: torch.device | str | None = None,
    batch_size: int = 32,
    chunk_size: int = 512,
    workers: int | None = None,
    progress: Progress | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Pooled features (N, D) of the fine-tuned network and ``ok`` (N,), as
    :func:`~labeler.embed.pretrained.pretrained_features` gives the plain ones (same decoding, cache per content
    digest), in a cache folder of this checkpoint."""
    spec = backbone_spec(read_finetuned(checkpoint)["backbone"])
    cache = FeatureCache(Path(cache_dir) / finetuned_tag(spec, checkpoint_digest(checkpoint)), spec.feature_dim)
    return cached_photo_features(paths, digests, cache, spec, lambda target: load_finetuned(checkpoint, target)[0],
                                 device, batch_size, chunk_size, workers, progress, label="fine-tuned features")
