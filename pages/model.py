"""Model: train the self-supervised encoder, see what representation is in use and why, and how good it is."""

from __future__ import annotations

import streamlit as st

from labeler.config import FINETUNE_CHOICES
from labeler.workflow import report
from pages.shared import figures, jobs_panel, model_view, session, text

ws = session.require_images("Model")
job_runner = session.runner()

# ----------------------------------------------------------------------------------------------- training
st.subheader("Self-supervised training (SimCLR)")
st.caption("Trains an encoder on your own images, without labels (for colour photos: a SimCLR head on top of the "
           "shipped ImageNet EfficientNet-Lite0, and, on a GPU or when you choose it, its last stages fine-tuned). "
           "When it finishes, embeddings, the graph, the map and propagation follow by themselves. The trained "
           "encoder is then used unless another representation labels your own labels clearly better held out "
           "(by more than one standard error of leave-one-out accuracy; smaller gaps are noise with a few dozen "
           "labels): see Representation in use below.")
col_minutes, col_finetune, col_start, col_stop, _ = st.columns([2, 2, 1, 1, 1], vertical_alignment="bottom")
minutes = col_minutes.number_input("Minutes", min_value=0.1, max_value=240.0, value=float(ws.settings.ssl_minutes),
                                   step=0.5, key="train_minutes")
finetune = col_finetune.selectbox(
    "Fine-tune the backbone", FINETUNE_CHOICES, index=FINETUNE_CHOICES.index(ws.settings.finetune),
    key="train_finetune",
    help="Colour photos: also fine-tune the last stages of the pretrained backbone with SimCLR. auto: only where "
         "training runs on a GPU; always: on the CPU too (slow: a few epochs in minutes); never.",
)
ray_address = st.text_input(
    "Ray cluster for the embeddings", value=ws.settings.ray_address, key="ray_address",
    placeholder="empty: this machine", help='Where the models embed every image after training: empty for this '
    'machine, or a Ray address ("auto", "ray://head:10001"; "local" starts one here). Needs pip install '
    '"labeler[ray]"; the data folder must be at the same path on every node.',
).strip()
training = jobs_panel.active_job(ws, "train")
resume = model_view.training_info(ws) is not None
if col_start.button("Resume" if resume else "Start", key="train_start", disabled=training is not None,
                    type="primary"):
    job_runner.start_training(minutes=float(minutes), finetune=str(finetune), ray_address=ray_address)
    st.rerun()
if col_stop.button("Stop", key="train_stop", disabled=training is None):
    job_runner.cancel("train")
if ray_address and st.button("Embed on Ray now", key="ray_embed", disabled=training is not None,
                             help="Compute the models' embeddings on the cluster without training first."):
    job_runner.start_embedding(ray_address=ray_address)
    st.rerun()


def training_status() -> None:
    job = jobs_panel.latest_job(ws, "train")
    if job is not None:
        if job.active:
            st.progress(min(max(float(job.progress), 0.0), 1.0), text=text.plain(job.message or job.status))
        elif job.status == "failed":
            st.error(f"Training failed: {text.plain(job.error)}. Labels are untouched; start it again to retry.")
        else:
            st.caption(text.plain(f"last run: {job.status} · {job.message}"))
    info = model_view.training_info(ws)
    if info and info.get("loss_history"):
        losses = info["loss_history"]  # one value per optimisation step (a batch), not per epoch
        st.plotly_chart(figures.line_figure(range(1, len(losses) + 1), {"NT-Xent loss": losses}, "training step",
                                            "NT-Xent loss (per batch)"), key="loss_curve")
        st.caption(f"{info.get('epoch', 0)} epochs · {len(losses)} steps · "
                   f"{info.get('elapsed_s', 0.0) / 60:.1f} minutes trained")


# Redrawing the loss chart every second costs CPU: poll quickly only while training runs.
st.fragment(run_every=jobs_panel.POLL_ACTIVE_S if training is not None else jobs_panel.POLL_IDLE_S)(training_status)()

# ----------------------------------------------------------------------------------------------- representation
st.subheader("Representation in use")
state = session.state(ws)
# A finished training run, or any new propagation, changes what this section says: follow it.
jobs_panel.rerun_when_saved(ws, session.state_version(ws))
if state is None:
    st.caption("No propagation yet: label a few images first.")
else:
    reason = state.representation_reason.removeprefix(f"{state.representation}: ")  # it starts with the name
    st.markdown(f"**{text.plain(state.representation)}** — {text.plain(reason)}")
    chosen_at = int(state.representation_selection.get("n", 0)) if state.representation_selection else 0
    if chosen_at and chosen_at != state.counts["human"]:
        st.caption(f"Chosen when there were {chosen_at} human labels (now {state.counts['human']}): the choice is "
                   "measured again when the labels grow or shrink by a quarter, not on every label.")
    if state.representation_scores:
        st.dataframe(report.representation_rows(state), hide_index=True)
    selection = report.selection_estimate(state)
    if selection:
        st.metric("Leave-one-out accuracy on your labels, after choosing the representation", selection["value"],
                  help=selection["detail"])
        st.caption(text.plain(selection["detail"]))
    diagnostics = None
    if model_view.loo_wanted(ws, state):
        diagnostics = model_view.cached_loo_diagnostics(ws, state)
    elif report.can_diagnose(state):
        st.button("Compare propagation with a supervised-only baseline", key="measure_loo",
                  on_click=model_view.request_loo, args=(ws, state),
                  help="Leave-one-out accuracy on your human labels (takes a while on a large collection).")
    if diagnostics:
        st.subheader("Propagation against a supervised-only baseline")
        st.caption("Leave-one-out accuracy on your human labels: label spreading over the graph versus logistic "
                   "regression on the same embeddings and labels. Propagation pays off only when the classes "
                   "follow the structure of the data (the manifold assumption).")
        col_prop, col_base = st.columns(2)
        col_prop.metric("Propagation (LOO)", text.percent(diagnostics.get("propagation")))
        col_base.metric("Supervised only (LOO)", text.percent(diagnostics.get("supervised")))
        col_prop.caption(diagnostics["propagation_detail"])
        col_base.caption(diagnostics["supervised_detail"])
    teaching = model_view.teaching(ws, state)
    if teaching:
        st.subheader("Teaching mode")
        st.caption("The ground-truth CSV is only compared with, never used as labels. The blind audit estimates the "
                   "same number without it: the two should agree within the interval.")
        col_true, col_audit, col_coverage = st.columns(3)
        col_true.metric("True accuracy of propagated labels", text.percent(teaching["accuracy"]),
                        help=f"compared on {teaching['n']} propagated images")
        estimate = teaching["estimate"]
        col_audit.metric(
            "Blind-audit estimate", text.percent(estimate["accuracy"] if estimate else None),
            help=(f"95% interval {estimate['low']:.1%}–{estimate['high']:.1%} from {estimate['n']} audits"
                  if estimate else "Audit a few images on the Review page."),
        )
        col_coverage.metric("Reached by propagation", text.percent(teaching["coverage"]))
        curve = teaching["curve"]
        if len(curve["n_labels"]) >= 2:
            lines = {"true accuracy": curve["accuracy"]}
            if any(value is not None for value in curve["audit"]):
                lines["audit estimate"] = curve["audit"]
            st.plotly_chart(figures.line_figure(curve["n_labels"], lines, "human labels", "accuracy"),
                            key="learning_curve")
        else:
            st.caption("The learning curve (true accuracy against the number of labels) grows with each "
                       "propagation.")
