"""What the keyboard widget's events do on the Label and Review pages, and the items it is sent.

``on_event`` runs from the widget's callback, possibly in a script run that Streamlit is already stopping, so it
makes no Streamlit call: it writes to the store and mutates objects the page handed it (skipped sets, queues, a list
of problems to show), which live in ``st.session_state`` and are the same objects on the next run.

Item ids are image keys (:func:`labeler.workflow.label_queue.image_key`); a review item also carries the class it
proposes (``KEY|class id``), so accepting stores exactly the proposal that was on screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from labeler.store import ClassInfo, ImageRecord, LabelAction, UndoConflict
from labeler.workflow import label_queue as label_queue_rules
from labeler.workflow.runner import JobRunner
from labeler.workflow.state import PipelineState
from labeler.workflow.workspace import Workspace
from pages.shared import class_keys, session, text
from pages.shared.keyboard_labeler import ClassSpec, LabelEvent, LabelItem, thumbnail_data_url

PROBLEMS = "label_problems"
NOTES = "label_notes"
# The review widget's extra "class": one key accepts the proposal shown in the caption.
ACCEPT = "✓ Accept the proposal"
ACCEPT_COLOUR = "#555555"
ACCEPT_KEYS = "a.,;-="


def class_specs(classes: Sequence[ClassInfo]) -> list[ClassSpec]:
    """(name, key, colour) of each class: keys 1-9, 0, then letters ("" beyond them: click only)."""
    return [(c.name, k, c.colour) for c, k in zip(classes, class_keys.keys_for(classes), strict=True)]


def accept_spec(specs: Sequence[ClassSpec]) -> ClassSpec:
    """The accept "class": key ``a`` unless a class has it."""
    taken = {key for _, key, _ in specs}
    return (ACCEPT, next(k for k in ACCEPT_KEYS if k not in taken), ACCEPT_COLOUR)


def undone_text(action: LabelAction, classes: Sequence[ClassInfo], records: Sequence[ImageRecord]) -> str:
    """What an undo took back, for a toast: "Undone: img_003.png → cat." or "Undone: 23 images → cat." (the labels
    the action had given; names escaped for Markdown). No Streamlit call: a keyboard event handler uses it."""
    names = {c.id: c.name for c in classes}
    given = ", ".join(text.plain(names.get(c, "?") if c is not None else "no label")
                      for c in dict.fromkeys(action.class_ids))
    count = len(action.image_ids)
    if count == 1:
        path = next((r.path for r in records if r.id == action.image_ids[0]), "1 image")
        return f"Undone: {text.plain(path)} → {given}."
    return f"Undone: {count} images → {given}."


def conflict_text(conflict: UndoConflict) -> str:
    """The store's refusal as a sentence: "Cannot undo: ... ."."""
    said = str(conflict)
    return f"{said[:1].upper()}{said[1:]}."


