"""What the results files say about the machine they were measured on."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name(fallback: str | None = None) -> str:
    """The CPU's model name from /proc/cpuinfo; ``fallback`` (default: the architecture) where it cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return fallback or platform.machine()
