"""Self-supervised (SimCLR) embeddings trained on the user's own images.

Compose: :class:`~.model.Encoder` + :class:`~.model.ProjectionHead` (in :class:`~.model.SimCLR`),
:class:`~.augment.BatchAugment`, :func:`~.loss.nt_xent`; :func:`~.train.train_simclr` runs them under a time budget
and :func:`~.train.embed` / :func:`~.train.load_or_embed` give the L2-normalised encoder features.
"""

from labeler.embed.ssl.augment import BatchAugment, choose_preset
from labeler.embed.ssl.device import select_device
from labeler.embed.ssl.loss import nt_xent
from labeler.embed.ssl.model import Encoder, ProjectionHead, SimCLR, load_pretrained_encoder
from labeler.embed.ssl.train import TrainProgress, embed, load_or_embed, train_simclr

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
