"""Wilson interval: published values and coverage by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from labeler.core.intervals import wilson_interval


def test_wilson_known_values() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert lo == pytest.approx(0.7225, abs=1e-4)
    assert hi == pytest.approx(1.0)
    lo, hi = wilson_interval(40, 50)
    assert lo == pytest.approx(0.6696, abs=1e-4)
    assert hi == pytest.approx(0.8876, abs=1e-4)
    assert wilson_interval(12.5, 20.0)[0] < 12.5 / 20 < wilson_interval(12.5, 20.0)[1]  # effective counts
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(11, 10)


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (8, 10, 0.4902, 0.9433),  # Newcombe 1998 / standard tables
        (81, 263, 0.2553, 0.3662),  # Newcombe 1998, table I example
    ],
)
def test_wilson_published_values(k: int, n: int, lo: float, hi: float) -> None:
    assert wilson_interval(k, n) == (pytest.approx(lo, abs=1e-4), pytest.approx(hi, abs=1e-4))


def test_wilson_coverage_by_simulation() -> None:
    rng = np.random.default_rng(0)
    n, p = 50, 0.8
    hits = rng.binomial(n, p, size=4000)
    bounds = np.array([wilson_interval(k, n) for k in hits])
    coverage = np.mean((bounds[:, 0] <= p) & (p <= bounds[:, 1]))
    assert 0.935 <= coverage <= 0.965  # exact coverage at n=50, p=0.8 is 0.951
