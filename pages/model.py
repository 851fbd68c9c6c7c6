"""Model: train the self-supervised encoder, see what representation is in use and why, and how good it is."""

from __future__ import annotations

import streamlit as st

from pages import figures, ui

ws = ui.require_images()
st.title("Model")
job_runner = ui.runner()

# ----------------------------------------------------------------------------------------------- training
st.subheader("Self-supervised training (SimCLR)")
st.caption("Trains an encoder on your own images, without labels. When it finishes, embeddings, the graph, the "
           "map and propagation follow by themselves, and the encoder is used only if it scores better.")
col_minutes, col_start, col_stop = st.columns([2, 1, 1], vertical_alignment="bottom")
minutes = col_minutes.number_input("Minutes", min_value=0.5, max_value=240.0, value=float(ws.settings.ssl_minutes),
                                   step=0.5, key="train_minutes")
training = ui.active_job(ws, "train")
resume = ui.training_info(ws) is not None
if col_start.button("Resume" if resume else "Start", key="train_start", disabled=training is not None,
                    type="primary"):
    job_runner.start_training(minutes=float(minutes))
    st.rerun()
if col_stop.button("Stop", key="train_stop", disabled=training is None):
    job_runner.cancel("train")


@st.fragment(run_every=ui.POLL_ACTIVE_S)
def training_status() -> None:
    job = ui.latest_job(ws, "train")
    if job is not None:
        if job.status in {"queued", "running"}:
            st.progress(min(max(float(job.progress), 0.0), 1.0), text=ui.plain(job.message or job.status))
        elif job.status == "failed":
            st.error(f"Training failed: {job.error}. Labels are untouched; start it again to retry.")
        else:
            st.caption(ui.plain(f"last run: {job.status} · {job.message}"))
    info = ui.training_info(ws)
    if info and info.get("loss_history"):
        losses = info["loss_history"]
        st.plotly_chart(figures.line_figure(range(1, len(losses) + 1), {"NT-Xent loss": losses}, "report", "loss"),
                        key="loss_curve")
        st.caption(f"{info.get('epoch', 0)} epochs · {info.get('elapsed_s', 0.0) / 60:.1f} minutes trained")


training_status()

# ----------------------------------------------------------------------------------------------- representation
st.subheader("Representation in use")
state = ui.state(ws)
if state is None:
    st.caption("No propagation yet: label a few images first.")
else:
    st.markdown(f"**{ui.plain(state.representation)}** — {ui.plain(state.representation_reason)}")
    if state.representation_scores:
        st.dataframe(
            [{"representation": k, "leave-one-out accuracy": v} for k, v in state.representation_scores.items()],
            hide_index=True,
        )
    diagnostics = ui.diagnostics(ws, state)
    if diagnostics:
        st.subheader("Propagation against a supervised-only baseline")
        st.caption("Leave-one-out accuracy on your human labels: label spreading over the graph versus logistic "
                   "regression on the same embeddings and labels. Propagation pays off only when the classes "
                   "follow the structure of the data (the manifold assumption).")
        col_prop, col_base = st.columns(2)
        col_prop.metric("Propagation (LOO)", ui.percent(diagnostics.get("propagation")))
        col_base.metric("Supervised only (LOO)", ui.percent(diagnostics.get("supervised")))
    teaching = ui.teaching(ws, state)
    if teaching:
        st.subheader("Teaching mode")
        st.metric("True accuracy of propagated labels", ui.percent(teaching.get("accuracy")))
        curve = teaching.get("curve")
        if curve:
            st.plotly_chart(figures.line_figure(curve["n_labels"], {"true accuracy": curve["accuracy"]},
                                                "human labels", "accuracy"), key="learning_curve")
