"""The saved propagation state: one file replaced atomically, generic over PipelineState's fields, never returned
when it no longer fits the images on record, and cheap to poll."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest

from labeler.store import ImportedImage
from labeler.workflow import state as state_module
from labeler.workflow.refresh import refresh
from labeler.workflow.state import (
    PipelineState,
    is_stale,
    load_state,
    propagation_lag,
    read_state,
    refresh_due,
    save_state,
    state_dir,
    state_path,
    state_version,
)
from labeler.workflow.workspace import Workspace


@pytest.fixture
def propagated(ws: Workspace) -> tuple[Workspace, PipelineState]:
    records = ws.records()
    ws.store.set_labels([records[0].id], ws.classes()[0].id, "ann")
    ws.store.set_labels([records[30].id], ws.classes()[1].id, "ann")
    return ws, refresh(ws, compute_map=False)


def test_the_state_is_one_file_and_round_trips_every_field(propagated: tuple[Workspace, PipelineState]) -> None:
    ws, state = propagated
    assert sorted(p.name for p in state_dir(ws).iterdir() if p.name.startswith("propagation")) == ["propagation.npz"]
    loaded = load_state(ws)
    assert loaded is not None
    for item in dataclasses.fields(PipelineState):
        if item.name == "umap":
            continue
        expected, got = getattr(state, item.name), getattr(loaded, item.name)
        if isinstance(expected, np.ndarray):
            np.testing.assert_array_equal(got, expected)
        else:
            assert got == expected, item.name


def test_a_field_added_to_the_state_is_saved_without_changing_the_saver(
    propagated: tuple[Workspace, PipelineState], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The integrator adds fields (calibrated confidence, ...): arrays and plain values travel with no edit here."""
    ws, state = propagated

    @dataclasses.dataclass
    class Extended(PipelineState):
        calibrated: np.ndarray | None = None
        calibration_note: str = ""

    monkeypatch.setattr(state_module, "PipelineState", Extended)
    extended = Extended(**{f.name: getattr(state, f.name) for f in dataclasses.fields(PipelineState)},
                        calibrated=state.confidence * 0.5, calibration_note="isotonic")
    save_state(ws, extended)
    loaded = load_state(ws)
    assert isinstance(loaded, Extended)
    np.testing.assert_allclose(loaded.calibrated, state.confidence * 0.5)  # type: ignore[arg-type]
    assert loaded.calibration_note == "isotonic"
    # A file from before the field existed still loads, with the field's default.
    save_state(ws, state)
    older = load_state(ws)
    assert isinstance(older, Extended)
    assert older.calibrated is None


def test_a_reader_never_sees_arrays_of_one_run_with_names_of_another(
    propagated: tuple[Workspace, PipelineState],
) -> None:
    """A poller reads while refreshes with different class sets are saved: every state it gets is consistent."""
    ws, two_classes = propagated
    three = dataclasses.replace(
        two_classes, class_ids=[*two_classes.class_ids, 99], class_names=[*two_classes.class_names, "extra"],
        class_colours=[*two_classes.class_colours, "#000000"],
        proba=np.hstack([two_classes.proba, np.zeros((len(two_classes.label), 1))]),
        scores=np.hstack([two_classes.scores, np.zeros((len(two_classes.label), 1))]),
        label=np.full_like(two_classes.label, 2),
    )
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            for version in (two_classes, three):
                save_state(ws, version)

    thread = threading.Thread(target=writer)
    thread.start()
    seen = 0
    try:
        for _ in range(200):
            state = read_state(ws)
            if state is None:
                continue
            seen += 1
            assert state.proba.shape[1] == len(state.class_names) == len(state.class_ids)
            assert int(state.label.max()) < len(state.class_names)
            state.label_names()  # the IndexError the old two-file state could raise
    finally:
        stop.set()
        thread.join()
    assert seen > 150


