"""Orchestration: caches keyed by what they depend on, representation choice recorded, stale state detected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labeler.config import Settings
from labeler.core import umap_map
from labeler.workflow.refresh import refresh
from labeler.workflow.representations import Representation, representations, select_representation
from labeler.workflow.state import is_stale, load_state
from labeler.workflow.training import train, trained_checkpoint
from labeler.workflow.workspace import Workspace


@pytest.fixture
def labeled(colour_folder: tuple[Path, dict[str, str]]) -> tuple[Workspace, dict[str, str]]:
    root, truth = colour_folder
    ws = Workspace.open(Settings(root, n_bootstrap=3))
    ws.import_folder()
    first: dict[str, str] = {}
    for path, name in truth.items():
        first.setdefault(name, path)
    ws.store.label_paths([(path, name) for name, path in first.items()], "ann")
    return ws, truth


def test_refresh_labels_every_image_and_saves_state(labeled: tuple[Workspace, dict[str, str]]) -> None:
    ws, truth = labeled
    state = refresh(ws, compute_map=True)
    assert state.counts == {"human": 3, "propagated": len(truth) - 3, "none": 0}
    names = state.label_names()
    assert all(names[i] == truth[path] for i, path in enumerate(state.paths))
    assert state.umap is not None
    assert state.umap.shape == (len(truth), 2)
    assert state.representation == "hog-pixels"
    assert "too few labels to compare" in state.representation_reason
    loaded = load_state(ws)
    assert loaded is not None
    assert loaded.paths == state.paths
    np.testing.assert_array_equal(loaded.label, state.label)
    np.testing.assert_allclose(loaded.confidence, state.confidence)
    assert loaded.umap is not None


def test_state_goes_stale_when_labels_change(labeled: tuple[Workspace, dict[str, str]]) -> None:
    ws, _ = labeled
    state = refresh(ws, compute_map=False)
    assert not is_stale(ws, state)
    image = ws.records()[5]
    ws.store.label(image.id, ws.classes()[0].id, "ann")
    assert is_stale(ws, state)
    fresh = refresh(ws, compute_map=False)
    assert fresh.source[5] == "human"
    assert not is_stale(ws, fresh)


def test_map_is_not_recomputed_when_only_labels_change(labeled: tuple[Workspace, dict[str, str]],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ws, _ = labeled
    first = refresh(ws, compute_map=True)
    image = ws.records()[7]
    ws.store.label(image.id, ws.classes()[0].id, "ann")

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("UMAP recomputed although only labels changed")

    monkeypatch.setattr(umap_map, "umap_coordinates", fail)
    second = refresh(ws, compute_map=True)
    assert second.umap is not None
    assert first.umap is not None
    np.testing.assert_array_equal(first.umap, second.umap)


def test_no_labels_means_source_none(colour_folder: tuple[Path, dict[str, str]]) -> None:
    root, truth = colour_folder
    ws = Workspace.open(Settings(root))
    ws.import_folder()
    state = refresh(ws, compute_map=False)
    assert state.counts == {"human": 0, "propagated": 0, "none": len(truth)}


def test_representation_choice_is_measured_and_recorded(labeled: tuple[Workspace, dict[str, str]]) -> None:
    ws, truth = labeled
    # Two labels per class make leave-one-out measurable; give a second, useless representation to choose against.
    extra = {name: [p for p, n in truth.items() if n == name][1] for name in ("red", "green", "blue")}
    ws.store.label_paths([(path, name) for name, path in extra.items()], "ann")
    reps = representations(ws)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=reps["pixels-pca"].X.shape).astype(np.float32)
    reps["noise"] = Representation("noise", "noise-key", noise)
    y = ws.human_label_vector()
    choice = select_representation(ws, reps, y, 3)
    assert choice.name == "hog-pixels"  # the instant one preferred for small images; pixels alone do no better
    assert choice.scores["hog-pixels"] == choice.scores["pixels-pca"] == 1.0
    assert choice.scores["hog-pixels"] > choice.scores["noise"]
    assert "leave-one-out" in choice.reason
    # All six held-out labels are right on the kept representation: the selection-corrected estimate says so, with
    # the Wilson interval of 6/6, and is recorded with the choice.
    assert choice.selection is not None
    assert (choice.selection.accuracy, choice.selection.n) == (1.0, 6)
    recorded = (ws.workspace_dir / "state" / "representation.json").read_text()
    assert "hog-pixels" in recorded
    again = select_representation(ws, reps, y, 3)  # read back from the record, not remeasured
    assert again.selection == choice.selection
    assert again.name == choice.name
    assert again.reason == choice.reason
    # Two labels more: still read back (within four of the six measured), and the reason says its numbers are of
    # the six labels then, not of the eight now (a user saw "on 4 human labels" beside 6).
    y_more = y.copy()
    y_more[np.flatnonzero(y < 0)[:2]] = 0
    later = select_representation(ws, reps, y_more, 3)
    assert later.selection == choice.selection
    assert later.reason.startswith(choice.reason)
    assert "(measured when there were 6 human labels, 8 now;" in later.reason


def test_teaching_mode_reads_ground_truth(colour_folder: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, truth = colour_folder
    truth_csv = tmp_path / "truth.csv"
    truth_csv.write_text("path,label\n" + "\n".join(f"{p},{n}" for p, n in truth.items()) + "\n")
    ws = Workspace.open(Settings(root, ground_truth_path=truth_csv))
    ws.import_folder()
    assert ws.ground_truth() is not None  # no classes defined yet: every entry -1
    assert set(ws.ground_truth().tolist()) == {-1}  # type: ignore[union-attr]
    for name in ("red", "green", "blue"):
        ws.store.add_class(name)
    gt = ws.ground_truth()
    assert gt is not None
    assert [ws.classes()[i].name for i in gt] == [truth[r.path] for r in ws.records()]


def test_training_installs_the_encoder_and_propagation_can_use_it(
    colour_folder: tuple[Path, dict[str, str]],
) -> None:
    root, _ = colour_folder
    ws = Workspace.open(Settings(root, ssl_width=8, ssl_batch_size=32, n_bootstrap=0))
    ws.import_folder()
    message = train(ws, epochs=1)
    assert "encoder trained" in message
    checkpoint = trained_checkpoint(ws)
    assert checkpoint is not None
    assert checkpoint.name.startswith("encoder-")
    reps = representations(ws)
    assert set(reps) == {"pixels-pca", "hog-pixels", "simclr", "simclr-hog", "simclr-projection"}
    assert reps["simclr"].X.shape[0] == len(ws.records())
    np.testing.assert_allclose(np.linalg.norm(reps["simclr"].X, axis=1), 1.0, atol=1e-3)


def test_stopped_training_keeps_the_old_encoder(colour_folder: tuple[Path, dict[str, str]]) -> None:
    root, _ = colour_folder
    ws = Workspace.open(Settings(root, ssl_width=8, ssl_batch_size=32))
    ws.import_folder()
    message = train(ws, epochs=3, should_stop=lambda: True)
    assert "stopped" in message
    assert trained_checkpoint(ws) is None
    assert set(representations(ws)) == {"pixels-pca", "hog-pixels"}


def test_counts_are_saved_before_the_stability_re_runs(labeled: tuple[Workspace, dict[str, str]],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from labeler.workflow import refresh as refresh_module

    ws, truth = labeled
    saved: list[tuple[int, np.ndarray]] = []
    real_save = refresh_module.save_state

    def recording(ws_: Workspace, state: object) -> None:
        saved.append((state.labels_version, np.array(state.stability)))  # type: ignore[attr-defined]
        real_save(ws_, state)  # type: ignore[arg-type]

    monkeypatch.setattr(refresh_module, "save_state", recording)
    state = refresh(ws, compute_map=False)
    assert len(saved) == 2
    (first_version, interim), (second_version, final) = saved
    assert first_version == second_version == ws.store.labels_version()
    propagated = state.source == "propagated"
    assert np.isnan(interim[propagated]).all()  # first run: no stability measured yet, and none made up
    assert not np.isnan(final).any()
    np.testing.assert_array_equal(final, state.stability)
    saved.clear()
    ws.store.label(ws.records()[5].id, ws.classes()[0].id, "ann")
    refresh(ws, compute_map=False)
    # Later runs show the last measured stability until the re-runs end.
    assert not np.isnan(saved[0][1]).any()


def test_follow_up_work_is_left_to_the_next_pass_when_newer_labels_wait(
    labeled: tuple[Workspace, dict[str, str]]
) -> None:
    ws, _ = labeled
    first = refresh(ws, compute_map=False)
    ws.store.label(ws.records()[5].id, ws.classes()[0].id, "ann")
    asked: list[int] = []
    state = refresh(ws, compute_map=False, newer_labels=lambda: asked.append(1) is None)
    assert asked == [1]  # asked once, after the counts were saved
    saved = load_state(ws)
    assert saved is not None
    assert saved.labels_version == ws.store.labels_version()  # this label is in the saved state
    assert saved.source[5] == "human"
    np.testing.assert_array_equal(saved.label, state.label)
    propagated = state.source == "propagated"
    # No re-runs: every propagated image keeps the stability measured last time.
    np.testing.assert_array_equal(state.stability[propagated], first.stability[propagated])
    full = refresh(ws, compute_map=False)  # the next pass does the rest
    np.testing.assert_array_equal(full.label, state.label)
    assert not np.isnan(full.stability).any()


def test_an_odd_image_among_the_colours_is_a_possible_new_class(colour_folder: tuple[Path, dict[str, str]]) -> None:
    from PIL import Image

    root, truth = colour_folder
    checker = (np.indices((20, 20)).sum(axis=0) % 2 * 255).astype(np.uint8)  # a black and white checkerboard
    Image.fromarray(np.stack([checker] * 3, axis=-1)).save(root / "odd.png")
    ws = Workspace.open(Settings(root, n_bootstrap=0))
    ws.import_folder()
    first: dict[str, str] = {}
    for path, name in truth.items():
        first.setdefault(name, path)
    ws.store.label_paths([(path, name) for name, path in first.items()], "ann")
    state = refresh(ws, compute_map=False)
    flagged = [state.paths[i] for i in np.flatnonzero(state.new_class)]
    # A seed's mass reaches it through the graph like any image; its distance to its neighbours is what stands out.
    assert "odd.png" in flagged
    assert len(flagged) <= 3
    # Not a photo folder: flagged, but its confidence stays calibrated (isolated is measured on photos only).
    assert not state.isolated.any()


def test_suspects_cached_by_the_older_rule_are_not_reused(labeled: tuple[Workspace, dict[str, str]]) -> None:
    from labeler.io.artifacts import save_json_atomic
    from labeler.workflow.refresh import suspect_labels
    from labeler.workflow.state import state_dir

    ws, _ = labeled
    state = refresh(ws, compute_map=False)
    # The older rule's cache: its key had no "fence:" and its items no log-ratio.
    old_key = f"{state.embedding_key}:{state.labels_version}:{len(state.class_ids)}"
    item = {"index": 0, "human_label": 0, "neighbourhood_label": 1, "support": 0.6}
    save_json_atomic(state_dir(ws) / "suspects.json", {"key": old_key, "items": [item]})
    assert suspect_labels(ws, state) == []  # one label per class: nothing to contradict
