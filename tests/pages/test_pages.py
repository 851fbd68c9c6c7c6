"""AppTest for every page of the app, on a small image folder built in the test.

Interactions click the real widgets and check what landed in the store; propagation runs through the app's own
background runner (waited for) or synchronously, as each test needs.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
from page_helpers import (  # noqa: F401  (data_dir_fixture: the data_dir fixture)
    CLASSES,
    PAGES,
    data_dir_fixture,
    labeled_workspace,
    open_workspace,
    run_page,
    typed_array,
    wait_for_import,
    widget_data,
)

from labeler.config import Settings
from labeler.workflow import export, report
from labeler.workflow import label_queue as label_queue_rules
from labeler.workflow.refresh import refresh
from labeler.workflow.runner import JobRunner
from labeler.workflow.state import load_state, save_state
from labeler.workflow.workspace import Workspace
from pages.shared import figures, queues, session

# ----------------------------------------------------------------------------------------------- every page


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_a_fresh_folder(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path, page: str
) -> None:
    at = run_page(page)
    if page == "home":
        n_images = str(len(colour_folder[1]))
        assert any(m.label == "Readable images" and m.value == n_images for m in at.metric)
    if page == "label":
        assert any("Define your classes" in i.value for i in at.info)


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_labels_and_propagation(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path, page: str
) -> None:
    labeled_workspace(data_dir, colour_folder[1])
    run_page(page)


# ----------------------------------------------------------------------------------------------- label


def test_label_page_suggests_a_typical_image_of_a_group_nobody_labeled(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    truth = colour_folder[1]
    ws = open_workspace(data_dir)
    ids = {info.name: info.id for info in (ws.store.add_class(name) for name in CLASSES)}
    for name in ("red", "green"):  # blue: no label yet
        rows = [r for r in ws.records() if truth[r.path] == name][:2]
        ws.store.set_labels([r.id for r in rows], ids[name], "tester")
    refresh(ws, compute_map=False)
    at = run_page("label")
    reasons = at.session_state[queues.LABEL_QUEUE]["reasons"]
    typical = [key for key, why in reasons.items() if why == "typical of an unlabeled cluster"]
    assert typical  # the Label page passes its clusters to the queue
    by_key = {label_queue_rules.image_key(r): r for r in ws.records()}
    assert any(truth[by_key[key].path] == "blue" for key in reasons)
    # The cards say why in words, not by the statistic's name.
    notes = [item["caption"].partition(" · ")[2] for item in widget_data(at, "label_keys")["items"]]
    assert not set(notes) & set(queues.REASON_WORDS)
    assert set(notes) & set(queues.REASON_WORDS.values())


# ----------------------------------------------------------------------------------------------- home


def test_home_adds_a_class_and_refuses_a_formula_name(data_dir: Path) -> None:
    at = run_page("home")
    at.text_input(key="new_class_name").input("cat")
    next(b for b in at.button if b.label == "Add class").click()
    at.run()
    at.text_input(key="new_class_name").input("dog")
    next(b for b in at.button if b.label == "Add class").click()
    at.run()
    classes = open_workspace(data_dir).store.classes()
    assert [(c.name, c.hotkey) for c in classes] == [("cat", "1"), ("dog", "2")]
    assert classes[0].colour != classes[1].colour  # each new class starts from its own colour

    at.text_input(key="new_class_name").input("=HYPERLINK(1)")
    next(b for b in at.button if b.label == "Add class").click()
    at.run()
    assert any("formula" in e.value for e in at.error)
    at.text_input(key="new_class_name").input("bird")
    at.selectbox(key="new_class_key_2").set_value("1")
    next(b for b in at.button if b.label == "Add class").click()
    at.run()
    assert any("already labels cat" in e.value for e in at.error)
    assert [c.name for c in open_workspace(data_dir).store.classes()] == ["cat", "dog"]
    at.text_input(key="new_class_name").input("7")  # the key left at auto: a class named 7 gets key 7
    next(b for b in at.button if b.label == "Add class").click()
    at.run()
    assert [(c.name, c.hotkey) for c in open_workspace(data_dir).store.classes()][-1] == ("7", "7")
    at.text_input(key="new_class_name").input("fish")  # "none" chosen: no key, not an automatic one
    at.selectbox(key="new_class_key_3").set_value("")
    next(b for b in at.button if b.label == "Add class").click()
    at.run()
    assert [(c.name, c.hotkey) for c in open_workspace(data_dir).store.classes()][-1] == ("fish", None)


def test_home_refuses_a_second_class_of_the_same_name_and_a_rename_onto_one(data_dir: Path) -> None:
    ws = open_workspace(data_dir)
    cat, dog = ws.store.add_class("cat"), ws.store.add_class("dog")
    at = run_page("home")
    at.text_input(key="new_class_name").input("cat ")
    next(b for b in at.button if b.label == "Add class").click()
    at.run()
    assert [e.value for e in at.error] == ["a class named cat already exists; pick another name"]
    at.selectbox(key="edit_class").select(dog).run()
    at.text_input(key=f"edit_name_{dog.id}").input("cat")
    at.button(key="save_class").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == ["a class named cat already exists; pick another name"]
    assert [(c.id, c.name) for c in ws.store.classes()] == [(cat.id, "cat"), (dog.id, "dog")]


def test_home_deletes_a_class_made_by_mistake_and_keeps_one_in_use(data_dir: Path) -> None:
    ws = open_workspace(data_dir)
    cat, typo, dog = ws.store.add_class("cat"), ws.store.add_class("dgo"), ws.store.add_class("dog")
    ws.store.label(ws.records()[0].id, dog.id, "tester")
    at = run_page("home")
    at.selectbox(key="edit_class").select(typo).run()
    at.button(key="delete_class").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error
    assert [c.name for c in ws.store.classes()] == ["cat", "dog"]
    assert [o for o in at.selectbox(key="edit_class").options] == ["cat", "dog"]
    at.selectbox(key="edit_class").select(dog).run()
    at.button(key="delete_class").click().run()
    assert not at.exception, [e.value for e in at.exception]
    said = [e.value.replace("\\:", ":") for e in at.error]  # text.plain escapes colons (emoji short codes)
    assert said == ["dog stays: 1 image has the label dog: relabel it first, then delete the class"]
    assert [(c.id, c.name) for c in ws.store.classes()] == [(cat.id, "cat"), (dog.id, "dog")]
    assert ws.store.human_labels() == {ws.records()[0].id: dog.id}


def test_home_opens_the_photo_sample(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pages.shared import session

    photos = tmp_path / "sample_photos"  # a copy: tests never write a workspace into the checkout
    photos.mkdir()
    for source in sorted(session.SAMPLE_PHOTOS_DIR.glob("*.jpg"))[:4]:
        (photos / source.name).write_bytes(source.read_bytes())
    monkeypatch.setattr(session, "SAMPLE_PHOTOS_DIR", photos)
    assert photos.resolve() in session.allowed_roots()
    at = run_page("home")
    at.button(key="open_photo_sample").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["data_dir"] == str(photos)


def test_home_shows_the_whole_import_report(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    """A re-scan from Home: the summary, that a label followed its renamed picture, the unreadable file, and a
    folder name refused as a label, with why."""
    from PIL import Image

    truth = colour_folder[1]
    ws = labeled_workspace(data_dir, truth)
    labeled = next(r for r in ws.records() if r.id in ws.store.human_labels())
    (data_dir / labeled.path).rename(data_dir / f"renamed-{Path(labeled.path).name}")
    (data_dir / "broken.png").write_bytes(b"not a picture")
    (data_dir / "=cmd").mkdir()
    Image.new("RGB", (16, 16), (12, 34, 56)).save(data_dir / "=cmd" / "odd.png")
    at = run_page("home")
    at.checkbox(key="labels_from_folders").check()
    at.button(key="rescan").click().run()
    wait_for_import(data_dir)
    time.sleep(session.IMAGES_VERSION_TTL_S)  # the pages read the images version at most this often
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    (report,) = [c.value.replace("\\", "") for c in at.caption if c.value.startswith("Last import")]  # unescaped
    assert "1 unreadable" in report
    assert "labels follow content: 1 moved with their picture to its new name" in report
    assert "labels taken from folder names" in report
    (skipped,) = [e for e in at.expander if e.label.endswith("folder labels skipped, and why")]
    assert skipped.label.startswith("1 ")
    table = skipped.dataframe[0].value
    assert list(table["file"]) == ["=cmd/odd.png"]
    (unreadable,) = [e for e in at.expander if e.label == "Unreadable files and why"]  # listed under Dataset
    assert "broken.png" in list(unreadable.dataframe[0].value["file"])


def test_home_refuses_a_folder_that_does_not_exist(data_dir: Path) -> None:
    at = run_page("home")
    at.text_input(key="folder_text").input(str(data_dir / "nope"))
    at.button(key="open_folder").click()
    at.run()
    assert any("does not exist" in e.value for e in at.error)


def test_home_shows_propagated_counts(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    labeled_workspace(data_dir, colour_folder[1])
    at = run_page("home")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Human"] == "6"
    # Three separated colour clusters: every image is reached.
    assert int(metrics["Propagated"]) == len(colour_folder[1]) - 6
    # No audit yet: no headline number, and the stopping rule says why to keep going.
    assert metrics["Estimated accuracy"] == "—"
    assert any("Not enough audits yet for an estimate (0 of 10)" in c.value for c in at.caption)
    assert any(i.value.startswith("Keep going.") for i in at.info)


# ----------------------------------------------------------------------------------------------- map


def test_map_page_builds_its_figure(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    labeled_workspace(data_dir, colour_folder[1], with_map=True)
    at = run_page("map")
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.spec)
    kinds = {trace["type"] for trace in spec["data"]}
    assert kinds == {"scattergl"}
    rows = sorted(int(r) for trace in spec["data"] for r in typed_array(trace["customdata"])[:, 0])
    assert rows == list(range(len(colour_folder[1])))  # every image once, whatever trace it is drawn in


def test_map_figure_draws_humans_as_diamonds_and_escapes_names() -> None:
    coords = np.array([[0, 0], [1, 1], [2, 2], [3, 3]], dtype=float)
    fig = figures.map_figure(
        coords, np.array([0, 0, 1, -1]), np.array(["human", "propagated", "propagated", "none"]),
        np.array([1.0, 0.8, 0.4, 0.0]), ["a.png", "b.png", "<b>c</b>.png", "d.png"],
        ["<script>x</script>", "dog"], ["#ff0000", "#00ff00"],
    )
    by_name = {trace.name: trace for trace in fig.data}
    human = by_name["&lt;script&gt;x&lt;/script&gt; (human)"]
    assert human.marker.symbol == "diamond"
    assert human.customdata[:, 0].tolist() == [0]
    assert by_name["unreached"].customdata[:, 0].tolist() == [3]
    dog = by_name["dog"]
    assert dog.marker.color == "#00ff00"
    assert dog.opacity == 0.45  # confidence 0.4: the second of four bands, fainter than a confident point
    assert dog.customdata.tolist() == [[2.0, pytest.approx(0.4)]]
    assert all("<script>" not in text for trace in fig.data for text in trace.text)
    assert "&lt;b&gt;c&lt;/b&gt;.png" in dog.text[0]
    assert "&lt;script&gt;" in human.hovertemplate
    assert fig.layout.hoverdistance == -1  # hover and click find the nearest point, however far


def test_map_figure_draws_carried_rows_as_selected_in_every_trace() -> None:
    coords = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [3.0, 1.0]])
    labels, source = np.array([0, 0, 1, -1]), np.array(["human", "propagated", "propagated", "none"])
    args = (coords, labels, source, np.array([1.0, 0.7, 0.4, 0.0]), ["a", "b", "c", "d"], ["x", "y"],
            ["#111111", "#222222"])
    assert all(trace.selectedpoints is None for trace in figures.map_figure(*args).data)
    fig = figures.map_figure(*args, carried=[3, 1, 7])
    selected = sorted(int(trace.customdata[i, 0]) for trace in fig.data for i in trace.selectedpoints)
    assert selected == [1, 3]  # rows in range; the other traces are drawn with none selected (dimmed)
    assert all(trace.selectedpoints is not None for trace in fig.data)


def test_map_figure_at_scale_leaves_names_to_the_click(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(figures, "HOVER_NAMES_MAX", 3)
    coords = np.zeros((4, 2))
    fig = figures.map_figure(coords, np.array([0, 0, 1, -1]), np.array(["human", "propagated", "propagated", "none"]),
                             np.array([1.0, 0.9, 0.95, 0.0]), ["a", "b", "c", "d"], ["cat", "dog"], ["#f00", "#0f0"])
    assert all(trace.text is None for trace in fig.data)
    assert "confidence %{customdata[1]:.0%}" in fig.data[0].hovertemplate
    assert {trace.name for trace in fig.data} == {"unreached", "cat", "dog", "cat (human)"}
    monkeypatch.setattr(figures, "NEAREST_ANYWHERE_MAX", 3)  # plotly finds no point at an unbounded distance there
    fig = figures.map_figure(coords, np.array([0, 0, 1, -1]), np.array(["human", "propagated", "propagated", "none"]),
                             np.array([1.0, 0.9, 0.95, 0.0]), ["a", "b", "c", "d"], ["cat", "dog"], ["#f00", "#0f0"])
    assert fig.layout.hoverdistance == figures.NEAREST_PX


def test_selected_rows_reads_customdata() -> None:
    from pages.shared import map_view

    class Event:
        # A row of a 2-D float32 customdata arrives from the browser as a JSON'd Float32Array: {"0": row, "1": conf}.
        selection = type("S", (), {"points": [{"customdata": [4]}, {"customdata": 2}, {"customdata": 4}, {},
                                              {"customdata": {"0": 7.0, "1": 0.9}}]})

    assert map_view.selected_rows(Event()) == [4, 2, 7]
    assert map_view.selected_rows(None) == []


# ----------------------------------------------------------------------------------------------- model


def test_model_page_shows_true_accuracy_and_the_learning_curve(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    truth = colour_folder[1]
    truth_path = tmp_path / "truth.csv"
    with truth_path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("path", "label"), *sorted(truth.items())])
    monkeypatch.setenv("LABELER_GROUND_TRUTH", str(truth_path))
    ws = Workspace.open(Settings(data_dir=data_dir, ground_truth_path=truth_path))
    ws.import_folder()
    ids = {info.name: info.id for info in (ws.store.add_class(name) for name in CLASSES)}
    for per_class in (1, 2):  # two propagations: two points of the learning curve
        for name in CLASSES:
            rows = [r for r in ws.records() if truth[r.path] == name][:per_class]
            ws.store.set_labels([r.id for r in rows], ids[name], "tester")
        refresh(ws, compute_map=False)
    at = run_page("model")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["True accuracy of propagated labels"] == "100.0%"
    assert metrics["Blind-audit estimate"] == "—"
    curve = [c for c in at.get("plotly_chart") if "learning_curve" in c.proto.id]
    assert len(curve) == 1
    spec = json.loads(curve[0].proto.spec)
    assert spec["data"][0]["x"] == [3, 6]
    assert spec["data"][0]["y"] == [1.0, 1.0]


def test_model_page_says_its_accuracy_is_on_the_labels_and_when_the_choice_was_made(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    """The selection-corrected number is leave-one-out on the person's own (chosen) labels, not the propagated
    labels' accuracy; and the label count it names is the one at which the representation was chosen."""
    ws = labeled_workspace(data_dir, colour_folder[1])
    green = next(c.id for c in ws.store.classes() if c.name == "green")
    unlabeled = next(r for r in ws.records() if r.id not in ws.store.human_labels())
    ws.store.set_labels([unlabeled.id], green, "tester")
    refresh(ws, compute_map=False)  # 7 labels: within a quarter (or four) of 6, the choice is kept
    at = run_page("model")
    assert "Leave-one-out accuracy on your labels, after choosing the representation" in [m.label for m in at.metric]
    assert any("Chosen when there were 6 human labels (now 7)" in c.value for c in at.caption)
    assert any("The blind audit on Home measures those" in c.value for c in at.caption)


