"""The exported CSV: safe to open in a spreadsheet (no cell runs as a formula) without changing what is stored, and
correct after the folder changed or the state's representation went away."""

from __future__ import annotations

import csv
import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labeler.workflow import export
from labeler.workflow.refresh import refresh
from labeler.workflow.state import load_state, save_state
from labeler.workflow.workspace import Workspace

NASTY = ['=HYPERLINK("http:x").png', "+1.png", "-2.png", "@cmd.png"]


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_formula_like_cells_are_neutralised_in_every_text_column(ws: Workspace, tmp_path: Path) -> None:
    for name in NASTY:
        shutil.copy(ws.data_dir / "img_000.png", ws.data_dir / name)
    ws.import_folder()
    minus = ws.store.add_class("-1 (minus)")  # class names may start with '-'
    by_path = {r.path: r.id for r in ws.records()}
    ws.store.set_labels([by_path["-2.png"], by_path["img_001.png"]], minus.id, "=cmd|' /C calc'!A0")
    ws.store.set_labels([by_path["img_030.png"]], ws.classes()[1].id, "ann")
    out = tmp_path / "labels.csv"
    frame = export.export_frame(ws)
    export.write_csv(frame, out)
    rows = {row["path"]: row for row in _read(out)}
    for name in NASTY:
        assert "'" + name in rows, name  # shown as text, starting with a quote
        assert name not in rows
    human = rows["'-2.png"]
    assert human["label"] == "'-1 (minus)"
    assert human["annotator"] == "'=cmd|' /C calc'!A0"
    assert rows["img_001.png"]["label"] == "'-1 (minus)"
    formula_start = ("=", "+", "-", "@", "\t", "\r")
    for row in rows.values():
        for column, value in row.items():
            if column in {"confidence", "margin", "entropy", "stability", "umap_x", "umap_y"}:
                continue  # numbers (a negative coordinate is a number, not a formula)
            assert not value.startswith(formula_start), (column, value)
    # Stored data and the frame the pages show are unchanged: only the CSV bytes are neutralised.
    assert ws.store.image_by_path("-2.png") is not None
    assert [c.name for c in ws.classes()][-1] == "-1 (minus)"
    assert ws.store.label_details()[by_path["-2.png"]][1] == "=cmd|' /C calc'!A0"
    assert "-2.png" in set(frame["path"])


def test_numbers_stay_numbers_and_the_quote_round_trips() -> None:
    frame = pd.DataFrame({"path": ["-2.png", "a.png"], "umap_x": [-1.5, 2.0], "label": ["", "+x"]})
    text = export.to_csv_bytes(frame).decode()
    assert text.splitlines() == ["path,umap_x,label", "'-2.png,-1.5,", "a.png,2.0,'+x"]
    assert export.restore_formula("'-2.png") == "-2.png"
    assert export.restore_formula("'quoted.png") == "'quoted.png"  # a real leading quote is kept
    assert export.neutralise_formula(-3) == -3


def test_export_after_a_rescan_uses_the_current_images(ws: Workspace, tmp_path: Path) -> None:
    records = ws.records()
    ws.store.set_labels([records[0].id], ws.classes()[0].id, "ann")
    ws.store.set_labels([records[30].id], ws.classes()[1].id, "ann")
    ws.store.set_labels([records[60].id], ws.classes()[2].id, "ann")
    refresh(ws, compute_map=False)
    shutil.copy(ws.data_dir / "img_031.png", ws.data_dir / "aaa_new.png")  # sorts first: every row moves
    (ws.data_dir / "img_089.png").unlink()
    ws.import_folder()
    frame = export.export_frame(ws)
    rows = frame.set_index("path")
    assert "img_089.png" not in rows.index  # missing files are left out (their labels stay in the store)
    assert rows.loc["aaa_new.png", "label"] == "green"  # propagated on the current images
    assert rows.loc["img_000.png", "source"] == "human"
    assert (frame["source"] == "propagated").sum() == len(ws.records()) - 3


def test_export_when_the_states_representation_is_gone(ws: Workspace) -> None:
    records = ws.records()
    for i, info in zip((0, 1, 30, 31), (0, 0, 1, 1), strict=True):
        ws.store.set_labels([records[i].id], ws.classes()[info].id, "ann")
    state = refresh(ws, compute_map=False)
    save_state(ws, dataclasses.replace(state, embedding_key="simclr-of-an-encoder-since-deleted"))
    frame = export.export_frame(ws)  # graph_for_state raised LookupError here
    assert (frame["source"] == "human").sum() == 4
    reloaded = load_state(ws)
    assert reloaded is not None
    assert reloaded.embedding_key != "simclr-of-an-encoder-since-deleted"


