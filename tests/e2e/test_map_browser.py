"""The map's pointer in a real browser: the hover thumbnail goes while a lasso is drawn and once the pointer leaves
the chart, a click (inside a lasso too) selects the point nearest the pointer, and a selection outlives a redraw of
the chart.

A small colour folder is labeled and laid out (UMAP) before ``labeler app`` starts, so the map is there at once;
Debian's chromium (``/usr/bin/chromium``) is driven by the Python ``playwright`` package, as in test_browser.py.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, labeler_app, wait_for
from numpy.typing import NDArray

from labeler.config import Settings
from labeler.workflow.refresh import refresh
from labeler.workflow.state import PipelineState, load_state
from labeler.workflow.workspace import Workspace

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["red", "green", "blue"]
PANEL = "[data-mh='box']"


@pytest.fixture
def mapped_app(tmp_path: Path) -> Iterator[tuple[str, PipelineState]]:
    """(URL, state) of ``labeler app`` on 60 colour squares, two labeled per class, propagated and laid out."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import make_colour_folder

    data = tmp_path / "data"
    truth = make_colour_folder(data, per_class=20)
    ws = Workspace.open(Settings(data_dir=data))
    ws.import_folder()
    ids = {name: ws.store.add_class(name).id for name in CLASSES}
    for name in CLASSES:
        ws.store.set_labels([r.id for r in ws.records() if truth[r.path] == name][:2], ids[name], "tester")
    refresh(ws, compute_map=True)
    state = load_state(ws)
    assert state is not None
    assert state.umap is not None
    with labeler_app(data, tmp_path / "app.log") as (url, _):
        yield url, state


