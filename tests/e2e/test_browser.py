"""The whole flow in a real browser: start ``labeler app``, define classes, label by click and by key, watch labels
propagate, open the map, download the CSV. Saves a screenshot of every page (into docs/screenshots/ with
``pytest --screenshots``).

Debian's chromium (``/usr/bin/chromium``) driven by the Python ``playwright`` package; no browser is downloaded.
"""

from __future__ import annotations

import csv
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, labeler_app, wait_for

from labeler.config import Settings
from labeler.store import LabelStore
from labeler.workflow.state import load_state
from labeler.workflow.workspace import Workspace

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
# Three well separated Fashion-MNIST classes keep the run short; the colour folder stands in without sample_data.
SAMPLE_CLASSES = ["Trouser", "Bag", "Sneaker"]
PER_CLASS = 25
LABELS_PER_CLASS = 2
# Share of propagated labels that must match the ground truth (the three classes separate well in pixel space).
MIN_ACCURACY = 0.8



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
def app_url(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str], int]]:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    data = tmp_path / "data"
    truth = _dataset(data)
    with labeler_app(data, tmp_path / "app.log", "--ground-truth", str(tmp_path / "truth.csv")) as (url, pid):
        yield url, data, truth, pid  # the process group of the app and its server (a test may kill it)


