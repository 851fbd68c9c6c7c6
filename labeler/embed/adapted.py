"""Representation ``pretrained + SimCLR``: a projection trained with NT-Xent on frozen pretrained features of views.

SimCLR (Chen et al. 2020) trains an encoder f and a projection head g so that two random augmentations of one image
map close together and apart from the other images. Fine-tuning f (EfficientNet-Lite0, about 0.4 GFLOP per 224 px
view, forward and backward) is out of reach of two CPU cores in minutes; so f stays frozen and what is learnt sits on
top of it, in the CPU-affordable form:

1. the backbone's pooled features of ``n_views`` augmented views per image (random resized crop, flip, colour
   jitter, grey) are computed once and cached on disk (:mod:`labeler.embed.views`);
2. a small MLP (standardised features -> hidden -> projection) is trained with NT-Xent on random pairs of one image's
   cached views: many epochs of a few milliseconds instead of a few expensive ones.

The embedding used for propagation (``output="concat"``) is the standardised backbone features next to the head's
hidden layer, each half L2-normalised: the adaptation adds to the pretrained geometry instead of replacing it. On
pets37 (label spreading, 1 label per class) that beat both the hidden layer alone (which, like SimCLR's own
finding, beats the projection output) and the plain pretrained features; more epochs over only 8 views per image
overfit, hence the low default ``max_epochs``. See ``benchmarks/results/pretrained.md``. Fine-tuning the last
backbone stages themselves, which a GPU affords, is :mod:`labeler.embed.finetune` (representation
``pretrained-finetuned``; on the CPU only when the user asks).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from labeler.embed.pretrained import Progress, pretrained_features
from labeler.embed.ssl.loss import nt_xent
from labeler.embed.views import StopCheck, view_features

Output = Literal["concat", "hidden", "projection"]
_VIEW_SHARE = 0.7  # of the time budget, at most, for computing views (the rest trains the head)


class ProjectionHead(nn.Module):
    """SimCLR's head on frozen features: Linear -> BatchNorm -> ReLU (the embedding) -> Linear (the projection)."""

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU())
        self.project = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.hidden(x))


@dataclass
class AdaptedResult:
    """What :func:`train_projection` and :func:`adapted_features` give back.

    ``embedding`` is (N, D + hidden_dim), (N, hidden_dim) or (N, out_dim) float32 for ``output`` "concat", "hidden"
    or "projection"; ``losses`` the mean NT-Xent of each epoch; ``mean`` and ``scale`` (D,) standardise backbone
    features before ``head``; ``ok`` (N,) is set by :func:`adapted_features`.
    """

    embedding: NDArray[np.float32]
    head: ProjectionHead
    mean: NDArray[np.float32]
    scale: NDArray[np.float32]
    losses: list[float] = field(default_factory=list)
    epochs: int = 0
    n_views: int = 0
    ok: NDArray[np.bool_] | None = None


def embed_with_head(
    head: ProjectionHead,
    X: NDArray[np.floating],
    mean: NDArray[np.float32],
    scale: NDArray[np.float32],
    output: Output = "concat",
) -> NDArray[np.float32]:
    """Backbone features (N, D) through the trained head, (N, d) float32.

    ``output``: "hidden" the hidden layer (d = hidden_dim), "projection" the head output (d = out_dim), "concat" the
    centred features and the hidden layer side by side, each L2-normalised (d = D + hidden_dim). The features are
    centred, not standardised, there (as :mod:`labeler.embed.centred` compares plain features): dividing by each
    dimension's spread lifts the many faint, noisy ones (pets37, a 2-minute head: species at one label 0.974 ->
    0.983 right, breeds at 1 / 5 labels 0.643 / 0.735 -> 0.650 / 0.744). The head itself reads standardised
    features. In blocks of 4096 rows, so a memory-mapped ``X`` is never read whole into memory at once.
    """
    if output not in ("concat", "hidden", "projection"):
        raise ValueError(f"output must be 'concat', 'hidden' or 'projection', got {output!r}")
    head.eval()
    mean_t, scale_t = torch.from_numpy(mean), torch.from_numpy(scale)
    blocks = []
    with torch.inference_mode():
        for start in range(0, len(X), 4096):
            centred = torch.from_numpy(np.array(X[start : start + 4096], np.float32)) - mean_t
            h = head.hidden(centred / scale_t)
            if output == "hidden":
                out = h
            elif output == "projection":
                out = head.project(h)
            else:
                out = torch.cat([F.normalize(centred, dim=1), F.normalize(h, dim=1)], dim=1)
            blocks.append(out.numpy())
    if not blocks:
        width = {"hidden": head.project.in_features, "projection": head.project.out_features}
        return np.zeros((0, width.get(output, len(mean) + head.project.in_features)), np.float32)
    return np.concatenate(blocks)


