"""When to stop labeling: the estimate is precise enough and new labels have stopped changing the rest.

Two conditions, both needed. The blind audit's 95 % interval for the accuracy of the propagated labels is narrow
(the person knows how good the labels are), and the last batches of human labels changed few propagated labels (more
labels of the same kind are unlikely to change much). Neither alone is enough: a narrow interval around 70 % says the
labels are known to be mediocre, not that labeling is done; a quiet last batch may only mean the person labeled easy
images. The verdict says which condition holds and, when one does not, what would make it hold.

This is a heuristic rule, not a guarantee: a class nobody has labeled yet, or a region the person never looked at,
changes nothing until someone labels it (see the review queue's "possible new class" and random items).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeler.core.intervals import Z_95


@dataclass(frozen=True)
class StopVerdict:
    """Whether to stop labeling, and why, in words for the Home page and ``labeler status``.

    Attributes
    ----------
    stop : bool
    reason : str, one sentence per condition, the unmet ones first
    audits_needed : int, about how many more blind audits would narrow the interval enough (0 when it is)
    """

    stop: bool
    reason: str
    audits_needed: int = 0


# The stopping rule compares the labels before and after each batch of this many changed human labels (so the verdict
# does not depend on how often the app happens to refresh; labeler.workflow.refresh.track_label_batches).
BATCH_LABELS = 10

def changed_fraction(
    label_before: NDArray[Any], label_now: NDArray[Any], propagated_now: NDArray[Any]
) -> float:
    """Share of the currently propagated images whose label differs from an earlier run's.

    An image that had no label before (-1) and has one now counts as changed; images labeled by a person since are
    not propagated now and do not count. NaN when nothing is propagated.

    Parameters
    ----------
    label_before, label_now : int arrays of shape (n,), class index or -1, aligned image for image
    propagated_now : bool array of shape (n,), True where the current label is propagated
    """
    before = np.asarray(label_before)
    now = np.asarray(label_now)
    mask = np.asarray(propagated_now, dtype=bool)
    if before.shape != now.shape or mask.shape != now.shape:
        raise ValueError(f"shapes differ: {before.shape}, {now.shape}, {mask.shape}")
    if not mask.any():
        return float("nan")
    return float(np.mean(before[mask] != now[mask]))


def audits_for_width(accuracy: float, max_width: float, z: float = Z_95, population: int | None = None) -> int:
    """Audits needed for a 95 % interval of width ``max_width`` around ``accuracy`` (normal approximation).

    ``width = 2 z sqrt(p (1 - p) / n)``; ``p`` is floored at 0.05 away from 0 and 1, where the normal approximation
    would promise a zero width. With ``population`` (the propagated images the audits are drawn from, without
    replacement) the finite-population correction applies, ``n = n0 / (1 + (n0 - 1) / N)``, and no more than ``N``
    are ever asked for: on a small folder, auditing every propagated image measures their accuracy exactly.
    """
    if max_width <= 0:
        raise ValueError(f"max_width must be > 0, got {max_width}")
    p = float(np.clip(accuracy, 0.05, 0.95)) if np.isfinite(accuracy) else 0.5
    n0 = (2 * z) ** 2 * p * (1 - p) / max_width**2
    if population is None:
        return int(np.ceil(n0))
    if population < 1:
        return 0
    return int(min(population, np.ceil(n0 / (1 + (n0 - 1) / population))))


def finite_population_width(width: float, n_audits: int, population: int | None) -> float:
    """An interval width computed as if drawn with replacement, shrunk by the finite-population correction
    ``sqrt((N - n) / (N - 1))``: 0 once every one of the ``population`` images is audited."""
    if population is None or population <= 1:
        return width
    return width * float(np.sqrt(max(population - n_audits, 0) / (population - 1)))


# What "precise enough" means: the audit interval at most this wide (about +-0.05), resting on at least this many
# answers. Benchmarks that audit "until the app says stop" read these.
MAX_WIDTH = 0.10
MIN_AUDITS = 30


def stopping_verdict(
    audit_interval: tuple[float, float],
    n_audits: int,
    recent_changes: Sequence[float],
    *,
    n_recent_labels: int | None = None,
    batch_labels: int | None = None,
    max_width: float = MAX_WIDTH,
    max_changed: float = 0.01,
    min_audits: int = MIN_AUDITS,
    min_batches: int = 2,
    population: int | None = None,
) -> StopVerdict:
    """Stop when the audit interval is narrow and the last label batches changed few propagated labels.

    Parameters
    ----------
    audit_interval : (lower, upper), the blind audit's 95 % interval for the accuracy of the propagated labels
    n_audits : int, number of audit answers behind it
    recent_changes : sequence of float
        For each of the last few batches of human labels, oldest first, the share of propagated labels it changed
        (:func:`changed_fraction` between the runs before and after the batch); NaN entries are ignored.
    n_recent_labels : int, optional; how many human labels those batches hold (only for the message)
    batch_labels : int, optional; how many human labels make a batch (only for the message)
    max_width : widest acceptable interval, default 0.10 (about +-0.05)
    max_changed : largest acceptable change per batch, default 0.01 (1 % of the propagated labels)
    min_audits : fewest audits to trust the interval at all (its width is unreliable on a handful)
    min_batches : fewest batches needed; every batch given must be below ``max_changed`` (one quiet batch may be
        luck), so the caller chooses the window by what it passes
    population : int, optional
        How many propagated images the audits are drawn from (audited ones included). A small folder then never
        asks for more audits than it has images, and the interval narrows as the sample exhausts it.

    Returns
    -------
    StopVerdict
    """
    lower, upper = (float(v) for v in audit_interval)
    if not 0.0 <= lower <= upper <= 1.0:
        raise ValueError(f"audit_interval must satisfy 0 <= lower <= upper <= 1, got {audit_interval}")
    changes = np.asarray([c for c in recent_changes if np.isfinite(c)], dtype=np.float64)
    width = upper - lower
    centre = 0.5 * (lower + upper)
    met: list[str] = []
    unmet: list[str] = []
    audits_needed = 0

    if population is not None:
        min_audits = min(min_audits, population)
    needed = audits_for_width(centre, max_width, population=population)
    if population == 0:
        unmet.append("Nothing is propagated yet, so there is nothing to audit.")
    elif population is not None and n_audits >= population:
        met.append(f"Every propagated label has been audited ({n_audits} audits): their accuracy is measured, not "
                   "estimated.")
    elif n_audits < min_audits:
        audits_needed = max(min_audits, needed) - n_audits
        # Two numbers meet here (at least min_audits to trust an interval, about `needed` for one max_width wide):
        # say which one the count comes from.
        reason = (f"about {needed} in all for an interval of the accuracy at most {max_width:.2f} wide"
                  if needed > min_audits else f"at least {min_audits} in all")
        unmet.append(f"Not enough audits yet ({n_audits} of at least {min_audits}; {reason}): audit about "
                     f"{audits_needed} more random images.")
    elif finite_population_width(width, n_audits, population) > max_width:
        audits_needed = max(needed - n_audits, 1)
        unmet.append(f"The audit interval {lower:.0%}-{upper:.0%} is {width:.2f} wide (needs <= {max_width:.2f}): "
                     f"audit about {audits_needed} more random images.")
    else:
        met.append(f"The audit puts the accuracy of the propagated labels at {lower:.0%}-{upper:.0%} "
                   f"({n_audits} audits).")

    labels = f"the last {n_recent_labels} labels" if n_recent_labels else f"the last {changes.size} label batches"
    if changes.size < min_batches:
        # Say what a batch is and when the count restarts: after training it drops to 0 with hundreds of labels.
        every = f"a batch ends every {batch_labels} labels, and " if batch_labels else ""
        unmet.append(f"Too few label batches to see a trend ({changes.size} of {min_batches}; {every}the count "
                     "starts again when the representation, the classes or the images change).")
    else:
        worst = float(changes.max())
        if worst >= max_changed:
            unmet.append(f"New labels still change the others: {labels} changed up to {worst:.1%} of the "
                         f"propagated labels per batch (needs < {max_changed:.0%}).")
        else:
            met.append(f"New labels barely change the others: {labels} changed at most {worst:.1%} of the "
                       "propagated labels per batch.")

    stop = not unmet
    lead = "You can stop labeling. " if stop else "Keep going. "
    return StopVerdict(stop, lead + " ".join(unmet + met), audits_needed)