def test_label_propagate_map_review_export_train_in_a_browser(
    app_url: tuple[str, Path, dict[str, str], int], screenshot_dir: Path
) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    url, data, truth, server = app_url
    classes = sorted(set(truth.values()), key=lambda name: list(truth.values()).index(name))
    store = LabelStore(data / ".labeler" / "labeler.db")
    ws = Workspace.open(Settings(data_dir=data))  # the app's workspace, read from the test

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900}, accept_downloads=True)
        page.set_default_timeout(60_000)
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        outside: list[str] = []  # images never leave the machine, and nothing the app shows comes from the network
        page.on("request", lambda request: outside.append(request.url)
                if request.url.startswith(("http:", "https:")) and not request.url.startswith(url) else None)
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
            wait_for(lambda name=name: name in [c.name for c in store.classes()], 20, f"class {name} to be stored")
            page.wait_for_timeout(1000)  # the rerun replaces the form
        no_exception()
        hotkeys = {c.name: c.hotkey for c in store.classes()}
        assert sorted(hotkeys.values()) == [str(i + 1) for i in range(len(classes))]  # a free key for each class
        ids = {c.name: c.id for c in store.classes()}

        # Label: the keyboard widget shows the image in focus (its id is the image key "ID:SHA"); label it by click
        # on the widget's class buttons or by its key.
        goto("label", "Which class is this?")
        widget = main.locator("[data-kl='root']")
        paths = {r.id: r.path for r in store.images()}

        def focused() -> str:
            item = widget.locator("img[data-kl='image']").get_attribute("data-id") or ""
            return paths.get(int(item.split(":")[0]), "") if item else ""

        def upcoming() -> list[str]:
            """The image on screen, then the next ones the widget holds (their captions start with the path)."""
            later = [re.match(r"[\w\-.]+\.png", alt or "") for alt in
                     widget.locator("[data-kl='next'] img").evaluate_all("els => els.map(e => e.alt)")]
            return [focused(), *[m.group(0) for m in later if m]]

        # Typed ahead: five keys 30 ms apart, alternating classes, while the page catches up: each press labels
        # the image that was on screen when it was pressed, in order.
        wait_for(lambda: len(upcoming()) >= 5, 30, "five images in the widget")
        page.wait_for_timeout(1500)  # the page is idle: the presses below start the catching up
        ahead = upcoming()[:5]
        keys = [hotkeys[classes[i % len(classes)]] or "" for i in range(5)]
        for key in keys:
            page.keyboard.press(key)
            page.wait_for_timeout(30)
        wait_for(lambda: len(store.human_labels()) >= 5, 20, "the five typed-ahead labels to be stored")
        by_path = {paths[image_id]: class_id for image_id, class_id in store.human_labels().items()}
        assert [by_path.get(path) for path in ahead] == [ids[classes[i % len(classes)]] for i in range(5)]
        assert len(by_path) == 5  # nothing else was labeled
        widget.get_by_text("All saved.").wait_for()
        # Five undos, typed ahead too, revert them newest first; the first of the five is on screen again.
        for _ in range(5):
            page.keyboard.press("u")
            page.wait_for_timeout(30)
        wait_for(lambda: not store.human_labels(), 20, "the five undos to be applied")
        wait_for(lambda: focused() == ahead[0], 20, "the first typed-ahead image to be back")
        # A key bound to nothing says why; ? lists the keys.
        page.keyboard.press("x")
        widget.get_by_text("is not a key for any class here").wait_for()
        page.keyboard.press("?")
        widget.locator("[data-kl='help']").wait_for(state="visible")
        page.keyboard.press("Escape")
        # After a click on a Streamlit switch the keys still reach the widget.
        main.get_by_text("Large view").first.click()
        page.wait_for_timeout(1500)

        done: dict[str, int] = dict.fromkeys(classes, 0)
        by_key = by_click = 0
        for _ in range(4 * len(truth)):
            if min(done.values()) >= LABELS_PER_CLASS and by_key >= 2 and by_click >= 2:
                break
            path = wait_for(focused, 20, "a focused image")
            assert isinstance(path, str)
            name = truth[path]
            before = len(store.human_labels())
            if done[name] >= LABELS_PER_CLASS and by_key >= 2 and by_click >= 2:
                page.keyboard.press("s")  # skip, by key too
                wait_for(lambda path=path: focused() not in {"", path}, 20, "the next image after a skip")
                continue
            if by_click <= by_key:
                widget.get_by_role("button", name=re.compile(rf"^{re.escape(name)}")).first.click()
                by_click += 1
            else:
                page.keyboard.press(hotkeys[name] or "")
                by_key += 1
            wait_for(lambda before=before: len(store.human_labels()) > before, 20, f"the label of {path} to be stored")
            done[name] += 1
            wait_for(lambda path=path: focused() not in {"", path}, 20, "the next image")
        no_exception()
        labels = store.human_labels()
        assert set(labels.values()) == {ids[name] for name in classes}
        records = {r.id: r.path for r in store.images()}
        assert all(truth[records[image_id]] == [n for n, i in ids.items() if i == class_id][0]
                   for image_id, class_id in labels.items())
        assert by_key >= 2
        assert by_click >= 2
        main.get_by_text("Large view").first.click()  # back to the normal view for the screenshot
        page.wait_for_timeout(1500)
        page.screenshot(path=str(screenshot_dir / "label.png"))

        # Home: the propagated count rises on its own (background job + 1 s polling).
        goto("", "Readable images")

        def propagated() -> int:
            metric = main.locator("[data-testid='stMetric']").filter(has_text="Propagated")
            if metric.count() == 0:
                return 0
            value = metric.first.locator("[data-testid='stMetricValue']").inner_text().strip()
            return int(value) if value.isdigit() else 0

        wait_for(propagated, 120, "the propagated count to rise", every=0.5)
        assert propagated() + len(labels) == len(truth)  # three separated classes: every image reached
        no_exception()
        page.screenshot(path=str(screenshot_dir / "home.png"))

        # Map: WebGL scatter once the UMAP layout exists (computed in the background).
        goto("map", "Map")
        wait_for(lambda: page.locator(".js-plotly-plot").count() > 0, 180, "the map", every=1.0)
        # A propagation still finishing would redraw the map (Follow updates) and drop the selection: select once
        # the background jobs are idle and the page shows their last state.
        wait_for(lambda: not any(job.active for job in store.jobs()), 180, "the background jobs to finish", every=0.5)
        page.wait_for_timeout(2500)
        no_exception()
        state = load_state(ws)
        assert state is not None
        assert state.umap is not None
        rows_of = {path: i for i, path in enumerate(state.paths)}
        unlabeled = [p for p in truth if state.source[rows_of[p]] != "human"]
        target = max(classes, key=lambda name: sum(truth[p] == name for p in unlabeled))
        inside = _box_around(state.umap, [rows_of[p] for p in unlabeled if truth[p] == target],
                             [i for i, p in enumerate(state.paths) if truth[p] != target])

        def select_box() -> int:
            """Drag a box over the map (box tool from the modebar); returns the selected count shown.

            A person whose drag lands while the chart is still settling draws the box again; so does the test, once.
            """
            heading = main.get_by_role("heading").filter(has_text=re.compile(r"^\d+ selected$"))
            for attempt in range(2):
                drag_box()
                try:
                    heading.first.wait_for(timeout=20_000 if attempt == 0 else 60_000)
                    break
                except PlaywrightTimeout:
                    if attempt == 1:
                        raise
            return int(heading.first.inner_text().split()[0])

        def drag_box() -> None:
            plot = page.locator(".js-plotly-plot").first
            plot.evaluate("gd => gd.scrollIntoView({block: 'start'})")  # the whole map inside the viewport
            page.wait_for_timeout(300)
            plot.hover()
            page.locator(".modebar-btn[data-title='Box Select']").first.click()
            corners = plot.evaluate(
                """(gd, box) => {
                    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
                    // Clipped to the plot area: a drag that starts in the margin selects nothing.
                    const x = (v) => r.left + xa._offset + Math.min(Math.max(xa.d2p(v), 2), xa._length - 2);
                    const y = (v) => r.top + ya._offset + Math.min(Math.max(ya.d2p(v), 2), ya._length - 2);
                    return [x(box[0]), y(box[1]), x(box[2]), y(box[3])];
                }""",
                inside,
            )
            page.mouse.move(corners[0], corners[1])
            page.mouse.down()
            page.mouse.move((corners[0] + corners[2]) / 2, (corners[1] + corners[3]) / 2, steps=4)
            page.mouse.move(corners[2], corners[3], steps=4)
            page.mouse.up()

        # Hover shows the thumbnail: the pointer on a point brings its thumbnail and name in a panel beside it.
        aim = rows_of[unlabeled[0]]
        plot = page.locator(".js-plotly-plot").first
        plot.evaluate("gd => gd.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
        spot = plot.evaluate(
            """(gd, p) => {
                const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
                return [r.left + xa._offset + xa.d2p(p[0]), r.top + ya._offset + ya.d2p(p[1])];
            }""",
            [float(v) for v in state.umap[aim]],
        )
        panel = page.locator("[data-mh='box']")

        def hovered() -> list[int]:
            """[row] of the thumbnail shown, once it is the point under the pointer (or one beside it)."""
            row = int(panel.get_attribute("data-row") or -1)
            near = row >= 0 and np.linalg.norm(state.umap[row] - state.umap[aim]) < 1.0
            return [row] if near and panel.get_attribute("hidden") is None else []

        for attempt, dx in enumerate((0, 1, -1)):  # another small move if the first lands while the chart settles
            page.mouse.move(spot[0] + dx, spot[1])
            try:
                (row,) = wait_for(hovered, 10, "the hovered point's thumbnail")
                break
            except AssertionError:
                if attempt == 2:
                    raise
        assert panel.locator("p").inner_text().startswith(f"{state.paths[row]} · ")
        assert (panel.locator("img").get_attribute("src") or "").startswith("data:image/png;base64,")
        page.mouse.move(5, 5)
        panel.wait_for(state="hidden")

        selected = select_box()
        expected = [p for p in truth if _in_box(state.umap[rows_of[p]], inside)]
        assert selected == len(expected) >= 3
        assert {truth[p] for p in expected} == {target}
        free = [p for p in expected if state.source[rows_of[p]] != "human"]  # a bulk label leaves human ones alone
        thumbnails = main.locator("[data-testid='stImage'] img")
        wait_for(lambda: thumbnails.count() >= min(len(free), 60), 20, "their thumbnails")
        # The bulk label starts at the class most of the selection was given.
        assert target in _selectbox_value(main, "Label all selected as")
        page.screenshot(path=str(screenshot_dir / "map.png"))

        # Send them to review: the review queue (same browser session, so follow the link) starts with them.
        main.get_by_role("button", name="Send to review").click()
        main.get_by_role("link", name="Open the review queue").click()
        review_widget = main.locator("[data-kl='root']")
        review_widget.get_by_text("sent from the map").first.wait_for()
        shown = review_widget.locator("img[data-kl='image']").get_attribute("data-id") or ""
        assert records_path(store)[int(shown.split(":")[0])] in free
        no_exception()

        # Back on the map: the same box, labeled all at once as the class it holds.
        page.get_by_role("link", name="Map").first.click()
        wait_for(lambda: page.locator(".js-plotly-plot").count() > 0, 60, "the map again")
        page.wait_for_timeout(1000)
        select_box()
        assert target in _selectbox_value(main, "Label all selected as")  # the majority is the default: no choosing
        labeled_before = dict(store.human_labels())
        main.get_by_role("button", name=re.compile(r"^Label \d+ images?")).first.click()
        wait_for(lambda: len(store.human_labels()) > len(labeled_before), 20, "the bulk labels to be stored")
        added = {i: class_id for i, class_id in store.human_labels().items() if i not in labeled_before}
        records = {r.id: r.path for r in store.images()}
        records_by_path = {path: image_id for image_id, path in records.items()}
        assert set(added.values()) == {ids[target]}
        newly = sorted(p for p in expected if records_by_path[p] not in labeled_before)
        assert sorted(records[i] for i in added) == newly
        labels = store.human_labels()
        no_exception()

        for path, ready, shot in (("review", "Review & audit", "review.png"), ("model", "Model", "model.png")):
            goto(path, ready)
            page.wait_for_timeout(2000)
            no_exception()
            page.screenshot(path=str(screenshot_dir / shot))

        # Export: download the CSV and check it has one row per image, human rows included.
        goto("export", "Download CSV")
        page.wait_for_timeout(1000)
        no_exception()
        page.screenshot(path=str(screenshot_dir / "export.png"))
        with page.expect_download() as download_info:
            main.get_by_role("button", name="Download CSV").click()
        saved = download_info.value.path()
        with open(saved, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))

        # Model: start self-supervised training, see it run, stop it; the job ends and says so.
        goto("model", "Self-supervised training")
        main.get_by_label("Minutes").first.fill("0.1")
        main.get_by_role("button", name="Start").first.click()
        wait_for(lambda: [j for j in store.jobs(kind="train", limit=1) if j.status == "running"], 30, "training to run")
        main.get_by_text(re.compile(r"epoch|loading|training|queued|running")).first.wait_for()
        main.get_by_role("button", name="Stop").first.click()
        wait_for(lambda: [j for j in store.jobs(kind="train", limit=1) if not j.active], 60, "training to stop")
        (job,) = store.jobs(kind="train", limit=1)
        assert job.status in {"cancelled", "done"}, job.error
        main.get_by_text("last run:").first.wait_for()
        no_exception()

        # Teaching: every demo drawn without WebGL (the browser allows only a few contexts per page).
        goto("teaching", "Teaching")
        for tab in ("Confirmation bias", "Distribution mismatch", "Cost of complexity", "Manifold assumption"):
            main.get_by_role("tab", name=tab).click()
            page.wait_for_timeout(1500)
        no_exception()
        page.get_by_role("tab", name="Distribution mismatch").click()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(screenshot_dir / "teaching.png"))
        page.get_by_role("tab", name="Manifold assumption").click()
        too_many = [line for line in console if "Too many active WebGL contexts" in line]
        assert not too_many, too_many
        assert not outside, sorted(set(outside))

        _two_tabs_and_a_cli_batch(browser, page, url, data, truth, store)
        _kill_9_while_labeling(page, url, truth, store, server)  # the last step: the server is gone after it
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
    propagated_rows = [row for row in rows if row["source"] == "propagated"]
    right = sum(row["label"] == truth[row["path"]] for row in propagated_rows)
    assert right >= MIN_ACCURACY * len(propagated_rows), f"{right} of {len(propagated_rows)} propagated labels right"


