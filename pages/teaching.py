"""Teaching: live demonstrations of why label propagation works and when it fails (toy 2-D data).

Every picture shows what its text says: the true classes beside what each method made of them, wrong points
outlined, flagged points marked. The small demos are drawn as SVG (go.Scatter), so the page holds no WebGL context.
Each tab's body is an ``st.fragment``: moving one tab's control reruns and redraws that tab only, not all four.
"""

from __future__ import annotations

import streamlit as st

from labeler.core import teaching
from pages.shared import figures

st.title("Teaching")
st.caption("Small synthetic examples, recomputed live as you move the sliders. The same algorithms run on your "
           "images; teaching mode (a ground-truth CSV) shows their true accuracy on the Model page.")
TRUTH = "true classes"
HONEST, SELF = "honest (human seeds only)", "self-training"


@st.cache_data(show_spinner=False, max_entries=64)
def demo_of(kind: str, **params: object) -> teaching.Demo:
    """A demo, computed once per setting of its controls."""
    builders = {"manifold": teaching.manifold_demo, "bias": teaching.confirmation_bias_demo,
                "mismatch": teaching.mismatch_demo, "complexity": teaching.complexity_demo}
    return builders[kind](**params)  # type: ignore[operator]


def panels(demo: teaching.Demo, methods: list[str], key: str, flag: str | None = None,
           legend: bool = False) -> None:
    """The true classes (named in a legend when ``legend``), then each method's labels (and ``flag``'s flagged
    points), side by side."""
    shown = [TRUTH, *methods, *([flag] if flag else [])]
    columns = st.columns(len(shown))
    for column, name in zip(columns, shown, strict=True):
        if name == TRUTH:
            fig = figures.demo_figure(demo.X, demo.truth, demo.seeds, demo.truth, TRUTH, demo.class_names,
                                      legend=legend)
        elif name == flag:
            fig = figures.demo_flag_figure(demo.X, demo.flags[name], demo.seeds, demo.truth, name)
        else:
            fig = figures.demo_figure(demo.X, demo.labels[name], demo.seeds, demo.truth, name, demo.class_names)
        column.plotly_chart(fig, key=f"teach_{key}_{name}")
        if name in demo.accuracy:
            column.metric(f"accuracy on unlabeled · {name}", f"{demo.accuracy[name]:.0%}")
    grey = ("in the label pictures grey points were reached by no label; in the flag picture grey points are not "
            "flagged" if flag else "grey points were reached by no label")
    st.caption(f"{demo.note} Diamonds are the human labels; points drawn with a black ring are labeled wrong; {grey}.")


@st.fragment
def manifold_tab() -> None:
    shape = st.segmented_control("Data", ["moons", "blobs"], default="moons", key="teach_shape") or "moons"
    if shape == "moons":
        st.markdown("**Why it works:** labels spread along dense regions. One label per class is enough when each "
                    "class is a connected shape; a classifier trained on the same two points just draws a line.")
    else:
        st.markdown("**When the assumption fails:** these two classes overlap in one cloud, with no sparse gap "
                    "between them. The graph then links points of both classes, labels leak across, and spreading "
                    "is no better than the line a classifier draws: the method needs classes that the "
                    "representation separates.")
    noise = st.slider("Noise", 0.0, 0.3, 0.08, 0.01, key="teach_noise")
    seed = st.number_input("Draw", 0, 99, 0, key="teach_seed_manifold")
    demo = demo_of("manifold", noise=noise, shape=shape, random_state=int(seed))
    panels(demo, ["label spreading", "supervised (logistic regression)"], "manifold")


