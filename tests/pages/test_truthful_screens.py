"""Every screen tells the truth: settings that hold across pages, pages that follow a new state, counts that do not
look finished while they are not, defaults that match the data, previews that say what they leave out."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from page_helpers import (  # noqa: F401  (data_dir_fixture: the data_dir fixture)
    APP,
    CLASSES,
    ROOT,
    data_dir_fixture,
    labeled_workspace,
    open_selection,
    open_workspace,
    run_page,
    typed_array,
    wait_for_import,
    wait_for_refresh,
    widget_data,
)
from streamlit.testing.v1 import AppTest

from labeler.workflow import label_queue
from labeler.workflow.counts import label_counts
from labeler.workflow.refresh import refresh
from labeler.workflow.report import status_lines
from labeler.workflow.state import load_state, save_state

# ----------------------------------------------------------------------------------------------- settings


def test_teaching_mode_stays_on_across_pages(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    truth = colour_folder[1]
    with (data_dir / "ground_truth.csv").open("w", encoding="utf-8") as handle:
        handle.write("path,label\n" + "".join(f"{path},{name}\n" for path, name in sorted(truth.items())))
    labeled_workspace(data_dir, truth)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    toggle = at.toggle(key="widget:teaching_mode")
    assert toggle.value is False
    assert not any(c.value.startswith("Teaching mode: ") for c in at.caption)
    toggle.set_value(True).run()
    # Home shows the true accuracy beside the estimate (it was on the Model page only).
    assert any(c.value.startswith("Teaching mode: ") and "propagated labels the ground truth names are right"
               in c.value for c in at.caption)
    for page in ("label", "map", "model"):  # pages without the toggle: Streamlit drops its widget key there
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
    assert any(m.label == "True accuracy of propagated labels" for m in at.metric)  # teaching mode still on
    at.switch_page("pages/home.py").run()
    assert at.toggle(key="widget:teaching_mode").value is True
    # And across a reload (a new session with the tab's address), landing on another page.
    reloaded = AppTest.from_file(APP, default_timeout=60)
    reloaded.query_params.update(dict(at.query_params))
    reloaded.switch_page("pages/model.py").run()
    assert any(m.label == "True accuracy of propagated labels" for m in reloaded.metric)


def test_teaching_mode_offers_the_ground_truths_classes_as_it_spells_them(data_dir: Path) -> None:
    ws = open_workspace(data_dir)
    names = {r.path: ("T-shirt/top" if i % 3 == 0 else "Ankle boot" if i % 3 == 1 else "class 10")
             for i, r in enumerate(ws.records())}
    with (data_dir / "ground_truth.csv").open("w", encoding="utf-8") as handle:
        handle.write("path,label\n" + "".join(f"{path},{name}\n" for path, name in sorted(names.items())))
    ws.store.add_class("Ankle boot")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not [b for b in at.button if b.key == "add_truth_classes"]  # teaching mode off: nothing offered
    at.toggle(key="widget:teaching_mode").set_value(True).run()
    (offer,) = [b for b in at.button if b.key == "add_truth_classes"]
    assert offer.label == "Add the ground truth's 2 classes: class 10, T-shirt/top"
    offer.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [c.name for c in ws.store.classes()] == ["Ankle boot", "class 10", "T-shirt/top"]
    assert not [b for b in at.button if b.key == "add_truth_classes"]  # all there now
    assert ws.store.human_labels() == {}  # the ground truth is never used as labels


def test_teaching_mode_colours_the_map_by_the_ground_truth(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    truth = dict(colour_folder[1])
    labeled_workspace(data_dir, truth, with_map=True)
    wrong_path = sorted(truth)[5]  # red, not a human label: propagated red
    truth[wrong_path] = "green"
    with (data_dir / "ground_truth.csv").open("w", encoding="utf-8") as handle:
        handle.write("path,label\n" + "".join(f"{path},{name}\n" for path, name in sorted(truth.items())))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/map.py").run()
    assert "vs ground truth" not in at.segmented_control(key="widget:map:colour").options  # teaching mode off
    at.switch_page("pages/home.py").run()
    at.toggle(key="widget:teaching_mode").set_value(True).run()
    at.switch_page("pages/map.py").run()
    at.segmented_control(key="widget:map:colour").set_value("vs ground truth").run()
    assert not at.exception, [e.value for e in at.exception]
    (said,) = [c.value for c in at.caption if c.value.startswith("Teaching mode: ")]
    assert said.startswith("Teaching mode: 1 of the ")
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)  # type: ignore[attr-defined]
    wrong = [t for t in spec["data"] if t["name"] == "wrong (ground truth disagrees)"]
    assert len(wrong) == 1
    assert [int(row) for row, _ in typed_array(wrong[0]["customdata"])] == [
        sorted(colour_folder[1]).index(wrong_path)]


def test_a_reload_keeps_the_label_and_review_choices(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    """A reload starts a new session: the Label page's queue and view size, and the Review page's view, come back
    from the address bar, whether the reload lands on that page or on Home."""
    labeled_workspace(data_dir, colour_folder[1])
    at = run_page("label")
    at.segmented_control(key="widget:label:strategy").set_value("Random").run()
    at.toggle(key="widget:label:large").set_value(True).run()
    at.switch_page("pages/review.py").run()
    at.segmented_control(key="widget:review:view").set_value("Blind audit").run()
    assert not at.exception, [e.value for e in at.exception]
    address = dict(at.query_params)
    assert {address["show"], address["large"], address["view"]} == {"Random", "1", "Blind audit"}

    for first in ("label", "home"):
        reloaded = AppTest.from_file(APP, default_timeout=60)  # a new session with the same address
        reloaded.query_params.update(address)
        if first == "label":
            reloaded.switch_page("pages/label.py")
        reloaded.run()
        # A page switch in the browser drops the query parameters: the session must have taken them already.
        reloaded.query_params.clear()
        reloaded.query_params["tab"] = address["tab"]
        reloaded.switch_page("pages/label.py").run()
        assert not reloaded.exception, [e.value for e in reloaded.exception]
        assert reloaded.segmented_control(key="widget:label:strategy").value == "Random"
        assert reloaded.toggle(key="widget:label:large").value is True
        reloaded.switch_page("pages/review.py").run()
        assert reloaded.segmented_control(key="widget:review:view").value == "Blind audit"

    forged = AppTest.from_file(APP, default_timeout=60)
    forged.query_params.update({"show": "<script>", "view": "nope"})
    forged.switch_page("pages/label.py").run()
    assert forged.segmented_control(key="widget:label:strategy").value == "Suggested"  # not a choice: the default


# ----------------------------------------------------------------------------------------------- model


def test_model_page_follows_a_new_representation(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    ws = labeled_workspace(data_dir, colour_folder[1])
    at = run_page("model")
    assert any(m.value.startswith("**hog\\-pixels**") for m in at.markdown)
    state = load_state(ws)
    assert state is not None
    state.representation, state.representation_reason = "simclr", "the trained encoder scores better"
    save_state(ws, state)  # what a refresh after training saves
    at.run()
    said = [m.value for m in at.markdown if "simclr" in m.value]
    assert said == ["**simclr** — the trained encoder scores better"]
    assert not any("hog\\-pixels" in m.value for m in at.markdown)


def test_the_loss_chart_counts_training_steps_not_epochs(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pages.shared import model_view

    labeled_workspace(data_dir, colour_folder[1])
    losses = [5.0 - 0.1 * step for step in range(18)]  # 9 epochs of 2 batches each
    monkeypatch.setattr(model_view, "training_info",
                        lambda ws: {"loss_history": losses, "epoch": 9, "elapsed_s": 90.0})
    at = run_page("model")
    (chart,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if json.loads(c.proto.spec)["layout"].get("yaxis", {}).get("title", {}).get("text", "").startswith(
                    "NT-Xent")]
    assert chart["layout"]["xaxis"]["title"]["text"] == "training step"
    assert chart["layout"]["yaxis"]["title"]["text"] == "NT-Xent loss (per batch)"
    assert typed_array(chart["data"][0]["x"]).tolist() == list(range(1, 19))
    assert any(c.value.startswith("9 epochs · 18 steps · 1.5 minutes trained") for c in at.caption)


# ----------------------------------------------------------------------------------------------- counts


def test_classes_without_a_label_are_named_on_home_and_label(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    ws = open_workspace(data_dir)
    for name in [*CLASSES, "cat_*x*"]:
        ws.store.add_class(name)
    red = next(c.id for c in ws.store.classes() if c.name == "red")
    ws.store.set_labels([ws.records()[0].id], red, "tester")
    refresh(ws, compute_map=False)
    for page in ("home", "label"):
        at = run_page(page)
        (warning,) = [w.value for w in at.warning if "no label yet" in w.value]
        assert warning.startswith("3 classes have no label yet, so nothing can be propagated to them")
        assert r"green, blue, cat\_\*x\*" in warning  # named, and escaped for Markdown
    metrics = {m.label: m.value for m in run_page("home").metric}
    assert metrics["Human"] == "1"


def test_counts_say_when_propagation_is_behind(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    ws = labeled_workspace(data_dir, colour_folder[1])
    green = next(c.id for c in ws.store.classes() if c.name == "green")
    unlabeled = next(r for r in ws.records() if r.id not in ws.store.human_labels())
    ws.store.set_labels([unlabeled.id], green, "tester")  # newer than the saved propagation
    at = run_page("home")
    assert any("catching up" in c.value for c in at.caption)


def test_home_counts_audited_images_apart(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    """Human + propagated + audited + unreached add up to the images, as in the export (audited: its own source)."""
    ws = labeled_workspace(data_dir, colour_folder[1])
    state = load_state(ws)
    assert state is not None
    row = int(np.flatnonzero(state.source == "propagated")[0])
    label_queue.answer_audit(ws, state, row, int(state.class_ids[0]), "tester")
    refresh(ws, compute_map=False)
    metrics = {m.label: m.value for m in run_page("home").metric}
    assert (metrics["Human"], metrics["Audited"], metrics["Unreached"]) == ("6", "1", "0")
    assert int(metrics["Propagated"]) == len(colour_folder[1]) - 7


def test_home_counts_follow_a_rescan_that_adds_images(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a re-scan runs, Home says its counts are from before it; once it ends, the page runs again by itself
    (the browser only reruns fragments meanwhile) and shows the new images."""
    import threading
    import time

    from PIL import Image

    import labeler.workflow.runner as runner_module
    from pages.shared import session

    labeled_workspace(data_dir, colour_folder[1])
    n_images = len(colour_folder[1])
    for index in range(3):
        Image.new("RGB", (20, 20), (40 * index, 200, 90)).save(data_dir / f"new_{index}.png")
    release = threading.Event()
    real_import = runner_module.import_folder

    def held_import(*args: object, **kwargs: object) -> object:  # the re-scan runs until the test lets it end
        assert release.wait(timeout=60)
        return real_import(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner_module, "import_folder", held_import)
    at = run_page("home")
    at.button(key="rescan").click().run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Readable images"] == str(n_images)  # the re-scan has not read the new files yet ...
    assert any("re-scan is reading the folder" in i.value for i in at.info)  # ... and the page says so
    release.set()
    wait_for_import(data_dir)
    time.sleep(session.IMAGES_VERSION_TTL_S)  # the pages read the images version at most this often
    at.run()  # in the browser the page's poll runs it (rerun_when_imported, tested below)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Readable images"] == str(n_images + 3)
    assert not any("re-scan is reading the folder" in i.value for i in at.info)
    wait_for_refresh(data_dir)  # the propagation the import asked for, not left running at exit


