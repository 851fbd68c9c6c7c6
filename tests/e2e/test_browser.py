"""The whole flow in a real browser: start ``labeler app``, define classes, label by click and by key, watch labels
propagate, open the map, download the CSV. Saves a screenshot of every page into docs/screenshots/.

Debian's chromium (``/usr/bin/chromium``) driven by the Python ``playwright`` package; no browser is downloaded.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labeler.store import LabelStore

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
# Three well separated Fashion-MNIST classes keep the run short; the colour folder stands in without sample_data.
SAMPLE_CLASSES = ["Trouser", "Bag", "Sneaker"]
PER_CLASS = 25


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(condition: Callable[[], object], timeout: float, what: str, every: float = 0.25) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _dataset(target: Path) -> dict[str, str]:
    """Copy a small labeled subset into ``target``; returns {file name: true class}."""
    target.mkdir(parents=True)
    truth_csv = ROOT / "sample_data" / "ground_truth.csv"
    truth: dict[str, str] = {}
    if truth_csv.is_file():
        with truth_csv.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        counts = dict.fromkeys(SAMPLE_CLASSES, 0)
        for row in rows:
            label = row["label"]
            source = ROOT / "sample_data" / row["path"]
            if label in counts and counts[label] < PER_CLASS and source.is_file():
                shutil.copy(source, target / row["path"])
                truth[row["path"]] = label
                counts[label] += 1
    if len(truth) < 3 * PER_CLASS:
        shutil.rmtree(target)
        sys.path.insert(0, str(ROOT / "tests"))
        from conftest import make_colour_folder

        truth = make_colour_folder(target, per_class=PER_CLASS)
    with (target.parent / "truth.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows(sorted(truth.items()))
    return truth


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    data = tmp_path / "data"
    truth = _dataset(data)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = (tmp_path / "app.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "labeler.cli", "app", str(data), "--port", str(port),
         "--ground-truth", str(tmp_path / "truth.csv")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError("labeler app exited: " + (tmp_path / "app.log").read_text())
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        _wait(healthy, 60, "the app to answer")
        yield url, data, truth
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the app and the streamlit server it started, nothing else
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def test_label_propagate_map_export_in_a_browser(app_url: tuple[str, Path, dict[str, str]]) -> None:
    from playwright.sync_api import sync_playwright

    url, data, truth = app_url
    classes = sorted(set(truth.values()), key=lambda name: list(truth.values()).index(name))
    store = LabelStore(data / ".labeler" / "labeler.db")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900}, accept_downloads=True)
        page.set_default_timeout(60_000)
        main = page.locator("[data-testid='stMain']")

        def goto(path: str, ready: str) -> None:
            page.goto(f"{url}/{path}")
            main.get_by_text(ready).first.wait_for()

        def no_exception() -> None:
            errors = page.locator("[data-testid='stException']")
            assert errors.count() == 0, errors.all_inner_texts()

        # Home: the folder is imported on first open; define the classes through the form.
        goto("", "Readable images")
        for name in classes:
            main.get_by_label("New class").first.fill(name)
            main.get_by_role("button", name="Add class").first.click()
            _wait(lambda name=name: name in [c.name for c in store.classes()], 20, f"class {name} to be stored")
            page.wait_for_timeout(1000)  # the rerun replaces the form
        no_exception()
        hotkeys = {c.name: c.hotkey for c in store.classes()}
        assert sorted(hotkeys.values()) == [str(i + 1) for i in range(len(classes))]  # a free key for each class
        ids = {c.name: c.id for c in store.classes()}

        # Label: the focused image's file name is the first caption of the page; label it by click or by key.
        goto("label", "Which class is this?")
        page.wait_for_timeout(500)

        def focused() -> str:
            text = main.locator("[data-testid='stCaptionContainer']").first.inner_text()
            match = re.search(r"[\w\-]+\.png", text)
            return match.group(0) if match else ""

        done: dict[str, str] = {}
        by_key = by_click = 0
        for _ in range(4 * len(truth)):
            if len(done) == len(classes) and by_key >= 2 and by_click >= 2:
                break
            path = _wait(focused, 20, "a focused image")
            assert isinstance(path, str)
            name = truth[path]
            before = len(store.human_labels())
            if name in done and by_key >= 2 and by_click >= 2:
                page.keyboard.press("s")  # skip, by key too
                _wait(lambda path=path: focused() not in {"", path}, 20, "the next image after a skip")
                continue
            if by_click <= by_key:
                main.get_by_role("button", name=name).first.click()  # the focused image's buttons come first
                by_click += 1
            else:
                page.keyboard.press(hotkeys[name] or "")
                by_key += 1
            _wait(lambda before=before: len(store.human_labels()) > before, 20, f"the label of {path} to be stored")
            done[name] = path
            _wait(lambda path=path: focused() not in {"", path}, 20, "the next image")
        no_exception()
        labels = store.human_labels()
        assert set(labels.values()) == {ids[name] for name in classes}
        records = {r.id: r.path for r in store.images()}
        assert all(truth[records[image_id]] == [n for n, i in ids.items() if i == class_id][0]
                   for image_id, class_id in labels.items())
        assert by_key >= 2
        assert by_click >= 2
        page.screenshot(path=str(SCREENSHOTS / "label.png"))

        # Home: the propagated count rises on its own (background job + 1 s polling).
        goto("", "Readable images")

        def propagated() -> int:
            metric = main.locator("[data-testid='stMetric']").filter(has_text="Propagated")
            if metric.count() == 0:
                return 0
            value = metric.first.locator("[data-testid='stMetricValue']").inner_text().strip()
            return int(value) if value.isdigit() else 0

        _wait(propagated, 120, "the propagated count to rise", every=0.5)
        assert propagated() + len(labels) == len(truth)  # three separated classes: every image reached
        no_exception()
        page.screenshot(path=str(SCREENSHOTS / "home.png"))

        # Map: WebGL scatter once the UMAP layout exists (computed in the background).
        goto("map", "Map")
        _wait(lambda: page.locator(".js-plotly-plot").count() > 0, 180, "the map", every=1.0)
        page.wait_for_timeout(1500)
        no_exception()
        page.screenshot(path=str(SCREENSHOTS / "map.png"))

        for path, ready, shot in (("review", "Review & audit", "review.png"), ("model", "Model", "model.png")):
            goto(path, ready)
            page.wait_for_timeout(2000)
            no_exception()
            page.screenshot(path=str(SCREENSHOTS / shot))

        # Export: download the CSV and check it has one row per image, human rows included.
        goto("export", "Download CSV")
        page.wait_for_timeout(1000)
        no_exception()
        page.screenshot(path=str(SCREENSHOTS / "export.png"))
        with page.expect_download() as download_info:
            main.get_by_role("button", name="Download CSV").click()
        saved = download_info.value.path()
        with open(saved, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        browser.close()

    assert len(rows) == len(truth)
    assert {"path", "label", "source", "confidence"} <= set(rows[0])
    by_path = {row["path"]: row for row in rows}
    assert sum(row["source"] == "human" for row in rows) == len(labels)
    for image_id, class_id in labels.items():
        row = by_path[records[image_id]]
        assert row["source"] == "human"
        assert row["label"] == [n for n, i in ids.items() if i == class_id][0]
    assert all(row["source"] in {"human", "propagated"} for row in rows)