def _two_tabs_and_a_cli_batch(browser: Any, page: Any, url: str, data: Path, truth: dict[str, str],
                              store: LabelStore) -> None:
    """Two tabs (two browser contexts, so two annotators) and a ``labeler label`` batch label the same folder at
    once: no label lost or doubled, the event log agrees with the labels, undo in one tab never touches the other's
    or the batch's labels, and after a reload a tab still undoes its own earlier labels."""
    other_context = browser.new_context(viewport={"width": 1366, "height": 900})
    other = other_context.new_page()
    other.set_default_timeout(60_000)
    tabs = [page, other]
    paths = {r.id: r.path for r in store.images()}
    ids = {c.name: c.id for c in store.classes()}
    hotkeys = {c.name: c.hotkey for c in store.classes()}

    def widget(tab: Any) -> Any:
        return tab.locator("[data-testid='stMain'] [data-kl='root']")

    def ahead(tab: Any) -> list[str]:
        """The path on screen, then those of the next images the tab's widget holds."""
        item = widget(tab).locator("img[data-kl='image']").get_attribute("data-id") or ""
        later = [re.match(r"[\w\-.]+\.png", alt or "") for alt in
                 widget(tab).locator("[data-kl='next'] img").evaluate_all("els => els.map(e => e.alt)")]
        return [paths.get(int(item.split(":")[0]), "") if item else "", *[m.group(0) for m in later if m]]

    for tab in tabs:
        tab.goto(f"{url}/label")
        wait_for(lambda tab=tab: len(ahead(tab)) >= 4 and ahead(tab)[0], 60, "four images in each tab")
    for _ in range(8):  # two tabs would show the same images first: the second tab skips to others
        if not set(ahead(page)[:3]) & set(ahead(other)[:3]):
            break
        before = ahead(other)[0]
        other.keyboard.press("s")
        wait_for(lambda before=before: ahead(other)[0] not in {"", before}, 20, "the next image after a skip")
        wait_for(lambda: len(ahead(other)) >= 3, 20, "three images ahead")
    first, second = ahead(page)[:3], ahead(other)[:3]
    assert not set(first) & set(second)
    human = store.human_labels()
    batch = [p for p in sorted(truth) if p not in {*first, *second}
             and next(i for i, q in paths.items() if q == p) not in human][:10]
    assert len(batch) == 10
    seeds = data.parent / "batch.csv"
    seeds.write_text("path,label\n" + "".join(f"{p},{truth[p]}\n" for p in batch))
    last_event = max((e["id"] for e in store.history(limit=1)), default=0)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cli = subprocess.Popen([sys.executable, "-m", "labeler.cli", "label", str(data), "--csv", str(seeds)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for a, b in zip(first, second, strict=True):  # the two tabs type in turns, 30 ms apart, while the CLI writes
        page.keyboard.press(hotkeys[truth[a]] or "")
        page.wait_for_timeout(15)
        other.keyboard.press(hotkeys[truth[b]] or "")
        page.wait_for_timeout(15)
    out, _ = cli.communicate(timeout=120)
    assert cli.returncode == 0, out
    by_id = {q: i for i, q in paths.items()}
    everything = [by_id[p] for p in [*first, *second, *batch]]
    wait_for(lambda: set(everything) <= set(store.human_labels()), 30, "every label of both tabs and the batch")
    labels = store.human_labels()
    assert all(labels[by_id[p]] == ids[truth[p]] for p in [*first, *second, *batch])  # none lost, none mixed up
    events = [e for e in reversed(store.history(limit=200)) if e["id"] > last_event]
    assert sorted(e["image_id"] for e in events) == sorted(everything)  # one event per label: none doubled
    for image_id in everything:  # the log agrees with the labels
        assert [e["class_id"] for e in events if e["image_id"] == image_id][-1] == labels[image_id]
    who = {paths[e["image_id"]]: e["annotator"] for e in events}
    assert len({who[p] for p in first}) == len({who[p] for p in second}) == 1
    assert len({who[p] for p in batch}) == 1
    assert len({who[first[0]], who[second[0]], who[batch[0]]}) == 3  # two tabs, one batch: three annotators

    def untouched() -> None:
        now = store.human_labels()
        assert all(now.get(by_id[p]) == ids[truth[p]] for p in [*first, *batch])

    # Undo in the second tab reverts its own last label, and nothing of the first tab's or the batch's.
    widget(other).get_by_text("All saved.").wait_for()
    other.keyboard.press("u")
    wait_for(lambda: by_id[second[2]] not in store.human_labels(), 20, "the second tab's undo")
    untouched()
    # A reload is the same tab (its id is in the address): its undo still reaches its labels of before.
    assert "tab=" in other.url
    other.reload()
    wait_for(lambda: ahead(other)[0], 60, "the reloaded tab's widget")
    other.wait_for_timeout(1000)
    other.keyboard.press("u")
    wait_for(lambda: by_id[second[1]] not in store.human_labels(), 20, "the reloaded tab's undo")
    untouched()
    assert store.human_labels().get(by_id[second[0]]) == ids[truth[second[0]]]
    other_context.close()


def _kill_9_while_labeling(page: Any, url: str, truth: dict[str, str], store: LabelStore, server: int) -> None:
    """kill -9 of the app server while labels are being written: every label the page acknowledged (its widget
    stops counting it as "Saving") is in the store when it is opened again, and nothing else is."""
    rng = random.Random(int(os.environ.get("LABELER_FAULT_SEED", "20261127")))
    paths = {r.id: r.path for r in store.images()}
    hotkeys = {c.name: c.hotkey for c in store.classes()}
    ids = {c.name: c.id for c in store.classes()}
    page.goto(f"{url}/label")
    widget = page.locator("[data-testid='stMain'] [data-kl='root']")

    def ahead() -> list[str]:
        item = widget.locator("img[data-kl='image']").get_attribute("data-id") or ""
        later = [re.match(r"[\w\-.]+\.png", alt or "") for alt in
                 widget.locator("[data-kl='next'] img").evaluate_all("els => els.map(e => e.alt)")]
        return [paths.get(int(item.split(":")[0]), "") if item else "", *[m.group(0) for m in later if m]]

    wait_for(lambda: len(ahead()) >= 5 and ahead()[0], 60, "five images in the widget")
    page.wait_for_timeout(1000)
    pressed = ahead()[:5]
    before = store.human_labels()
    for path in pressed[:2]:
        page.keyboard.press(hotkeys[truth[path]] or "")
        page.wait_for_timeout(30)
    wait_for(lambda: widget.get_attribute("data-pending") != "2", 20, "a first acknowledgement")
    for path in pressed[2:]:  # the server is killed at a random moment while these are on their way
        page.keyboard.press(hotkeys[truth[path]] or "")
        page.wait_for_timeout(rng.uniform(0, 60))
    os.killpg(server, signal.SIGKILL)
    page.wait_for_timeout(1000)
    acknowledged = len(pressed) - int(widget.get_attribute("data-pending") or 0)
    assert acknowledged >= 1
    after = {i: c for i, c in LabelStore(store.db_path).human_labels().items() if i not in before}  # reopened
    by_path = {paths[i]: c for i, c in after.items()}
    assert all(by_path.get(path) == ids[truth[path]] for path in pressed[:acknowledged]), (acknowledged, by_path)
    assert set(by_path) <= set(pressed)  # nothing else written, nothing torn
    with sqlite3.connect(store.db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _selectbox_value(main: Any, label: str) -> str:
    """What a selectbox shows (its text, or its input's value where it is searchable)."""
    box = main.locator("[data-testid='stSelectbox']").filter(has_text=label).first
    inputs = box.locator("input")
    return " ".join([box.inner_text(), *(inputs.nth(i).input_value() for i in range(inputs.count()))])


def records_path(store: LabelStore) -> dict[int, str]:
    return {r.id: r.path for r in store.images()}


def _in_box(point: Sequence[float], box: Sequence[float]) -> bool:
    return bool(box[0] <= point[0] <= box[2] and box[3] <= point[1] <= box[1])


def _box_around(coords: Any, rows: Sequence[int], others: Sequence[int]) -> list[float]:
    """A box (x0, y_top, x1, y_bottom in data units) holding several of ``rows`` and none of ``others``: the
    smallest square around the point of ``rows`` nearest their median (a median of a curved cluster can lie in
    empty space), grown while it stays clean."""
    points = np.asarray(coords, dtype=float)
    members = points[list(rows)]
    centre = members[np.argmin(np.linalg.norm(members - np.median(members, axis=0), axis=1))]
    span = float(np.ptp(points, axis=0).max()) or 1.0
    best = None
    for half in span * np.linspace(0.01, 0.25, 25):
        box = [centre[0] - half, centre[1] + half, centre[0] + half, centre[1] - half]
        if any(_in_box(points[i], box) for i in others):
            break
        best = box
    assert best is not None, "no clean box around the class on the map"
    # Keep the box inside the points' extent: a drag that starts outside the plot area selects nothing.
    low, high = points.min(axis=0), points.max(axis=0)
    x0, y_top, x1, y_bottom = best
    return [float(max(x0, low[0])), float(min(y_top, high[1])), float(min(x1, high[0])), float(max(y_bottom, low[1]))]
