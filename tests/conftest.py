"""Shared fixtures: small image folders built inside each test (tests never depend on ../shared)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labeler.config import Settings
from labeler.workflow.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def make_colour_folder(root: Path, per_class: int = 30, size: int = 20, seed: int = 0) -> dict[str, str]:
    """Write ``per_class`` noisy solid-colour PNGs per class into ``root`` (flat); returns {path: true class}."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    truth = {}
    index = 0
    for name, rgb in COLOURS.items():
        for _ in range(per_class):
            pixels = np.clip(np.array(rgb) + rng.normal(0, 18, size=(size, size, 3)), 0, 255).astype(np.uint8)
            path = f"img_{index:03d}.png"
            Image.fromarray(pixels).save(root / path)
            truth[path] = name
            index += 1
    return truth


@pytest.fixture
def colour_folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "data"
    truth = make_colour_folder(root)
    return root, truth


@pytest.fixture
def ws(colour_folder: tuple[Path, dict[str, str]]) -> Workspace:
    """The colour folder imported, with the classes red, green and blue defined (no labels yet)."""
    root, _ = colour_folder
    workspace = Workspace.open(Settings(root, n_bootstrap=3))
    workspace.import_folder()
    for name in COLOURS:
        workspace.store.add_class(name)
    return workspace


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshots", action="store_true",
        help="write the browser tests' screenshots into docs/screenshots/ (by default they go to a temporary folder)",
    )


@pytest.fixture
def screenshot_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Where browser tests save screenshots: docs/screenshots/ with --screenshots, else a temporary folder, so
    a plain test run never writes into the checkout. Look at them there after a run."""
    folder = ROOT / "docs" / "screenshots" if request.config.getoption("--screenshots") else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def clean_main_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bare ``__main__`` for tests that spawn processes: a spawned child re-runs ``__main__.__file__``, and an
    earlier AppTest leaves the app script there (it would run the whole app in every worker)."""
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
