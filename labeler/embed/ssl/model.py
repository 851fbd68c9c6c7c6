"""A small-image ResNet encoder, the SimCLR projection head, and loading a pretrained starting point.

The encoder reuses torchvision's ``BasicBlock`` and the ``ResNet`` attribute names (``conv1``, ``bn1``,
``layer1`` ... ``layer4``) so that torchvision's ImageNet ResNet-18 weights load into it by name. Its stem is the
CIFAR-style one (3x3 convolution, stride 1, no max-pool): at 32 px the ImageNet stem would throw away 15/16 of the
pixels before the first block.

References: He et al. 2016, "Deep Residual Learning for Image Recognition"; Chen et al. 2020, "A Simple Framework
for Contrastive Learning of Visual Representations" (SimCLR).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

# torchvision's ResNet-18: 2 BasicBlocks per stage, widths 64-128-256-512.
RESNET18_BLOCKS = (2, 2, 2, 2)


class Encoder(nn.Module):
    """ResNet-style encoder for small images.

    Parameters
    ----------
    width : int
        Channels of the first stage; stage ``i`` has ``width * 2**i`` channels. 64 with ``blocks=(2, 2, 2, 2)``
        is torchvision's ResNet-18.
    blocks : sequence of int
        BasicBlocks per stage (one to four stages). Each stage after the first halves the resolution.

    Input ``(B, 3, H, W)`` float images scaled to [0, 1]; output ``(B, feature_dim)`` with
    ``feature_dim = width * 2**(len(blocks) - 1)`` (global average pooled, before any head).
    """

    def __init__(self, width: int = 32, blocks: Sequence[int] = (1, 1, 1, 1)) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        if not 1 <= len(blocks) <= 4 or min(blocks) < 1:
            raise ValueError(f"blocks must hold 1 to 4 positive counts, got {tuple(blocks)}")
        self.width = int(width)
        self.blocks = tuple(int(b) for b in blocks)
        self.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        in_ch = width
        for i, n_blocks in enumerate(self.blocks):
            out_ch = width * 2**i
            stage, in_ch = _make_stage(in_ch, out_ch, n_blocks, stride=1 if i == 0 else 2)
            self.add_module(f"layer{i + 1}", stage)
        self.feature_dim = in_ch
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        # Centre the [0, 1] input; BatchNorm does the rest, so no dataset statistics are needed.
        x = self.relu(self.bn1(self.conv1(x - 0.5)))
        for i in range(len(self.blocks)):
            x = getattr(self, f"layer{i + 1}")(x)
        return torch.flatten(self.avgpool(x), 1)

    def config(self) -> dict[str, Any]:
        return {"width": self.width, "blocks": list(self.blocks)}


def _make_stage(in_ch: int, out_ch: int, n_blocks: int, stride: int) -> tuple[nn.Sequential, int]:
    downsample = None
    if stride != 1 or in_ch != out_ch:
        downsample = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
        )
    layers: list[nn.Module] = [BasicBlock(in_ch, out_ch, stride=stride, downsample=downsample)]
    layers += [BasicBlock(out_ch, out_ch) for _ in range(n_blocks - 1)]
    return nn.Sequential(*layers), out_ch


class ProjectionHead(nn.Module):
    """SimCLR projection head: Linear -> ReLU -> Linear, ``(B, in_dim) -> (B, out_dim)``."""

    def __init__(self, in_dim: int, hidden_dim: int | None = None, out_dim: int = 128) -> None:
        super().__init__()
        hidden = in_dim if hidden_dim is None else hidden_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h)


class SimCLR(nn.Module):
    """Encoder + projection head. ``forward`` gives projections ``(B, out_dim)``; ``encoder`` gives features."""

    def __init__(self, encoder: Encoder, projection_dim: int = 128) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = ProjectionHead(encoder.feature_dim, out_dim=projection_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x))


def encoder_state(encoder: Encoder) -> dict[str, Any]:
    """A self-describing dict (config + weights) that :func:`load_pretrained_encoder` reads back."""
    return {"format": "labeler-encoder-v1", "config": encoder.config(), "state_dict": encoder.state_dict()}


def load_pretrained_encoder(source: str | Path = "imagenet", *, progress: bool = False) -> Encoder:
    """An encoder initialised from pretrained weights.

    Parameters
    ----------
    source : "imagenet" or path
        ``"imagenet"``: torchvision's ResNet-18 ImageNet weights (``ResNet18_Weights.IMAGENET1K_V1``), downloaded by
        torchvision on first use into its cache (``$TORCH_HOME``), so it needs the internet once. The 7x7 stem
        kernel is resampled to the 3x3 small-image stem (scaled to keep its response); the classifier is dropped.
        A path: a file written by ``torch.save`` holding an :func:`encoder_state` dict, a training checkpoint from
        :func:`~.train.train_simclr` (its encoder is taken, head dropped), or a bare torchvision ResNet-18
        state dict.
    progress : bool
        Show torchvision's download progress bar.

    Returns
    -------
    Encoder
        In train mode, on the CPU.
    """
    if str(source) == "imagenet":
        from torchvision.models import ResNet18_Weights, resnet18

        state = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1, progress=progress).state_dict()
        return _encoder_from_resnet18_state(state)
    obj = torch.load(Path(source), map_location="cpu", weights_only=True)
    if not isinstance(obj, dict):
        raise ValueError(f"{source}: not a checkpoint dict")
    if obj.get("format") == "labeler-encoder-v1":
        encoder = Encoder(**obj["config"])
        encoder.load_state_dict(obj["state_dict"])
        return encoder
    if obj.get("format") == "labeler-simclr-v1":
        cfg = obj["config"]
        encoder = Encoder(width=cfg["width"], blocks=cfg["blocks"])
        prefix = "encoder."
        encoder.load_state_dict({k[len(prefix) :]: v for k, v in obj["model"].items() if k.startswith(prefix)})
        return encoder
    if "conv1.weight" in obj and "layer4.1.conv2.weight" in obj:
        return _encoder_from_resnet18_state(obj)
    raise ValueError(f"{source}: unrecognised checkpoint format")


def _encoder_from_resnet18_state(state: dict[str, Tensor]) -> Encoder:
    encoder = Encoder(width=64, blocks=RESNET18_BLOCKS)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    stem = state["conv1.weight"].float()  # (64, 3, 7, 7)
    # Area-resample 7x7 -> 3x3; each output tap now covers (7/3)^2 input taps, so scale to keep the response.
    state["conv1.weight"] = F.adaptive_avg_pool2d(stem, 3) * (49.0 / 9.0)
    encoder.load_state_dict(state)
    return encoder
