"""NT-Xent against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from labeler.embed.ssl.loss import nt_xent


def numpy_nt_xent(z1: np.ndarray, z2: np.ndarray, t: float) -> float:
    """Chen et al. 2020, eq. 1, written out anchor by anchor."""
    z = np.concatenate([z1, z2])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n, b = len(z), len(z1)
    total = 0.0
    for i in range(n):
        positive = (i + b) % n
        sims = np.array([z[i] @ z[k] / t for k in range(n)])
        denominator = sum(math.exp(sims[k]) for k in range(n) if k != i)
        total += -math.log(math.exp(sims[positive]) / denominator)
    return total / n


def test_identical_orthogonal_views_closed_form():
    # Views e1, e2 repeated: each anchor has cosine 1 with its positive and 0 with both negatives, so
    # loss = -log(e^{1/t} / (e^{1/t} + 2)) = log(1 + 2 e^{-1/t}).
    z = torch.eye(2)
    t = 0.5
    assert float(nt_xent(z, z.clone(), temperature=t)) == pytest.approx(math.log(1 + 2 * math.exp(-1 / t)), rel=1e-6)


def test_matches_formula_on_random_batch():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    got = float(nt_xent(torch.tensor(z1), torch.tensor(z2), temperature=0.2))
    assert got == pytest.approx(numpy_nt_xent(z1, z2, 0.2), rel=1e-5)


def test_symmetric_and_scale_invariant():
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    a = nt_xent(z1, z2, 0.1)
    assert float(nt_xent(z2, z1, 0.1)) == pytest.approx(float(a), rel=1e-6)
    assert float(nt_xent(3 * z1, 0.5 * z2, 0.1)) == pytest.approx(float(a), rel=1e-5)


def test_bf16_inputs_are_scored_in_float32():
    g = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    loss = nt_xent(z1.bfloat16(), z2.bfloat16(), 0.2)
    assert loss.dtype == torch.float32
    assert float(loss) == pytest.approx(float(nt_xent(z1, z2, 0.2)), rel=2e-2)


@pytest.mark.parametrize("temperature", [0.0, -0.1, float("nan")])
def test_rejects_non_positive_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.eye(2), torch.eye(2), temperature=temperature)


def test_rejects_mismatched_shapes_and_single_image():
    with pytest.raises(ValueError, match="z1 and z2"):
        nt_xent(torch.zeros(2, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="at least 2"):
        nt_xent(torch.ones(1, 3), torch.ones(1, 3))
