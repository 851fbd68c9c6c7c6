"""House rules that keep the code base honest: labeler never imports streamlit; lint stays clean."""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import labeler

ROOT = Path(__file__).resolve().parent.parent


def test_labeler_never_imports_streamlit() -> None:
    code = (
        "import importlib, pkgutil, sys, labeler\n"
        "for m in pkgutil.walk_packages(labeler.__path__, 'labeler.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('streamlit' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "False"


def test_every_module_imports() -> None:
    for module in pkgutil.walk_packages(labeler.__path__, "labeler."):
        importlib.import_module(module.name)


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    result = subprocess.run([ruff, "check", "."], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
