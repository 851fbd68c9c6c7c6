"""AppTest for every page of the app, on a small image folder built in the test.

Interactions click the real widgets and check what landed in the store; propagation runs through the app's own
background runner (waited for) or synchronously, as each test needs.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pages` is not installed with the package; the app adds itself to the path too
    sys.path.insert(0, str(ROOT))

from labeler.config import Settings  # noqa: E402
from labeler.workflow import export  # noqa: E402
from labeler.workflow.refresh import refresh  # noqa: E402
from labeler.workflow.state import load_state  # noqa: E402
from labeler.workflow.workspace import Workspace  # noqa: E402
from pages.shared import figures  # noqa: E402

APP = str(ROOT / "app.py")
PAGES = ["home", "label", "map", "review", "model", "export", "teaching"]
CLASSES = ["red", "green", "blue"]


@pytest.fixture
def data_dir(colour_folder: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> Path:
    root, _ = colour_folder
    monkeypatch.setenv("LABELER_DATA_DIR", str(root))
    monkeypatch.delenv("LABELER_WORKSPACE", raising=False)
    monkeypatch.delenv("LABELER_GROUND_TRUTH", raising=False)
    return root


def open_workspace(root: Path) -> Workspace:
    ws = Workspace.open(Settings(data_dir=root))
    if not ws.store.images():
        ws.import_folder()
    return ws


def labeled_workspace(root: Path, truth: dict[str, str], per_class: int = 2, with_map: bool = False) -> Workspace:
    """Classes, ``per_class`` human labels each (the true ones) and a first propagation."""
    ws = open_workspace(root)
    ids = {info.name: info.id for info in (ws.store.add_class(name) for name in CLASSES)}
    for name in CLASSES:
        rows = [r for r in ws.records() if truth[r.path] == name][:per_class]
        ws.store.set_labels([r.id for r in rows], ids[name], "tester")
    refresh(ws, compute_map=with_map)
    return ws


def run_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(f"pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def wait_for_refresh(root: Path) -> None:
    """Let the app's background propagation finish (the runner is shared through st.cache_resource)."""
    from pages.shared import session

    runner = session._runner(Settings(data_dir=root))
    runner.wait("refresh", timeout=60)


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
    assert any("Not enough audits yet (0 of 10)" in c.value for c in at.caption)
    assert any(i.value.startswith("Keep going.") for i in at.info)


# ----------------------------------------------------------------------------------------------- label


def test_label_by_button_and_pills_then_undo(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    ws = open_workspace(data_dir)
    for name in CLASSES:
        ws.store.add_class(name)
    classes = {c.name: c.id for c in ws.store.classes()}
    at = run_page("label")
    first = at.session_state["label_queue"]["rows"][0]
    at.button(key=f"label_{classes['green']}").click()
    at.run()
    records = ws.records()
    assert ws.store.human_labels() == {records[first].id: classes["green"]}
    # The next image is in focus now; a pill in the grid labels another image with one click.
    rows = at.session_state["label_queue"]["rows"]
    assert first not in rows
    grid_row = rows[1]
    at.button_group(key=f"pick_{records[grid_row].id}").set_value(classes["blue"])
    at.run()
    assert ws.store.human_labels() == {records[first].id: classes["green"], records[grid_row].id: classes["blue"]}
    at.button(key="undo").click()
    at.run()
    assert ws.store.human_labels() == {records[first].id: classes["green"]}
    assert at.session_state["label_queue"]["rows"][0] == grid_row  # the undone image comes back first
    wait_for_refresh(data_dir)
    state = load_state(ws)
    assert state is not None
    assert state.counts["human"] == 1


def test_labels_propagate_in_the_background(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    truth = colour_folder[1]
    ws = open_workspace(data_dir)
    for name in CLASSES:
        ws.store.add_class(name)
    classes = {c.name: c.id for c in ws.store.classes()}
    at = run_page("label")
    seen: set[str] = set()
    for _ in range(30):  # label the focused image with its true class until every class has a label
        row = at.session_state["label_queue"]["rows"][0]
        name = truth[ws.records()[row].path]
        if name in seen:
            at.button(key="skip").click()
        else:
            at.button(key=f"label_{classes[name]}").click()
            seen.add(name)
        at.run()
        if seen == set(CLASSES):
            break
    assert len(ws.store.human_labels()) == 3
    wait_for_refresh(data_dir)
    at = run_page("home")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Propagated"] == str(len(truth) - 3)


# ----------------------------------------------------------------------------------------------- map


def test_map_page_builds_its_figure(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    labeled_workspace(data_dir, colour_folder[1], with_map=True)
    at = run_page("map")
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.spec)
    kinds = {trace["type"] for trace in spec["data"]}
    assert kinds == {"scattergl"}
    rows = sorted(int(r) for trace in spec["data"] for r in trace["customdata"])
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
    assert list(human.customdata) == [0]
    assert list(by_name["unreached"].customdata) == [3]
    assert by_name["dog"].marker.color == ("rgba(0,255,0,0.49)",)  # 0.15 + 0.85 * 0.4
    assert all("<script>" not in text for trace in fig.data for text in trace.text)
    assert "&lt;b&gt;c&lt;/b&gt;.png" in by_name["dog"].text[0]


def test_selected_rows_reads_customdata() -> None:
    from pages.shared import map_view

    class Event:
        selection = type("S", (), {"points": [{"customdata": [4]}, {"customdata": 2}, {"customdata": 4}, {}]})

    assert map_view.selected_rows(Event()) == [4, 2]
    assert map_view.selected_rows(None) == []


# ----------------------------------------------------------------------------------------------- review


def test_review_audit_records_a_blind_answer(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    ws = labeled_workspace(data_dir, colour_folder[1])
    at = run_page("review")
    row = at.session_state["audit_row"]
    state = load_state(ws)
    assert state is not None
    assert state.source[row] == "propagated"
    truth = colour_folder[1][ws.records()[row].path]
    answer = next(c for c in ws.store.classes() if c.name == truth)
    at.button(key=f"audit_{answer.id}").click()
    at.run()
    audits = ws.store.audits()
    assert len(audits) == 1
    assert audits[0]["image_id"] == ws.records()[row].id
    assert audits[0]["class_id"] == answer.id
    assert ws.store.human_labels().get(ws.records()[row].id) is None  # an audit is never a seed
    assert any("Not enough audits yet (1 of 10)" in c.value for c in at.caption)


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


# ----------------------------------------------------------------------------------------------- export


def test_export_page_previews_the_csv_columns(colour_folder: tuple[Path, dict[str, str]], data_dir: Path) -> None:
    labeled_workspace(data_dir, colour_folder[1])
    at = run_page("export")
    frame = at.dataframe[0].value
    assert list(frame.columns) == export.COLUMNS
    assert len(frame) == len(colour_folder[1])
    assert sorted(frame["source"].unique()) == ["human", "propagated"]
    assert at.get("download_button")


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
