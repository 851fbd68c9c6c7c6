"""The progress callback every long step takes: ``progress(fraction, message)``; jobs also take ``should_stop()``.

Jobs are ordinary functions with these callbacks, so tests run them synchronously and the runner adds threads.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None]
StopCheck = Callable[[], bool]


def quiet(fraction: float, message: str) -> None:
    """A progress callback that shows nothing."""
    return None
