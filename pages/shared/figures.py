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
# Teaching mode only (a ground truth): propagated labels the ground truth confirms or contradicts.
TRUTH_MODE = "vs ground truth"
WRONG_COLOUR, RIGHT_COLOUR = "#d62728", "#98c9a3"


# Above this many images the hover shows class, source and confidence but not the file name: a name per point makes
# the figure megabytes larger and slower to build; a click on a point shows its name and image beside the map.
HOVER_NAMES_MAX = 20_000
# Hover and click find the point nearest the pointer wherever it is (hoverdistance -1): plotly's WebGL scatter then
# looks at every point of a trace, about 7 ms a hover at 99,999 points, and finds none from 100,000 points in one trace
# on (it searches a box around the pointer there); maps that large find the nearest point within NEAREST_PX.
NEAREST_ANYWHERE_MAX = 99_999
NEAREST_PX = 60
# Confidence bands drawn with rising opacity (WebGL traces take one opacity each, not one per point).
OPACITY_BANDS = ((0.0, 0.25, 0.25), (0.25, 0.5, 0.45), (0.5, 0.75, 0.7), (0.75, 1.01, 1.0))


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
    shown: NDArray[np.bool_] | None = None,
    review_label: str = "needs review",
    carried: Sequence[int] = (),
    truth_check: NDArray[np.integer[Any]] | None = None,
) -> go.Figure:
    """The UMAP scatter, WebGL, built from NumPy arrays only (quick at 100,000 points).

    Per class, propagated points in four confidence bands of rising opacity (fainter = less confident); one trace
    for unreached points; human labels on top as larger outlined diamonds. ``customdata`` holds each point's
    (row, confidence), so a lasso selection maps back to images whatever trace it lands in.

    Parameters
    ----------
    coords : (N, 2) map coordinates.
    label : (N,) class index, -1 for none.  source : (N,) human / propagated / none.
    confidence : (N,) in [0, 1].  paths : N file names (in the hover up to HOVER_NAMES_MAX points).
    colour_by : "label", "confidence" or "needs review" (then ``needs_review`` (N,) bool marks the images the
        review queue would show next, named ``review_label`` in the legend).
    shown : (N,) bool, optional: a filter. Points outside it are drawn small and grey, without hover, as context.
    carried : rows drawn as selected: a selection kept from an earlier drawing of the map (this chart reports no
        selection of its own for them).
    truth_check : (N,) for ``colour_by`` TRUTH_MODE (teaching mode): 1 a propagated label the ground truth
        confirms, 0 one it contradicts, -1 not checked (:func:`labeler.workflow.learning_curve.truth_check`).
    """
    if colour_by not in (*COLOUR_MODES, TRUTH_MODE):
        raise ValueError(f"colour_by must be one of {(*COLOUR_MODES, TRUTH_MODE)}, got {colour_by!r}")
    if colour_by == TRUTH_MODE and truth_check is None:
        raise ValueError(f"colour_by {TRUTH_MODE!r} needs truth_check")
    coords = np.asarray(coords, dtype=np.float32)
    label = np.asarray(label)
    n = len(label)
    rows = np.arange(n, dtype=np.int32)
    confidence = np.clip(np.nan_to_num(np.asarray(confidence, dtype=float)), 0.0, 1.0)
    names = [html.escape(name) for name in class_names]
    with_names = n <= HOVER_NAMES_MAX
    escaped_paths = np.array([html.escape(p) for p in paths], dtype=object) if with_names else None
    visible = np.ones(n, dtype=bool) if shown is None else np.asarray(shown, dtype=bool)
    human = (source == "human") & visible
    fig = go.Figure()
    if shown is not None and (~visible).any():
        fig.add_trace(go.Scattergl(
            x=coords[~visible, 0], y=coords[~visible, 1], mode="markers", name="filtered out",
            customdata=np.column_stack([rows[~visible], confidence[~visible]]).astype(np.float32), hoverinfo="skip",
            marker={"color": "rgba(200,200,200,0.35)", "size": 3},
        ))

    def add(mask: NDArray[np.bool_], name: str, marker: dict[str, Any], what: str, *, opacity: float = 1.0,
            group: str | None = None, legend: bool = True) -> None:
        """One trace of the points in ``mask``; ``what`` is the hover's middle part (class and source)."""
        index = np.flatnonzero(mask & visible)
        if not index.size:
            return
        trace = go.Scattergl(
            x=coords[index, 0], y=coords[index, 1], mode="markers", name=html.escape(name), marker=marker,
            customdata=np.column_stack([index, confidence[index]]).astype(np.float32), opacity=opacity,
            legendgroup=group or name, showlegend=legend,
            hovertemplate=("%{text}<br>" if with_names else "") + what
            + " · confidence %{customdata[1]:.0%}<extra></extra>",
        )
        if escaped_paths is not None:
            trace.text = escaped_paths[index]
        fig.add_trace(trace)

    def class_name(k: int) -> str:
        return names[k] if 0 <= k < len(names) else "no label"

    if colour_by == "label":
        add((label < 0) & ~human, "unreached", {"color": UNREACHED_COLOUR, "size": 5}, "no label (unreached)",
            opacity=0.5)
        for k, colour in enumerate(class_colours[: len(names)]):
            in_class = (label == k) & ~human
            bands = [(in_class & (confidence >= low) & (confidence < high), alpha)
                     for low, high, alpha in OPACITY_BANDS]
            bands = [(band, alpha) for band, alpha in bands if (band & visible).any()]
            for i, (band, alpha) in enumerate(bands):
                # The legend's swatch is the most opaque band drawn: the class's colour, not its faintest shade.
                add(band, class_names[k], {"color": colour, "size": 6}, f"{class_name(k)} (propagated)",
                    opacity=alpha, group=f"class-{k}", legend=i == len(bands) - 1)
    elif colour_by == "confidence":
        shade = ~human & visible
        add(~human, "propagated or unreached", {
            "color": confidence[shade], "colorscale": "Viridis", "cmin": 0.0, "cmax": 1.0, "size": 6,
            "colorbar": {"title": {"text": "confidence", "side": "right"}, "x": 1.0, "xanchor": "left"},
        }, "propagated or unreached")
    elif colour_by == TRUTH_MODE:
        check = np.asarray(truth_check)
        add(~human & (check < 0), "not checked (human, unreached or not in the ground truth)",
            {"color": UNREACHED_COLOUR, "size": 4}, "not checked", opacity=0.4)
        add(~human & (check == 1), "right (ground truth agrees)", {"color": RIGHT_COLOUR, "size": 5},
            "propagated, right", opacity=0.7)
        add(~human & (check == 0), "wrong (ground truth disagrees)", {"color": WRONG_COLOUR, "size": 8},
            "propagated, wrong")
    else:
        flagged = np.zeros(n, dtype=bool) if needs_review is None else np.asarray(needs_review, dtype=bool)
        add(~human & ~flagged, "not in the queue now", {"color": UNREACHED_COLOUR, "size": 5}, "not in the queue now",
            opacity=0.4)
        add(~human & flagged, review_label, {"color": "#d62728", "size": 8}, html.escape(review_label))
    for k, (name, colour) in enumerate(zip(class_names, class_colours, strict=False)):
        add(human & (label == k), f"{name} (human)", {
            "color": colour, "size": 12, "symbol": "diamond", "line": {"color": "black", "width": 1.5},
        }, f"{class_name(k)} (human label)")
    if len(carried):
        # Shown as plotly shows a selection (the rest dimmed), though the chart reports none: it was picked on another.
        picked = np.zeros(n, dtype=bool)
        rows_in = np.asarray(carried, dtype=np.int64)
        picked[rows_in[(rows_in >= 0) & (rows_in < n)]] = True
        for trace in fig.data:
            # A list, not an array: plotly.js decodes typed arrays only in data attributes, which this is not.
            trace.selectedpoints = np.flatnonzero(picked[np.asarray(trace.customdata)[:, 0].astype(np.int64)]).tolist()
    # The legend sits below the plot: it never covers the colour bar on the right, and ten classes' entries (two
    # rows or three) never grow into the toolbar above the plot, as they did above it.
    fig.update_layout(
        height=640, margin={"l": 10, "r": 10, "t": 40, "b": 10}, dragmode="lasso",
        hoverdistance=-1 if n <= NEAREST_ANYWHERE_MAX else NEAREST_PX,
        legend={"itemsizing": "constant", "orientation": "h", "yanchor": "top", "y": -0.01, "x": 0.0},
        xaxis={"visible": False}, yaxis={"visible": False},
    )
    return fig


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


