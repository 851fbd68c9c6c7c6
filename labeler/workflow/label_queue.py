"""What to show the person next: the Label page's queue, the review queue, the next blind audit.

Rows index ``Workspace.records()`` (row i is image i). The choices themselves come from :mod:`labeler.core.review` and
:mod:`labeler.core.audit`; this module applies them to a workspace: it leaves out images that already have a human
label, says why each image was picked, and keeps a queue stable while the person works through it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence

import numpy as np

from labeler.core import audit, review
from labeler.core.propagate import PropagationResult, Source
from labeler.workflow.representations import graph_for_state, representations
from labeler.workflow.state import PipelineState
from labeler.workflow.workspace import Workspace

STRATEGIES = ("Suggested", "Random", "In order")
# Before the first labels, the cold start proposes at least this many typical images (k-means centres).
MIN_COLD_START = 12
ColdStart = Callable[[Workspace, int], list[int]]

_SOURCE_CODES = {"human": Source.HUMAN, "propagated": Source.PROPAGATED, "none": Source.NONE}


def as_result(state: PipelineState) -> PropagationResult:
    """The saved propagation as the :class:`PropagationResult` the functions of :mod:`labeler.core.review` take."""
    return PropagationResult(
        label=state.label,
        source=np.array([_SOURCE_CODES[str(s)] for s in state.source], dtype=np.int8),
        confidence=state.confidence, margin=state.margin, entropy=state.entropy, stability=state.stability,
        proba=state.proba, scores=state.scores,
    )


def cold_start_rows(ws: Workspace, n: int) -> list[int]:
    """``n`` typical, diverse rows to label first: k-means centres on the best representation available."""
    reps = representations(ws)
    X = reps["simclr"].X if "simclr" in reps else reps["pixels-pca"].X
    return [int(i) for i in review.cold_start(X, n, random_state=ws.settings.random_state)]


def unlabeled_rows(ws: Workspace) -> list[int]:
    """Rows without a human label, in file order."""
    labeled = set(ws.store.human_labels())
    return [i for i, r in enumerate(ws.records()) if r.id not in labeled]


def candidate_rows(
    ws: Workspace,
    state: PipelineState | None,
    strategy: str,
    n: int,
    exclude: Collection[int] = (),
    *,
    cold_start: ColdStart = cold_start_rows,
) -> list[tuple[int, str]]:
    """Up to ``n`` (row, why it was picked) among images without a human label and not in ``exclude``.

    Suggested: before any label (or propagation), typical and diverse images (``cold_start``, which the app
    replaces by a cached version); then the review queue of :func:`labeler.core.review.review_queue` (least certain
    first, spread over the graph, a share of random ones). Random: uniform, reseeded by each label change.
    In order: file order.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    labeled = set(ws.store.human_labels())
    records = ws.records()
    skip = set(exclude)
    free = [i for i, r in enumerate(records) if r.id not in labeled and i not in skip]
    if not free or n <= 0:
        return []
    if strategy == "Suggested":
        if state is None or not labeled:
            free_set = set(free)
            chosen = [(row, "typical of a cluster") for row in cold_start(ws, max(n, MIN_COLD_START))
                      if row in free_set]
            if chosen:
                return chosen[:n]
        if state is not None and len(state.image_ids) == len(records):
            taken = np.array(sorted(set(range(len(records))) - set(free)), dtype=np.int64)
            try:
                W = graph_for_state(ws, state)
            except LookupError:  # the representation changed since: rank without the diversity rule
                W = None
            items = review.review_queue(None, as_result(state), n_items=n, exclude=taken, W=W,
                                        random_state=ws.store.labels_version())
            if items:
                return [(item.index, item.rule) for item in items]
    if strategy in {"Suggested", "Random"}:
        picker = random.Random(ws.store.labels_version())
        return [(row, "random") for row in picker.sample(free, min(n, len(free)))]
    return [(row, "") for row in free[:n]]


