"""Representations of images: the instant pixel PCA and the SimCLR encoder trained on the user's own images."""
