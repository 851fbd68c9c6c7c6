"""Each page undoes its own last action: Undo on the Map never reverts a label made on the Label page of the same
tab, nor u on the Label page a bulk label of the Map; what was undone is said, on the card and in the toast."""

from __future__ import annotations

from pathlib import Path

from page_helpers import (  # noqa: F401  (data_dir_fixture: the data_dir fixture)
    APP,
    CLASSES,
    ROOT,
    data_dir_fixture,
    image_id_of,
    labeled_workspace,
    open_selection,
    open_workspace,
    press,
    run_page,
    widget_data,
)
from streamlit.testing.v1 import AppTest

from labeler.workflow import label_queue
from labeler.workflow.state import load_state
from pages.shared.label_events import ACCEPT


def test_the_map_and_the_label_page_each_undo_their_own_action(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    truth = colour_folder[1]
    ws = labeled_workspace(data_dir, truth)
    state = load_state(ws)
    assert state is not None
    ids = {c.name: c.id for c in ws.store.classes()}
    blue = [r for r in label_queue.unlabeled_rows(ws) if truth[state.paths[r]] == "blue"][:3]
    bulk = {int(state.image_ids[r]) for r in blue}
    on_map = open_selection(blue)
    on_map.button(key="map_label").click().run()
    assert {ws.store.human_labels().get(i) for i in bulk} == {ids["blue"]}

    # The Label page of the same tab (its id in the address): u with nothing of its own leaves the bulk label alone.
    on_label = AppTest.from_file(APP, default_timeout=60)
    on_label.query_params["tab"] = on_map.query_params["tab"]
    on_label.switch_page("pages/label.py").run()
    assert on_label.session_state["annotator"] == on_map.session_state["annotator"]
    assert press(on_label, "label_keys", [("", "undo", None)]) == ["Nothing of yours to undo on this page\\."]
    assert {ws.store.human_labels().get(i) for i in bulk} == {ids["blue"]}

    # A key on the Label page, then Undo on the Map: the map's bulk label goes, the Label page's label stays.
    item = widget_data(on_label, "label_keys")["items"][0]["id"]
    press(on_label, "label_keys", [(item, "label", "red")])
    on_map.button(key="map_undo").click().run()
    assert [t.value for t in on_map.toast] == ["Undone: 3 images → blue."]
    assert ws.store.human_labels().get(image_id_of(item)) == ids["red"]
    assert not bulk & set(ws.store.human_labels())
    on_map.button(key="map_undo").click().run()
    assert [t.value for t in on_map.toast] == ["Nothing of yours to undo on the map."]
    assert ws.store.human_labels().get(image_id_of(item)) == ids["red"]
    press(on_label, "label_keys", [(item, "undo", None)])  # the Label page's own undo still reaches its label
    assert image_id_of(item) not in ws.store.human_labels()


def test_undo_of_another_pages_change_is_refused_and_says_where(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    """A bulk label of the map, one of its images then corrected on the Review page of the same tab: the map's undo
    would overwrite that correction, so it is refused, and says by whom and where."""
    truth = colour_folder[1]
    ws = labeled_workspace(data_dir, truth)
    state = load_state(ws)
    assert state is not None
    ids = {c.name: c.id for c in ws.store.classes()}
    blue = [r for r in label_queue.unlabeled_rows(ws) if truth[state.paths[r]] == "blue"][:3]
    on_map = open_selection(blue)
    on_map.button(key="map_label").click().run()
    annotator = on_map.session_state["annotator"]
    ws.store.set_labels([int(state.image_ids[blue[0]])], ids["green"], annotator, origin="review")
    on_map.button(key="map_undo").click().run()
    assert [t.value for t in on_map.toast] == [
        "Cannot undo\\: 1 image of that action was relabeled since by you \\(review\\); undo would overwrite that "
        "work\\."]
    assert [ws.store.human_labels()[int(state.image_ids[r])] for r in blue] == [ids["green"], ids["blue"], ids["blue"]]


def test_a_grid_card_says_its_label_was_undone(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    ws = open_workspace(data_dir)
    for name in CLASSES:
        ws.store.add_class(name)
    blue = next(c.id for c in ws.store.classes() if c.name == "blue")
    at = run_page("label")
    pills = [b for b in at.button_group if b.key.startswith("pick_")]
    pills[1].set_value(blue)
    at.run()
    image_id = int(pills[1].key.removeprefix("pick_"))
    assert ws.store.human_labels() == {image_id: blue}
    # u with nothing of the widget's own to undo: the page's last action, the click on the card.
    toasts = press(at, "label_keys", [("", "undo", None)])
    assert ws.store.human_labels() == {}
    assert any(toast.startswith("Undone: ") and toast.endswith(" → blue.") for toast in toasts), toasts
    card = at.button_group(key=f"pick_{image_id}")
    assert card.value is None  # the class picked before no longer looks chosen
    assert not card.disabled  # and the card can be labeled again
    assert any(c.value == "↩ label undone" for c in at.caption)
    card.set_value(blue)
    at.run()
    assert ws.store.human_labels() == {image_id: blue}
    assert not any(c.value == "↩ label undone" for c in at.caption)
    assert any(c.value == "✓ labeled blue" for c in at.caption)


def test_review_says_an_accept_was_an_accept(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    """The widget is told which of its buttons accepts and what each image's proposal is, so that its message
    reads "→ blue (accepted)", not "→ ✓ Accept the proposal"."""
    ws = labeled_workspace(data_dir, colour_folder[1])
    state = load_state(ws)
    assert state is not None
    at = run_page("review")
    at.segmented_control(key="widget:review:view").set_value("Least certain").run()
    data = widget_data(at, "review_keys")
    assert data["accept"] == ACCEPT
    names = {c.id: c.name for c in ws.store.classes()}
    for item in data["items"]:
        assert item["proposal"] == names[int(item["id"].split("|")[1])]
