"""Representations of images: the instant ones (pixels and edge histograms -> PCA), the pretrained backbone, and the
SimCLR encoder trained on the user's own images."""
