"""Plotly figures for the pages (no Streamlit here, so tests can inspect them directly).

Text from users (class names, file names) goes into hover text and legends, which plotly renders as text
only after escaping: every such string passes through :func:`html.escape` first because plotly hover templates
accept a small subset of HTML.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from numpy.typing import NDArray

UNREACHED_COLOUR = "#b0b0b0"
COLOUR_MODES = ("label", "confidence", "needs review")


def _hover(paths: Sequence[str], names: Sequence[str], sources: Sequence[str], confidence: NDArray[Any]) -> list[str]:
    return [
        f"{html.escape(p)}<br>{html.escape(n or 'no label')} ({s}, {c:.0%})"
        for p, n, s, c in zip(paths, names, sources, confidence, strict=False)
    ]


def map_figure(
    coords: NDArray[np.floating[Any]],
    label: NDArray[np.integer[Any]],
    source: NDArray[np.str_],
    confidence: NDArray[np.floating[Any]],
    paths: Sequence[str],
    class_names: Sequence[str],
    class_colours: Sequence[str],
    colour_by: str = "label",
    needs_review: NDArray[np.bool_] | None = None,
) -> go.Figure:
    """The UMAP scatter, WebGL.

    One trace per class of propagated points (opacity follows confidence), one for unreached points, and human
    labels drawn on top as larger outlined diamonds. ``customdata`` holds each point's row so a lasso selection
    maps back to images whatever trace it lands in.

    Parameters
    ----------
    coords : (N, 2) map coordinates.
    label : (N,) class index, -1 for none.  source : (N,) human / propagated / none.
    confidence : (N,) in [0, 1].  paths : N file names.
    colour_by : "label", "confidence" or "needs review" (then ``needs_review`` (N,) bool is required).
    """
    if colour_by not in COLOUR_MODES:
        raise ValueError(f"colour_by must be one of {COLOUR_MODES}, got {colour_by!r}")
    n = len(label)
    rows = np.arange(n)
    names = [class_names[i] if i >= 0 else "" for i in label]
    hover = np.array(_hover(paths, names, [str(s) for s in source], np.asarray(confidence)), dtype=object)
    confidence = np.clip(np.nan_to_num(np.asarray(confidence, dtype=float)), 0.0, 1.0)
    human = source == "human"
    fig = go.Figure()

    def add(mask: NDArray[np.bool_], name: str, marker: dict[str, Any]) -> None:
        if not mask.any():
            return
        fig.add_trace(go.Scattergl(
            x=coords[mask, 0], y=coords[mask, 1], mode="markers", name=html.escape(name),
            customdata=rows[mask].tolist(), text=hover[mask].tolist(), hovertemplate="%{text}<extra></extra>",
            marker=marker,
        ))

    if colour_by == "label":
        add((label < 0) & ~human, "unreached", {"color": UNREACHED_COLOUR, "size": 5, "opacity": 0.5})
        for k, (name, colour) in enumerate(zip(class_names, class_colours, strict=False)):
            mask = (label == k) & ~human
            # Opacity per point is not supported by Scattergl; an rgba colour carries the confidence instead.
            add(mask, name, {"color": _rgba(colour, 0.15 + 0.85 * confidence[mask]), "size": 6})
    elif colour_by == "confidence":
        add(~human, "confidence", {
            "color": confidence[~human], "colorscale": "Viridis", "cmin": 0.0, "cmax": 1.0, "size": 6,
            "colorbar": {"title": "confidence"},
        })
    else:
        flagged = np.zeros(n, dtype=bool) if needs_review is None else np.asarray(needs_review, dtype=bool)
        add(~human & ~flagged, "fine", {"color": UNREACHED_COLOUR, "size": 5, "opacity": 0.4})
        add(~human & flagged, "needs review", {"color": "#d62728", "size": 7})
    for k, (name, colour) in enumerate(zip(class_names, class_colours, strict=False)):
        add(human & (label == k), f"{name} (human)", {
            "color": colour, "size": 12, "symbol": "diamond", "line": {"color": "black", "width": 1.5},
        })
    fig.update_layout(
        height=640, margin={"l": 10, "r": 10, "t": 30, "b": 10}, dragmode="lasso",
        legend={"itemsizing": "constant"}, xaxis={"visible": False}, yaxis={"visible": False},
    )
    return fig


def _rgba(colour: str, alpha: NDArray[np.floating[Any]]) -> list[str]:
    """``#rrggbb`` with per-point alpha, as CSS rgba strings."""
    value = colour.lstrip("#")
    try:
        r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    except ValueError:
        r, g, b = 128, 128, 128
    return [f"rgba({r},{g},{b},{a:.2f})" for a in np.asarray(alpha, dtype=float)]


def line_figure(x: Sequence[float], ys: dict[str, Sequence[float]], x_title: str, y_title: str) -> go.Figure:
    """A small line chart (loss curve, learning curve), one line per entry of ``ys``."""
    fig = go.Figure()
    for name, y in ys.items():
        fig.add_trace(go.Scatter(x=list(x), y=list(y), mode="lines+markers", name=html.escape(name)))
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis_title=x_title, yaxis_title=y_title)
    return fig


def reliability_figure(
    bin_confidence: Sequence[float], observed: Sequence[float], counts: Sequence[int],
    low: Sequence[float] | None = None, high: Sequence[float] | None = None,
) -> go.Figure:
    """Mean confidence per bin against the accuracy audits observed in it, with the diagonal of perfect calibration."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                             line={"dash": "dash", "color": "grey"}))
    error_y = None
    if low is not None and high is not None:
        error_y = {"type": "data", "symmetric": False,
                   "array": [h - o for h, o in zip(high, observed, strict=False)],
                   "arrayminus": [o - lo for o, lo in zip(observed, low, strict=False)]}
    fig.add_trace(go.Scatter(
        x=list(bin_confidence), y=list(observed), mode="markers+lines", name="audited accuracy",
        text=[f"{c} audits" for c in counts], hovertemplate="confidence %{x:.2f}: %{y:.0%} (%{text})<extra></extra>",
        error_y=error_y,
    ))
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"title": "confidence", "range": [0, 1]}, yaxis={"title": "accuracy", "range": [0, 1.05]})
    return fig
