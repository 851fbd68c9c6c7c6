"""The fully labeled CSV: one row per image with its label, where the label came from and how far to trust it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from labeler.io.artifacts import write_bytes_atomic
from labeler.store import WorkspaceNotWritable
from labeler.workflow.refresh import refresh, suspect_labels
from labeler.workflow.spreadsheet import FORMULA_PREFIXES, neutralise_formula, restore_formula
from labeler.workflow.state import PipelineState, lag_text, load_state, refresh_due
from labeler.workflow.workspace import Workspace

__all__ = [  # the spreadsheet helpers are used from here too
    "COLUMNS", "FORMULA_PREFIXES", "export_frame", "neutralise_formula", "out_of_date_read_only", "removed_files",
    "restore_formula", "safe_for_spreadsheets", "to_csv_bytes", "typed_frame", "write_csv",
]

COLUMNS = [
    "path", "label", "source", "confidence", "score", "margin", "entropy", "stability", "flagged",
    "annotator", "labeled_at", "umap_x", "umap_y", "representation",
]
# Columns of numbers; a row without one (unreadable, unreached) has an empty cell there.
NUMERIC_COLUMNS = ["confidence", "score", "margin", "entropy", "stability", "umap_x", "umap_y"]


def typed_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its numeric columns as numbers, empty cells as missing (NaN): for a table to show, where a
    column mixing numbers and empty strings is not one type."""
    typed = frame.copy()
    for column in NUMERIC_COLUMNS:
        if column in typed:
            typed[column] = pd.to_numeric(typed[column].replace("", None), errors="coerce")
    return typed


def _iso(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc).isoformat(timespec="seconds")


def removed_files(ws: Workspace) -> list[tuple[str, str]]:
    """(path, its human label or "") of each file removed from the folder since it was imported, by path.

    They are left out of the CSV (every row of which names a file that exists, so it can be fed to training as
    is) and listed instead: ``labeler export`` prints how many, the Export page lists them. Their labels stay in
    the workspace and count again if the files come back.
    """
    classes = {c.id: c.name for c in ws.classes()}
    human = ws.store.human_labels()
    return [(record.path, classes.get(human.get(record.id, -1), ""))
            for record in ws.store.images(status="missing")]


