"""The access token in a real browser: a server started with a token shows nothing and writes nothing to a browser
without it, whatever page it asks for first, and works with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, free_port, wait_for, wait_for_server

from labeler.auth import TOKEN_ENV

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "e2e-token-0123456789abcdef"
GATE = "This labeler needs its access token"


def test_without_the_token_nothing_renders_and_nothing_is_written(colour_folder: tuple[Path, dict[str, str]],
                                                                   tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT / "tests" / "e2e"))

    root, _ = colour_folder
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), TOKEN_ENV: TOKEN}  # a token on loopback too, when given
    log = (tmp_path / "app.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "labeler.cli", "app", str(root), "--port", str(port)],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    try:
        wait_for_server(process, url, tmp_path / "app.log", "labeler app")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.set_default_timeout(30_000)
            main = page.locator("[data-testid='stMain']")
            # A fresh server's very first request goes to a page other than the entry one: the case Streamlit
            # would serve by running pages/label.py on its own.
            for path in ("label", "home", "map", "export", "", "review"):
                page.goto(f"{url}/{path}")
                main.get_by_text(GATE).wait_for()
                time.sleep(1.0)  # let anything that would follow the gate render
                assert main.inner_text().strip().startswith(GATE), (path, main.inner_text())
                assert page.locator("[data-testid='stSidebar'] [data-testid='stMarkdown']").count() == 0
                assert page.locator("[data-testid='stImage'], [data-testid='stMetric']").count() == 0
            page.goto(f"{url}/?token=wrong")
            main.get_by_text("Wrong access token").wait_for()
            assert not (root / ".labeler").exists()  # nothing read, nothing written

            page.goto(f"{url}/?token={TOKEN}")
            main.get_by_text("Readable images").first.wait_for()
            page.locator("[data-testid='stSidebarNav'] a", has_text="Label").first.click()
            main.get_by_text("Define your classes").first.wait_for()
            wait_for(lambda: f"token={TOKEN}" in page.url, 10, "the token to stay in the address bar")
            page.reload()  # a reload keeps the session's access: the token is still in the URL
            main.get_by_text("Define your classes").first.wait_for()
            browser.close()
        assert (root / ".labeler" / "labeler.db").exists()
    finally:
        os.kill(process.pid, signal.SIGTERM)  # forwarded to the server by `labeler app`
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