def test_model_page_passes_the_fine_tuning_choice_to_training(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_workspace(data_dir)
    calls: list[dict[str, object]] = []

    def start_training(self: JobRunner, minutes: float | None = None, epochs: int | None = None,
                       finetune: str | None = None, ray_address: str | None = None) -> int:
        calls.append({"minutes": minutes, "finetune": finetune, "ray_address": ray_address})
        return 0

    monkeypatch.setattr(JobRunner, "start_training", start_training)
    at = run_page("model")
    choice = at.selectbox(key="train_finetune")
    assert choice.value == "auto"  # Settings.finetune's default: fine-tune only where training runs on a GPU
    assert list(choice.options) == ["auto", "always", "never"]
    choice.set_value("always").run()
    at.button(key="train_start").click().run()
    assert calls == [{"minutes": 5.0, "finetune": "always", "ray_address": ""}]


def test_model_page_passes_the_ray_address_to_the_embedding(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The address typed on the Model page reaches the Ray embedding after training (Ray itself is not started)."""
    from labeler.embed import ray_embed
    from labeler.workflow import representations
    from labeler.workflow import runner as runner_module
    from pages.shared import session

    addresses: list[str | None] = []
    monkeypatch.setattr(runner_module, "train", lambda ws, **options: "encoder trained")
    monkeypatch.setattr(ray_embed, "ray_available", lambda: True)
    monkeypatch.setattr(representations, "embed_on_ray",
                        lambda ws, address, **options: addresses.append(address) or [Path("simclr.npy")])
    ws = labeled_workspace(data_dir, colour_folder[1])
    at = run_page("model")
    assert at.text_input(key="ray_address").value == ""  # Settings.ray_address: this machine by default
    assert not [b for b in at.button if b.key == "ray_embed"]  # nothing to send anywhere yet
    at.text_input(key="ray_address").input(" ray://head:10001 ").run()
    at.button(key="train_start").click().run()
    job_runner = session._runner(Settings(data_dir=data_dir))
    assert job_runner.wait("train", timeout=60)
    assert addresses == ["ray://head:10001"]
    assert ws.store.jobs(kind="train")[0].message == "encoder trained; embedded 1 representation on Ray"
    assert job_runner.wait("refresh", timeout=120)


def test_the_app_s_ray_address_is_the_default_everywhere_embedding_starts(
    colour_folder: tuple[Path, dict[str, str]], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`labeler app --ray ADDRESS` (here its environment variable) sets Settings.ray_address of the open dataset: the
    Model page starts from it and the runner (which embeds after an import) has it."""
    from pages.shared import session

    assert session.startup_ray_address(["--data-dir", "x", "--ray", " auto "]) == "auto"
    assert session.startup_ray_address(["--data-dir", "x"]) == ""
    monkeypatch.setenv(session.RAY_ENV, "ray://head:10001")
    labeled_workspace(data_dir, colour_folder[1])
    at = run_page("model")
    assert at.text_input(key="ray_address").value == "ray://head:10001"
    assert [b for b in at.button if b.key == "ray_embed"]  # the button to embed there now is offered
    job_runner = session._runner(Settings(data_dir=data_dir, ray_address="ray://head:10001"))
    assert job_runner.settings.ray_address == "ray://head:10001"


# ----------------------------------------------------------------------------------------------- export


def test_export_page_previews_the_csv_columns(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    ws = labeled_workspace(data_dir, colour_folder[1])
    at = run_page("export")
    frame = at.dataframe[0].value
    assert list(frame.columns) == export.COLUMNS
    assert len(frame) == len(colour_folder[1])
    assert sorted(frame["source"].unique()) == ["human", "propagated"]
    assert at.get("download_button")
    # Two labels per class give calibration evidence, so a threshold is suggested and the page says what it keeps in
    # the Review page's terms: the share right to expect, with its 95% interval.
    flagged = [c.value for c in at.caption if "flagged below" in c.value]
    assert len(flagged) == 1
    assert "expected" in flagged[0]
    assert "95% interval" in flagged[0]
    assert not [w.value for w in at.warning if "unlike every other image" in w.value]

    # An image unlike every other (on photos, often no photo at all) is flagged, and the page says what that means.
    state = load_state(ws)
    assert state is not None
    odd = int(np.flatnonzero(state.source == "propagated")[0])
    state.isolated = np.zeros(len(state.label), dtype=bool)
    state.isolated[odd] = True
    save_state(ws, state)
    at = run_page("export")
    assert "isolated" in at.dataframe[0].value.set_index("path").loc[state.paths[odd], "flagged"]
    said = [w.value for w in at.warning if "unlike every other image" in w.value]
    assert said == [report.isolated_summary(1)]
    assert said[0].startswith("1 image unlike every other image in the folder")


# ----------------------------------------------------------------------------------------------- text


def test_plain_escapes_markdown_and_html() -> None:
    from pages.shared import text

    assert text.plain("**a** <b>") == r"\*\*a\*\* \<b\>"
    assert text.plain("cat_1 [x](y)") == r"cat\_1 \[x\]\(y\)"


# ----------------------------------------------------------------------------------------------- teaching


def test_teaching_page_recomputes_demos_from_its_controls(data_dir: Path) -> None:
    at = run_page("teaching")
    # The first tab: label spreading vs a supervised classifier on the same two seeds.
    spreading, supervised = at.metric[0], at.metric[1]
    assert spreading.label == "accuracy on unlabeled · label spreading"
    assert int(spreading.value.rstrip("%")) > int(supervised.value.rstrip("%"))  # moons: the assumption holds
    assert "accuracy on unlabeled · self-training" in [m.label for m in at.metric]
    at.segmented_control(key="teach_shape").set_value("blobs").run()
    assert not at.exception
    assert at.metric[0].value != spreading.value


# ----------------------------------------------------------------------------------------------- class keys


def test_ten_classes_get_one_to_nine_then_zero_and_letters_beyond() -> None:
    from labeler.store import ClassInfo
    from pages.shared import class_keys

    classes = [ClassInfo(i, f"c{i}", "#000", str(i) if i < 10 else None) for i in range(1, 13)]
    assert class_keys.keys_for(classes) == [*"1234567890", "a", "b"]
    assert class_keys.HOTKEYS[class_keys.default_hotkey_index(classes[:9])] == "0"  # the tenth class gets 0
    clash = [ClassInfo(1, "a", "#000", "2"), ClassInfo(2, "b", "#000", "2"), ClassInfo(3, "c", "#000", "s")]
    assert class_keys.keys_for(clash) == ["2", "1", "3"]  # a duplicate or reserved key is replaced by a free one
    assert class_keys.key_label("") == "none"
    # The form's default colour is the store's: the first no class has (a deletion left orange free), not the count's.
    left = [ClassInfo(1, "a", "#1f77b4", "1"), ClassInfo(3, "c", "#2ca02c", "3")]
    assert class_keys.next_colour(left) == "#ff7f0e"


def test_a_class_named_by_one_key_gets_that_key() -> None:
    """Digit classes named 0-9 get their own digits (not 1 for "0"); other names the next free key; a key in use
    is not taken twice."""
    from labeler.store import ClassInfo
    from pages.shared import class_keys

    classes: list[ClassInfo] = []
    for i, name in enumerate(["0", "1", "cat", "S", "b", "B"]):
        classes.append(ClassInfo(i, name, "#000", class_keys.auto_hotkey(classes, name)))
    # "s" is the widget's skip key, so S takes the next free one; "B" finds b's key taken.
    assert [c.hotkey for c in classes] == ["0", "1", "2", "3", "b", "4"]