def export_frame(
    ws: Workspace, min_confidence: float | None = None, state: PipelineState | None = None
) -> pd.DataFrame:
    """Every image on record, readable or not, as a DataFrame with :data:`COLUMNS`; files removed from the folder
    since the import are left out (see :func:`removed_files`).

    ``source`` is human (labeled by a person), audited (answered blind in the random audit), propagated, none
    (no seed reaches it) or unreadable. Below ``min_confidence`` propagated rows keep their label and are flagged
    ``below-threshold``; unreadable rows are flagged ``unreadable: <why>``. Propagation is brought up to date first
    when human labels, audits or classes changed since it last ran (:func:`~labeler.workflow.state.refresh_due`,
    also when every human label has been taken back), so that no row is propagated from labels that no longer
    exist; on a read-only workspace that cannot be done, and :class:`WorkspaceNotWritable` says so.
    ``confidence`` is the calibrated probability that the label is right (what ``min_confidence`` compares with);
    ``score`` the raw spreading score, for ranking. Propagated rows unlike every other image are flagged
    ``isolated`` (and ``new-class``); their confidence is chance (see
    :func:`~labeler.workflow.calibration.calibrate_state`).
    """
    if state is None:
        state = load_state(ws)
    if refresh_due(ws, state):  # the app's rule: never rows propagated from labels that changed since
        if ws.store.read_only is not None:
            raise WorkspaceNotWritable(out_of_date_read_only(ws, state))
        state = refresh(ws, compute_map=False)
    classes = {c.id: c.name for c in ws.classes()}
    details = ws.store.label_details()
    audits = {a["image_id"]: a for a in ws.store.audits()}
    by_id: dict[int, int] = {}
    if state is not None:
        by_id = {int(image_id): i for i, image_id in enumerate(state.image_ids)}
    try:
        suspects = _suspect_rows(ws, state)
    except LookupError:  # the state's representation is gone (a new encoder since): propagate on the current one
        state = refresh(ws, compute_map=False)
        by_id = {int(image_id): i for i, image_id in enumerate(state.image_ids)}
        suspects = _suspect_rows(ws, state)
    isolated = state.isolated_rows() if state is not None else np.zeros(0, dtype=bool)
    rows = []
    for record in ws.store.images():
        if record.status == "missing":
            continue
        row: dict[str, object] = dict.fromkeys(COLUMNS, "")
        row["path"] = record.path
        flags: list[str] = []
        i = by_id.get(record.id)
        if record.status != "ok":
            row["source"] = "unreadable"
            # Why, in the file itself: the Home page's table of skipped files is not where a CSV's reader looks.
            flags.append("unreadable: " + (record.reason or "unknown reason").replace(";", ","))
        elif record.id in details:
            class_id, annotator, labeled_at = details[record.id]
            row.update(label=classes[class_id], source="human", confidence=1.0, annotator=annotator,
                       labeled_at=_iso(labeled_at))
            if i is not None and i in suspects:
                flags.append("suspect")
        elif record.id in audits:
            audit = audits[record.id]
            row.update(label=classes.get(audit["class_id"], ""), source="audited", confidence=1.0,
                       annotator=audit["annotator"], labeled_at=_iso(audit["audited_at"]))
        elif state is not None and i is not None and state.label[i] >= 0 and state.source[i] == "propagated":
            confidence = float(state.confidence[i])
            row.update(label=state.class_names[int(state.label[i])], source="propagated",
                       confidence=round(confidence, 6))
            if min_confidence is not None and confidence < min_confidence:
                flags.append("below-threshold")
        else:
            row["source"] = "none"
        if state is not None and i is not None:
            row["score"] = round(float(state.score[i]), 6) + 0.0  # raw spreading score: ranks, is not a probability
            # "+ 0.0" turns a -0.0 (the entropy of a one-hot row) into 0.0.
            row.update(margin=round(float(state.margin[i]), 6) + 0.0, entropy=round(float(state.entropy[i]), 6) + 0.0,
                       stability=round(float(state.stability[i]), 6) + 0.0, representation=state.representation)
            if bool(state.new_class[i]) and row["source"] != "human":
                flags.append("new-class")
            if isolated[i] and row["source"] == "propagated":  # its confidence is chance: nothing like it was labeled
                flags.append("isolated")
            if state.umap is not None:
                row.update(umap_x=round(float(state.umap[i, 0]), 5) + 0.0,
                           umap_y=round(float(state.umap[i, 1]), 5) + 0.0)
        row["flagged"] = ";".join(flags)
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def out_of_date_read_only(ws: Workspace, state: PipelineState | None) -> str:
    """Why an export cannot be made on a read-only workspace whose propagation is out of date."""
    return (f"the propagation is out of date ({lag_text(ws, state)}) and the workspace {ws.workspace_dir} is "
            "read-only, so it cannot be brought up to date here; an export now would give labels propagated from "
            "labels that no longer exist. Run `labeler propagate` where the workspace can be written (or copy it "
            "and use --workspace COPY), then export.")


def _suspect_rows(ws: Workspace, state: PipelineState | None) -> set[int]:
    if state is None:
        return set()
    return {suspect.index for suspect in suspect_labels(ws, state)}


def safe_for_spreadsheets(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell neutralised (numbers stay numbers); the store is not touched."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(neutralise_formula)
    return safe


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """The CSV of ``frame``, safe to open in a spreadsheet: formula-like text cells start with ``'``."""
    return safe_for_spreadsheets(frame).to_csv(index=False).encode("utf-8")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    write_bytes_atomic(Path(path), to_csv_bytes(frame))