class Handler:
    """Applies the widget's events: label (or answer), skip and undo.

    Labels are stored with the page as their origin (``mode``), and undo takes back only this page's own labels of
    this tab: u on the Label page never reverts a bulk label of the Map, nor an accept on Review.

    Parameters
    ----------
    mode : "label" stores human labels; "review" does too and understands :data:`ACCEPT`; "audit" stores blind
        audit answers (never seeds) against ``state``. The labels' origin: the page whose undo takes them back.
    skipped : the session's set of skipped image keys for this queue (mutated in place).
    queue : the session's list of queued image keys (mutated in place: done images leave it, undone ones come
        back first), or None.
    again : audit only: the session's list of images to answer again after an undo.
    """

    def __init__(self, ws: Workspace, annotator: str, runner: JobRunner, *, mode: str, skipped: set[str],
                 queue: list[str] | None = None, state: PipelineState | None = None,
                 again: list[str] | None = None) -> None:
        if mode not in {"label", "review", "audit"}:
            raise ValueError(f"mode must be label, review or audit, got {mode!r}")
        self.ws, self.annotator, self.runner, self.mode = ws, annotator, runner, mode
        self.skipped, self.queue, self.state, self.again = skipped, queue, state, again
        self.rows = session.rows_by_key(ws)
        self.records = session.records(ws)
        self.class_ids = {c.name: c.id for c in ws.store.classes()}
        self.problems: list[str] = _kept(PROBLEMS, list)
        self.notes: list[str] = _kept(NOTES, list)
        # Image keys whose label this page's undo took back (the Label page's grid says so on their cards).
        self.undone: set[str] = _kept(f"undone_on_{mode}", set)

    def _leave(self, key: str) -> None:
        if self.queue is not None and key in self.queue:
            self.queue.remove(key)

    def on_event(self, event: LabelEvent) -> None:
        if event["image_id"] == "" and event["action"] == "undo":
            self._undo_earlier()
            return
        key, _, proposed = event["image_id"].partition("|")
        row = self.rows.get(key)
        if row is None:
            self.problems.append("An image changed on disk (or was removed) before its key press arrived; the "
                                 "press was not applied.")
            return
        image_id = self.records[row].id
        if event["action"] == "label":
            self._answer(key, row, image_id, event["label"] or "", proposed)
        elif event["action"] == "skip":
            self.skipped.add(key)
            self._leave(key)
        else:
            self._undo(key, row, image_id)

    def _answer(self, key: str, row: int, image_id: int, name: str, proposed: str) -> None:
        if name == ACCEPT and self.mode == "review":
            class_id: int | None = int(proposed) if proposed.isdigit() else None
            if class_id is None or class_id not in self.class_ids.values():
                self.problems.append(f"{self.records[row].path} has no proposal to accept; pick its class.")
                return
        else:
            class_id = self.class_ids.get(name)
        if class_id is None:
            self.problems.append(f"The class {name} no longer exists; that press stored nothing.")
            return
        if self.mode == "audit":
            if self.state is None:
                return
            label_queue_rules.answer_audit(self.ws, self.state, row, class_id, self.annotator)
            self.runner.request_refresh()  # an answer is calibration evidence: recalibrate with it
            if self.again is not None and key in self.again:
                self.again.remove(key)
        else:
            self.ws.store.set_labels([image_id], class_id, self.annotator, origin=self.mode)
            self.runner.request_refresh()
            self.undone.discard(key)
        self._leave(key)

    def _undo_earlier(self) -> None:
        """Undo this page's latest label action of this tab from before the widget's own history (a click on the
        Label page's grid, a reload, the page opened again): the store knows it by the tab's annotator and the
        page. Its image comes back first."""
        if self.mode == "audit":
            self.problems.append("Nothing to undo here: answer the image again to change an earlier answer.")
            return
        try:
            action = self.ws.store.undo_action(self.annotator, origin=self.mode)
        except UndoConflict as conflict:
            self.problems.append(conflict_text(conflict))
            return
        if action is None:
            self.problems.append("Nothing of yours to undo on this page.")
            return
        self.runner.request_refresh()
        self.notes.append(undone_text(action, self.ws.store.classes(), self.records))
        undone = set(action.image_ids)
        keys = {r.id: label_queue_rules.image_key(r) for r in self.records if r.id in undone}
        self.undone.update(keys.values())
        key = keys.get(action.image_ids[0])
        if key is None:  # no longer readable: nothing to show again
            return
        self.skipped.discard(key)
        if self.queue is not None:
            self._leave(key)
            self.queue.insert(0, key)

    def _undo(self, key: str, row: int, image_id: int) -> None:
        if key in self.skipped:
            self.skipped.discard(key)
        elif self.mode == "audit":
            # An audit answer is replaced by the next answer for the same image: show it again first.
            if self.again is not None and key not in self.again:
                self.again.insert(0, key)
            # The widget says "Undone", but an answer is only ever replaced: say so (a user trial read it as gone).
            self.notes.append("The earlier answer counts until you answer this image again; the new answer "
                              "replaces it.")
        else:
            path = self.records[row].path
            try:
                action = self.ws.store.undo_action(self.annotator, origin=self.mode, image_id=image_id)
            except UndoConflict as conflict:
                self.problems.append(f"{path}: not undone: {str(conflict).removeprefix('cannot undo: ')}.")
                action = None
            else:
                if action is None:
                    self.problems.append(f"{path}: not undone, no label of yours from this page is on it.")
            if action is not None:
                self.runner.request_refresh()
                self.undone.add(key)
        if self.queue is not None:
            self._leave(key)
            self.queue.insert(0, key)


def _kept(name: str, kind: type) -> Any:
    """A list or set in session state, the same object on every run (the handler mutates it in place)."""
    found = st.session_state.get(name)
    if not isinstance(found, kind):
        found = kind()
        st.session_state[name] = found
    return found


def show_problems(handler: Handler) -> None:
    """Say once, as toasts, what the last events could not do, and what an undo took back."""
    while handler.problems:
        st.toast(text.plain(handler.problems.pop(0)), icon=":material/warning:")
    while handler.notes:
        st.toast(handler.notes.pop(0), icon=":material/undo:")


@st.cache_data(show_spinner=False, max_entries=2048)
def _data_url(_ws: Workspace, db_path: str, key: str, row: int, large: bool) -> str:
    if large:
        from pages.shared.queues import full_image

        return thumbnail_data_url(full_image(_ws, row), max_px=480, fmt="JPEG")
    return thumbnail_data_url(session.thumbnails(_ws)[row], max_px=256)


def items_for(ws: Workspace, rows: Sequence[int], *, large: bool = False, captions: dict[int, str] | None = None,
              proposals: dict[int, int] | None = None, blind: bool = False) -> list[LabelItem]:
    """The widget's items for ``rows``: id = image key (``KEY|class id`` with a proposal, whose name the item
    carries too, for the widget's "→ cat (accepted)"), a thumbnail data URL (the original image when ``large``) and
    a plain-text caption (file name, then ``captions[row]``). ``blind`` (the blind audit): no file name, since a
    folder or file named after a class gives the answer away; the items are named by their place in the list."""
    records = session.records(ws)
    db_path = str(ws.settings.db_path)
    names = {c.id: c.name for c in ws.store.classes()} if proposals else {}
    items: list[LabelItem] = []
    for row in rows:
        key = label_queue_rules.image_key(records[row])
        extra = (captions or {}).get(row, "")
        proposal = (proposals or {}).get(row)
        shown = f"audit image {len(items) + 1}" if blind else records[row].path
        item = LabelItem(
            id=key if proposal is None else f"{key}|{proposal}",
            thumbnail=_data_url(ws, db_path, key, row, large),
            caption=shown + (" (file name hidden: it could give the answer away)" if blind else "")
            + (f" · {extra}" if extra else ""),
            name=shown,
        )
        if proposal is not None and proposal in names:
            item["proposal"] = names[proposal]
        items.append(item)
    return items


def handler_queue(saved: Any) -> list[str] | None:
    """The key list of a saved queue (a dict in session state), for :class:`Handler`."""
    if isinstance(saved, dict) and isinstance(saved.get("keys"), list):
        return saved["keys"]
    return None
