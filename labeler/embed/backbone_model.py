"""The shipped backbone, alone, fine-tuned, or with a SimCLR-adapted head, as one model: its head's checkpoint and
its batch function.

A batch function maps uint8 images (B, S, S, 3), S the backbone's input size, to vectors (B, D); it is what
:mod:`labeler.embed.ray_embed` ships to Ray workers. :class:`BackboneBatches` pickles small (a backbone name and the
head's bytes; the ImageNet weights come from the package installed on the worker) and builds the network on first
use, on the worker's GPU when it has one.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from labeler.embed.adapted import AdaptedResult, Output, ProjectionHead, embed_with_head
from labeler.embed.backbones import backbone_spec, load_backbone
from labeler.embed.pretrained import embed_batch, load_photo
from labeler.embed.ssl.device import select_device
from labeler.io.decode import UnreadableImage

HEAD_FORMAT = "labeler-adapted-head-v1"


@dataclass
class HeadCheckpoint:
    """A trained :class:`ProjectionHead` and what it needs: the standardisation of backbone features, the output
    used for embedding, the backbone it sits on, and the training's bookkeeping (``info``: epochs, losses, views,
    seconds)."""

    head: ProjectionHead
    mean: NDArray[np.float32]
    scale: NDArray[np.float32]
    output: Output
    backbone: str
    info: dict[str, Any] = field(default_factory=dict)

    def embed(self, X: NDArray[np.floating]) -> NDArray[np.float32]:
        """Backbone features (N, D) -> the adapted embedding (N, d) (see ``embed_with_head``)."""
        return embed_with_head(self.head, X, self.mean, self.scale, self.output)


def head_to_bytes(result: AdaptedResult, *, backbone: str, output: Output, info: dict[str, Any]) -> bytes:
    """Serialise the head of an :func:`~labeler.embed.adapted.adapted_features` run (tensors and plain values only,
    so that it loads with ``weights_only=True``)."""
    head = result.head
    buffer = io.BytesIO()
    torch.save({
        "format": HEAD_FORMAT,
        "backbone": backbone,
        "output": output,
        "in_dim": int(len(result.mean)),
        "hidden_dim": int(head.project.in_features),
        "out_dim": int(head.project.out_features),
        "state": head.state_dict(),
        "mean": torch.from_numpy(np.asarray(result.mean, np.float32)),
        "scale": torch.from_numpy(np.asarray(result.scale, np.float32)),
        "info": {"epochs": int(result.epochs), "n_views": int(result.n_views),
                 "losses": [float(x) for x in result.losses], **info},
    }, buffer)
    return buffer.getvalue()


def read_head(data: bytes) -> HeadCheckpoint:
    """The head written by :func:`head_to_bytes`; ``ValueError`` for anything else."""
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors have no common base class
        raise ValueError(f"not a labeler adapted-head checkpoint ({error})") from error
    if not isinstance(state, dict) or state.get("format") != HEAD_FORMAT:
        raise ValueError("not a labeler adapted-head checkpoint")
    head = ProjectionHead(state["in_dim"], state["hidden_dim"], state["out_dim"])
    head.load_state_dict(state["state"])
    head.eval()
    return HeadCheckpoint(head, state["mean"].numpy(), state["scale"].numpy(), state["output"], state["backbone"],
                          dict(state["info"]))


def decode_photo(path: Path, backbone: str = "efficientnet_lite0") -> NDArray[np.uint8]:
    """One file as the backbone sees it, (S, S, 3) uint8 (for workers that decode themselves).

    Raises
    ------
    UnreadableImage
        Whatever the reason the file cannot be decoded.
    """
    spec = backbone_spec(backbone)
    try:
        return load_photo(Path(path), spec.input_size, spec.resize_size)
    except Exception as error:  # PIL raises many kinds; a worker only needs to know it failed and why
        raise UnreadableImage(f"cannot decode: {type(error).__name__}: {error}") from error


class BackboneBatches:
    """The pretrained backbone (and optionally an adapted head) as a batch function:
    uint8 images (B, S, S, 3) -> float32 (B, D).

    Parameters
    ----------
    backbone : str
        A key of :data:`labeler.embed.backbones.BACKBONES`.
    head : bytes, optional
        A checkpoint from :func:`head_to_bytes`; without it the pooled backbone features are returned.
    device : "auto", "cpu" or "cuda"
    finetuned : bytes, optional
        A checkpoint of :mod:`labeler.embed.finetune`: the backbone with its last stages fine-tuned.
    """

    def __init__(self, backbone: str = "efficientnet_lite0", head: bytes | None = None, device: str = "auto",
                 finetuned: bytes | None = None) -> None:
        self.backbone = backbone
        self.head = head
        self.device = device
        self.finetuned = finetuned
        self.input_size = backbone_spec(backbone).input_size
        self._model: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"backbone": self.backbone, "head": self.head, "device": self.device, "finetuned": self.finetuned,
                "input_size": self.input_size, "_model": None}

    def _load(self) -> Any:
        from labeler.embed.finetune import load_finetuned

        device = select_device(self.device)
        if self.finetuned is not None:
            model, spec = load_finetuned(self.finetuned, device)
        else:
            model, spec = load_backbone(self.backbone, device)
        head = read_head(self.head) if self.head is not None else None
        return model, spec, device, head

    def __call__(self, images: NDArray[np.uint8]) -> NDArray[np.float32]:
        if self._model is None:
            self._model = self._load()
        model, spec, device, head = self._model
        features = embed_batch(model, spec, device, np.ascontiguousarray(images))
        return features if head is None else head.embed(features)
