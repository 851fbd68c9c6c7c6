"""labeler: label a few images, let self-supervised embeddings and label spreading label the rest, honestly."""

__version__ = "0.1.0"
