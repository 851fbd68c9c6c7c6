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


# Which labeler packages each layer may import (besides itself): the tree follows the data, and nothing looks up.
ALLOWED_IMPORTS = {
    "core": {"config"},
    "io": {"config", "progress"},
    "store": set(),
    "embed": {"config", "progress", "io"},
    "workflow": {"config", "progress", "wording", "io", "store", "embed", "core"},
}


def _labeler_imports(path: Path) -> set[str]:
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("labeler"):
            parts = node.module.split(".")
            if len(parts) > 1:
                found.add(parts[1])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("labeler."))
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED_IMPORTS))
def test_layers_import_only_downwards(layer: str) -> None:
    package = ROOT / "labeler" / layer
    for path in sorted(package.rglob("*.py")):
        imported = _labeler_imports(path) - {layer}
        upward = imported - ALLOWED_IMPORTS[layer]
        assert not upward, f"{path.relative_to(ROOT)} imports {upward}"