DEMO_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")
FLAG_COLOUR = "#d62728"


def _demo_layout(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(height=330, margin={"l": 5, "r": 5, "t": 30, "b": 5}, showlegend=False,
                      title={"text": html.escape(title), "font": {"size": 14}},
                      xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"})
    return fig


def demo_figure(X: NDArray[np.floating[Any]], labels: NDArray[np.integer[Any]], seeds: NDArray[np.integer[Any]],
                truth: NDArray[np.integer[Any]], title: str, class_names: Sequence[str] = (),
                legend: bool = False) -> go.Figure:
    """A small teaching scatter (SVG, no WebGL): points coloured by ``labels`` (-1 grey), those that differ from
    ``truth`` ringed in black, seeds as large outlined diamonds in their true class's colour; ``legend`` names the
    colours below the plot.

    X : (n, 2); labels, truth : (n,) class index; seeds : indices of the labeled points.
    """
    labels = np.asarray(labels)
    truth = np.asarray(truth)
    wrong = (labels != truth) & (labels >= 0)
    fig = go.Figure()
    for k in sorted(set(labels.tolist())):
        mask = labels == k
        name = "no label" if k < 0 else (class_names[k] if k < len(class_names) else f"class {chr(65 + k)}")
        fig.add_trace(go.Scatter(
            x=X[mask, 0], y=X[mask, 1], mode="markers", name=html.escape(name),
            hovertemplate=html.escape(name) + "<extra></extra>",
            marker={"color": UNREACHED_COLOUR if k < 0 else DEMO_PALETTE[k % len(DEMO_PALETTE)], "size": 6,
                    "line": {"width": [1.5 if w else 0 for w in wrong[mask]], "color": "black"}},
        ))
    fig.add_trace(go.Scatter(
        x=X[seeds, 0], y=X[seeds, 1], mode="markers", name="human labels", hoverinfo="skip",
        marker={"color": [DEMO_PALETTE[c % len(DEMO_PALETTE)] for c in truth[seeds]], "size": 15,
                "symbol": "diamond", "line": {"width": 2, "color": "black"}},
        showlegend=False,  # its diamonds take each class's colour: a legend entry would show only the first
    ))
    fig = _demo_layout(fig, title)
    if legend:
        fig.update_layout(showlegend=True, height=370,
                          legend={"orientation": "h", "x": 0, "y": 0, "yanchor": "top", "itemclick": False})
    return fig


def demo_flag_figure(X: NDArray[np.floating[Any]], flagged: NDArray[np.bool_], seeds: NDArray[np.integer[Any]],
                     truth: NDArray[np.integer[Any]], title: str) -> go.Figure:
    """A small teaching scatter (SVG) of a flag: flagged points as red crosses, the others light grey, seeds as
    diamonds in their true class's colour."""
    flagged = np.asarray(flagged, dtype=bool)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=X[~flagged, 0], y=X[~flagged, 1], mode="markers", name="not flagged",
                             hovertemplate="not flagged<extra></extra>",
                             marker={"color": "#d0d0d0", "size": 6}))
    fig.add_trace(go.Scatter(x=X[flagged, 0], y=X[flagged, 1], mode="markers", name="flagged",
                             hovertemplate="flagged: possible new class<extra></extra>",
                             marker={"color": FLAG_COLOUR, "size": 8, "symbol": "x"}))
    fig.add_trace(go.Scatter(
        x=X[seeds, 0], y=X[seeds, 1], mode="markers", name="human labels", hoverinfo="skip",
        marker={"color": [DEMO_PALETTE[c % len(DEMO_PALETTE)] for c in np.asarray(truth)[seeds]], "size": 15,
                "symbol": "diamond", "line": {"width": 2, "color": "black"}},
    ))
    return _demo_layout(fig, f"{title}: {int(flagged.sum())} flagged")
