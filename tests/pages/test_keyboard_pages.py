"""The Label and Review pages driven through their keyboard widget: each event labels the image it names, in
order; skips and undos are kept by image, per browser tab."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from page_helpers import (  # noqa: F401  (data_dir_fixture: the data_dir fixture)
    APP,
    CLASSES,
    ROOT,
    data_dir_fixture,
    image_id_of,
    key_help_data,
    labeled_workspace,
    open_workspace,
    press,
    run_page,
    wait_for_refresh,
    widget_data,
)
from streamlit.testing.v1 import AppTest

from labeler.workflow import label_queue
from labeler.workflow.state import load_state, save_state
from pages.shared.key_help import silent_key_text
from pages.shared.text import plain

# ----------------------------------------------------------------------------------------------- label


def test_label_by_keys_typed_ahead_then_undo(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    ws = open_workspace(data_dir)
    for name in CLASSES:
        ws.store.add_class(name)
    classes = {c.name: c.id for c in ws.store.classes()}
    at = run_page("label")
    data = widget_data(at, "label_keys")
    assert [(c["name"], c["key"]) for c in data["classes"]] == [("red", "1"), ("green", "2"), ("blue", "3")]
    first, second, third = (item["id"] for item in data["items"][:3])
    # Three presses typed ahead: each labels the image that was on screen when it was pressed, in order.
    press(at, "label_keys", [(first, "label", "green"), (second, "label", "blue"), (third, "skip", None)])
    assert ws.store.human_labels() == {image_id_of(first): classes["green"], image_id_of(second): classes["blue"]}
    shown = [item["id"] for item in widget_data(at, "label_keys")["items"]]
    assert not {first, second, third} & set(shown)  # labeled and skipped images have left the queue
    press(at, "label_keys", [(second, "undo", None)])
    assert ws.store.human_labels() == {image_id_of(first): classes["green"]}
    assert widget_data(at, "label_keys")["items"][0]["id"] == second  # the undone image comes back first
    wait_for_refresh(data_dir)
    state = load_state(ws)
    assert state is not None
    assert state.counts["human"] == 1


def test_grid_pills_label_and_the_card_stays_in_place(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    ws = open_workspace(data_dir)
    for name in CLASSES:
        ws.store.add_class(name)
    blue = next(c.id for c in ws.store.classes() if c.name == "blue")
    at = run_page("label")
    pills = [b for b in at.button_group if b.key.startswith("pick_")]
    before = [b.key for b in pills]
    pills[1].set_value(blue)
    at.run()
    image_id = int(before[1].removeprefix("pick_"))
    assert ws.store.human_labels() == {image_id: blue}
    after = [b for b in at.button_group if b.key.startswith("pick_")]
    assert [b.key for b in after] == before  # no card moved under the pointer
    assert after[1].disabled
    assert any(c.value == "✓ labeled blue" for c in at.caption)


def test_skip_is_kept_by_image_not_row_across_a_rescan(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    ws = open_workspace(data_dir)
    for name in CLASSES:
        ws.store.add_class(name)
    at = run_page("label")
    skipped = widget_data(at, "label_keys")["items"][0]["id"]
    press(at, "label_keys", [(skipped, "skip", None)])
    # A new file that sorts first renumbers every row; the skip still names the same image.
    from PIL import Image

    Image.new("RGB", (20, 20), (10, 10, 10)).save(data_dir / "aaa_first.png")
    ws.import_folder()
    at.run()
    assert at.session_state["skipped_images"] == {skipped}
    record = next(r for r in ws.records() if r.id == image_id_of(skipped))
    assert skipped == f"{record.id}:{record.sha256[:16]}"
    assert skipped not in [item["id"] for item in widget_data(at, "label_keys")["items"]]


def test_each_tab_undoes_only_its_own_labels(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    ws = open_workspace(data_dir)
    for name in CLASSES:
        ws.store.add_class(name)
    tab_a, tab_b = run_page("label"), run_page("label")
    item_a = widget_data(tab_a, "label_keys")["items"][0]["id"]
    press(tab_a, "label_keys", [(item_a, "label", "red")])
    item_b = next(i["id"] for i in widget_data(tab_b, "label_keys")["items"] if i["id"] != item_a)
    press(tab_b, "label_keys", [(item_b, "label", "blue")])
    assert tab_a.session_state["annotator"] != tab_b.session_state["annotator"]
    toasts = press(tab_a, "label_keys", [(item_b, "undo", None)])  # tab A cannot undo tab B's label
    assert image_id_of(item_b) in ws.store.human_labels()
    assert any("not undone" in toast for toast in toasts)
    press(tab_a, "label_keys", [(item_a, "undo", None)])
    assert set(ws.store.human_labels()) == {image_id_of(item_b)}


def test_a_reload_is_the_same_tab_and_undoes_its_earlier_labels(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    ws = open_workspace(data_dir)
    for name in CLASSES:
        ws.store.add_class(name)
    tab = run_page("label")
    tab_id = tab.query_params["tab"]
    assert tab.session_state["annotator"].endswith(f"#{tab_id}")
    first, second = [item["id"] for item in widget_data(tab, "label_keys")["items"][:2]]
    press(tab, "label_keys", [(first, "label", "red"), (second, "label", "green")])
    tab.switch_page("pages/home.py").run()
    assert tab.query_params["tab"] == tab_id  # kept in the address bar across a page switch

    reloaded = AppTest.from_file(APP, default_timeout=60)  # a reload: a new session with the same address
    reloaded.query_params["tab"] = tab_id
    reloaded.switch_page("pages/label.py").run()
    assert reloaded.session_state["annotator"] == tab.session_state["annotator"]
    other = run_page("label")  # another tab: no id in its address, so an id of its own
    assert other.query_params["tab"] != tab_id
    assert other.session_state["annotator"] != tab.session_state["annotator"]
    forged = AppTest.from_file(APP, default_timeout=60)
    forged.query_params["tab"] = "x'; --"
    forged.run()
    assert forged.query_params["tab"] != "x'; --"  # not an id: replaced by a fresh one

    toasts = press(other, "label_keys", [(second, "undo", None)])
    assert any("not undone" in toast for toast in toasts)
    # The other tab's widget has nothing of its own to undo: it asks for the tab's earlier action, and there is none.
    assert widget_data(other, "label_keys")["undo_earlier"] is True
    assert press(other, "label_keys", [("", "undo", None)]) == ["Nothing of yours to undo on this page\\."]
    assert len(ws.store.human_labels()) == 2  # the other tab's undos touched nothing
    # The reloaded widget does not know the labels of before the reload; the store does, by the tab's annotator.
    press(reloaded, "label_keys", [("", "undo", None)])
    assert set(ws.store.human_labels()) == {image_id_of(first)}  # the reloaded tab undid its own label from before
    assert widget_data(reloaded, "label_keys")["items"][0]["id"] == second  # and shows that image again
    reloaded.switch_page("pages/map.py").run()
    assert not reloaded.exception, [e.value for e in reloaded.exception]


def test_labels_propagate_in_the_background(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    truth = colour_folder[1]
    ws = open_workspace(data_dir)
    for name in CLASSES:
        ws.store.add_class(name)
    at = run_page("label")
    seen: set[str] = set()
    paths = {r.id: r.path for r in ws.records()}
    events = []
    for item in widget_data(at, "label_keys")["items"]:  # one true label per class among the first images
        name = truth[paths[image_id_of(item["id"])]]
        events.append((item["id"], "skip" if name in seen else "label", None if name in seen else name))
        seen.add(name)
    assert seen == set(CLASSES)
    press(at, "label_keys", events)
    assert len(ws.store.human_labels()) == 3
    wait_for_refresh(data_dir)
    at = run_page("home")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Propagated"] == str(len(truth) - 3)


# ----------------------------------------------------------------------------------------------- review


def open_view(page: str, view: str) -> AppTest:
    at = run_page(page)
    at.segmented_control(key="widget:review:view").set_value(view).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_review_accepts_the_proposal_with_one_key_or_takes_another_class(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    ws = labeled_workspace(data_dir, colour_folder[1])
    state = load_state(ws)
    assert state is not None
    at = open_view("review", "Least certain")
    data = widget_data(at, "review_keys")
    accept = data["classes"][0]
    assert (accept["name"], accept["key"]) == ("✓ Accept the proposal", "a")
    first, second = data["items"][0], data["items"][1]
    proposed = int(first["id"].split("|")[1])
    row = list(state.image_ids).index(image_id_of(first["id"]))
    assert proposed == state.class_ids[state.label[row]]
    assert f"proposal: {state.class_names[state.label[row]]}" in first["caption"]
    before = ws.store.human_labels()
    press(at, "review_keys", [(first["id"], "label", accept["name"]), (second["id"], "label", "green")])
    added = {k: v for k, v in ws.store.human_labels().items() if k not in before}
    green = next(c.id for c in ws.store.classes() if c.name == "green")
    assert added == {image_id_of(first["id"]): proposed, image_id_of(second["id"]): green}
    shown = [item["id"].split("|")[0] for item in widget_data(at, "review_keys")["items"]]
    assert not {first["id"].split("|")[0], second["id"].split("|")[0]} & set(shown)
    # A reload of this tab: its widget knows nothing of before, the store does (this tab's annotator).
    reloaded = AppTest.from_file(APP, default_timeout=60)
    reloaded.query_params["tab"] = at.query_params["tab"]
    reloaded.switch_page("pages/review.py").run()
    reloaded.segmented_control(key="widget:review:view").set_value("Least certain").run()
    press(reloaded, "review_keys", [("", "undo", None)])
    assert set(ws.store.human_labels()) == set(before) | {image_id_of(first["id"])}  # the last one (second) undone
    assert widget_data(reloaded, "review_keys")["items"][0]["id"].split("|")[0] == second["id"].split("|")[0]


def test_blind_audit_answers_in_a_row_with_the_estimate_in_view(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    truth = colour_folder[1]
    ws = labeled_workspace(data_dir, truth)
    state = load_state(ws)
    assert state is not None
    at = open_view("review", "Blind audit")
    items = widget_data(at, "audit_keys")["items"]
    assert all("proposal" not in item["caption"] for item in items)  # blind: no propagated label shown
    paths = {r.id: r.path for r in ws.records()}
    # Nor the file name: a folder or file named after a class would give the answer away.
    assert not any(path in item["caption"] or path == item["name"] for item in items for path in paths.values())
    assert items[0]["name"] == "audit image 1"
    answers = [(item["id"], "label", truth[paths[image_id_of(item["id"])]]) for item in items[:3]]
    press(at, "audit_keys", answers)
    audits = {a["image_id"]: a for a in ws.store.audits()}
    assert set(audits) == {image_id_of(item_id) for item_id, _, _ in answers}
    names = {c.id: c.name for c in ws.store.classes()}
    assert all(names[audits[image_id_of(i)]["class_id"]] == name for i, _, name in answers)
    assert not set(audits) & set(ws.store.human_labels())  # an audit is never a seed
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Estimated accuracy of propagated labels"] == "—"  # fewer than 10 audits: no headline yet
    assert metrics["95% interval"].endswith("100%")  # but the interval of the 3 answers is in view
    assert any("Not enough audits yet for an estimate (3 of 10)" in c.value for c in at.caption)
    # Undo shows the image again first; a new answer replaces the old one.
    press(at, "audit_keys", [(items[2]["id"], "undo", None)])
    assert widget_data(at, "audit_keys")["items"][0]["id"] == items[2]["id"]
    # Ten answers: the headline is the interval, and beside it what it rests on, in counts (not the interval again).
    while len(ws.store.audits()) < 10:
        waiting = widget_data(at, "audit_keys")["items"][0]["id"]
        press(at, "audit_keys", [(waiting, "label", truth[paths[image_id_of(waiting)]])])
    metrics = {m.label: m.value for m in at.metric}
    assert re.fullmatch(r"\d+%–\d+%", metrics["Estimated accuracy of propagated labels"])
    assert re.fullmatch(r"(\d+) of 10", metrics["Blind audits answered right"])
    assert "95% interval" not in metrics


def test_blind_audit_adds_a_class_not_on_the_list_and_answers_the_waiting_image_with_it(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    ws = labeled_workspace(data_dir, colour_folder[1])
    at = open_view("review", "Blind audit")
    first = widget_data(at, "audit_keys")["items"][0]["id"]
    at.text_input(key="audit_new_class_name").input("purple")
    next(b for b in at.button if b.label == "Add the class").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "purple" in [c.name for c in ws.store.classes()]
    shown = widget_data(at, "audit_keys")
    assert shown["items"][0]["id"] == first  # the image waits for its answer
    assert "purple" in json.dumps(shown["classes"])  # and the new class has a key
    press(at, "audit_keys", [(first, "label", "purple")])
    purple = next(c.id for c in ws.store.classes() if c.name == "purple")
    assert [a["class_id"] for a in ws.store.audits() if a["image_id"] == image_id_of(first)] == [purple]
    assert not ws.store.human_labels().keys() & {image_id_of(first)}  # an answer, not a label


def test_possible_new_classes_show_typical_images_of_groups_without_a_label(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    ws = labeled_workspace(data_dir, colour_folder[1])  # two labels per colour: no image is far from every seed
    state = load_state(ws)
    assert state is not None
    assert state.new_class.sum() <= 2  # at most an isolated image or two (labeler.core.review.isolated)
    at = open_view("review", "Possible new classes")
    offered = at.multiselect(key="new_class_rows").options  # shown by file name
    assert offered
    labeled = {r.path for r in ws.records() if r.id in ws.store.human_labels()}
    assert not set(offered) & labeled

    # An image unlike every other (on photos, often no photo at all) leads the list, with why its label is a guess.
    odd = int(np.flatnonzero((state.source == "propagated") & ~state.new_class)[-1])
    state.isolated = np.zeros(len(state.label), dtype=bool)
    state.isolated[odd] = state.new_class[odd] = True
    save_state(ws, state)
    at = open_view("review", "Possible new classes")
    assert at.multiselect(key="new_class_rows").options[0] == state.paths[odd]
    assert any("1 image unlike every other image" in w.value for w in at.warning)


# ----------------------------------------------------------------------------------------------- keys that do nothing


def test_a_key_that_does_nothing_says_why_on_every_page(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    """Where no labeling widget answers the keys, the sidebar's key help does: with what a key means on the page,
    and, for any other key, why it does nothing there."""
    open_workspace(data_dir)
    at = run_page("label")  # no class yet: nothing to label with
    assert widget_data_or_none(at, "label_keys") is None
    said = key_help_data(at)
    assert said is not None
    assert said["keys"] == []
    assert said["silent"] == "does nothing now: define your classes on the Home page first; each gets a key."

    labeled_workspace(data_dir, colour_folder[1], with_map=True)
    at = run_page("label")
    assert key_help_data(at) is None  # the labeling widget answers every key itself
    at = AppTest.from_file(APP, default_timeout=60)  # Home, from the entry script's sidebar (AppTest keeps that
    at.run()  # sidebar only on the first page it runs)
    said = key_help_data(at)
    assert said is not None
    assert said["keys"] == []
    assert said["silent"].startswith("does nothing on this page (it has no keys)")
    assert silent_key_text([("l", "label")]) == "does nothing on this page: press ? for its keys."  # e.g. Map

    at = run_page("review")
    assert key_help_data(at) is None  # Least certain: the labeling widget
    at.segmented_control[0].set_value("Suspect human labels").run()
    said = key_help_data(at)
    assert said is not None
    assert said["keys"] == []
    assert "class keys work in Least certain and Blind audit" in said["silent"]
    at.segmented_control[0].set_value("Blind audit").run()
    assert key_help_data(at) is None


def widget_data_or_none(at: AppTest, key: str) -> dict[str, object] | None:
    try:
        return widget_data(at, key)
    except AssertionError:
        return None


def test_a_kept_suspect_label_stays_kept_in_a_new_session(colour_folder: tuple[Path, dict[str, str]],
                                                          data_dir: Path) -> None:
    from labeler.workflow.refresh import refresh

    truth = colour_folder[1]
    ws = labeled_workspace(data_dir, truth, per_class=4)
    wrong = next(r for r in ws.records() if truth[r.path] == "red" and r.id not in ws.store.human_labels())
    green = next(c.id for c in ws.classes() if c.name == "green")
    ws.store.set_labels([wrong.id], green, "tester")  # a red image labeled green
    refresh(ws, compute_map=False)
    at = open_view("review", "Suspect human labels")
    keep = [b for b in at.button if b.key == f"keep_{wrong.id}"]
    assert keep, "the wrong label is shown as suspect"
    said = [m.value for m in at.markdown if "labeled" in m.value]
    assert said == [f"{plain(wrong.path)}: labeled **green**; its neighbours' labels point to **red** far more than to "
                    "its own label"]  # in words, not a statistic
    keep[0].click().run()
    assert any("No human label is contradicted" in c.value for c in at.caption)
    assert ws.store.kept_labels() == {wrong.id: green}
    again = open_view("review", "Suspect human labels")  # a new session (another tab, or tomorrow)
    assert not [b for b in again.button if b.key == f"keep_{wrong.id}"]


def _send_to_review_script() -> None:
    import sys

    import streamlit as st

    sys.path.insert(0, st.session_state["root"])
    from pages.shared import queues, session

    queues.send_to_review(session.require_images(), st.session_state["rows"])


def test_images_sent_from_the_map_stay_first_in_review_after_a_reload(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    ws = labeled_workspace(data_dir, colour_folder[1])
    state = load_state(ws)
    assert state is not None
    sent = label_queue.unlabeled_rows(ws)[-3:]  # the last images of the folder: not what review shows first anyway
    at = AppTest.from_function(_send_to_review_script, default_timeout=60)  # what the map's button does
    at.session_state["root"], at.session_state["rows"] = str(ROOT), sent
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    # A reload of the tab: a new session, with the tab's id from the address bar.
    reloaded = AppTest.from_file(APP, default_timeout=60)
    reloaded.query_params["tab"] = at.query_params["tab"]
    reloaded.switch_page("pages/review.py").run()
    reloaded.segmented_control(key="widget:review:view").set_value("Least certain").run()
    assert not reloaded.exception, [e.value for e in reloaded.exception]
    first = [image_id_of(item["id"]) for item in widget_data(reloaded, "review_keys")["items"][:3]]
    assert sorted(first) == sorted(int(state.image_ids[row]) for row in sent)