def test_a_page_reruns_when_an_import_changed_the_images_since_it_drew_them(data_dir: Path) -> None:
    """The poll behind the re-scan test's second half: drawn with an older images version, the page runs again
    (once: the new run draws the current one)."""

    def script() -> None:
        import streamlit as st

        from pages.shared import jobs_panel, session

        ws = session.workspace()
        st.session_state["runs"] = st.session_state.get("runs", 0) + 1
        version, importing = jobs_panel.import_shown(ws)
        drawn = (version - 1, importing) if st.session_state.pop("stale", False) else (version, importing)
        jobs_panel.rerun_when_imported(ws, drawn)

    open_workspace(data_dir)
    at = AppTest.from_function(script, default_timeout=30)
    at.session_state["stale"] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["runs"] == 2
    at.run()
    assert at.session_state["runs"] == 3  # up to date: no rerun


def test_labels_from_outside_the_app_are_propagated_without_a_click(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    """A label written by `labeler label` (or an audit by `labeler audit`) while the app is open: the page
    notices the store is ahead of the saved propagation and catches up, instead of saying so forever."""
    ws = labeled_workspace(data_dir, colour_folder[1])
    green = next(c.id for c in ws.store.classes() if c.name == "green")
    unlabeled = next(r for r in ws.records() if r.id not in ws.store.human_labels())
    ws.store.set_labels([unlabeled.id], green, "cli")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()  # the entry script: its sidebar, on every page, is what notices (run_page runs a page alone)
    assert not at.exception
    wait_for_refresh(data_dir)
    state = load_state(ws)
    assert state is not None
    assert state.labels_version == ws.store.labels_version()
    assert not any("catching up" in c.value for c in run_page("home").caption)
    ws.store.set_labels([unlabeled.id], next(c.id for c in ws.store.classes() if c.name == "red"), "cli")
    run_page("home")  # a page alone, without the entry script's sidebar: nothing catches up
    wait_for_refresh(data_dir)
    assert load_state(ws).labels_version != ws.store.labels_version()  # type: ignore[union-attr]




# ----------------------------------------------------------------------------------------------- map


def test_map_selection_defaults_to_its_majority_and_can_leave_images_out(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    truth = colour_folder[1]
    ws = labeled_workspace(data_dir, truth)
    state = load_state(ws)
    assert state is not None
    free = label_queue.unlabeled_rows(ws)
    blue = [r for r in free if truth[state.paths[r]] == "blue"][:5]
    green = [r for r in free if truth[state.paths[r]] == "green"][:1]
    assert [state.class_names[state.label[r]] for r in blue + green] == ["blue"] * 5 + ["green"]
    at = open_selection(green + blue)
    assert not at.exception, [e.value for e in at.exception]
    chooser = at.selectbox[0]
    assert chooser.label == "Label all selected as"
    assert chooser.value.name == "blue"  # the selection's majority, not the first class
    keep = [c for c in at.checkbox if c.key.startswith("map_keep_")]
    assert keep[0].label == "green"  # the odd one out comes first
    keep[0].uncheck().run()
    (button,) = [b for b in at.button if b.key == "map_label"]
    assert button.label == "Label 5 images"
    button.click().run()
    labels = ws.store.human_labels()
    ids = {c.name: c.id for c in ws.store.classes()}
    assert all(labels[state.image_ids[r]] == ids["blue"] for r in blue)
    assert state.image_ids[green[0]] not in labels


def test_map_undo_refuses_when_someone_relabeled_since_and_says_so(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    truth = colour_folder[1]
    ws = labeled_workspace(data_dir, truth)
    state = load_state(ws)
    assert state is not None
    blue = [r for r in label_queue.unlabeled_rows(ws) if truth[state.paths[r]] == "blue"][:3]
    at = open_selection(blue)
    at.button(key="map_label").click().run()
    ids = {c.name: c.id for c in ws.store.classes()}
    ws.store.set_labels([state.image_ids[blue[0]]], ids["green"], "someone#else")  # another tab, since
    at.button(key="map_undo").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (toast,) = [t.value for t in at.toast]
    assert toast == "Cannot undo\\: 1 image of that action was relabeled since by someone\\#else; undo would " \
        "overwrite their work\\."  # (escaped for Markdown)
    labels = ws.store.human_labels()
    assert [labels[state.image_ids[r]] for r in blue] == [ids["green"], ids["blue"], ids["blue"]]  # nothing reverted
    ws.store.undo("someone#else")  # their label goes: now this tab's action may be undone
    at.button(key="map_undo").click().run()
    assert [t.value for t in at.toast] == ["Undone: 3 images → blue."]
    assert not set(state.image_ids[r] for r in blue) & set(ws.store.human_labels())


def test_map_keys_say_why_they_did_nothing_without_a_selection(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    """l and v (the buttons' shortcuts) with nothing selected: a toast says why, and nothing is stored."""
    ws = labeled_workspace(data_dir, colour_folder[1], with_map=True)
    before = ws.store.human_labels()
    at = run_page("map")
    for key in ("map_label", "map_review"):
        button = at.button(key=key)
        assert not button.disabled  # a disabled button's key would do nothing, silently
        button.click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert [t.value for t in at.toast] == [
            "Nothing selected: draw a lasso or a box around points on the map first."]
    assert ws.store.human_labels() == before


def test_map_keys_say_why_when_every_selected_image_has_a_human_label(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    ws = labeled_workspace(data_dir, colour_folder[1])
    state = load_state(ws)
    assert state is not None
    before = ws.store.human_labels()
    humans = [r for r in range(len(state.label)) if state.image_ids[r] in before][:2]
    at = open_selection(humans)
    at.button(key="map_label").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (toast,) = [t.value for t in at.toast]
    assert toast.startswith("All 2 selected images already have a human label")
    at.button(key="map_review").click().run()
    said = at.toast[-1].value.replace("\\", "")  # the toast's text is escaped for markdown
    assert said.startswith("Nothing sent to review. Not the 2 human labels in the selection")
    assert ws.store.human_labels() == before


def test_map_keys_say_why_when_every_selected_image_is_left_out(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    ws = labeled_workspace(data_dir, colour_folder[1])
    free = label_queue.unlabeled_rows(ws)[:2]
    before = ws.store.human_labels()
    at = open_selection(free)
    for box in [c for c in at.checkbox if c.key.startswith("map_keep_")]:
        box.uncheck()
    at.run()
    at.button(key="map_label").click().run()
    assert [t.value for t in at.toast] == ["Every selected image is left out: tick the ones to act on."]
    assert ws.store.human_labels() == before


def _said(at: AppTest) -> list[str]:
    """The toasts, unescaped (the page escapes Markdown in them)."""
    return [t.value.replace("\\", "") for t in at.toast]


def test_map_left_out_images_stay_left_out_by_image_when_the_state_changes(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    """Images left out stay left out when another tab labels one of the selection and a new propagation lands
    (the selection's human labels change), when the selection changes, and only those are left out."""
    truth = colour_folder[1]
    ws = labeled_workspace(data_dir, truth)
    state = load_state(ws)
    assert state is not None
    ids = {c.name: c.id for c in ws.store.classes()}
    blue = [r for r in label_queue.unlabeled_rows(ws) if truth[state.paths[r]] == "blue"][:7]
    out = [int(state.image_ids[r]) for r in blue[:2]]
    at = open_selection(blue[:6])
    for image_id in out:
        at.checkbox(key=f"map_keep_{image_id}").uncheck()
    at.run()
    ws.store.set_labels([state.image_ids[blue[5]]], ids["blue"], "someone#else")  # another tab, meanwhile
    refresh(ws, compute_map=False)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [at.checkbox(key=f"map_keep_{i}").value for i in out] == [False, False]
    at.button(key="map_label").click().run()
    assert _said(at) == ["3 images labeled blue (Undo reverts them). Left as they were: 2 left out, 1 human label "
                         "already blue."]
    labels = ws.store.human_labels()
    assert not set(out) & set(labels)
    assert all(labels[state.image_ids[r]] == ids["blue"] for r in blue[2:6])
    # Another selection that holds one of them: it shows unticked, and can be put back.
    at.session_state["rows"] = [blue[6], blue[1]]
    at.run()
    assert at.checkbox(key=f"map_keep_{out[1]}").value is False
    assert at.button(key="map_label").label == "Label 1 image"
    at.button(key="map_put_back").click().run()
    assert at.checkbox(key=f"map_keep_{out[1]}").value is True
    assert at.button(key="map_label").label == "Label 2 images"


def test_map_keeps_a_selection_across_redraws_until_cleared(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    """A selection picked on a drawing of the map that is gone (a propagation landed since) stays selected on
    the new map (drawn as selected), also through another redraw (a new colouring), until Clear selection."""
    from labeler.workflow.map_selection import KeptSelection
    from pages.shared import map_view

    ws = labeled_workspace(data_dir, colour_folder[1], with_map=True)
    state = load_state(ws)
    assert state is not None
    rows = label_queue.unlabeled_rows(ws)[:3]
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/map.py")
    at.session_state[map_view.SELECTION] = KeptSelection(("a drawing since gone",),
                                                         tuple(int(state.image_ids[r]) for r in rows))

    def drawn_selected() -> list[int]:
        spec = json.loads(at.get("plotly_chart")[0].proto.spec)
        return sorted(int(typed_array(t["customdata"])[i, 0]) for t in spec["data"]
                      for i in typed_array(t.get("selectedpoints", [])))

    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [h.value for h in at.subheader] == ["3 selected"]
    assert any("kept from before the map was redrawn" in c.value for c in at.caption)
    assert drawn_selected() == sorted(rows)
    at.segmented_control(key="widget:map:colour").set_value("confidence").run()
    assert [h.value for h in at.subheader] == ["3 selected"]
    assert drawn_selected() == sorted(rows)
    at.button(key="map_clear_selection").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [h.value for h in at.subheader] == []
    assert drawn_selected() == []
    assert any(c.value.startswith("Draw a lasso") for c in at.caption)


def test_map_bulk_label_relabels_the_human_labels_in_a_selection_only_when_asked(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    truth = colour_folder[1]
    ws = labeled_workspace(data_dir, truth)
    state = load_state(ws)
    assert state is not None
    ids = {c.name: c.id for c in ws.store.classes()}
    blue = [r for r in label_queue.unlabeled_rows(ws) if truth[state.paths[r]] == "blue"][:4]
    wrong = [int(state.image_ids[r]) for r in blue[:2]]
    ws.store.set_labels(wrong, ids["green"], "earlier#tab")  # two blue images labeled green by mistake
    at = open_selection(blue)
    (box,) = [c for c in at.checkbox if c.key.startswith("map_relabel_humans_")]
    assert (box.label, box.value) == ("Also relabel the 2 human labels", False)
    assert at.selectbox[0].value.name == "blue"
    at.button(key="map_label").click().run()
    assert _said(at) == ["2 images labeled blue (Undo reverts them). Left as they were: 2 human labels of other "
                         "classes (tick Also relabel to change them)."]
    assert [ws.store.human_labels()[i] for i in wrong] == [ids["green"]] * 2
    at.checkbox(key=box.key).check().run()
    assert at.checkbox(key=box.key).label == "Also relabel the 4 human labels"
    at.button(key="map_label").click().run()
    assert _said(at) == ["2 images labeled blue, 2 human labels among them (Undo reverts them). Left as they were: "
                         "2 human labels already blue."]
    labels = ws.store.human_labels()
    assert [labels[state.image_ids[r]] for r in blue] == [ids["blue"]] * 4
    at.button(key="map_undo").click().run()  # one action: the two corrections go back together
    labels = ws.store.human_labels()
    assert [labels[state.image_ids[r]] for r in blue] == [ids["green"]] * 2 + [ids["blue"]] * 2


def inspector_script() -> None:
    """The map's single-image inspector and selection panel, as the page shows them after a click."""
    import sys

    import streamlit as st

    sys.path.insert(0, st.session_state["root"])
    from pages.shared import map_view, session

    ws = session.require_images()
    state = session.state(ws)
    assert state is not None
    human = ws.store.human_labels()
    map_view.inspector(ws, state, st.session_state["row"], human)
    map_view.selection_panel(ws, state, [st.session_state["row"]], human)


def test_map_inspector_changes_a_human_label_as_one_undoable_action(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    ws = labeled_workspace(data_dir, colour_folder[1])
    state = load_state(ws)
    assert state is not None
    ids = {c.name: c.id for c in ws.store.classes()}
    row = next(r for r in range(len(state.label)) if ws.store.human_labels().get(int(state.image_ids[r])) == ids["red"])
    image_id, path = int(state.image_ids[row]), state.paths[row]
    at = AppTest.from_function(inspector_script, default_timeout=60)
    at.session_state["root"] = str(ROOT)
    at.session_state["row"] = row
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    chooser = at.selectbox(key=f"map_human_{image_id}")
    assert chooser.value.name == "red"
    at.button(key="map_change").click().run()
    assert _said(at) == [f"{path} is already red: choose another class first."]
    green = next(c for c in ws.store.classes() if c.name == "green")
    at.selectbox(key=f"map_human_{image_id}").set_value(green).run()  # (an element of this run, not the last)
    assert ws.store.human_labels()[image_id] == ids["red"]  # choosing changes nothing yet
    at.button(key="map_change").click().run()
    assert _said(at) == [f"{path}: red → green (Undo reverts it)."]
    assert ws.store.human_labels()[image_id] == ids["green"]
    at.button(key="map_undo").click().run()
    assert ws.store.human_labels()[image_id] == ids["red"]


def test_map_hover_sends_the_thumbnail_of_the_point_under_the_pointer(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    from pages.shared.keyboard_labeler import thumbnail_data_url

    ws = labeled_workspace(data_dir, colour_folder[1], with_map=True)
    state = load_state(ws)
    assert state is not None
    at = run_page("map")
    assert widget_data(at, "map_hover")["row"] is None  # nothing hovered yet: no thumbnail sent
    chart = at.get("plotly_chart")[0].proto.spec
    row = int(np.flatnonzero(state.source == "propagated")[0])
    at.session_state["map_hover"] = {"hover": row}  # what the browser sends when the pointer is on that point
    at.run()
    sent = widget_data(at, "map_hover")
    assert sent["row"] == row
    assert sent["thumb"] == thumbnail_data_url(ws.thumbnails()[row], max_px=128)
    name = state.class_names[state.label[row]]
    assert sent["caption"] == f"{state.paths[row]} · {name} · propagated · {state.confidence[row]:.0%}"
    assert at.get("plotly_chart")[0].proto.spec == chart  # the chart is not redrawn
    at.session_state["map_hover"] = {"hover": len(state.label)}  # not a row of the map: ignored
    at.run()
    assert widget_data(at, "map_hover")["row"] is None


def test_needs_review_colours_what_the_review_queue_picks(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    ws = labeled_workspace(data_dir, colour_folder[1], with_map=True)
    state = load_state(ws)
    assert state is not None
    at = run_page("map")
    at.segmented_control(key="widget:map:colour").set_value("needs review").run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    marked = next(t for t in spec["data"] if t["name"].endswith("in the review queue"))
    picked = [row for row, _ in label_queue.review_rows(ws, state, 100)]
    assert sorted(int(r) for r in typed_array(marked["customdata"])[:, 0]) == sorted(picked)
    assert marked["name"] == f"next {len(picked)} in the review queue"


# ----------------------------------------------------------------------------------------------- export


def test_export_preview_says_how_many_rows_it_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import make_colour_folder

    root = tmp_path / "big"
    truth = make_colour_folder(root, per_class=70, size=8)
    monkeypatch.setenv("LABELER_DATA_DIR", str(root))
    labeled_workspace(root, truth)
    at = run_page("export")
    assert len(at.dataframe[0].value) == 200
    assert any(c.value == "Preview: the first 200 of 210 rows. The download holds all 210." for c in at.caption)
    frame = at.dataframe[0].value
    assert "representation" in frame.columns
    assert "embedding" not in frame.columns
    assert not any(str(v).startswith("-0") for v in frame["entropy"])


def test_export_page_lists_the_files_removed_since_the_import(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    truth = colour_folder[1]
    ws = labeled_workspace(data_dir, truth)
    labeled = {r.id: r.path for r in ws.records()}
    gone = labeled[next(iter(ws.store.human_labels()))]
    (data_dir / gone).unlink()
    ws.import_folder()
    at = run_page("export")
    (expander,) = [e for e in at.expander if "removed from the folder" in e.label]
    assert expander.label == "1 file removed from the folder since the import is not in the CSV (1 with a human " \
        "label)"
    assert expander.dataframe[0].value.values.tolist() == [[gone, truth[gone]]]
    assert gone not in set(at.dataframe[0].value["path"])


# ----------------------------------------------------------------------------------------------- read-only folder


def test_a_read_only_folder_gets_its_workspace_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pages.shared import session

    folder = tmp_path / "photos"
    folder.mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode: not (mode & os.W_OK))  # nothing writable
    chosen = session.workspace_dir_for(folder, None)
    assert chosen == session.fallback_workspace(folder)
    assert chosen is not None
    assert folder not in chosen.parents
    assert session.workspace_dir_for(folder, tmp_path / "given") == tmp_path / "given"
    monkeypatch.setattr(os, "access", lambda path, mode: True)
    assert session.workspace_dir_for(folder, None) is None  # the default DATA_DIR/.labeler




def test_home_says_where_the_workspace_of_a_read_only_folder_is(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pages.shared import session
    from pages.shared.text import plain

    open_workspace(data_dir)  # the folder's own workspace, made while it was writable
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    really = os.access

    def access(path: object, mode: int) -> bool:  # the data folder and everything in it: read-only
        inside = Path(str(path)) == data_dir or data_dir in Path(str(path)).parents
        return not (mode & os.W_OK and inside) and really(path, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", access)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    elsewhere = session.fallback_workspace(data_dir)
    assert tmp_path / "home" / ".cache" / "labeler" / "workspaces" in elsewhere.parents
    (said,) = [i.value for i in at.info if "is read-only" in i.value]
    assert f"keeps its labels and caches in {plain(elsewhere)}" in said
    assert f"own workspace {plain(data_dir / '.labeler')} cannot be written here and is not used" in said


# ----------------------------------------------------------------------------------------------- filters, jobs, demos


def test_label_page_filter_keeps_the_queue_to_one_class(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    truth = colour_folder[1]
    ws = labeled_workspace(data_dir, truth)
    at = run_page("label")
    at.multiselect(key="widget:label:filter_classes").select("blue").run()
    assert not at.exception, [e.value for e in at.exception]
    paths = {r.id: r.path for r in ws.records()}
    data = next(n for n in at.main if n.proto.__class__.__name__ == "BidiComponent")
    items = json.loads(data.proto.json)["items"]
    assert items
    assert {truth[paths[int(item["id"].split(":")[0])]] for item in items} == {"blue"}
    grid = [b for b in at.button_group if b.key.startswith("pick_")]
    assert {truth[paths[int(b.key.removeprefix("pick_"))]] for b in grid} == {"blue"}
    assert any(c.value.startswith("Filter: class blue") for c in at.caption)
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/label.py").run()  # the filter outlives a page change
    assert at.multiselect(key="widget:label:filter_classes").value == ["blue"]


def test_identical_jobs_collapse_into_one_line_with_times() -> None:
    from labeler.store import Job
    from pages.shared import jobs_panel

    def job(i: int, status: str = "done", message: str = "labels propagated") -> Job:
        return Job(i, "refresh", status, 1.0, message, None, False, 1000.0 + i, 1000.0 + i, 1001.0 + i)

    groups = jobs_panel.collapse([job(9, "running", "spreading"), job(8), job(7), job(6), job(5, message="x")])
    assert [(g.latest.id, g.count) for g in groups] == [(9, 1), (8, 3), (5, 1)]
    line = jobs_panel.describe(groups[1])
    assert line.startswith("refresh · done · labels propagated · ")
    assert line.endswith(f"(3 runs since {jobs_panel.clock(1007.0)})")
    # Refreshes and maps taking turns after each label: one line per kind, not one per job. A failure keeps its
    # place (and its own line).
    def of(i: int, kind: str, status: str = "done") -> Job:
        return Job(i, kind, status, 1.0, "ok", "boom" if status == "failed" else None, False, 1000.0 + i,
                   1000.0 + i, 1001.0 + i)

    turns = [of(9, "refresh"), of(8, "map"), of(7, "refresh"), of(6, "map"), of(5, "refresh", "failed"),
             of(4, "refresh"), of(3, "map")]
    assert [(g.latest.id, g.count) for g in jobs_panel.collapse(turns)] == [(9, 3), (8, 3), (5, 1)]


def test_a_failed_job_says_how_it_runs_again_and_is_history_once_one_succeeds(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    # A user saw "refresh failed …; it can be retried" on Home, with no way named, and long after later runs worked.
    ws = open_workspace(data_dir)
    failed = ws.store.create_job("train")
    ws.store.update_job(failed, status="failed", error="RuntimeError: out of memory")
    at = run_page("home")
    said = [e.value for e in at.error if "train failed at" in e.value]
    assert len(said) == 1
    assert said[0].endswith("Every label is kept; start training again on the Model page.")

    done = ws.store.create_job("train")
    ws.store.update_job(done, status="done", message="trained")
    at = run_page("home")
    assert not [e.value for e in at.error if "train failed at" in e.value]
    assert any("a later train succeeded" in c.value for c in at.caption)
    said = [line for line in status_lines(ws) if line.startswith(f"job {failed} train: failed")]
    assert said == [f"job {failed} train: failed 0% RuntimeError: out of memory (a later train succeeded)"]


def test_teaching_demos_draw_without_webgl(data_dir: Path) -> None:
    at = run_page("teaching")
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    assert specs
    assert {trace["type"] for spec in specs for trace in spec["data"]} == {"scatter"}
    titles = [spec["layout"].get("title", {}).get("text", "") for spec in specs]
    (flag,) = [spec for spec, title in zip(specs, titles, strict=True) if title.startswith("new-class flag")]
    crosses = next(t for t in flag["data"] if t["name"] == "flagged")
    assert crosses["marker"]["symbol"] == "x"
    assert titles.count("true classes") == 4  # every demo shows the truth beside what the methods made of it


def test_map_counts_agree_with_the_sidebar_when_images_are_audited(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    # The sidebar counts the propagated images answered blind apart ("· 2 audited"); the map's caption did not, so
    # one screen said two numbers of propagated labels.
    truth = colour_folder[1]
    ws = labeled_workspace(data_dir, truth, with_map=True)
    state = load_state(ws)
    assert state is not None
    ids = {c.name: c.id for c in ws.store.classes()}
    rows = label_queue.unlabeled_rows(ws)[:2]
    for row in rows:
        ws.store.record_audit(int(state.image_ids[row]), ids[truth[state.paths[row]]], None, None, "tester")
    refresh(ws, compute_map=True)
    at = run_page("map")
    state = load_state(ws)
    assert state is not None
    sidebar = label_counts(state.image_ids, ws.store.human_labels(), ws.store.classes(), state,
                           ws.store.labels_version(), [a["image_id"] for a in ws.store.audits()])
    assert sidebar.summary().startswith(f"6 human · {sidebar.propagated} propagated · 2 audited")
    assert any(c.value.startswith(f"6 human (diamonds) · {sidebar.propagated} propagated (fainter = less "
                                  "confident) · 2 audited") for c in at.caption)
