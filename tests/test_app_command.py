"""`labeler app`: beyond loopback a token is generated, printed and handed to the server; `kill PID` stops the
server it started (signals are forwarded to the Streamlit child)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from labeler import cli
from labeler.auth import TOKEN_ENV

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def _start(data: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "labeler.cli", "app", str(data), "--port", str(port), *extra],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return process, port
        except OSError:
            time.sleep(0.3)
    raise AssertionError("the app did not answer")


def _stop_with(process: subprocess.Popen[str], signum: int) -> tuple[int, list[int]]:
    children = _children(process.pid)
    process.send_signal(signum)  # the labeler process only, as `kill PID` would
    try:
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return code, children


def test_beyond_loopback_a_token_is_required_and_kill_stops_the_server(colour_folder: tuple[Path, dict[str, str]],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = colour_folder
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    process, port = _start(root, "--host", "0.0.0.0", env={TOKEN_ENV: ""})
    try:
        assert process.stdout is not None
        printed = "".join(process.stdout.readline() for _ in range(3))
        match = re.search(rf"http://127\.0\.0\.1:{port}/\?token=([\w-]+)", printed)
        assert match, printed
        token = match.group(1)
        assert len(token) >= 40
        (server,) = _children(process.pid)
        environ = Path(f"/proc/{server}/environ").read_bytes().split(b"\0")
        assert f"{TOKEN_ENV}={token}".encode() in environ  # handed to the server, not on its command line
        assert token.encode() not in Path(f"/proc/{server}/cmdline").read_bytes()
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    code, children = _stop_with(process, signal.SIGTERM)
    assert children == [server]
    assert not _alive(server)  # the Streamlit server went with it
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    assert code in (0, -signal.SIGTERM, 128 + signal.SIGTERM, 1)


def test_ctrl_c_stops_the_server_on_loopback_without_a_token(colour_folder: tuple[Path, dict[str, str]],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = colour_folder
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    process, port = _start(root)
    (server,) = _children(process.pid)
    assert TOKEN_ENV.encode() not in Path(f"/proc/{server}/environ").read_bytes()
    _, children = _stop_with(process, signal.SIGINT)
    assert children == [server]
    assert not _alive(server)


def test_the_token_choice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Which token `labeler app` hands over, without starting a server."""
    handed: list[dict[str, str]] = []

    def fake_run(command: list[str], cwd: str, env: dict[str, str]) -> int:
        handed.append(env)
        return 0

    monkeypatch.setattr(cli, "_run_forwarding_signals", fake_run)
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert cli.main(["app", str(tmp_path)]) == 0  # loopback: no token
    assert cli.main(["app", str(tmp_path), "--host", "0.0.0.0"]) == 0  # beyond: generated
    assert cli.main(["app", str(tmp_path), "--host", "0.0.0.0", "--no-auth"]) == 0  # beyond, explicitly open
    monkeypatch.setenv(TOKEN_ENV, "kept-across-restarts")
    assert cli.main(["app", str(tmp_path), "--host", "0.0.0.0"]) == 0  # given: kept
    assert cli.main(["app", str(tmp_path), "--host", "0.0.0.0", "--no-auth"]) == 0  # --no-auth wins
    tokens = [env.get(TOKEN_ENV) for env in handed]
    assert tokens[0] is None
    assert tokens[1] is not None
    assert len(tokens[1]) >= 40
    assert tokens[2:] == [None, "kept-across-restarts", None]
    out = capsys.readouterr().out
    assert f"?token={tokens[1]}" in out
    assert "--no-auth: anyone who can reach this address" in out


def test_the_ray_address_reaches_the_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`labeler app --ray ADDRESS` hands the address to the Streamlit process after `--`, where the pages read it
    (pages.shared.session.startup_ray_address); without it nothing is passed."""
    commands: list[list[str]] = []

    def fake_run(command: list[str], cwd: str, env: dict[str, str]) -> int:
        commands.append(command)
        return 0

    monkeypatch.setattr(cli, "_run_forwarding_signals", fake_run)
    assert cli.main(["app", str(tmp_path), "--ray", "ray://head:10001"]) == 0
    assert cli.main(["app", str(tmp_path)]) == 0
    with_ray, without = commands
    app_options = with_ray[with_ray.index("--") + 1:]
    assert app_options[app_options.index("--ray") + 1] == "ray://head:10001"
    assert "--ray" not in without
