"""What the Model page shows about the encoder and the leave-one-out diagnostics, cached per state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from labeler.workflow import learning_curve, report
from labeler.workflow.state import PipelineState
from labeler.workflow.training import checkpoint_dir
from labeler.workflow.workspace import Workspace


@st.cache_data(show_spinner=False, max_entries=4)
def _checkpoint_info(path: str, mtime: float) -> dict[str, Any] | None:
    from labeler.embed.ssl.train import load_checkpoint_info

    try:
        return load_checkpoint_info(Path(path))
    except (OSError, ValueError, RuntimeError):
        return None


def training_info(ws: Workspace) -> dict[str, Any] | None:
    """Bookkeeping of the encoder checkpoint (loss history, epochs, minutes), None before any training."""
    path = checkpoint_dir(ws) / "simclr.pt"
    if not path.is_file():
        return None
    return _checkpoint_info(str(path), path.stat().st_mtime)


@st.cache_data(show_spinner="Measuring leave-one-out accuracy…", max_entries=16)
def _loo_diagnostics(_ws: Workspace, _state: PipelineState, key: str) -> dict[str, Any] | None:
    return report.loo_diagnostics(_ws, _state)


# Up to this many images the leave-one-out diagnostics are measured as the page opens; beyond, on request (they
# load every representation and the graph: seconds at 100,000 images).
AUTO_DIAGNOSTICS_IMAGES = 5_000
REQUESTED = "loo_requested"


def loo_key(ws: Workspace, current: PipelineState) -> str:
    return f"{ws.workspace_dir}:{current.embedding_key}:{current.labels_version}"


def request_loo(ws: Workspace, current: PipelineState) -> None:
    st.session_state[REQUESTED] = loo_key(ws, current)


def loo_wanted(ws: Workspace, current: PipelineState) -> bool:
    """Measure now: a small collection, or this session asked for this state."""
    return len(current.image_ids) <= AUTO_DIAGNOSTICS_IMAGES or st.session_state.get(REQUESTED) == loo_key(
        ws, current)


def cached_loo_diagnostics(ws: Workspace, current: PipelineState) -> dict[str, Any] | None:
    """Leave-one-out accuracy of propagation and of the supervised-only baseline with their intervals, None when
    not measurable."""
    if not report.can_diagnose(current):
        return None
    return _loo_diagnostics(ws, current, loo_key(ws, current))


@st.cache_data(show_spinner=False, max_entries=8)
def _teaching(_ws: Workspace, _state: PipelineState, key: tuple[object, ...]) -> dict[str, Any] | None:
    return learning_curve.teaching_report(_ws, _state)


def teaching(ws: Workspace, current: PipelineState) -> dict[str, Any] | None:
    """Teaching mode: true accuracy of the propagated labels, the audit estimate and the learning curve; computed
    once per state, labels version (audits included) and ground truth file."""
    from pages.shared import session

    truth = ws.settings.ground_truth_path
    if truth is None or not truth.is_file():
        return None
    stat = truth.stat()
    key = (str(ws.workspace_dir), session.images_version(ws), session.state_version(ws), ws.store.labels_version(),
           str(truth), stat.st_mtime_ns, stat.st_size)
    return _teaching(ws, current, key)
