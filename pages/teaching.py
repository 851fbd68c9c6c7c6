"""Teaching: live demonstrations of why label propagation works and when it fails (toy 2-D data).

Every picture shows what its text says: the true classes beside what each method made of them, wrong points
outlined, flagged points marked. The small demos are drawn as SVG (go.Scatter), so the page holds no WebGL context.
"""

from __future__ import annotations

import streamlit as st

from labeler.core import teaching
from pages.shared import figures

st.title("Teaching")
st.caption("Small synthetic examples, recomputed live as you move the sliders. The same algorithms run on your "
           "images; teaching mode (a ground-truth CSV) shows their true accuracy on the Model page.")
TRUTH = "true classes"


@st.cache_data(show_spinner=False, max_entries=64)
def demo_of(kind: str, **params: object) -> teaching.Demo:
    """A demo, computed once per setting of its controls (every tab's demo runs on each rerun of the page)."""
    builders = {"manifold": teaching.manifold_demo, "bias": teaching.confirmation_bias_demo,
                "mismatch": teaching.mismatch_demo, "complexity": teaching.complexity_demo}
    return builders[kind](**params)  # type: ignore[operator]


def panels(demo: teaching.Demo, methods: list[str], key: str, flag: str | None = None) -> None:
    """The true classes, then each method's labels (and ``flag``'s flagged points), side by side."""
    shown = [TRUTH, *methods, *([flag] if flag else [])]
    columns = st.columns(len(shown))
    for column, name in zip(columns, shown, strict=True):
        if name == TRUTH:
            fig = figures.demo_figure(demo.X, demo.truth, demo.seeds, demo.truth, TRUTH, demo.class_names)
        elif name == flag:
            fig = figures.demo_flag_figure(demo.X, demo.flags[name], demo.seeds, demo.truth, name)
        else:
            fig = figures.demo_figure(demo.X, demo.labels[name], demo.seeds, demo.truth, name, demo.class_names)
        column.plotly_chart(fig, key=f"teach_{key}_{name}")
        if name in demo.accuracy:
            column.metric(f"accuracy on unlabeled · {name}", f"{demo.accuracy[name]:.0%}")
    st.caption(demo.note + " Diamonds are the human labels; points drawn with a black ring are labeled wrong; "
               "grey points were reached by no label.")


manifold, bias, mismatch, complexity = st.tabs(
    ["Manifold assumption", "Confirmation bias", "Distribution mismatch", "Cost of complexity"]
)

with manifold:
    st.markdown("**Why it works:** labels spread along dense regions. One label per class is enough when each "
                "class is a connected shape; a classifier trained on the same two points just draws a line.")
    shape = st.segmented_control("Data", ["moons", "blobs"], default="moons", key="teach_shape") or "moons"
    noise = st.slider("Noise", 0.0, 0.3, 0.08, 0.01, key="teach_noise")
    seed = st.number_input("Draw", 0, 99, 0, key="teach_seed_manifold")
    demo = demo_of("manifold", noise=noise, shape=shape, random_state=int(seed))
    panels(demo, ["label spreading", "supervised (logistic regression)"], "manifold")

with bias:
    st.markdown("**Why propagated labels are never seeds:** self-training promotes its most confident guesses to "
                "labels. Its confidence rises every round whether or not it is right, so early mistakes recruit "
                "their neighbours. labeler keeps only human labels as seeds and audits the rest. Compare each "
                "picture with the true classes on the left.")
    rounds = st.slider("Rounds of self-training", 1, 15, 8, key="teach_rounds")
    promote = st.slider("Labels promoted per round", 5, 100, 50, 5, key="teach_promote")
    seed = st.number_input("Draw", 0, 99, 2, key="teach_seed_bias")
    demo = demo_of("bias", rounds=rounds, promote=promote, random_state=int(seed))
    panels(demo, ["honest (human seeds only)", "self-training"], "bias")
    curve = demo.curve
    st.plotly_chart(figures.line_figure(
        curve["x"], {name: curve[name] for name in curve if name != "x"}, "round of self-training",
        "share of unlabeled points (accuracy, confidence) or of promoted seeds (wrong)",
    ), key="teach_bias_curve")

with mismatch:
    st.markdown("**When it fails quietly:** propagation gives every reachable image one of the classes it was "
                "shown. A class nobody labeled is absorbed into its neighbours (middle picture), unless it is "
                "flagged as a possible new class (red crosses on the right).")
    hidden = st.toggle("A class has no labels at all", value=True, key="teach_hidden")
    seed = st.number_input("Draw", 0, 99, 0, key="teach_seed_mismatch")
    demo = demo_of("mismatch", hidden_class=hidden, random_state=int(seed))
    panels(demo, ["label spreading"], "mismatch", flag="new-class flag")
    for name, value in demo.accuracy.items():
        st.caption(f"{name}: {value:.0%}")

with complexity:
    st.markdown("**The cost of complexity:** more neighbours (or a bigger model) is not automatically better. "
                "Measure it: labeler chooses its representation by leave-one-out accuracy on your own labels.")
    noise = st.slider("Noise", 0.0, 0.3, 0.1, 0.01, key="teach_noise_complexity")
    demo = demo_of("complexity", noise=noise)
    st.plotly_chart(figures.line_figure(demo.curve["x"], {"accuracy": demo.curve["accuracy"]},
                                        "neighbours per point (k)", "accuracy on unlabeled points"),
                    key="teach_k_curve")
    panels(demo, list(demo.labels), "complexity")