def refill(
    ws: Workspace,
    state: PipelineState | None,
    strategy: str,
    n: int,
    shown: Sequence[int],
    skipped: Collection[int] = (),
    *,
    cold_start: ColdStart = cold_start_rows,
) -> tuple[list[int], dict[int, str], bool]:
    """The Label page's queue after a change: ``shown`` rows still unlabeled and not skipped keep their order,
    and new candidates are appended once half or fewer remain (so the grid does not reshuffle on every click).

    Returns
    -------
    rows : the queue, at most ``n`` rows
    reasons : {row: why it was picked} for the rows added now
    skips_reset : True when only skipped images were left, so they are offered again (forget the skips)
    """
    free = set(unlabeled_rows(ws))
    skip = set(skipped)
    rows = [r for r in shown if r in free and r not in skip]
    reasons: dict[int, str] = {}
    reset = False
    if len(rows) <= n // 2:
        fresh = candidate_rows(ws, state, strategy, n - len(rows), set(rows) | skip, cold_start=cold_start)
        if not fresh and skip:  # everything left was skipped once: show those again
            reset = True
            fresh = candidate_rows(ws, state, strategy, n - len(rows), set(rows), cold_start=cold_start)
        rows += [row for row, _ in fresh]
        reasons = dict(fresh)
    return rows, reasons, reset


def review_rows(
    ws: Workspace,
    state: PipelineState,
    n: int,
    first: Sequence[int] = (),
    *,
    cold_start: ColdStart = cold_start_rows,
) -> list[tuple[int, str]]:
    """(row, why) for the review page: rows the person sent from the map first, then the review queue."""
    free = set(unlabeled_rows(ws))
    sent = [(r, "sent from the map") for r in dict.fromkeys(first) if r in free]
    taken = {row for row, _ in sent} | (set(range(len(ws.records()))) - free)
    return [*sent, *candidate_rows(ws, state, "Suggested", n - len(sent), taken, cold_start=cold_start)][:n]


def new_class_rows(state: PipelineState, n: int) -> list[int]:
    """Up to ``n`` rows flagged as a possible new class (far from every seed), human labels left out."""
    return [i for i, flagged in enumerate(state.new_class) if flagged and state.source[i] != "human"][:n]


def next_audit_row(ws: Workspace, state: PipelineState, current: int | None = None) -> int | None:
    """The image to audit blind: ``current`` while it is still eligible, else a uniform draw among propagated
    images that are neither audited nor human-labeled. None when none is left.

    The draw is seeded by the number of audits so far, so a rerun shows the same image until it is answered.
    """
    audited = {a["image_id"] for a in ws.store.audits()}
    labeled = set(ws.store.human_labels())
    records = ws.records()

    def eligible(row: int) -> bool:
        if row >= len(records) or row >= len(state.source):
            return False
        record_id = records[row].id
        return state.source[row] == "propagated" and record_id not in audited and record_id not in labeled

    if current is not None and eligible(current):
        return int(current)
    pool = np.array([i for i in range(len(records)) if eligible(i)], dtype=np.int64)
    drawn = audit.audit_sample(pool, 1, random_state=ws.settings.random_state * 7919 + len(audited))
    return int(drawn[0]) if len(drawn) else None


def answer_audit(ws: Workspace, state: PipelineState, row: int, class_id: int) -> None:
    """Store a blind audit answer with the label propagation had given the image (an audit is never a seed)."""
    predicted = int(state.label[row])
    ws.store.record_audit(
        ws.records()[row].id, class_id, state.class_ids[predicted] if predicted >= 0 else None,
        float(state.confidence[row]), ws.settings.annotator,
    )


def undo_last(ws: Workspace, annotator: str | None = None) -> int | None:
    """Undo ``annotator``'s (default: the settings') last label action; returns the row of an image it touched
    (None if nothing undone). Raises :class:`labeler.store.UndoConflict` when someone relabeled its images since."""
    image_ids = ws.store.undo_action(annotator or ws.settings.annotator)
    if not image_ids:
        return None
    rows = {r.id: i for i, r in enumerate(ws.records())}
    return rows.get(image_ids[0])  # the most recently labeled image of the action
