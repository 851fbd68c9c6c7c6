"""Label counts that say how far along the work really is: human, propagated and unreached images, whether the
propagation has caught up with the latest labels, and which classes nobody has labeled yet.

Vectorised over the state's arrays, so a page can poll it every second at 100,000 images.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from labeler.store import ClassInfo
from labeler.workflow.state import PipelineState


@dataclass(frozen=True)
class LabelCounts:
    """Counts over the readable images, and what they do not yet include."""

    images: int
    human: int  # human labels on readable images (live from the store)
    propagated: int  # propagated by the last state and not human-labeled since
    none: int  # the rest: no seed reaches them, or no propagation yet
    up_to_date: bool  # the last propagation includes every current human label and class
    unlabeled_classes: tuple[str, ...]  # classes with no human label: nothing can be propagated to them
    n_classes: int
    audited: int = 0  # propagated images a person answered blind: the export gives them their answer (source audited)

    @property
    def finished(self) -> bool:
        """Every image labeled or propagated, from current labels, into classes that all have a seed."""
        return self.up_to_date and self.none == 0 and not self.unlabeled_classes and self.n_classes > 0

    @property
    def lagging(self) -> bool:
        """Whether propagation must catch up with the store: it is not up to date and there are labels to propagate
        from, or propagated labels shown that rest on labels since taken back (every seed undone)."""
        return not self.up_to_date and bool(self.human or self.propagated or self.audited)

    def summary(self) -> str:
        """One line, e.g. ``2 human · 998 propagated · 0 unreached of 1,000 · updating…``."""
        audited = f" · {self.audited:,} audited" if self.audited else ""
        line = (f"{self.human:,} human · {self.propagated:,} propagated{audited} · {self.none:,} unreached "
                f"of {self.images:,}")
        if self.unlabeled_classes:
            line += f" · {len(self.unlabeled_classes)} of {self.n_classes} classes without a label"
        if self.lagging:
            line += " · propagation catching up…"
        return line


def label_counts(image_ids: Sequence[int] | np.ndarray, human_labels: Mapping[int, int],
                 classes: Sequence[ClassInfo], state: PipelineState | None, labels_version: int,
                 audited_ids: Collection[int] = ()) -> LabelCounts:
    """Counts for the readable images ``image_ids`` (row order), given the store's ``human_labels``
    ({image id: class id}), its ``classes`` and ``labels_version``, the last saved ``state`` (or None) and the ids
    of the images audited blind (counted apart from the propagated ones, as the export does)."""
    ids = np.asarray(image_ids, dtype=np.int64)
    labeled = np.isin(ids, np.fromiter(human_labels.keys(), dtype=np.int64, count=len(human_labels)))
    human = int(labeled.sum())
    propagated = audited = 0
    if state is not None and np.array_equal(state.image_ids, ids):
        reached = (state.source == "propagated") & ~labeled
        answered = np.isin(ids, np.fromiter(audited_ids, dtype=np.int64, count=len(audited_ids)))
        audited = int(np.sum(reached & answered))
        propagated = int(np.sum(reached)) - audited
    used = set(human_labels.values())
    unlabeled = tuple(c.name for c in classes if c.id not in used)
    up_to_date = (
        state is not None and state.labels_version == labels_version
        and list(state.class_ids) == [c.id for c in classes]
    )
    return LabelCounts(
        images=len(ids), human=human, propagated=propagated, none=max(len(ids) - human - propagated - audited, 0),
        up_to_date=bool(up_to_date), unlabeled_classes=unlabeled, n_classes=len(classes), audited=audited,
    )


def unlabeled_classes_message(names: Sequence[str], n_classes: int) -> str | None:
    """E.g. "8 classes have no label yet, so nothing can be propagated to them: Coat, Bag, …"; None when every
    class has a label."""
    if not names:
        return None
    listed = ", ".join(names[:12]) + (", …" if len(names) > 12 else ".")
    # Named after a colon, not in parentheses: a class called "0" in parentheses reads as a count.
    if len(names) == 1:
        return f"1 class has no label yet, so nothing can be propagated to it: {listed}"
    if len(names) == n_classes:
        return f"None of the {n_classes} classes has a label yet, so nothing can be propagated: {listed}"
    return f"{len(names)} classes have no label yet, so nothing can be propagated to them: {listed}"
