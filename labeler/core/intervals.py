"""Intervals for proportions: the Wilson score interval used everywhere a share of answers is shown."""

from __future__ import annotations

import numpy as np

Z_95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(successes: float, n: float, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927); the one implementation to use everywhere.

    Unlike the normal approximation it stays inside [0, 1] and is sensible at 0/n and n/n, which is exactly where
    small audits land. ``n == 0`` gives the uninformative (0, 1). Accepts non-integer counts (effective sample sizes).
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))
