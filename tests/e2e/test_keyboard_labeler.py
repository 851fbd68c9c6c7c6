"""The keyboard labeler in a real browser: keys typed ahead 30 ms apart each label their own image, in order.

Starts ``streamlit run tests/e2e/keyboard_app.py`` (headless, a free port; applied events land in a JSON file under
``tmp_path``) and drives Debian's chromium (``/usr/bin/chromium``) with the Python ``playwright`` package. A few
quick checks of the Python side's validation need no browser.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pages` is not installed with the package
    sys.path.insert(0, str(ROOT))

from browser_support import CHROMIUM, CHROMIUM_ARGS, free_port, wait_for, wait_for_server  # noqa: E402

from pages.shared import keyboard_labeler as kl  # noqa: E402

APP = Path(__file__).resolve().with_name("keyboard_app.py")
KEYS = ["1", "2", "3", "1", "2"]
NAMES = {"1": "red", "2": "green", "3": "blue"}
GAP_MS = 30
WIDGET = "[data-kl='root']"



@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(URL, record file) of the demo app served by ``streamlit run``; stopped after the module's tests."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    folder = tmp_path_factory.mktemp("keyboard")
    record = folder / "record.json"
    port = free_port()
    env = {**os.environ, "KEYBOARD_APP_RECORD": str(record),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log_path = folder / "app.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    try:
        wait_for_server(process, url, log_path, "the demo app", every=0.25)
        yield url, record
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the server started above, nothing else
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser(server: tuple[str, Path]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def _run(record: Path, run: str) -> dict[str, Any]:
    try:
        runs = json.loads(record.read_text(encoding="utf-8"))["runs"]
    except (OSError, ValueError, KeyError):
        return {"labels": {}, "skipped": [], "events": []}
    found: dict[str, Any] = runs.get(run) or {"labels": {}, "skipped": [], "events": []}
    return found


def _type(page: Any, keys: list[str]) -> None:
    for key in keys:
        page.keyboard.press(key)
        page.wait_for_timeout(GAP_MS)


def _assert_first_labels(record: Path, run: str, keys: list[str]) -> None:
    """The first ``len(keys)`` images got their own key's class, in order, each once, and nothing else happened."""
    recorded = wait_for(lambda: (r := _run(record, run)) and len(r["events"]) >= len(keys) and r, 20,
                     f"{len(keys)} events of {run}")
    time.sleep(0.5)  # anything extra (a duplicate, a late event) would land now
    recorded = _run(record, run)
    expected = [(f"img_{i:02d}", NAMES[key]) for i, key in enumerate(keys)]
    assert [(e["image_id"], e["label"]) for e in recorded["events"]] == expected
    assert [e["seq"] for e in recorded["events"]] == list(range(1, len(keys) + 1))
    assert recorded["labels"] == dict(expected)


def _open(page: Any, url: str) -> Any:
    page.goto(url)
    widget = page.locator(WIDGET)
    widget.wait_for()
    return widget


@pytest.mark.e2e
@pytest.mark.slow
def test_keys_typed_ahead_each_label_their_own_image(server: tuple[str, Path], page: Any) -> None:
    """Five keys 30 ms apart on a slow page (each run spends 0.3 s after the widget, storing a batch takes 0.1 s,
    and each press starts a new run while the last one still works): image i gets key i's class, in order."""
    url, record = server
    widget = _open(page, f"{url}/?run=typed&after_s=0.3&apply_s=0.1")
    wait_for(lambda: widget.locator("img[data-kl='image']").get_attribute("data-id") == "img_00", 20, "the first image")
    page.wait_for_timeout(800)  # the first run is over
    _type(page, KEYS)
    # Each press advanced the screen at once, without waiting for Python.
    assert widget.locator("img[data-kl='image']").get_attribute("data-id") == f"img_{len(KEYS):02d}"
    _assert_first_labels(record, "typed", KEYS)
    page.get_by_text("All saved.").wait_for()
    assert page.locator("[data-testid='stException']").count() == 0

    # Undo reverts the last label and shows that image again; a click labels the image on screen; s skips.
    page.keyboard.press("u")
    wait_for(lambda: "img_04" not in _run(record, "typed")["labels"], 10, "the undo to be applied")
    assert widget.locator("img[data-kl='image']").get_attribute("data-id") == "img_04"
    widget.get_by_role("button", name="blue").click()
    wait_for(lambda: _run(record, "typed")["labels"].get("img_04") == "blue", 10, "the click to be applied")
    page.keyboard.press("3")  # focus came back to the widget after the click
    wait_for(lambda: _run(record, "typed")["labels"].get("img_05") == "blue", 10, "the key after a click")
    page.mouse.click(5, 400)  # on the empty page: nothing has the focus, keys still go to the widget
    page.keyboard.press("1")
    wait_for(lambda: _run(record, "typed")["labels"].get("img_06") == "red", 10, "the key after a click elsewhere")
    page.keyboard.press("s")
    wait_for(lambda: _run(record, "typed")["skipped"] == ["img_07"], 10, "the skip")
    assert widget.locator("img[data-kl='image']").get_attribute("data-id") == "img_08"


