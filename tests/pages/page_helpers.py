"""Helpers of the page tests: a workspace with labels, a page run with AppTest, and the keyboard widget driven as
the browser drives it (its state set to an outbox of events)."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pages` is not installed with the package; the app adds itself to the path too
    sys.path.insert(0, str(ROOT))

from labeler.config import Settings  # noqa: E402
from labeler.workflow.refresh import refresh  # noqa: E402
from labeler.workflow.workspace import Workspace  # noqa: E402

APP = str(ROOT / "app.py")
PAGES = ["home", "label", "map", "review", "model", "export", "teaching"]
CLASSES = ["red", "green", "blue"]


@pytest.fixture(name="data_dir")
def data_dir_fixture(colour_folder: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> Path:
    """The colour folder as the app's data folder (import it into a test module to use it)."""
    root, _ = colour_folder
    monkeypatch.setenv("LABELER_DATA_DIR", str(root))
    monkeypatch.delenv("LABELER_WORKSPACE", raising=False)
    monkeypatch.delenv("LABELER_GROUND_TRUTH", raising=False)
    monkeypatch.delenv("LABELER_RAY_ADDRESS", raising=False)
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
    """Run a page; on a folder never imported, let the background import finish (as the page's own polling
    would) and run it again."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(f"pages/{page}.py")
    at.run()
    if any("for the first time" in caption.value for caption in at.caption):
        wait_for_import(Path(os.environ["LABELER_DATA_DIR"]))
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def wait_for_import(root: Path) -> None:
    from pages.shared import session

    assert session._runner(Settings(data_dir=root)).wait("import", timeout=120)


def wait_for_refresh(root: Path) -> None:
    """Let the app's background propagation finish (the runner is shared through st.cache_resource)."""
    from pages.shared import session

    runner = session._runner(Settings(data_dir=root))
    runner.wait("refresh", timeout=60)


def selection_script() -> None:
    """The map's selection panel on the rows in session state (a lasso cannot be drawn in AppTest)."""
    import sys

    import streamlit as st

    sys.path.insert(0, st.session_state["root"])
    from pages.shared import map_view, session

    ws = session.require_images()
    state = session.state(ws)
    assert state is not None
    map_view.selection_panel(ws, state, st.session_state["rows"], ws.store.human_labels())


def open_selection(rows: list[int]) -> AppTest:
    """The map's selection panel (:func:`selection_script`) on ``rows``, run once."""
    at = AppTest.from_function(selection_script, default_timeout=60)
    at.session_state["root"] = str(ROOT)
    at.session_state["rows"] = rows
    return at.run()


def widget_data(at: AppTest, key: str) -> dict[str, Any]:
    """What the page sent to the keyboard widget ``key``: items, classes, ack."""
    for node in at.main:
        if node.proto.__class__.__name__ == "BidiComponent" and node.proto.id.endswith(f"-{key}"):
            return dict(json.loads(node.proto.json))
    raise AssertionError(f"no keyboard widget {key} on the page")


def press(at: AppTest, key: str, events: list[tuple[str, str, str | None]], stream: str = "test") -> list[str]:
    """Send (item id, action, class) events as the browser would (numbered after those sent before), then let the
    page catch up: in the browser the widget's callback applies them before the page script, here the widget
    applies them during the first run and the second run shows the result. Returns the first run's toasts."""
    try:
        sent = int(at.session_state[f"_test_sent_{key}"])
    except KeyError:
        sent = 0
    outbox = [{"seq": sent + i + 1, "image_id": image_id, "action": action, "label": label}
              for i, (image_id, action, label) in enumerate(events)]
    at.session_state[key] = {"outbox": {"stream": stream, "events": outbox}}
    at.session_state[f"_test_sent_{key}"] = sent + len(events)
    at.run()
    toasts = [t.value for t in at.toast]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return toasts


def key_help_data(at: AppTest) -> dict[str, Any] | None:
    """What the page sent to the sidebar's key help (its keys, and what any other key says), None without one."""
    for node in at.sidebar:
        if node.proto.__class__.__name__ == "BidiComponent" and node.proto.id.endswith("-key_help"):
            return dict(json.loads(node.proto.json))
    return None


def image_id_of(item_id: str) -> int:
    return int(item_id.split(":")[0])


def typed_array(value: object) -> np.ndarray:
    """A plotly JSON array: a list, or a typed array (dtype, base64 bytes, shape)."""
    if isinstance(value, dict):
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = [int(part) for part in str(value.get("shape", len(array))).split(",")]
        return array.reshape(shape)
    return np.asarray(value)
