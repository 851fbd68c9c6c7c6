"""Which images a person asked to see: by class, source, confidence band and file name.

A filter is a small frozen value (it can key a cache); :func:`matching_rows` turns it into a boolean mask over the
rows of a propagation state, vectorised so it stays quick at 100,000 images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from labeler.workflow.state import SOURCES, PipelineState

NO_LABEL = "(no label)"


@dataclass(frozen=True)
class ImageFilter:
    """What to keep. Empty ``classes`` or ``sources`` mean any; ``confidence`` is an inclusive band."""

    classes: tuple[str, ...] = ()  # class names, or NO_LABEL for images no seed reaches
    sources: tuple[str, ...] = ()  # among SOURCES: human / propagated / none
    confidence: tuple[float, float] = (0.0, 1.0)
    name: str = ""  # case-insensitive part of the file path

    def __post_init__(self) -> None:
        unknown = set(self.sources) - set(SOURCES)
        if unknown:
            raise ValueError(f"sources must be among {SOURCES}, got {sorted(unknown)}")
        low, high = self.confidence
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"confidence must be a band within [0, 1], got {self.confidence}")

    @property
    def active(self) -> bool:
        """True when the filter leaves anything out."""
        return bool(self.classes or self.sources or self.name.strip() or self.confidence != (0.0, 1.0))

    def describe(self) -> str:
        """The filter in words, e.g. ``class Coat or Bag · propagated · confidence 0.00–0.40 · name "img_1"``."""
        parts = []
        if self.classes:
            parts.append("class " + " or ".join(self.classes))
        if self.sources:
            parts.append(" or ".join(self.sources))
        if self.confidence != (0.0, 1.0):
            parts.append(f"confidence {self.confidence[0]:.2f}–{self.confidence[1]:.2f}")
        if self.name.strip():
            parts.append(f'name contains "{self.name.strip()}"')
        return " · ".join(parts) or "everything"


def matching_rows(image_filter: ImageFilter, paths: Sequence[str] | NDArray[np.str_],
                  state: PipelineState | None) -> NDArray[np.bool_]:
    """Bool (N,): the rows ``image_filter`` keeps.

    Class, source and confidence are those of ``state`` (the latest propagation, aligned with ``paths``); without
    a state every image counts as unlabeled (source ``none``, confidence 0).
    """
    n = len(paths)
    keep = np.ones(n, dtype=bool)
    if image_filter.name.strip():
        lowered = np.char.lower(np.asarray(paths, dtype=str))
        keep &= np.char.find(lowered, image_filter.name.strip().lower()) >= 0
    if state is None or len(state.label) != n:
        source = np.full(n, "none")
        label = np.full(n, -1, dtype=np.int64)
        confidence = np.zeros(n)
        class_names: list[str] = []
    else:
        source, label, class_names = state.source, state.label, state.class_names
        confidence = np.nan_to_num(np.asarray(state.confidence, dtype=float))
    if image_filter.sources:
        keep &= np.isin(source, list(image_filter.sources))
    if image_filter.classes:
        wanted = [k for k, name in enumerate(class_names) if name in image_filter.classes]
        if NO_LABEL in image_filter.classes:
            wanted.append(-1)
        keep &= np.isin(label, wanted)
    low, high = image_filter.confidence
    if (low, high) != (0.0, 1.0):
        keep &= (confidence >= low - 1e-12) & (confidence <= high + 1e-12)
    return keep
