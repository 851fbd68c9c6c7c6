"""What to show the person next: the Label page's queue, the review queue, the next blind audit.

Rows index ``Workspace.records()`` (row i is image i). The choices themselves come from :mod:`labeler.core.review` and
:mod:`labeler.core.audit`; this module applies them to a workspace: it leaves out images that already have a human
label, says why each image was picked, and keeps a queue stable while the person works through it.

Rows are renumbered by a re-scan, so state kept between requests (the app's queues, skipped and dismissed sets)
names images by :func:`image_key` instead. Every function takes the ``records`` the caller already holds (the app
caches them; loading the images table costs seconds at 100,000 images) and loads them only when not given.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeler.core import review
from labeler.core.propagate import PropagationResult, Source
from labeler.io.artifacts import load_npz, save_npz_atomic
from labeler.store import ImageRecord
from labeler.workflow import backbone
from labeler.workflow.representations import graph_for_state, representations
from labeler.workflow.state import PipelineState, images_digest, state_dir
from labeler.workflow.workspace import Workspace

STRATEGIES = ("Suggested", "Random", "In order")
# Before the first labels, the cold start proposes at least this many typical images (k-means centres).
MIN_COLD_START = 12
ColdStart = Callable[[Workspace, int], list[int]]
# Once labels exist, the Label page proposes typical images of k-means clusters that hold no label
# (labeler.core.review.suggested_queue), on the representation of the current labels; as many clusters as
# review.coverage_clusters says for the labels so far and this many more (the grid the page shows).
COVERAGE_BATCH = 12
ClusterSource = Callable[[Workspace, PipelineState], review.Clusters]

Records = Sequence[ImageRecord]


def image_key(record: ImageRecord) -> str:
    """An image's identity for state kept across requests: its id and the start of its content hash.

    Not its row (a re-scan renumbers rows) and not only its id (a file replaced under the same name keeps its id
    but is another picture)."""
    return f"{record.id}:{(record.sha256 or '')[:16]}"


def as_result(state: PipelineState) -> PropagationResult:
    """The saved propagation as the :class:`PropagationResult` the functions of :mod:`labeler.core.review` take."""
    source = np.full(len(state.source), Source.NONE, dtype=np.int8)
    source[state.source == "human"] = Source.HUMAN
    source[state.source == "propagated"] = Source.PROPAGATED
    return PropagationResult(
        label=state.label,
        source=source,
        confidence=state.confidence, margin=state.margin, entropy=state.entropy, stability=state.stability,
        proba=state.proba, scores=state.scores,
    )


def cold_start_rows(ws: Workspace, n: int) -> list[int]:
    """``n`` typical, diverse rows to label first: k-means centres on the best representation available."""
    reps = representations(ws)
    X = reps[backbone.preferred_representation(reps, backbone.photo_folder(ws))].X
    return [int(i) for i in review.cold_start(X, n, random_state=ws.settings.random_state)]


def coverage_clusters(state: PipelineState) -> int:
    """How many clusters the suggested queue covers for ``state``'s human labels (:func:`review.coverage_clusters`)."""
    n_labeled = int(np.sum(np.asarray(state.source) == "human"))
    return review.coverage_clusters(n_labeled, len(state.source), COVERAGE_BATCH)


def cluster_rows(ws: Workspace, state: PipelineState, n_clusters: int | None = None) -> review.Clusters:
    """k-means clusters (``n_clusters``, default :func:`coverage_clusters`) on the representation ``state`` was
    propagated on (the preferred one when that is gone).

    Kept in ``state/coverage_clusters.npz`` per representation, image set and number of clusters: the background
    refresh computes them once the labels have doubled (:func:`labeler.workflow.refresh.refresh`), so the Label page
    reads them instead of waiting for k-means (3.6 s at 100,000 images).
    """
    reps = representations(ws)
    rep = reps.get(state.representation)
    if rep is None:
        rep = reps[backbone.preferred_representation(reps, backbone.photo_folder(ws))]
    k = coverage_clusters(state) if n_clusters is None else n_clusters
    key = f"{rep.key}:{images_digest(state)}:{k}:{ws.settings.random_state}"
    path = state_dir(ws) / "coverage_clusters.npz"
    try:
        kept = load_npz(path)
        if str(kept["key"]) == key:
            return review.Clusters(np.asarray(kept["typical"], dtype=np.int64),
                                   np.asarray(kept["assignment"], dtype=np.int64))
    except (OSError, ValueError, KeyError):
        pass  # missing or unreadable: computed again
    found = review.clusters(rep.X, k, random_state=ws.settings.random_state)
    save_npz_atomic(path, {"key": np.array(key), "typical": found.typical, "assignment": found.assignment})
    return found


