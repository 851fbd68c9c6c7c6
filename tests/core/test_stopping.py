"""The stopping rule: stop only when the audit is precise and new labels no longer change the others."""

from __future__ import annotations

import numpy as np
import pytest

from labeler.core.stopping import audits_for_width, changed_fraction, stopping_verdict


def test_changed_fraction_counts_only_propagated_images() -> None:
    before = np.array([0, 1, 1, -1, 2, 0])
    now = np.array([0, 2, 1, 1, 2, 1])
    propagated = np.array([True, True, True, True, False, False])  # the last two were labeled by a person since
    assert changed_fraction(before, now, propagated) == pytest.approx(2 / 4)  # 1 -> 2 and none -> 1
    assert np.isnan(changed_fraction(before, now, np.zeros(6, dtype=bool)))
    with pytest.raises(ValueError, match="shapes"):
        changed_fraction(before[:3], now, propagated)


def test_audits_for_width() -> None:
    # 2 * 1.96 * sqrt(0.8 * 0.2 / n) = 0.1  ->  n = 245.9
    assert audits_for_width(0.8, 0.1) == 246
    assert audits_for_width(1.0, 0.1) == audits_for_width(0.95, 0.1)  # no zero-width promise at 100 %


def test_stop_when_both_conditions_hold() -> None:
    verdict = stopping_verdict((0.90, 0.97), 120, [0.004, 0.002, 0.001], n_recent_labels=20)
    assert verdict.stop
    assert verdict.audits_needed == 0
    assert verdict.reason.startswith("You can stop labeling.")
    assert "the last 20 labels" in verdict.reason


def test_keep_going_while_the_interval_is_wide() -> None:
    verdict = stopping_verdict((0.70, 0.88), 60, [0.001, 0.001])
    assert not verdict.stop
    assert "0.18 wide" in verdict.reason
    assert verdict.audits_needed == audits_for_width(0.79, 0.1) - 60


def test_keep_going_with_too_few_audits() -> None:
    # An interval 0.30 wide needs fewer than 30 audits: the count is the fewest audits to trust any interval.
    assert audits_for_width(0.975, 0.3) < 30
    verdict = stopping_verdict((0.95, 1.0), 8, [0.0, 0.0], max_width=0.3)
    assert not verdict.stop
    assert "Not enough audits yet (8 of at least 30; at least 30 in all): audit about 22 more" in verdict.reason
    assert verdict.audits_needed == 22
    # An interval 0.10 wide needs more: the count says it comes from that width.
    verdict = stopping_verdict((0.95, 1.0), 8, [0.0, 0.0])
    needed = audits_for_width(0.975, 0.1)
    assert needed > 30
    assert verdict.audits_needed == needed - 8
    assert (f"Not enough audits yet (8 of at least 30; about {needed} in all for an interval of the accuracy at "
            f"most 0.10 wide): audit about {needed - 8} more") in verdict.reason


def test_keep_going_while_labels_still_move_the_others() -> None:
    verdict = stopping_verdict((0.92, 0.97), 200, [0.002, 0.03])
    assert not verdict.stop
    assert "3.0%" in verdict.reason
    # Unmet conditions come first, the met one after.
    assert verdict.reason.index("still change") < verdict.reason.index("The audit puts")


def test_one_quiet_batch_is_not_a_trend() -> None:
    verdict = stopping_verdict((0.92, 0.97), 200, [0.0, float("nan")], batch_labels=10)
    assert not verdict.stop
    # What a batch is, and why the count can be 0 with hundreds of labels (a new representation restarts it).
    assert ("Too few label batches to see a trend (1 of 2; a batch ends every 10 labels, and the count starts again "
            "when the representation, the classes or the images change).") in verdict.reason


def test_rejects_a_malformed_interval() -> None:
    with pytest.raises(ValueError, match="audit_interval"):
        stopping_verdict((0.9, 0.8), 50, [0.0, 0.0])


def test_a_small_folder_is_never_asked_for_more_audits_than_it_has_images() -> None:
    # 118 propagated images, no audit yet: without the population the rule asked for about 385 (0.5 +- 0.05)
    assert audits_for_width(0.5, 0.1) == 385
    needed = audits_for_width(0.5, 0.1, population=118)
    assert needed == 91  # 384.1 / (1 + 383.1 / 118), rounded up
    verdict = stopping_verdict((0.0, 1.0), 0, [0.0, 0.0], population=118)
    assert not verdict.stop
    assert verdict.audits_needed == needed
    assert "audit about 91 more" in verdict.reason


def test_auditing_every_propagated_image_measures_their_accuracy() -> None:
    # 40 of 40 audited: the Wilson interval (drawn as if with replacement) is still wide, the truth is known
    verdict = stopping_verdict((0.80, 0.97), 40, [0.0, 0.0], population=40)
    assert verdict.stop
    assert verdict.audits_needed == 0
    assert "Every propagated label has been audited" in verdict.reason


def test_the_interval_narrows_as_audits_exhaust_a_small_folder() -> None:
    # width 0.12 from 150 audits: too wide for 10,000 images, narrow enough once they are 150 of 200
    assert not stopping_verdict((0.83, 0.95), 150, [0.0, 0.0], population=10_000).stop
    assert stopping_verdict((0.83, 0.95), 150, [0.0, 0.0], population=200).stop


def test_nothing_propagated_asks_for_no_audit() -> None:
    verdict = stopping_verdict((0.0, 1.0), 0, [0.0, 0.0], population=0)
    assert not verdict.stop
    assert verdict.audits_needed == 0
    assert "nothing to audit" in verdict.reason
