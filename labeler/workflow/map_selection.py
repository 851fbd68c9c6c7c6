"""What a bulk label of a selection on the map changes: the selected images less those the person left out, and
their human labels only when the person asks.

A lasso around a cluster is how a person labels it at once, and also how they correct one that was labeled wrongly;
so human labels in a selection are kept by default and relabeled when asked, and the message says which were
relabeled and which were left as they were. Everything is by image id, never by row: rows are renumbered by a
re-scan and a selection outlives a redraw of the map only by the images it names.

A redraw (a new propagation, another colouring or filter) is a new chart, and the chart forgets the points picked on
the one before; :class:`KeptSelection` remembers them, so a propagation that lands while the person is still working
through a lasso (often that of their previous bulk label) does not take it away. The new chart draws the kept
images as selected, though it reports no selection of its own.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class BulkLabel:
    """One bulk label of a selection as class ``class_id``, by image id (each tuple in selection order).

    ``relabel`` are the images the action labels: those without a human label, and (when asked) those whose human
    label is another class, listed again in ``humans_relabeled``. ``humans_kept`` have a human label of another class
    that stays (relabeling human labels was not asked for); ``humans_already`` already have ``class_id`` as their
    human label; ``left_out`` are the selected images the person left out.
    """

    class_id: int
    relabel: tuple[int, ...]
    humans_relabeled: tuple[int, ...]
    humans_kept: tuple[int, ...]
    humans_already: tuple[int, ...]
    left_out: tuple[int, ...]


def human_ids(selected_ids: Sequence[int], left_out: Collection[int], human_labels: Mapping[int, int]) -> list[int]:
    """The selected images with a human label that are not left out: those "Also relabel" would relabel."""
    return [i for i in dict.fromkeys(selected_ids) if i in human_labels and i not in left_out]


def candidate_ids(selected_ids: Sequence[int], human_labels: Mapping[int, int], relabel_humans: bool) -> list[int]:
    """The selected images a bulk label may change (each shown with a box to leave it out): those without a human
    label, and with ``relabel_humans`` the human-labeled ones too."""
    return [i for i in dict.fromkeys(selected_ids) if relabel_humans or i not in human_labels]


def keep_boxes(ordered_ids: Sequence[int], left_out: Collection[int], limit: int) -> list[int]:
    """The images shown with a box to leave them out: the first ``limit`` of ``ordered_ids``, then every image left
    out beyond them, so that no image is left out unseen."""
    shown = list(ordered_ids[:limit])
    return shown + [i for i in ordered_ids[limit:] if i in left_out]


def plan_bulk_label(selected_ids: Sequence[int], left_out: Collection[int], human_labels: Mapping[int, int],
                    class_id: int, relabel_humans: bool = False) -> BulkLabel:
    """What labeling the selection ``selected_ids`` as ``class_id`` does.

    Parameters
    ----------
    selected_ids : image ids of the selection (duplicates are ignored).
    left_out : image ids the person left out (any image: only those selected count).
    human_labels : {image id: class id} of every human label now (the store's, not a propagation's).
    class_id : the class to label them with.
    relabel_humans : whether human labels of another class are relabeled too ("Also relabel").
    """
    relabel: list[int] = []
    relabeled: list[int] = []
    kept: list[int] = []
    already: list[int] = []
    out: list[int] = []
    for image_id in dict.fromkeys(selected_ids):
        human = human_labels.get(image_id)
        if image_id in left_out:
            out.append(image_id)
        elif human is None:
            relabel.append(image_id)
        elif human == class_id:
            already.append(image_id)
        elif relabel_humans:
            relabel.append(image_id)
            relabeled.append(image_id)
        else:
            kept.append(image_id)
    return BulkLabel(class_id, tuple(relabel), tuple(relabeled), tuple(kept), tuple(already), tuple(out))


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def bulk_label_message(plan: BulkLabel, class_name: str, changed: int) -> str:
    """What the bulk label did, for the person: how many images it labeled ``class_name`` (``changed``, as the store
    counted them), how many of those were human labels it changed, and what it left as it was and why."""
    if changed:
        said = f"{_count(changed, 'image', 'images')} labeled {class_name}"
        if plan.humans_relabeled:
            said += f", {_count(len(plan.humans_relabeled), 'human label', 'human labels')} among them"
        said += f" (Undo reverts {'it' if changed == 1 else 'them'})."
    else:
        said = f"Nothing labeled {class_name}."
    left = []
    if len(plan.relabel) > changed:  # labeled meanwhile (another tab): the store changed nothing for them
        left.append(f"{len(plan.relabel) - changed:,} already labeled {class_name}")
    if plan.left_out:
        left.append(f"{len(plan.left_out):,} left out")
    if plan.humans_kept:
        left.append(f"{_count(len(plan.humans_kept), 'human label', 'human labels')} of other classes "
                    "(tick Also relabel to change them)")
    if plan.humans_already:
        left.append(f"{_count(len(plan.humans_already), 'human label', 'human labels')} already {class_name}")
    if left:
        said += " Left as they were: " + ", ".join(left) + "."
    return said


def review_message(sent: int, humans: int) -> str:
    """What "Send to review" did: ``sent`` images put first in the review queue; the ``humans`` human labels of the
    selection (left-outs aside) are not, and the person is told where those are checked."""
    said = "Nothing sent to review."
    if sent:
        said = f"{_count(sent, 'image', 'images')} put at the top of the review queue."
    if humans:
        said += (f" Not the {_count(humans, 'human label', 'human labels')} in the selection: the queue reviews "
                 "propagated labels; Review & audit's Suspect human labels checks yours against their neighbours.")
    return said


@dataclass(frozen=True)
class KeptSelection:
    """The images picked on the map (ids, in the order picked) and the drawing of the map they were picked on.

    ``drawn_on`` identifies a drawing: the map's data, colouring and filter, and which kept images it draws as
    selected. A chart keeps its points selected only while it is drawn the same. ``labeled``: a bulk label acted on
    these images, so the redraw that shows their new labels ends the selection rather than keep it.
    """

    drawn_on: Hashable
    image_ids: tuple[int, ...]
    labeled: bool = False


def carried_ids(kept: KeptSelection | None, plain_drawing: Hashable) -> tuple[int, ...]:
    """The images to draw as selected on the map about to be drawn: the kept selection when the drawing it was picked
    on is gone (``plain_drawing``, the map as it would be drawn without them, is another one), else none."""
    if kept is None or kept.labeled or kept.drawn_on == plain_drawing:
        return ()
    return kept.image_ids


def after_drawing(kept: KeptSelection | None, drawn_on: Hashable, picked_ids: Sequence[int]) -> KeptSelection | None:
    """The selection once the drawing ``drawn_on`` has reported its picked points (``picked_ids``; empty when the
    person picked nothing on it, or cleared what they picked).

    Points picked on this drawing are the selection. Nothing picked on the drawing the selection was made on means the
    person cleared it; nothing picked on another drawing means the map was redrawn, and the selection is kept
    (unless a bulk label already acted on it).
    """
    if picked_ids:
        ids = tuple(dict.fromkeys(int(i) for i in picked_ids))
        if kept is not None and kept.drawn_on == drawn_on and kept.image_ids == ids:
            return kept
        return KeptSelection(drawn_on, ids)
    if kept is None or kept.drawn_on == drawn_on or kept.labeled:
        return None
    return kept


def labeled(kept: KeptSelection | None) -> KeptSelection | None:
    """``kept`` once a bulk label has acted on it: ended by the redraw that shows the new labels."""
    return None if kept is None else replace(kept, labeled=True)
