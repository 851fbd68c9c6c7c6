"""A labeling widget that never loses a key: ``keyboard_labeler(items, classes, key=..., on_event=...)``.

Built with ``st.components.v2.component`` (Streamlit >= 1.67). The browser runs a small loop
(``keyboard_labeler.js``): it shows ``items[0]``; a class key (or a click on a class button) labels the item that is
on screen *at that moment* and shows the next prefetched item at once, without waiting for Python. Each action
becomes an event; presses made while Python reruns are queued in order, and presses made when no prefetched item is
left ("Catching up…") go, in order, to the next items Python sends, never to an earlier one (as Prodigy does).

Contract
--------
``on_event(event)`` is called once per new event, oldest first, with a :class:`LabelEvent`:

``seq``
    Position of the event in this widget's stream (1, 2, 3, … without gaps).
``image_id``
    The ``id`` of the item the action applies to (an id this widget was given in ``items``, now or earlier).
``action``
    ``"label"`` (``label`` holds the class name), ``"skip"``, or ``"undo"``: revert this widget's latest label or
    skip not yet undone, which was on ``image_id`` (the browser shows that image again). With ``undo_earlier``
    and nothing of its own left to undo (after a reload, the page opened again, or a label made elsewhere on the
    page), an undo has ``image_id`` ``""``: the page's own earlier action, which the page knows and the browser
    does not.
``label``
    The class name for ``"label"``, else ``None``.

Each event reaches ``on_event`` once, in order. The browser keeps every event until a rerun acknowledges it and
sends all unacknowledged ones with every update, so an update lost to an interrupted rerun is carried by the next;
Python keeps, per browser session, the last ``seq`` handed to ``on_event`` and passes on only newer events.
``on_event`` runs from the widget's callback, before the page script, so the ``items`` the page computes afterwards
already reflect the events.

Put the durable effect (the store write) first in ``on_event``. With fast reruns (Streamlit's default) a new script
run starts as soon as the next key arrives, while the old run finishes what it was doing until its next Streamlit
call or ``st.session_state`` access, which raises ``StopException`` there. So an event is marked applied just
before ``on_event`` runs and stays so; in a stopped run, whatever ``on_event`` does after its first Streamlit access
is skipped for that event. A per-session lock keeps the old run's events in order before the new run's. UI state
that may be skipped (a "last action" caption) is best set from the call's return value. If ``on_event`` raises an
ordinary exception, its event is offered again on the next run and the error shows on the page.

A remounted widget (page left and opened again in the same session) starts a new stream, told apart by a random id.
Events whose class is not among ``classes`` (a class removed meanwhile) are logged and dropped.

Keys: each class has one key (:func:`default_keys`: ``1``-``9``, ``0``, then letters); ``s`` skips, ``u`` undoes,
``?`` toggles the key list, ``Esc`` closes it. A key bound to nothing says so. The widget takes the keyboard focus
when it loads and on every rerun (unless a text field has it) and after each of its buttons is clicked.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal, Required, TypedDict, cast

import numpy as np
import streamlit as st
from numpy.typing import NDArray
from PIL import Image

_LOGGER = logging.getLogger(__name__)
_ASSETS = Path(__file__).resolve().parent

COMPONENT_NAME = "labeler.keyboard_labeler"
# Keys the widget itself uses; a class cannot have them.
RESERVED_KEYS = {"s": "skip", "u": "undo", "?": "help"}
# Keys offered to classes in order: digits first (0 is the 10th), then letters, skipping the reserved ones and
# Streamlit's own "c" (clear cache) and "r" (rerun).
DEFAULT_KEYS = "1234567890abdefghijklmnopqtvwxyz"
ACTIONS = ("label", "skip", "undo")
# How long a new script run waits for an old one still applying events before leaving them to a later run.
LOCK_TIMEOUT_S = 2.0
_DATA_URL = re.compile(r"^data:image/(png|jpeg|webp|gif);base64,[A-Za-z0-9+/]+={0,2}$")
_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


class LabelItem(TypedDict, total=False):
    """One image the widget may show: a stable ``id``, a ``thumbnail`` data URL and a ``caption`` (plain text);
    optionally a short ``name`` (the file name) for the widget's messages, which the caption's notes would clutter,
    and the class name of its ``proposal``, which the ``accept`` class stands for in them ("→ cat (accepted)")."""

    id: Required[str]
    thumbnail: Required[str]
    caption: Required[str]
    name: str
    proposal: str


class LabelEvent(TypedDict):
    """One action in the browser, in the order made (see the module docstring)."""

    seq: int
    image_id: str
    action: Literal["label", "skip", "undo"]
    label: str | None


ClassSpec = tuple[str, str, str]
"""A class as (name, key, colour), e.g. ``("Coat", "4", "#1f77b4")``."""

_render = st.components.v2.component(
    COMPONENT_NAME,
    html=(_ASSETS / "keyboard_labeler.html").read_text(encoding="utf-8"),
    css=(_ASSETS / "keyboard_labeler.css").read_text(encoding="utf-8"),
    js=(_ASSETS / "keyboard_labeler.js").read_text(encoding="utf-8"),
)


class _Applied:
    """What one widget of one browser session has applied: the last seq of every stream seen, and the lock that
    orders script runs. Lives in ``st.session_state``; read and written without it, so that a script run that
    Streamlit has already stopped still keeps count while it finishes an ``on_event``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_seq: dict[str, int] = {}
        self.stream: str | None = None  # the newest stream, acknowledged to the browser
        self.delivered: list[LabelEvent] = []  # applied since the last call returned them


