"""The access gate: with a token set, a browser session without it sees no page content and writes nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from labeler.auth import TOKEN_ENV  # noqa: E402

APP = str(ROOT / "app.py")
TOKEN = "s3cret-token-for-the-test"


@pytest.fixture
def data_dir(colour_folder: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> Path:
    root, _ = colour_folder
    monkeypatch.setenv("LABELER_DATA_DIR", str(root))
    monkeypatch.delenv("LABELER_WORKSPACE", raising=False)
    monkeypatch.delenv("LABELER_GROUND_TRUTH", raising=False)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return root


def _app(page: str | None = None, token: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if token is not None:
        at.query_params["token"] = token
    if page is not None:
        at.switch_page(f"pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _shows_nothing_but_the_gate(at: AppTest, entry: bool) -> None:
    assert [e.value for e in at.error]
    assert all("access token" in e.value for e in at.error)
    assert not at.metric
    assert not at.button
    assert not at.text_input
    assert not at.dataframe
    assert not at.sidebar.markdown  # not even the jobs panel
    if entry:
        assert not at.title  # through app.py nothing at all renders besides the message
        assert not at.markdown


@pytest.mark.parametrize("page", [None, "label", "map", "export", "home", "review", "model"])
def test_without_the_token_no_page_renders_and_nothing_is_written(data_dir: Path, page: str | None) -> None:
    """AppTest runs a switched-to page script by itself (as Streamlit does for /label until st.navigation has run
    once; `labeler app` prevents that, see tests/e2e/test_access_token.py): the gate in session.settings still
    stops it before anything of the dataset is read or written."""
    at = _app(page)
    _shows_nothing_but_the_gate(at, entry=page is None)
    assert not (data_dir / ".labeler").exists()  # not even the workspace was created


def test_a_wrong_token_is_refused(data_dir: Path) -> None:
    at = _app("label", token="guess")
    assert any("Wrong access token" in e.value for e in at.error)
    assert not at.title
    assert not (data_dir / ".labeler").exists()


def test_with_the_token_the_app_works_and_the_session_stays_in(data_dir: Path) -> None:
    at = _app(token=TOKEN)
    assert [t.value for t in at.title] == ["labeler"]
    assert (data_dir / ".labeler" / "labeler.db").exists()
    at.switch_page("pages/label.py")  # moving between pages keeps the session accepted
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Label"]


def test_without_a_token_configured_there_is_no_gate(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV)
    at = _app()
    assert [t.value for t in at.title] == ["labeler"]
    assert not at.error
