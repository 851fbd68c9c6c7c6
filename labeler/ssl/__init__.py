"""Self-supervised (SimCLR) embeddings trained on the user's own images.

Compose: :class:`~labeler.ssl.model.Encoder` + :class:`~labeler.ssl.model.ProjectionHead` (in
:class:`~labeler.ssl.model.SimCLR`), :class:`~labeler.ssl.augment.BatchAugment`, :func:`~labeler.ssl.loss.nt_xent`;
:func:`~labeler.ssl.train.train_simclr` runs them under a time budget and :func:`~labeler.ssl.train.embed` /
:func:`~labeler.ssl.train.load_or_embed` give the L2-normalised encoder features.
"""

from labeler.ssl.augment import BatchAugment, choose_preset
from labeler.ssl.device import select_device
from labeler.ssl.loss import nt_xent
from labeler.ssl.model import Encoder, ProjectionHead, SimCLR, load_pretrained_encoder
from labeler.ssl.train import TrainProgress, embed, load_or_embed, train_simclr

__all__ = [
    "BatchAugment",
    "Encoder",
    "ProjectionHead",
    "SimCLR",
    "TrainProgress",
    "choose_preset",
    "embed",
    "load_or_embed",
    "load_pretrained_encoder",
    "nt_xent",
    "select_device",
    "train_simclr",
]
