"""Teaching: live demonstrations of why label propagation works and when it fails (toy 2-D data)."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from labeler.core import teaching
from pages.shared import figures

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c")
NONE_COLOUR = "#b0b0b0"

st.title("Teaching")
st.caption("Small synthetic examples, recomputed live as you move the sliders. The same algorithms run on your "
           "images; teaching mode (a ground-truth CSV) shows their true accuracy on the Model page.")


def scatter(demo: teaching.Demo, method: str) -> go.Figure:
    """Points coloured by the labels ``method`` gave; seeds drawn as large outlined diamonds."""
    labels = demo.labels[method]
    colours = [PALETTE[c % len(PALETTE)] if c >= 0 else NONE_COLOUR for c in labels]
    wrong = (labels != demo.truth) & (labels >= 0)
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=demo.X[:, 0], y=demo.X[:, 1], mode="markers", name="labels",
                               marker={"color": colours, "size": 6,
                                       "line": {"width": [1.5 if w else 0 for w in wrong], "color": "black"}}))
    fig.add_trace(go.Scattergl(x=demo.X[demo.seeds, 0], y=demo.X[demo.seeds, 1], mode="markers", name="seeds",
                               marker={"color": [PALETTE[c % len(PALETTE)] for c in demo.truth[demo.seeds]],
                                       "size": 16, "symbol": "diamond", "line": {"width": 2, "color": "black"}}))
    fig.update_layout(height=330, margin={"l": 5, "r": 5, "t": 30, "b": 5}, showlegend=False,
                      title={"text": f"{method}", "font": {"size": 14}},
                      xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"})
    return fig


def side_by_side(demo: teaching.Demo, methods: list[str]) -> None:
    columns = st.columns(len(methods))
    for column, method in zip(columns, methods, strict=True):
        column.plotly_chart(scatter(demo, method), key=f"teach_{method}_{id(demo)}")
        if method in demo.accuracy:
            column.metric(f"accuracy on unlabeled · {method}", f"{demo.accuracy[method]:.0%}")
    st.caption(demo.note + " Outlined points are wrong; diamonds are the human labels.")


manifold, bias, mismatch, complexity = st.tabs(
    ["Manifold assumption", "Confirmation bias", "Distribution mismatch", "Cost of complexity"]
)

with manifold:
    st.markdown("**Why it works:** labels spread along dense regions. One label per class is enough when each "
                "class is a connected shape; a classifier trained on the same two points just draws a line.")
    shape = st.segmented_control("Data", ["moons", "blobs"], default="moons", key="teach_shape") or "moons"
    noise = st.slider("Noise", 0.0, 0.3, 0.08, 0.01, key="teach_noise")
    seed = st.number_input("Draw", 0, 99, 0, key="teach_seed_manifold")
    demo = teaching.manifold_demo(noise=noise, shape=shape, random_state=int(seed))
    side_by_side(demo, ["label spreading", "supervised (logistic regression)"])

with bias:
    st.markdown("**Why propagated labels are never seeds:** self-training promotes its most confident guesses to "
                "labels. Its confidence rises every round whether or not it is right, so early mistakes recruit "
                "their neighbours. labeler keeps only human labels as seeds and audits the rest.")
    rounds = st.slider("Rounds of self-training", 1, 15, 8, key="teach_rounds")
    promote = st.slider("Labels promoted per round", 5, 100, 50, 5, key="teach_promote")
    seed = st.number_input("Draw", 0, 99, 2, key="teach_seed_bias")
    demo = teaching.confirmation_bias_demo(rounds=rounds, promote=promote, random_state=int(seed))
    side_by_side(demo, ["honest (human seeds only)", "self-training"])
    curve = demo.curve
    st.plotly_chart(figures.line_figure(
        curve["x"], {name: curve[name] for name in curve if name != "x"}, "round", "share"
    ), key="teach_bias_curve")

with mismatch:
    st.markdown("**When it fails quietly:** propagation gives every reachable image one of the classes it was "
                "shown. A class nobody labeled is absorbed into its neighbours, unless it is flagged as a possible "
                "new class (grey-outlined points on the right).")
    hidden = st.toggle("A class has no labels at all", value=True, key="teach_hidden")
    seed = st.number_input("Draw", 0, 99, 0, key="teach_seed_mismatch")
    demo = teaching.mismatch_demo(hidden_class=hidden, random_state=int(seed))
    side_by_side(demo, ["label spreading", "new-class flag"])
    for name, value in demo.accuracy.items():
        st.caption(f"{name}: {value:.0%}")

with complexity:
    st.markdown("**The cost of complexity:** more neighbours (or a bigger model) is not automatically better. "
                "Measure it: labeler chooses its representation by leave-one-out accuracy on your own labels.")
    noise = st.slider("Noise", 0.0, 0.3, 0.1, 0.01, key="teach_noise_complexity")
    demo = teaching.complexity_demo(noise=noise)
    st.plotly_chart(figures.line_figure(demo.curve["x"], {"accuracy": demo.curve["accuracy"]},
                                        "neighbours (k)", "accuracy on unlabeled"), key="teach_k_curve")
    side_by_side(demo, list(demo.labels))
