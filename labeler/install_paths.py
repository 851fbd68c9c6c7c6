"""Where the app script and the bundled sample data are: a source checkout, or an installed package.

A source checkout keeps ``app.py``, ``pages/``, ``sample_data/`` and ``sample_photos/`` beside ``labeler/``. A
regular install ships ``app.py`` and ``pages`` as top-level modules next to ``labeler`` and the sample folders under
``<prefix>/share/labeler/`` (see ``pyproject.toml``).
"""

from __future__ import annotations

import importlib.util
import sys
import sysconfig
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parent.parent


def app_script() -> Path:
    """The Streamlit entry script ``app.py``."""
    beside = SOURCE_ROOT / "app.py"
    if beside.is_file():
        return beside
    spec = importlib.util.find_spec("app")
    if spec is not None and spec.origin and (Path(spec.origin).parent / "pages" / "shared").is_dir():
        return Path(spec.origin)
    raise FileNotFoundError("labeler's app.py is not installed: reinstall with `pip install labeler`")


def _bundled(name: str) -> Path:
    """A bundled sample folder: the checkout's copy first, else the installed one."""
    candidates = [
        SOURCE_ROOT / name,
        Path(sysconfig.get_paths()["data"]) / "share" / "labeler" / name,
        Path(sys.prefix) / "share" / "labeler" / name,
    ]
    return next((path for path in candidates if path.is_dir()), candidates[0])


def sample_data_dir() -> Path:
    """The bundled sample images (1,000 Fashion-MNIST PNGs): what the app opens by default."""
    return _bundled("sample_data")


def sample_photos_dir() -> Path:
    """The bundled sample photos (120 cats and dogs of Oxford-IIIT Pet): where the pretrained backbone shows."""
    return _bundled("sample_photos")