def default_keys(n_classes: int) -> list[str]:
    """The keys of ``n_classes`` classes: ``1``-``9``, ``0`` for the 10th, then letters (none of s, u, c, r)."""
    if not 0 <= n_classes <= len(DEFAULT_KEYS):
        raise ValueError(f"between 0 and {len(DEFAULT_KEYS)} classes have keys; got {n_classes}")
    return list(DEFAULT_KEYS[:n_classes])


def thumbnail_data_url(image: NDArray[np.uint8] | Image.Image, *, max_px: int = 256, fmt: str = "PNG") -> str:
    """A ``data:image/...;base64,`` URL of ``image`` (array of shape (H, W) or (H, W, 3), uint8), at most
    ``max_px`` on its longer side; ``fmt`` is ``"PNG"`` (exact, for small images) or ``"JPEG"`` (photos)."""
    fmt = fmt.upper()
    if fmt not in {"PNG", "JPEG"}:
        raise ValueError(f"fmt must be PNG or JPEG, not {fmt!r}")
    picture = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    if max(picture.size) > max_px:
        picture = picture.copy()
        picture.thumbnail((max_px, max_px))
    if fmt == "JPEG" and picture.mode != "RGB":
        picture = picture.convert("RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def keyboard_labeler(
    items: Sequence[LabelItem],
    classes: Sequence[ClassSpec],
    *,
    key: str,
    on_event: Callable[[LabelEvent], None],
    image_px: int = 240,
    autofocus: bool = True,
    undo_earlier: bool = False,
    accept: str | None = None,
) -> list[LabelEvent]:
    """Show ``items[0]`` to label by key or click; ``on_event`` stores each new event once, in order.

    Parameters
    ----------
    items : sequence of LabelItem
        The next images to label, in order (a handful: they are prefetched into the browser). Ids are unique.
    classes : sequence of (name, key, colour)
        Class names (unique, non-empty), keys (one lowercase character each, unique, none of ``s``, ``u``, ``?``;
        ``""`` for a class labeled by click only) and colours (``#rgb`` or ``#rrggbb``).
    key : str
        The widget's key; one widget per key and page.
    on_event : callable
        ``on_event(event)`` stores one :class:`LabelEvent`, durable write first (see the module docstring).
    image_px : int
        Side of the image area in CSS pixels.
    autofocus : bool
        Take the keyboard focus on load and on every rerun (unless a text field has it).
    undo_earlier : bool
        When the widget has nothing of its own to undo, ``u`` sends an undo with ``image_id`` ``""`` (see the
        module docstring) instead of saying there is nothing to undo.
    accept : str, optional
        The name of the class (among ``classes``) that accepts each item's ``proposal``: the widget's messages name
        the proposal ("img.png → cat (accepted)") instead of that class.

    Returns
    -------
    list of LabelEvent
        The events applied since the previous call returned (for a "last action" caption or UI state).
    """
    names = _check_classes(classes)
    _check_items(items)
    if accept is not None and accept not in names:
        raise ValueError(f"the accept class {accept!r} is not among the classes")
    applied = _applied(key)
    stream = applied.stream
    reflected = applied.last_seq.get(stream, 0) if stream else 0  # ``items`` came after these: callbacks run first
    _deliver(key, names, on_event)  # events that came without the callback firing: a safety net
    if applied.stream != stream:
        reflected = 0
    data = {
        "items": [{"id": i["id"], "thumbnail": i["thumbnail"], "caption": i.get("caption", ""),
                   "name": i.get("name", ""), "proposal": i.get("proposal", "")} for i in items],
        "classes": [{"name": name, "key": k, "colour": colour} for name, k, colour in classes],
        "ack": {
            "stream": applied.stream,
            "seq": applied.last_seq.get(applied.stream, 0) if applied.stream else 0,
            "reflected": reflected,
        },
        "image_px": int(image_px),
        "autofocus": bool(autofocus),
        "undo_earlier": bool(undo_earlier),
        "accept": accept or "",
    }
    _render(key=key, data=data, on_outbox_change=functools.partial(_deliver, key, names, on_event))
    if not applied.lock.acquire(timeout=LOCK_TIMEOUT_S):
        return []
    try:
        delivered, applied.delivered = applied.delivered, []
    finally:
        applied.lock.release()
    return delivered