def train_projection(
    views: Callable[[NDArray[np.int64], NDArray[np.int64]], NDArray[np.floating]],
    n_images: int,
    n_views: int,
    X: NDArray[np.floating],
    max_epochs: int = 100,
    deadline: float = math.inf,
    temperature: float = 0.5,
    hidden_dim: int = 512,
    out_dim: int = 128,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    output: Output = "concat",
    random_state: int = 0,
    progress: Progress | None = None,
    should_stop: StopCheck | None = None,
    min_epochs: int = 20,
) -> AdaptedResult:
    """Train a :class:`ProjectionHead` with NT-Xent on pairs of cached views, then embed ``X``.

    Parameters
    ----------
    views : callable(images (B,), views (B,)) -> (B, D)
        Features of view ``views[b]`` of image ``images[b]`` (a memory map of the cache, or an array in tests).
    n_images, n_views : int
        The views of image i are 0 .. n_views - 1 (n_views >= 2).
    X : NDArray, shape (n_images, D)
        Plain (centre-crop) backbone features to embed at the end; their mean and std standardise every input.
    max_epochs : int
        Passes over the images, each pairing two distinct random views of every image.
    deadline : float
        ``time.monotonic()`` after which training stops at the end of an epoch, once ``min_epochs`` have run. The
        result is deterministic given ``random_state`` when the deadline is not what stopped it.
    min_epochs : int
        Epochs run whatever the deadline (``should_stop`` still stops at once): a head trained for one or five
        epochs embeds pets37 breeds worse than the plain features (0.58-0.60 against 0.61 at one label per breed),
        from 20 epochs on it does better (0.63-0.64). When computing the views used the whole budget, these epochs
        overrun it, by about 0.5 ms per image per epoch on two busy cores.
    temperature : float
        NT-Xent temperature, > 0; SimCLR's 0.5. On pets37, 0.1 and 0.2 drove the loss near zero (the head
        memorised the few views) and embedded worse.
    output : "concat", "hidden" or "projection"
        The embedding; see :func:`embed_with_head`.

    Returns
    -------
    AdaptedResult
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if n_views < 2 or n_images < 2:
        raise ValueError("need at least 2 images with 2 views each")
    if output not in ("concat", "hidden", "projection"):
        raise ValueError(f"output must be 'concat', 'hidden' or 'projection', got {output!r}")
    X = np.asarray(X, np.float32)
    mean = X.mean(axis=0)
    scale = X.std(axis=0) + 1e-6
    rng = np.random.default_rng(random_state)
    torch.manual_seed(random_state)
    head = ProjectionHead(X.shape[1], hidden_dim, out_dim)
    optimiser = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    mean_t, scale_t = torch.from_numpy(mean), torch.from_numpy(scale)
    batch = min(batch_size, n_images)
    losses: list[float] = []
    threads_before = torch.get_num_threads()
    # One thread: the head's matrices are small, and with other processes on the cores two threads ran 5-7x
    # slower (OpenMP barriers wait for a descheduled sibling); a fixed count also keeps the result bitwise the same.
    torch.set_num_threads(1)
    try:
        for epoch in range(max_epochs):
            head.train()
            order = rng.permutation(n_images)
            first = rng.integers(0, n_views, n_images)
            second = (first + rng.integers(1, n_views, n_images)) % n_views  # never the same view twice
            total = 0.0
            steps = 0
            for start in range(0, n_images - 1, batch):
                idx = order[start : start + batch]
                if len(idx) < 2:  # NT-Xent needs a negative; BatchNorm needs two rows
                    continue
                a = (torch.from_numpy(np.asarray(views(idx, first[idx]), np.float32)) - mean_t) / scale_t
                b = (torch.from_numpy(np.asarray(views(idx, second[idx]), np.float32)) - mean_t) / scale_t
                loss = nt_xent(head(a), head(b), temperature)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += float(loss.detach())
                steps += 1
            losses.append(total / max(steps, 1))
            if progress is not None and (epoch % 50 == 0 or epoch == max_epochs - 1):
                progress((epoch + 1) / max_epochs, f"projection epoch {epoch + 1}, NT-Xent {losses[-1]:.3f}")
            if (should_stop is not None and should_stop()) or (epoch + 1 >= min_epochs and time.monotonic() > deadline):
                break
    finally:
        torch.set_num_threads(threads_before)
    embedding = embed_with_head(head, X, mean, scale, output)
    return AdaptedResult(embedding, head, mean, scale, losses, len(losses), n_views)


def adapted_features(
    paths: Sequence[Path],
    digests: Sequence[str],
    cache_dir: Path,
    minutes: float = 3.0,
    n_views: int = 8,
    max_epochs: int = 100,
    temperature: float = 0.5,
    output: Output = "concat",
    random_state: int = 0,
    backbone: str = "efficientnet_lite0",
    device: torch.device | str | None = None,
    progress: Progress | None = None,
    should_stop: StopCheck | None = None,
) -> AdaptedResult:
    """Pretrained features adapted to this folder by SimCLR on cached views, within ``minutes``.

    Up to 70% of the budget computes views (at least two per image, whatever the budget); the rest, or until
    ``max_epochs``, trains the head (at least 20 epochs, see :func:`train_projection`). Images that fail to decode
    get a zero row and ``ok`` False.

    Returns
    -------
    AdaptedResult
        ``embedding`` (N, D + 512) float32 for the default ``output="concat"``.
    """
    start = time.monotonic()
    budget = minutes * 60

    def part(lo: float, hi: float) -> Progress:
        def report(fraction: float, message: str) -> None:
            if progress is not None:
                progress(lo + (hi - lo) * fraction, message)

        return report

    X, ok = pretrained_features(paths, digests, cache_dir, backbone, device, progress=part(0.0, 0.2))
    cache, rows = view_features(
        paths,
        digests,
        cache_dir,
        n_views,
        random_state,
        backbone,
        device,
        deadline=start + _VIEW_SHARE * budget,
        progress=part(0.2, 0.7),
        should_stop=should_stop,
    )
    ok = ok & (rows >= 0).all(axis=1)
    good = np.flatnonzero(ok)
    stored = cache.rows()

    def views(images: NDArray[np.int64], view: NDArray[np.int64]) -> NDArray[np.float32]:
        return np.asarray(stored[rows[good[images], view]])

    result = train_projection(
        views,
        len(good),
        rows.shape[1],
        np.asarray(X[good]),
        max_epochs=max_epochs,
        deadline=start + budget,
        temperature=temperature,
        output=output,
        random_state=random_state,
        progress=part(0.7, 1.0),
        should_stop=should_stop,
    )
    embedding = np.zeros((len(paths), result.embedding.shape[1]), np.float32)
    embedding[good] = result.embedding
    result.embedding, result.ok = embedding, ok
    return result
