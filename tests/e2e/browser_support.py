"""What every real-browser test shares: Debian's chromium with the flags this machine needs, a free port, polling."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags chromium keeps trying hosts this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], object], timeout: float, what: str, every: float = 0.1) -> Any:
    """The first truthy value of ``condition()``, polled every ``every`` s; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_for_server(process: subprocess.Popen[Any], url: str, log: Path, what: str, every: float = 0.1) -> None:
    """Wait up to 60 s for the Streamlit server ``process`` to answer its health check at ``url``; fail with its
    ``log`` as soon as it exits."""

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited: " + log.read_text())
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    wait_for(healthy, 60, f"{what} to answer", every=every)
