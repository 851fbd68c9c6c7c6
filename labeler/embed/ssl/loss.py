"""NT-Xent, the normalised temperature-scaled cross-entropy loss of SimCLR (Chen et al. 2020, eq. 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """SimCLR's contrastive loss over both views.

    Every one of the ``2B`` projections is an anchor: its positive is the other view of the same image and its
    negatives are the other ``2B - 2`` projections. With ``s = cos(z_i, z_j) / temperature``,
    ``loss = mean over anchors i of -log(exp(s_ip) / sum_{k != i} exp(s_ik))``.

    Parameters
    ----------
    z1, z2 : Tensor, shape (B, D)
        Projections of the first and second view; row ``b`` of each comes from the same image. Computed in float32
        whatever their dtype, so the loss stays accurate under bf16 autocast.
    temperature : float
        Softmax temperature, > 0 (the paper's default 0.5; lower values weigh hard negatives more).

    Returns
    -------
    Tensor
        Scalar loss. Symmetric in ``z1`` and ``z2``.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both be (B, D), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.shape[0] < 2:
        raise ValueError("nt_xent needs a batch of at least 2 images (a positive and a negative)")
    batch = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = (z @ z.T) / temperature
    # An anchor is never its own negative.
    logits.fill_diagonal_(float("-inf"))
    idx = torch.arange(batch, device=z.device)
    positives = torch.cat([idx + batch, idx])
    return F.cross_entropy(logits, positives)