@pytest.mark.e2e
@pytest.mark.slow
def test_burst_at_start_up_before_the_first_run_ends(server: tuple[str, Path], page: Any) -> None:
    """Keys pressed the moment the widget appears, while the first run is still busy, with only 3 images prefetched
    and 1 s to compute the next ones: the first 3 are labeled on screen, the other 2 wait ("Catching up…") and go
    to images 3 and 4, in order, when they arrive."""
    url, record = server
    widget = _open(page, f"{url}/?run=burst&before_s=1&after_s=1&prefetch=3")
    widget.locator("img[data-kl='image'][data-id='img_00']").wait_for()
    _type(page, KEYS)
    assert widget.get_attribute("data-waiting") == "2"
    waiting = widget.locator("[data-kl='waiting']")
    assert waiting.is_visible()
    assert waiting.inner_text() == "Catching up…"
    assert "2 presses waiting for images." in widget.locator("[data-kl='status']").inner_text()
    _assert_first_labels(record, "burst", KEYS)
    wait_for(lambda: widget.get_attribute("data-waiting") == "0" and widget.get_attribute("data-pending") == "0", 20,
          "every press to be saved")
    assert widget.locator("img[data-kl='image']").get_attribute("data-id") == f"img_{len(KEYS):02d}"


@pytest.mark.e2e
@pytest.mark.slow
def test_undo_with_nothing_of_its_own_asks_for_the_earlier_action(server: tuple[str, Path], page: Any) -> None:
    """A fresh widget (a reload) has no presses of its own to undo: without ``undo_earlier`` u says so and sends
    nothing; with it, u sends an undo of image "" (the page's earlier action), once per press, and then its own
    presses are undone as usual."""
    url, record = server
    widget = _open(page, f"{url}/?run=plain")
    widget.locator("img[data-kl='image'][data-id='img_00']").wait_for()
    page.keyboard.press("u")
    widget.get_by_text("Nothing to undo here.").wait_for()
    widget = _open(page, f"{url}/?run=earlier&undo_earlier=1")
    widget.locator("img[data-kl='image'][data-id='img_00']").wait_for()
    page.keyboard.press("1")
    _type(page, ["u", "u"])
    wait_for(lambda: len(_run(record, "earlier")["events"]) >= 3, 20, "three events")
    time.sleep(0.5)
    events = [(e["image_id"], e["action"]) for e in _run(record, "earlier")["events"]]
    assert events == [("img_00", "label"), ("img_00", "undo"), ("", "undo")]
    assert _run(record, "plain")["events"] == []
    # Once the page has answered that undo (in a note of its own), the widget no longer says it is undoing.
    message = widget.locator("[data-kl='message']")
    wait_for(lambda: message.inner_text().startswith("Undo answered"), 10, "the undo to be answered")


@pytest.mark.e2e
@pytest.mark.slow
def test_messages_name_the_file_without_the_caption_notes(server: tuple[str, Path], page: Any) -> None:
    """The card shows why an image was picked; what was labeled and undone is said by file name alone."""
    url, _ = server
    widget = _open(page, f"{url}/?run=noted&noted=1")
    widget.locator("img[data-kl='image'][data-id='img_00']").wait_for()
    assert widget.locator("[data-kl='caption']").inner_text() == "img_00.png · typical of a cluster"
    message = widget.locator("[data-kl='message']")
    page.keyboard.press("1")
    wait_for(lambda: message.inner_text() == "img_00.png → red", 5, "the label message")
    page.keyboard.press("u")
    wait_for(lambda: message.inner_text() == "Undone: img_00.png (red).", 5, "the undo message")