def test_a_damaged_or_partial_state_file_is_not_read(propagated: tuple[Workspace, PipelineState]) -> None:
    ws, _ = propagated
    data = state_path(ws).read_bytes()
    for cut in (10, len(data) // 2, len(data) - 5):
        state_path(ws).write_bytes(data[:cut])
        assert load_state(ws) is None
    state_path(ws).write_bytes(b"")
    assert load_state(ws) is None
    assert state_version(ws) is not None
    state_path(ws).unlink()
    assert state_version(ws) is None


def test_state_version_changes_with_every_save_and_costs_one_stat(propagated: tuple[Workspace, PipelineState]) -> None:
    ws, state = propagated
    first = state_version(ws)
    assert first is not None
    assert state_version(ws) == first
    save_state(ws, state)
    assert state_version(ws) != first


def test_after_a_rescan_the_old_state_is_not_used_and_is_stale(propagated: tuple[Workspace, PipelineState]) -> None:
    ws, state = propagated
    found = [ImportedImage(r.path, r.sha256, r.width, r.height, None) for r in ws.records()]
    ws.store.sync_images(found[1:] + [ImportedImage("zz_new.png", "new", 20, 20, None)], {})  # one gone, one new
    assert len(ws.records()) == len(state.image_ids)  # same count, other images
    assert load_state(ws) is None
    assert is_stale(ws, state)


def test_a_class_added_since_leaves_the_state_valid_but_stale(propagated: tuple[Workspace, PipelineState]) -> None:
    ws, state = propagated
    ws.store.add_class("purple")
    loaded = load_state(ws)
    assert loaded is not None
    assert is_stale(ws, loaded)


def test_a_state_of_an_older_format_is_ignored(propagated: tuple[Workspace, PipelineState]) -> None:
    ws, _ = propagated
    from labeler.io.artifacts import save_json_atomic, save_npz_atomic

    save_npz_atomic(state_path(ws), {"image_ids": np.arange(3)})  # format 1 kept its metadata in a json beside
    save_json_atomic(state_dir(ws) / "propagation.json", {"paths": ["a", "b", "c"]})
    assert load_state(ws) is None
    refresh(ws, compute_map=False)
    assert load_state(ws) is not None
    assert not (state_dir(ws) / "propagation.json").exists()


def test_a_missing_workspace_state_folder_is_fine(tmp_path: Path, ws: Workspace) -> None:
    assert load_state(ws) is None
    assert state_version(ws) is None
    assert is_stale(ws, None)


def test_the_lag_says_what_changed_since_the_propagation(propagated: tuple[Workspace, PipelineState]) -> None:
    ws, state = propagated
    assert propagation_lag(ws, state) is None
    assert not refresh_due(ws, state)
    records = ws.records()
    red, green = ws.classes()[0].id, ws.classes()[1].id
    ws.store.set_labels([records[0].id], None, "ann")  # taken off
    ws.store.set_labels([records[30].id], red, "ann")  # changed
    ws.store.set_labels([records[31].id, records[32].id], green, "ann")  # added
    ws.store.record_audit(records[60].id, green, None, None, "ann")
    ws.store.add_class("purple")
    lag = propagation_lag(ws, state)
    assert lag is not None
    assert (lag.labels_removed, lag.labels_changed, lag.labels_added, lag.audits, lag.classes_added) == (1, 1, 2, 1, 1)
    assert lag.labels_behind
    assert lag.text() == ("1 human label taken off, 2 human labels added, 1 human label changed, 1 blind audit "
                          "answered, 1 class added since it ran")


def test_a_propagation_from_labels_all_taken_back_is_due_a_refresh(
    propagated: tuple[Workspace, PipelineState]
) -> None:
    # The app and the export used to refresh only while some human label was left, so a state propagated from
    # labels since undone was shown and exported as if they still existed.
    ws, state = propagated
    ws.store.set_labels([int(i) for i in ws.store.human_labels()], None, "ann")
    assert ws.store.human_labels() == {}
    assert refresh_due(ws, load_state(ws))
    lag = propagation_lag(ws, state)
    assert lag is not None
    assert lag.text() == "2 human labels taken off since it ran"
    assert not refresh_due(ws, None)  # no state and no label: nothing to propagate


def test_audits_alone_leave_the_labels_current(propagated: tuple[Workspace, PipelineState]) -> None:
    ws, state = propagated
    ws.store.record_audit(ws.records()[60].id, ws.classes()[2].id, None, None, "ann")
    lag = propagation_lag(ws, state)
    assert lag is not None
    assert refresh_due(ws, state)  # the calibration takes the answer in
    assert not lag.labels_behind
    assert lag.text() == "1 blind audit answered since it ran"
