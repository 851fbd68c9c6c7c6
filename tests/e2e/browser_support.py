"""What every real-browser test shares: Debian's chromium with the flags this machine needs, a free port, polling."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
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


@contextlib.contextmanager
def labeler_app(data: Path, log_path: Path, *options: str) -> Iterator[tuple[str, int]]:
    """``labeler app`` on the folder ``data`` (with ``options``) on a free port, its output in ``log_path``: yields
    (URL, the id of its process group, which a test may kill) once it answers; then stops it and the Streamlit
    server it started, nothing else."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "labeler.cli", "app", str(data), "--port", str(port), *options],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_server(process, url, log_path, "labeler app")
            yield url, process.pid
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