def test_no_negative_zero_in_any_number_column(ws: Workspace, tmp_path: Path) -> None:
    records = ws.records()
    for i, info in zip((0, 30, 60), (0, 1, 2), strict=True):
        ws.store.set_labels([records[i].id], ws.classes()[info].id, "ann")
    state = refresh(ws, compute_map=False)
    umap = np.zeros((len(state.label), 2), dtype=np.float32)
    umap[:, 0] = -1e-7  # rounds to -0.0
    out = tmp_path / "labels.csv"
    export.write_csv(export.export_frame(ws, state=dataclasses.replace(state, umap=umap)), out)
    cells = [cell for row in _read(out) for cell in row.values()]
    assert "-0.0" not in cells
    assert {row["umap_x"] for row in _read(out)} == {"0.0"}


def test_a_suspect_label_a_person_kept_is_not_flagged_again(ws: Workspace, colour_folder: tuple[Path, dict[str, str]],
                                                            tmp_path: Path) -> None:
    from labeler.workflow.refresh import suspect_labels

    truth = colour_folder[1]
    ids = {c.name: c.id for c in ws.classes()}
    records = ws.records()
    for name in ("red", "green", "blue"):
        rows = [r.id for r in records if truth[r.path] == name][:4]
        ws.store.set_labels(rows, ids[name], "ann")
    wrong = next(r for r in records if truth[r.path] == "red" and r.id not in ws.store.human_labels())
    ws.store.set_labels([wrong.id], ids["green"], "ann")  # a red image labeled green: its neighbours say red
    state = refresh(ws, compute_map=False)
    row = next(i for i, image_id in enumerate(state.image_ids) if image_id == wrong.id)
    assert [s.index for s in suspect_labels(ws, state)] == [row]
    assert _flags(ws, wrong.path) == "suspect"

    ws.store.set_labels([wrong.id], ids["red"], "ann")  # the person changes it: gone from the list at once
    assert suspect_labels(ws, state) == []
    ws.store.undo("ann")  # and back
    assert [s.index for s in suspect_labels(ws, state)] == [row]

    ws.store.keep_label(wrong.id, ids["green"])  # the person looked and keeps it
    assert suspect_labels(ws, state) == []
    assert _flags(ws, wrong.path) == ""
    assert ws.store.kept_labels() == {wrong.id: ids["green"]}

    ws.store.set_labels([wrong.id], ids["blue"], "ann")  # another label: kept was green, so it is suspect again
    state = refresh(ws, compute_map=False)
    assert [s.index for s in suspect_labels(ws, state)] == [row]
    assert _flags(ws, wrong.path) == "suspect"


def _flags(ws: Workspace, path: str) -> str:
    frame = export.export_frame(ws)
    return str(frame.loc[frame["path"] == path, "flagged"].iloc[0])


def test_the_preview_table_has_numbers_where_the_csv_has_empty_cells() -> None:
    import pyarrow as pa

    frame = pd.DataFrame([dict.fromkeys(export.COLUMNS, "") | {"path": "a.png", "confidence": 0.9, "score": 0.5},
                          dict.fromkeys(export.COLUMNS, "") | {"path": "broken.png", "flagged": "unreadable: empty"}])
    with pytest.raises(pa.ArrowException):  # what the page's table hit: numbers and "" in one column
        pa.Table.from_pandas(frame)
    typed = export.typed_frame(frame)
    pa.Table.from_pandas(typed)
    assert typed["confidence"].iloc[0] == 0.9
    assert np.isnan(typed["confidence"].iloc[1])
    assert list(typed["path"]) == ["a.png", "broken.png"]
    assert list(frame["confidence"]) == [0.9, ""]  # a copy: the CSV keeps its empty cells


def test_no_row_is_propagated_from_labels_taken_back_since(ws: Workspace) -> None:
    records = ws.records()
    ws.store.set_labels([records[0].id], ws.classes()[0].id, "ann")
    ws.store.set_labels([records[30].id], ws.classes()[1].id, "ann")
    refresh(ws, compute_map=False)
    ws.store.undo("ann")
    ws.store.undo("ann")  # every seed taken back: the saved propagation rests on labels that no longer exist
    frame = export.export_frame(ws)
    assert set(frame["source"]) == {"none"}  # it was 88 rows "propagated" with no human label behind them
    state = load_state(ws)
    assert state is not None
    assert state.counts["human"] == 0