def _applied(key: str) -> _Applied:
    """This session's record of what the widget ``key`` applied (created on first use).

    Only the newest script run of a session gets past ``st.session_state`` (older ones raise there), so two runs
    never create it at once. Checked by its attributes, not its class, so a reloaded module keeps the count.
    """
    name = f"_keyboard_labeler_{key}"
    found = st.session_state.get(name)
    if not all(hasattr(found, field) for field in ("lock", "last_seq", "stream", "delivered")):
        found = _Applied()
        st.session_state[name] = found
    return cast(_Applied, found)


def _deliver(key: str, names: set[str], on_event: Callable[[LabelEvent], None]) -> None:
    """Hand the outbox's events newer than the last applied seq to ``on_event``, one at a time, in order.

    Each event is marked applied just before ``on_event`` runs, under the session's lock: a run that Streamlit
    stops meanwhile (fast reruns) finishes the event it is applying, and the next run, once it gets the lock,
    starts after it. The lock is never held across a ``st.session_state`` access of ours.
    """
    applied = _applied(key)
    state = st.session_state.get(key)
    outbox = state.get("outbox") if isinstance(state, Mapping) else None
    if not isinstance(outbox, Mapping) or not isinstance(outbox.get("stream"), str):
        return
    stream = str(outbox["stream"])
    events = sorted(_parse_events(outbox.get("events"), names), key=lambda event: event["seq"])
    if not applied.lock.acquire(timeout=LOCK_TIMEOUT_S):
        _LOGGER.warning("keyboard_labeler %s: an earlier run is still applying events; a later run takes these", key)
        return
    try:
        if stream not in applied.last_seq:
            applied.last_seq[stream] = 0
            applied.stream = stream
        for event in events:
            last = applied.last_seq[stream]
            if event["seq"] <= last:
                continue
            if event["seq"] != last + 1:
                _LOGGER.warning("keyboard_labeler %s: events %d..%d never arrived", key, last + 1, event["seq"] - 1)
            applied.last_seq[stream] = event["seq"]
            try:
                on_event(event)
            except Exception:
                applied.last_seq[stream] = last  # offered again next run
                raise
            applied.delivered.append(event)
    finally:
        applied.lock.release()


def _parse_events(raw: object, names: set[str]) -> list[LabelEvent]:
    """Well-formed events of ``raw`` (the browser's JSON); malformed ones are logged and dropped."""
    events: list[LabelEvent] = []
    for entry in raw if isinstance(raw, list) else []:
        if not isinstance(entry, Mapping):
            continue
        seq, image_id, action, label = (entry.get(k) for k in ("seq", "image_id", "action", "label"))
        good = (
            isinstance(seq, int) and not isinstance(seq, bool) and seq > 0 and isinstance(image_id, str)
            and action in ACTIONS and (label in names if action == "label" else label is None)
        )
        if not good:
            _LOGGER.warning("keyboard_labeler: dropped a malformed or unknown-class event %r", dict(entry))
            continue
        events.append(cast(LabelEvent, {"seq": seq, "image_id": image_id, "action": action, "label": label}))
    return events


def _check_classes(classes: Sequence[ClassSpec]) -> set[str]:
    names = [name for name, _, _ in classes]
    keys = [k for _, k, _ in classes]
    if any(not isinstance(name, str) or not name.strip() for name in names) or len(set(names)) != len(names):
        raise ValueError(f"class names must be unique non-empty strings; got {names}")
    for k in keys:
        if k == "":
            continue  # a class without a key is labeled by click
        if not isinstance(k, str) or len(k) != 1 or k != k.lower() or k.isspace() or not k.isprintable():
            raise ValueError(f"a class key is one lowercase printable character (or empty), not {k!r}")
        if k in RESERVED_KEYS:
            raise ValueError(f"key {k!r} is reserved for {RESERVED_KEYS[k]}")
    given = [k for k in keys if k]
    if len(set(given)) != len(given):
        raise ValueError(f"class keys must be unique; got {keys}")
    for _, _, colour in classes:
        if not isinstance(colour, str) or not _COLOUR.match(colour):
            raise ValueError(f"a class colour is #rgb or #rrggbb, not {colour!r}")
    return set(names)


def _check_items(items: Sequence[LabelItem]) -> None:
    ids = [item["id"] for item in items]
    if any(not isinstance(i, str) or not i for i in ids) or len(set(ids)) != len(ids):
        raise ValueError("item ids must be unique non-empty strings")
    for item in items:
        if not isinstance(item["thumbnail"], str) or not _DATA_URL.match(item["thumbnail"]):
            raise ValueError(f"the thumbnail of item {item['id']!r} is not a base64 image data URL")
