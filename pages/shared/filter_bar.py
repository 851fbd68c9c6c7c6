"""The filter controls of the Label, Map and Review pages: class, source, confidence band and file name.

The choice is remembered per page across page changes; :mod:`labeler.workflow.filters` does the matching.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import streamlit as st
from numpy.typing import NDArray

from labeler.workflow.filters import NO_LABEL, ImageFilter, matching_rows
from labeler.workflow.state import SOURCES, PipelineState
from pages.shared import remembered, text


def filter_bar(page: str, class_names: Sequence[str], *, sources: Sequence[str] = SOURCES) -> ImageFilter:
    """Draw the filter controls (in an expander) and return the filter they describe."""
    classes_options = [*class_names, NO_LABEL]
    with st.expander("Filter images", icon=":material/filter_list:"):
        col_class, col_source, col_band, col_name = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
        classes = col_class.multiselect(
            "Class", classes_options, placeholder="any class",
            **remembered.bind(f"{page}:filter_classes", [], valid=remembered.among(classes_options)),
        )
        chosen_sources = col_source.multiselect(
            "Source", list(sources), placeholder="any source",
            **remembered.bind(f"{page}:filter_sources", [], valid=remembered.among(sources)),
        )
        band = col_band.slider("Confidence", 0.0, 1.0, step=0.05,
                               **remembered.bind(f"{page}:filter_confidence", (0.0, 1.0), valid=_band))
        name = col_name.text_input("File name contains", placeholder="e.g. img_01",
                                   **remembered.bind(f"{page}:filter_name", ""))
    return ImageFilter(tuple(classes), tuple(chosen_sources), (float(band[0]), float(band[1])), name.strip())


def _band(value: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        return (0.0, 1.0)
    low, high = max(0.0, min(low, 1.0)), max(0.0, min(high, 1.0))
    return (min(low, high), max(low, high))


@st.cache_data(show_spinner=False, max_entries=16)
def _mask(_paths: Sequence[str], _state: PipelineState | None, key: tuple[object, ...],
          image_filter: ImageFilter) -> NDArray[np.bool_]:
    return matching_rows(image_filter, _paths, _state)


def rows_matching(image_filter: ImageFilter, paths: Sequence[str], state: PipelineState | None,
                  version: tuple[object, ...]) -> NDArray[np.bool_] | None:
    """The mask of ``image_filter`` over the rows, cached per ``version`` (of the images and the state); None
    when the filter keeps everything."""
    if not image_filter.active:
        return None
    return _mask(paths, state, version, image_filter)


def without(mask: NDArray[np.bool_] | None, rows: Sequence[int], n: int) -> NDArray[np.bool_] | None:
    """``mask`` (None: every row) with ``rows`` taken out; None when nothing is taken out of everything."""
    if mask is None and not rows:
        return None
    kept = np.ones(n, dtype=bool) if mask is None else mask.copy()
    kept[list(rows)] = False
    return kept


def caption(image_filter: ImageFilter, mask: NDArray[np.bool_] | None) -> None:
    """Say what the filter keeps, e.g. "Filter: class Coat · 120 of 1,000 images"."""
    if mask is None:
        return
    st.caption(f"Filter: {text.plain(image_filter.describe())} · {int(mask.sum()):,} of {len(mask):,} images")