def test_hover_hides_on_drag_and_leave_a_click_in_a_lasso_selects_and_a_redraw_keeps_the_selection(
    mapped_app: tuple[str, PipelineState]
) -> None:
    from playwright.sync_api import sync_playwright

    url, state = mapped_app
    assert state.umap is not None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(f"{url}/map")
        main = page.locator("[data-testid='stMain']")
        plot = page.locator(".js-plotly-plot").first
        plot.wait_for()
        wait_for(lambda: plot.evaluate("gd => gd.classList.contains('mh-map')"), 20, "the hover to hook the map")
        # Only the map's chart: the script stays in the page when another page's charts are shown.
        assert page.locator(".mh-map").count() == page.locator(".st-key-map_chart .mh-map").count() == 1
        plot.evaluate("gd => gd.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(500)

        def on_screen() -> tuple[NDArray[np.float64], list[float]]:
            """Each point's position in the page, and the plot area (left, top, right, bottom)."""
            xy = np.array(plot.evaluate(
                """(gd, points) => {
                    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
                    return points.map(p => [r.left + xa._offset + xa.d2p(p[0]), r.top + ya._offset + ya.d2p(p[1])]);
                }""",
                umap.astype(float).tolist(),
            ))
            area = plot.evaluate("""gd => {
                const s = gd._fullLayout._size, r = gd.getBoundingClientRect();
                return [r.left + s.l, r.top + s.t, r.left + s.l + s.w, r.top + s.t + s.h];
            }""")
            return xy, area

        def lasso(low: NDArray[np.float64], high: NDArray[np.float64], *, check: bool = False) -> None:
            """Drag a lasso around the box low-high; with ``check``, assert the thumbnail stays hidden meanwhile."""
            page.mouse.down()
            page.mouse.move(low[0], low[1], steps=4)
            assert not (check and shown()), "the thumbnail stays while a lasso is drawn"
            for corner in ((high[0], low[1]), (high[0], high[1]), (low[0], high[1]), (low[0], low[1])):
                page.mouse.move(*corner, steps=4)
                if check:
                    # What plotly does when a hover it throttled lands after the drag began: it must not show.
                    plot.evaluate("(gd, p) => gd.emit('plotly_hover', {points: [{customdata: [p[0], 1]}], "
                                  "event: {clientX: p[1], clientY: p[2]}})", [start, *corner])
                    page.wait_for_timeout(100)
                    assert not shown(), "the thumbnail comes back while a lasso is drawn"
            page.mouse.up()

        umap = state.umap
        xy, area = on_screen()
        panel = page.locator(PANEL)

        def shown() -> bool:
            return panel.get_attribute("hidden") is None

        def hover(row: int) -> None:
            """Bring the pointer onto ``row`` until its thumbnail shows (another small move if the chart settled)."""
            for attempt, dx in enumerate((0, 1, -1, 2)):
                page.mouse.move(xy[row, 0] + dx, xy[row, 1], steps=2)
                try:
                    wait_for(lambda: shown() and panel.get_attribute("data-row") is not None, 5, "the thumbnail")
                    return
                except AssertionError:
                    if attempt == 3:
                        raise

        # A lasso around the cluster of one point, wider than it: drawn from that point, the thumbnail goes at once.
        start = int(np.argmin(xy[:, 0]))
        members = np.flatnonzero(np.linalg.norm(state.umap - state.umap[start], axis=1)
                                 < 0.25 * float(np.ptp(state.umap, axis=0).max()))
        low = np.maximum(xy[members].min(axis=0) - 40, np.array(area[:2]) + 3)
        high = np.minimum(xy[members].max(axis=0) + 40, np.array(area[2:]) - 3)
        hover(start)
        lasso(low, high, check=True)
        inside = [row for row in range(len(xy)) if (low <= xy[row]).all() and (xy[row] <= high).all()]
        heading = main.get_by_role("heading").filter(has_text=re.compile(r"^\d+ selected$"))
        heading.first.wait_for()
        assert int(heading.first.inner_text().split()[0]) == len(inside) >= 3

        # Off the chart, by any side and in one step: the thumbnail goes, and a hover plotly sends late stays away.
        hover(inside[0])
        page.mouse.move(area[2] + 60, xy[inside[0], 1])
        page.wait_for_timeout(600)
        assert not shown(), "the thumbnail stays after the pointer left the chart"

        # A click inside the lasso, beside a point and right after the pointer got there: the drawn lasso's outline
        # no longer swallows it, and the nearest point becomes the selection (plotly's own click took the point of a
        # hover it had throttled, under an earlier position of the pointer: a point of another cluster).
        gaps = np.linalg.norm(xy[inside][:, None, :] - xy[None, :, :], axis=2)
        gaps[np.arange(len(inside)), inside] = np.inf
        clicked = inside[int(np.argmax(gaps.min(axis=1)))]  # the point of the lasso farthest from the others
        spot = xy[clicked] + np.array([6.0, 4.0])
        page.mouse.move(spot[0] - 3, spot[1], steps=2)
        page.mouse.click(spot[0], spot[1])
        main.get_by_role("heading", name="1 selected").wait_for()
        inspector = main.get_by_test_id("stCaptionContainer").filter(has_text=state.paths[clicked])
        inspector.first.wait_for()

        # Another colouring redraws the chart, which forgets what was picked on it: the selection stays.
        def drawn_selected() -> list[int]:
            """Rows the chart draws as selected without having reported them (a selection it carries)."""
            return sorted(plot.evaluate("gd => gd._fullData.flatMap(t => Array.from(t.selectedpoints || [], "
                                        "i => Math.round(t.customdata[i][0])))"))

        kept = main.get_by_text(re.compile("kept from before the map was redrawn"))
        main.locator("[data-testid='stButtonGroup']").get_by_text("confidence", exact=True).click()
        kept.wait_for()
        assert heading.first.inner_text() == "1 selected"
        inspector.first.wait_for()
        wait_for(lambda: drawn_selected() == [clicked], 20, "the redrawn chart to draw the selection")
        # A new lasso on the redrawn chart replaces it, and the chart carries that one.
        plot.evaluate("gd => gd.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(500)
        xy, area = on_screen()
        low = np.maximum(xy[members].min(axis=0) - 15, np.array(area[:2]) + 3)
        high = np.minimum(xy[members].max(axis=0) + 15, np.array(area[2:]) - 3)
        inside = [row for row in range(len(xy)) if (low <= xy[row]).all() and (xy[row] <= high).all()]
        assert len(inside) >= 3
        lasso(low, high)
        main.get_by_role("heading", name=f"{len(inside)} selected").wait_for()
        wait_for(lambda: drawn_selected() == sorted(inside), 20, "the chart to carry the new lasso")
        main.get_by_role("button", name="Clear selection").click()
        wait_for(lambda: heading.count() == 0, 20, "Clear selection to drop the selection")
        assert page.locator("[data-testid='stException']").count() == 0
        browser.close()
