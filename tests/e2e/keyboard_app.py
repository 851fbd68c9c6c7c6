"""Standalone demo of ``pages.shared.keyboard_labeler`` for the real-browser test (and for trying it by hand).

``KEYBOARD_APP_RECORD=/tmp/record.json streamlit run tests/e2e/keyboard_app.py``, then open
``http://localhost:8501/?run=demo``. Thirty coloured squares, numbered 0-29, are labeled red, green or blue
(keys 1, 2, 3). Every applied event is written at once to the JSON file named by ``KEYBOARD_APP_RECORD``
(default: ``keyboard_record.json`` in the system temporary folder), under the name given by the ``run`` query
parameter, so a test reads exactly what was recorded::

    {"runs": {RUN: {"labels": {image_id: class}, "skipped": [image_id, ...], "events": [LabelEvent, ...]}}}

Query parameters: ``run`` (default ``demo``); ``prefetch`` (items sent to the browser, default 8); and, to mimic a
slow page, seconds each script run sleeps: ``before_s`` before drawing the widget (computing the next items),
``after_s`` after it (the rest of the page), ``apply_s`` while storing an event (the store); all 0 by
default. ``tricky=1`` puts markup into the captions (they must show as text); ``accept=1`` adds Review's accept
class (key ``a``), which stands for each image's proposal, green.
"""

from __future__ import annotations

import colorsys
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `streamlit run` puts only this folder on sys.path
    sys.path.insert(0, str(ROOT))

from pages.shared.keyboard_labeler import (  # noqa: E402
    LabelEvent,
    LabelItem,
    default_keys,
    keyboard_labeler,
    thumbnail_data_url,
)

N_IMAGES = 30
CLASSES = ["red", "green", "blue"]
COLOURS = ["#d62728", "#2ca02c", "#1f77b4"]
ACCEPT = ("✓ Accept the proposal", "a", "#555555")


def record_path() -> Path:
    """The JSON file every applied event is written to."""
    default = Path(tempfile.gettempdir()) / "keyboard_record.json"
    return Path(os.environ.get("KEYBOARD_APP_RECORD") or default)


def load_run(run: str) -> dict[str, Any]:
    """The recorded labels, skips and events of ``run`` (empty when nothing was recorded yet)."""
    try:
        runs = json.loads(record_path().read_text(encoding="utf-8")).get("runs", {})
    except (OSError, ValueError):
        runs = {}
    return runs.get(run) or {"labels": {}, "skipped": [], "events": []}


def save_run(run: str, recorded: dict[str, Any]) -> None:
    """Write ``run``'s record into the JSON file atomically (temporary file, then rename)."""
    path = record_path()
    try:
        everything = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        everything = {"runs": {}}
    everything.setdefault("runs", {})[run] = recorded
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(everything, indent=1), encoding="utf-8")
    os.replace(temporary, path)


def apply_event(run: str, event: LabelEvent, seconds: float = 0.0) -> None:
    """Store one event: a label or a skip is recorded, an undo reverts that image's label or skip.

    No Streamlit call in here (see the contract of ``keyboard_labeler``); ``seconds`` mimics a slow store.
    """
    recorded = load_run(run)
    time.sleep(seconds)
    image_id = event["image_id"]
    if event["action"] == "label":
        recorded["labels"][image_id] = event["label"]
    elif event["action"] == "skip":
        recorded["skipped"].append(image_id)
    elif image_id in recorded["labels"]:
        del recorded["labels"][image_id]
    elif image_id in recorded["skipped"]:
        recorded["skipped"].remove(image_id)
    recorded["events"].append(dict(event))
    save_run(run, recorded)


@st.cache_data(show_spinner=False)
def thumbnails() -> list[str]:
    """Thirty coloured squares with their number, as PNG data URLs (hues spread around the colour wheel)."""
    urls = []
    for index in range(N_IMAGES):
        rgb = np.array(colorsys.hsv_to_rgb(index / N_IMAGES, 0.55, 0.95)) * 255
        picture = Image.new("RGB", (64, 64), tuple(int(v) for v in rgb))
        ImageDraw.Draw(picture).text((22, 26), f"{index:02d}", fill=(0, 0, 0))
        urls.append(thumbnail_data_url(picture))
    return urls


def main() -> None:
    params = st.query_params
    run = params.get("run", "demo")
    prefetch = int(params.get("prefetch", "8"))
    before_s, after_s, apply_s = (float(params.get(name, "0")) for name in ("before_s", "after_s", "apply_s"))
    caption = "<b>{}</b> & <img src=x onerror=alert(1)>.png" if params.get("tricky") == "1" else "{}.png"
    note = " · typical of a cluster" if params.get("noted") == "1" else ""  # a caption with a note, and a name
    accept = params.get("accept") == "1"

    st.title("Keyboard labeler demo")
    time.sleep(before_s)
    recorded = load_run(run)
    done = set(recorded["labels"]) | set(recorded["skipped"])
    ids = [f"img_{index:02d}" for index in range(N_IMAGES)]
    items = [
        LabelItem(id=image_id, thumbnail=thumbnails()[index], caption=caption.format(image_id) + note,
                  **({"name": f"{image_id}.png"} if note else {}), **({"proposal": "green"} if accept else {}))
        for index, image_id in enumerate(ids)
        if image_id not in done
    ][:prefetch]
    classes = list(zip(CLASSES, default_keys(len(CLASSES)), COLOURS, strict=True)) + ([ACCEPT] if accept else [])
    applied = keyboard_labeler(items, classes, key="labeler", on_event=lambda event: apply_event(run, event, apply_s),
                               undo_earlier=params.get("undo_earlier") == "1", accept=ACCEPT[0] if accept else None)
    if applied:  # UI state belongs here, not in on_event
        st.session_state["last"] = f"{applied[-1]['image_id']}: {applied[-1]['action']} {applied[-1]['label'] or ''}"
    st.caption(
        f"{len(recorded['labels'])} labeled · {len(recorded['skipped'])} skipped · last applied: "
        f"{st.session_state.get('last', 'nothing yet')}"
    )
    time.sleep(after_s)


main()