@pytest.mark.e2e
@pytest.mark.slow
def test_an_accept_is_said_as_the_proposal_accepted(server: tuple[str, Path], page: Any) -> None:
    """Review's accept key stands for the proposal on screen: its messages name that class and say it was accepted,
    not the accept button's name."""
    url, record = server
    widget = _open(page, f"{url}/?run=accept&accept=1&noted=1")
    widget.locator("img[data-kl='image'][data-id='img_00']").wait_for()
    message = widget.locator("[data-kl='message']")
    page.keyboard.press("a")
    wait_for(lambda: message.inner_text() == "img_00.png → green (accepted)", 5, "the accept message")
    page.keyboard.press("u")
    wait_for(lambda: message.inner_text() == "Undone: img_00.png (accepted green).", 5, "the undo message")
    page.keyboard.press("1")  # another class: said as itself
    wait_for(lambda: message.inner_text() == "img_00.png → red", 5, "the label message")
    wait_for(lambda: len(_run(record, "accept")["events"]) >= 3, 20, "three events")
    assert [e["label"] for e in _run(record, "accept")["events"]] == ["✓ Accept the proposal", None, "red"]


@pytest.mark.e2e
@pytest.mark.slow
def test_unknown_key_says_why_and_help_lists_the_keys(server: tuple[str, Path], page: Any) -> None:
    """A key bound to nothing shows why and records nothing; ? shows the keys, Esc hides them; markup in a
    caption shows as text."""
    url, record = server
    widget = _open(page, f"{url}/?run=unknown&tricky=1")
    widget.locator("img[data-kl='image'][data-id='img_00']").wait_for()
    caption = "<b>img_00</b> & <img src=x onerror=alert(1)>.png"
    assert widget.locator("[data-kl='caption']").inner_text() == caption
    assert widget.locator("b").count() == 0
    assert widget.locator("img").count() == 5  # the image and the 4 next ones, no injected one
    page.keyboard.press("x")
    message = widget.locator("[data-kl='message']")
    wait_for(lambda: "“x” is not a key for any class" in message.inner_text(), 5, "the unknown-key message")
    assert message.is_visible()
    help_panel = widget.locator("[data-kl='help']")
    assert not help_panel.is_visible()
    page.keyboard.press("?")
    help_panel.wait_for(state="visible")
    assert "green" in help_panel.inner_text()
    page.keyboard.press("Escape")
    help_panel.wait_for(state="hidden")
    page.wait_for_timeout(300)
    assert _run(record, "unknown")["events"] == []
    assert widget.locator("img[data-kl='image']").get_attribute("data-id") == "img_00"


def test_keys_and_classes_are_checked() -> None:
    assert kl.default_keys(10)[-1] == "0"
    assert not set(kl.default_keys(len(kl.DEFAULT_KEYS))) & {"s", "u", "?", "c", "r"}
    with pytest.raises(ValueError, match="reserved for skip"):
        kl._check_classes([("cat", "s", "#fff")])
    with pytest.raises(ValueError, match="unique"):
        kl._check_classes([("cat", "1", "#fff"), ("dog", "1", "#000")])
    assert kl._check_classes([("cat", "", "#fff"), ("dog", "", "#000")]) == {"cat", "dog"}  # click only
    with pytest.raises(ValueError, match="colour"):
        kl._check_classes([("cat", "1", "red; background: url(x)")])
    with pytest.raises(ValueError, match="data URL"):
        kl._check_items([kl.LabelItem(id="a", thumbnail="javascript:alert(1)", caption="")])
    with pytest.raises(ValueError, match="accept class 'dog' is not among the classes"):
        kl.keyboard_labeler([], [("cat", "1", "#fff")], key="k", on_event=print, accept="dog")


def test_thumbnail_data_url_round_trips() -> None:
    pixels = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    url = kl.thumbnail_data_url(pixels)
    assert url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    np.testing.assert_array_equal(np.asarray(decoded), pixels)
    assert max(Image.open(io.BytesIO(base64.b64decode(
        kl.thumbnail_data_url(np.zeros((600, 300, 3), np.uint8), max_px=100, fmt="JPEG").split(",", 1)[1]
    ))).size) == 100


def test_malformed_or_unknown_class_events_are_dropped() -> None:
    raw = [
        {"seq": 1, "image_id": "a", "action": "label", "label": "cat"},
        {"seq": 2, "image_id": "b", "action": "label", "label": "gone"},
        {"seq": True, "image_id": "c", "action": "skip", "label": None},
        {"seq": 4, "image_id": "d", "action": "undo", "label": None},
        "junk",
    ]
    assert [e["seq"] for e in kl._parse_events(raw, {"cat"})] == [1, 4]