def unlabeled_rows(ws: Workspace, records: Records | None = None) -> list[int]:
    """Rows without a human label, in file order."""
    labeled = ws.store.human_labels()
    records = ws.records() if records is None else records
    return [i for i, r in enumerate(records) if r.id not in labeled]


def candidate_rows(
    ws: Workspace,
    state: PipelineState | None,
    strategy: str,
    n: int,
    exclude: Collection[int] = (),
    *,
    cold_start: ColdStart = cold_start_rows,
    records: Records | None = None,
    allowed: NDArray[np.bool_] | None = None,
    W: Any = None,
    clusters: ClusterSource | None = None,
) -> list[tuple[int, str]]:
    """Up to ``n`` (row, why it was picked) among images without a human label, not in ``exclude`` and, when
    ``allowed`` (bool (N,)) is given, where it is True (a filter the person chose).

    Suggested: before any label (or propagation), typical and diverse images (``cold_start``, which the app
    replaces by a cached version); then the review queue of :func:`labeler.core.review.review_queue` (least certain
    first, spread over the graph, a share of random ones), led, when ``clusters`` is given (the Label page's
    :func:`cluster_rows`, cached by the app), by typical images of clusters without a label
    (:func:`labeler.core.review.suggested_queue`). Random: uniform, reseeded by each label change.
    In order: file order. ``W``: the state's kNN affinity when the caller holds it (else it is loaded).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    labeled = ws.store.human_labels()
    records = ws.records() if records is None else records
    skip = set(exclude)
    if allowed is not None:
        skip |= set(np.flatnonzero(~np.asarray(allowed, dtype=bool)).tolist())
    free = [i for i, r in enumerate(records) if r.id not in labeled and i not in skip]
    if not free or n <= 0:
        return []
    if strategy == "Suggested":
        if state is None or not labeled:
            free_set = set(free)
            chosen = [(row, "typical of a cluster") for row in cold_start(ws, max(n, MIN_COLD_START))
                      if row in free_set]
            if chosen:
                return chosen[:n]
        if state is not None and len(state.image_ids) == len(records):
            taken = np.array(sorted(set(range(len(records))) - set(free)), dtype=np.int64)
            if W is None:
                try:
                    W = graph_for_state(ws, state)
                except LookupError:  # the representation changed since: rank without the diversity rule
                    W = None
            items = review.suggested_queue(as_result(state), None if clusters is None else clusters(ws, state),
                                           n_items=n, exclude=taken, W=W, random_state=ws.store.labels_version())
            if items:
                return [(item.index, item.rule) for item in items]
    if strategy in {"Suggested", "Random"}:
        picker = random.Random(ws.store.labels_version())
        return [(row, "random") for row in picker.sample(free, min(n, len(free)))]
    return [(row, "") for row in free[:n]]


def refill(
    ws: Workspace,
    state: PipelineState | None,
    strategy: str,
    n: int,
    shown: Sequence[int],
    skipped: Collection[int] = (),
    *,
    cold_start: ColdStart = cold_start_rows,
    records: Records | None = None,
    allowed: NDArray[np.bool_] | None = None,
    W: Any = None,
    clusters: ClusterSource | None = None,
) -> tuple[list[int], dict[int, str], bool]:
    """The Label page's queue after a change: ``shown`` rows still unlabeled and not skipped keep their order,
    and new candidates are appended once half or fewer remain (so the grid does not reshuffle on every click).

    Returns
    -------
    rows : the queue, at most ``n`` rows
    reasons : {row: why it was picked} for the rows added now
    skips_reset : True when only skipped images were left, so they are offered again (forget the skips)
    """
    records = ws.records() if records is None else records
    free = set(unlabeled_rows(ws, records))
    if allowed is not None:
        free &= set(np.flatnonzero(allowed).tolist())
    skip = set(skipped)
    rows = [r for r in shown if r in free and r not in skip]
    reasons: dict[int, str] = {}
    reset = False
    if len(rows) <= n // 2:
        def draw(exclude: set[int]) -> list[tuple[int, str]]:
            return candidate_rows(ws, state, strategy, n - len(rows), exclude, cold_start=cold_start,
                                  records=records, allowed=allowed, W=W, clusters=clusters)

        fresh = draw(set(rows) | skip)
        if not fresh and skip:  # everything left was skipped once: show those again
            reset = True
            fresh = draw(set(rows))
        rows += [row for row, _ in fresh]
        reasons = dict(fresh)
    return rows, reasons, reset


def review_rows(
    ws: Workspace,
    state: PipelineState,
    n: int,
    first: Sequence[int] = (),
    *,
    cold_start: ColdStart = cold_start_rows,
    records: Records | None = None,
    allowed: NDArray[np.bool_] | None = None,
    W: Any = None,
) -> list[tuple[int, str]]:
    """(row, why) for the review page: rows the person sent from the map first, then the review queue."""
    records = ws.records() if records is None else records
    free = set(unlabeled_rows(ws, records))
    sent = [(r, "sent from the map") for r in dict.fromkeys(first) if r in free]
    taken = {row for row, _ in sent} | (set(range(len(records))) - free)
    fresh = candidate_rows(ws, state, "Suggested", n - len(sent), taken, cold_start=cold_start, records=records,
                           allowed=allowed, W=W)
    return [*sent, *fresh][:n]


def new_class_rows(state: PipelineState, n: int, found: review.Clusters | None = None) -> list[int]:
    """Up to ``n`` rows that may belong to a class nobody has defined, human labels left out: those unlike every
    other image (``state.isolated``), then the others flagged as far from every seed, then, with ``found`` (the Label
    page's clusters), the typical image of each cluster without a human label (far-from-every-seed flags are rare on
    a connected graph; an unlabeled cluster is the common case)."""
    human = np.asarray(state.source) == "human"
    # Images unlike every other (state.isolated: on photos, often no photo at all) first: their label is a guess.
    isolated = state.isolated_rows()
    flagged = [i for i, is_flagged in enumerate(state.new_class) if is_flagged and not human[i]]
    rows = sorted(flagged, key=lambda i: not isolated[i])[:n]
    if found is not None and len(rows) < n:
        rows += [int(i) for i in review.uncovered_typicals(found, human, n - len(rows), exclude=np.array(rows))]
    return rows


def audit_priority(image_ids: NDArray[np.integer[Any]], random_state: int = 0) -> NDArray[np.uint64]:
    """A pseudo-random number per image id (SplitMix64 of the id and ``random_state``), the same on every call.

    Auditing in increasing priority among the eligible images is a uniform random draw without replacement that
    stays put while the person answers: answering one image leaves the order of the others unchanged, so a queue
    of the next few can be shown (and typed ahead) without reshuffling.
    """
    with np.errstate(over="ignore"):
        z = np.asarray(image_ids, dtype=np.uint64) + np.uint64(random_state) * np.uint64(0x9E3779B97F4A7C15)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def audit_rows(ws: Workspace, state: PipelineState, n: int) -> list[int]:
    """The next ``n`` images to audit blind: propagated images that are neither audited nor human-labeled, in
    :func:`audit_priority` order (uniform, seeded by ``Settings.random_state``, stable while answering)."""
    audited = [a["image_id"] for a in ws.store.audits()]
    labeled = list(ws.store.human_labels())
    ids = np.asarray(state.image_ids, dtype=np.int64)
    eligible = (state.source == "propagated") & ~np.isin(ids, np.array(audited + labeled, dtype=np.int64))
    pool = np.flatnonzero(eligible)
    if n <= 0 or pool.size == 0:
        return []
    priority = audit_priority(ids[pool], ws.settings.random_state)
    order = np.argsort(priority, kind="stable")[:n]
    return [int(row) for row in pool[order]]


def next_audit_row(ws: Workspace, state: PipelineState, current: int | None = None) -> int | None:
    """The image to audit blind: ``current`` while it is still eligible, else the first of :func:`audit_rows`.
    None when none is left."""
    if current is not None and 0 <= current < len(state.source):
        image_id = int(state.image_ids[current])
        answered = image_id in {a["image_id"] for a in ws.store.audits()} or image_id in ws.store.human_labels()
        if state.source[current] == "propagated" and not answered:
            return int(current)
    rows = audit_rows(ws, state, 1)
    return rows[0] if rows else None


def answer_audit(ws: Workspace, state: PipelineState, row: int, class_id: int, annotator: str | None = None) -> None:
    """Store a blind audit answer with the label propagation had given the image (an audit is never a seed)."""
    predicted = int(state.label[row])
    ws.store.record_audit(
        int(state.image_ids[row]), class_id, state.class_ids[predicted] if predicted >= 0 else None,
        float(state.confidence[row]), annotator or ws.settings.annotator,
    )


# Answers read from a file (``labeler audit --answers``) may pass over this many of the images that the random audit
# order puts before the ones they answer (an image nobody can tell, as the app's Skip). Beyond that the answered
# images would be a choice rather than a random sample, and the accuracy estimate would lean towards easy images.
MAX_PASSED_OVER = 10


def answer_audits_by_path(
    ws: Workspace, state: PipelineState, answers: Sequence[tuple[str, str]], annotator: str | None = None
) -> tuple[int, list[tuple[str, str]]]:
    """Store blind audit answers given as (path, class name) rows; a row with an empty class name is passed over.

    Only images of the random audit order are taken: each answered image must be among the next
    ``answered + MAX_PASSED_OVER`` of :func:`audit_rows` (``labeler audit`` lists them), so that the answers stay
    a uniform random sample of the propagated labels. A class name not defined yet creates the class: an image of a
    class nobody has named is a wrong label, not one to skip. Answers are audits, never seeds.

    Returns
    -------
    stored : int, answers stored
    problems : list of (path, reason) for the rows refused (nothing is stored for them)
    """
    from labeler.store import InvalidClassName

    given = [(path, name) for path, name in answers if name.strip()]
    window = len(given) + MAX_PASSED_OVER
    allowed = set(audit_rows(ws, state, window))
    row_of = {path: row for row, path in enumerate(state.paths)}
    human = ws.store.human_labels()
    audited = {a["image_id"] for a in ws.store.audits()}
    stored, problems, answered = 0, [], set()
    for path, name in given:
        row = row_of.get(path)
        image_id = None if row is None else int(state.image_ids[row])
        if row is None:
            problems.append((path, "unknown path (not imported, unreadable, or new since the last propagation)"))
        elif image_id in human:
            problems.append((path, "has a human label: audits measure propagated labels"))
        elif image_id in audited or row in answered:
            problems.append((path, "already audited"))
        elif state.source[row] != "propagated":
            problems.append((path, "has no propagated label to audit"))
        elif row not in allowed:
            problems.append((path, f"not among the next {window} images of the random audit order (`labeler audit` "
                                   "lists them): an image picked by hand would bias the estimate"))
        else:
            try:
                info = ws.store.add_class(name)
            except InvalidClassName as error:
                problems.append((path, str(error)))
                continue
            answer_audit(ws, state, row, info.id, annotator)
            answered.add(row)
            stored += 1
    return stored, problems