@st.fragment
def bias_tab() -> None:
    st.markdown(
        "**Why propagated labels are never seeds:** self-training promotes its most confident guesses to seeds, "
        "round after round. A promoted label has confidence 1 and is never offered for review again, so a promoted "
        "mistake stays, unseen, and pulls its neighbours along. labeler keeps only human labels as seeds: a wrong "
        "propagated label keeps its own, lower confidence and stays in the review queue.\n\n"
        "Accuracy alone does not show it: with the default sliders, over draws 0-99, self-training ends more than 5 "
        "points less accurate in 43 draws and better in 12 (draw 0 is one of those; in draws 4 and 7 it "
        "collapses). What holds in every draw is counted under the pictures: its mistakes are hidden from review."
    )
    rounds = st.slider("Rounds of self-training", 1, 15, 6, key="teach_rounds")
    promote = st.slider("Labels promoted per round", 5, 100, 60, 5, key="teach_promote")
    seed = st.number_input("Draw", 0, 99, 0, key="teach_seed_bias")
    demo = demo_of("bias", rounds=rounds, promote=promote, random_state=int(seed))
    panels(demo, [HONEST, SELF], "bias")
    for column, name in zip(st.columns(2), [HONEST, SELF], strict=True):
        measures = demo.measures[name]
        column.metric(f"wrong labels no review will show · {name}",
                      f"{measures['wrong labels hidden from review (now seeds)']:.0f} "
                      f"of {measures['wrong labels']:.0f}")
        column.caption(
            f"Its {measures['wrong labels']:.0f} wrong labels have mean confidence "
            f"{measures['mean confidence of the wrong labels']:.2f} (0.5 is a coin toss between the two classes); "
            "those that are seeds are never offered for review."
        )
    curve = demo.curve
    st.plotly_chart(figures.line_figure(
        curve["x"], {name: curve[name] for name in curve if name != "x"}, "round of self-training (0: none yet)",
        "accuracy, confidence, share",
    ), key="teach_bias_curve")


@st.fragment
def mismatch_tab() -> None:
    hidden = st.toggle("A class has no labels at all", value=True, key="teach_hidden")
    if hidden:
        st.markdown("**When it fails quietly:** propagation gives every reachable image one of the classes it was "
                    "shown. Class C, which nobody labeled, is absorbed into A or B (middle picture), unless it is "
                    "flagged as a possible new class (red crosses on the right).")
    else:
        st.markdown("**Unrepresentative labels:** every class has three labels, all from its left edge. Nothing is "
                    "new here, so every red cross on the right is a false alarm: the price of the flag.")
    seed = st.number_input("Draw", 0, 99, 0, key="teach_seed_mismatch")
    demo = demo_of("mismatch", hidden_class=hidden, random_state=int(seed))
    panels(demo, ["label spreading"], "mismatch", flag="new-class flag", legend=True)
    if hidden:
        st.caption(f"Flagged: {demo.accuracy['share of unseen class flagged']:.0%} of class C (hits); "
                   f"{demo.accuracy['share of known classes flagged']:.0%} of classes A and B (false alarms).")
    else:
        st.caption(f"False alarms: {demo.flags['new-class flag'].sum()} of {len(demo.X)} points flagged "
                   f"({demo.accuracy['share of known classes flagged']:.0%}), every one of them in a labeled class.")


@st.fragment
def complexity_tab() -> None:
    st.markdown("**The cost of complexity:** more neighbours per point is not automatically better, and "
                "fewer is not safer. Too few neighbours leave the graph in pieces no label reaches; too many link "
                "the two moons, and labels leak across. Measure it: labeler chooses its representation by "
                "leave-one-out accuracy on your own labels.")
    noise = st.slider("Noise", 0.0, 0.3, 0.05, 0.01, key="teach_noise_complexity")
    seed = st.number_input("Draw", 0, 99, 0, key="teach_seed_complexity")
    middle = st.select_slider("Neighbours (k) in the middle picture", ["best", *teaching.COMPLEXITY_KS],
                              value="best", key="teach_k_middle",
                              help="best: the k with the highest accuracy in this draw; or any k of the curve.")
    demo = demo_of("complexity", noise=noise, random_state=int(seed),
                   middle=None if middle == "best" else int(str(middle)))
    fig = figures.line_figure(demo.curve["x"], {name: demo.curve[name] for name in demo.curve if name != "x"},
                              "neighbours per point (k), log scale", "share of unlabeled points")
    st.plotly_chart(fig.update_xaxes(type="log", tickvals=demo.curve["x"]), key="teach_k_curve")
    panels(demo, list(demo.labels), "complexity")


manifold, bias, mismatch, complexity = st.tabs(
    ["Manifold assumption", "Confirmation bias", "Distribution mismatch", "Cost of complexity"]
)
with manifold:
    manifold_tab()
with bias:
    bias_tab()
with mismatch:
    mismatch_tab()
with complexity:
    complexity_tab()
