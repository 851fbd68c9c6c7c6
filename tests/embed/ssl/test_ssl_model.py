"""Encoder, projection head, and loading a pretrained starting point (from files the tests write; no downloads)."""

from __future__ import annotations

import pytest
import torch
import torchvision

from labeler.embed.ssl import model as ssl_model
from labeler.embed.ssl.model import Encoder, ProjectionHead, SimCLR, encoder_state, load_pretrained_encoder


def test_encoder_shapes_and_small_image_stem():
    encoder = Encoder(width=4, blocks=(1, 1, 1, 1))
    assert encoder.feature_dim == 32  # width * 2**3
    assert encoder.conv1.kernel_size == (3, 3)
    assert encoder.conv1.stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in encoder.modules())
    assert encoder(torch.rand(2, 3, 16, 16)).shape == (2, 32)
    assert Encoder(width=4, blocks=(1, 2)).feature_dim == 8


def test_simclr_head_is_linear_relu_linear_to_128():
    head = ProjectionHead(32)
    kinds = [type(m) for m in head.net]
    assert kinds == [torch.nn.Linear, torch.nn.ReLU, torch.nn.Linear]
    assert head.net[2].out_features == 128
    model = SimCLR(Encoder(width=4))
    assert model(torch.rand(3, 3, 16, 16)).shape == (3, 128)


def test_rejects_bad_sizes():
    with pytest.raises(ValueError, match="width"):
        Encoder(width=0)
    with pytest.raises(ValueError, match="blocks"):
        Encoder(blocks=(1, 1, 1, 1, 1))


def test_load_from_encoder_state_file_round_trips(tmp_path):
    torch.manual_seed(0)
    encoder = Encoder(width=4, blocks=(1, 1)).eval()
    path = tmp_path / "encoder.pt"
    torch.save(encoder_state(encoder), path)
    loaded = load_pretrained_encoder(path).eval()
    assert loaded.config() == {"width": 4, "blocks": [1, 1]}
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(loaded(x), encoder(x))


def test_load_resnet18_state_dict_adapts_the_stem(tmp_path):
    # A torchvision ResNet-18 state dict (random weights standing in for ImageNet's).
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pt"
    torch.save(resnet.state_dict(), path)
    encoder = load_pretrained_encoder(path)
    assert encoder.width == 64
    assert encoder.blocks == (2, 2, 2, 2)
    assert encoder.conv1.weight.shape == (64, 3, 3, 3)
    assert torch.equal(encoder.get_parameter("layer3.1.conv2.weight"), resnet.get_parameter("layer3.1.conv2.weight"))
    # The 3x3 stem is the 7x7 one area-resampled and scaled: same total weight per filter up to the 49/9 factor.
    stem = resnet.conv1.weight
    expected = torch.nn.functional.adaptive_avg_pool2d(stem, 3) * (49 / 9)
    assert torch.allclose(encoder.conv1.weight, expected)


def test_imagenet_source_goes_through_torchvision(monkeypatch):
    calls = {}
    real_resnet18 = torchvision.models.resnet18

    def fake_resnet18(weights=None, progress=True):
        calls["weights"] = weights
        return real_resnet18(weights=None)

    monkeypatch.setattr(torchvision.models, "resnet18", fake_resnet18)
    encoder = load_pretrained_encoder("imagenet")
    assert calls["weights"] == torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    assert isinstance(encoder, ssl_model.Encoder)
    assert encoder(torch.rand(1, 3, 16, 16)).shape == (1, 512)


def test_rejects_unknown_file(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"something": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="unrecognised"):
        load_pretrained_encoder(path)
