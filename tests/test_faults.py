"""Faults done for real: processes killed with SIGKILL at random moments, a full disk, read-only folders, eight
writers at once. After each, every label that was acknowledged is still there, no half-written file is read as
valid, and jobs of a killed process show as interrupted.

Random kill moments are drawn from a seeded generator and printed, so a failure can be replayed. Tests that need a
private mount namespace (a real read-only bind mount, a real small tmpfs) skip where ``unshare -m`` is not allowed.
"""

from __future__ import annotations

import errno
import functools
import json
import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from labeler.config import Settings
from labeler.io import artifacts
from labeler.store import ImportedImage, LabelStore
from labeler.workflow.refresh import refresh
from labeler.workflow.runner import JobRunner
from labeler.workflow.state import load_state, state_path
from labeler.workflow.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
SEED = int(os.environ.get("LABELER_FAULT_SEED", "20261127"))


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labeler.cli", *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout, cwd=ROOT)


def _synthetic_store(path: Path, n: int) -> LabelStore:
    store = LabelStore(path)
    store.sync_images([ImportedImage(f"img{i:05d}.png", f"sha{i}", 8, 8, None) for i in range(n)], {})
    store.add_class("a")
    store.add_class("b")
    return store


def _assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr


# ----------------------------------------------------------------------------------------------- (a) kill -9 a writer

_WRITER = """
import sys
from labeler.store import LabelStore
store = LabelStore(sys.argv[1])
classes = [c.id for c in store.classes()]
for i, image in enumerate(store.readable_images()):
    store.label(image.id, classes[i % 2], "writer#1")
    print(image.id, classes[i % 2], flush=True)  # acknowledged: the call returned, so the label is committed
"""


@pytest.mark.parametrize("attempt", range(3))
def test_kill_9_while_writing_labels_loses_no_acknowledged_label(tmp_path: Path, attempt: int) -> None:
    store = _synthetic_store(tmp_path / "labeler.db", 20_000)
    delay = random.Random(SEED + attempt).uniform(0.3, 1.5)
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(store.db_path)], stdout=subprocess.PIPE,
                              text=True, env=ENV)
    acknowledged: list[tuple[int, int]] = []

    def read() -> None:
        assert writer.stdout is not None
        for line in writer.stdout:
            image_id, class_id = line.split()
            acknowledged.append((int(image_id), int(class_id)))

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 60
    while not acknowledged and time.monotonic() < deadline:  # started writing (imports done)
        time.sleep(0.01)
    time.sleep(delay)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    reader.join(timeout=10)
    assert writer.returncode == -signal.SIGKILL
    assert acknowledged, "the writer never got going"
    after = LabelStore(store.db_path)  # "restart": a new process would open it the same way
    labels = after.human_labels()
    missing = [(i, c) for i, c in acknowledged if labels.get(i) != c]
    assert not missing, f"kill at {delay:.2f} s (seed {SEED + attempt}) lost {len(missing)} acknowledged labels"
    assert len(labels) - len(acknowledged) in (0, 1)  # at most the one committed but not yet printed
    assert len(after.history(limit=100_000)) == len(labels)  # the event log matches the labels
    with sqlite3.connect(store.db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.slow
def test_kill_9_during_a_cli_label_batch_is_all_or_nothing(colour_folder: tuple[Path, dict[str, str]],
                                                           tmp_path: Path) -> None:
    root, truth = colour_folder
    Workspace.open(Settings(root)).import_folder()
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("path,label\n" + "".join(f"{p},{c}\n" for p, c in truth.items()))
    outcomes = set()
    for attempt in range(3):
        store = LabelStore(Settings(root).db_path)
        for _ in range(3):
            store.undo(f"{Settings(root).annotator}#cli")  # start each attempt from no label
        delay = random.Random(SEED + 10 + attempt).uniform(2.0, 6.0)  # imports take a few seconds
        process = subprocess.Popen([sys.executable, "-m", "labeler.cli", "label", str(root), "--csv", str(seeds)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        try:
            out, _ = process.communicate(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            out, _ = process.communicate()
        stored = len(store.human_labels())
        acknowledged = "labels stored" in out
        assert stored in (0, len(truth)), f"kill at {delay:.2f} s left {stored} of {len(truth)}: torn batch"
        if acknowledged:
            assert stored == len(truth)
        outcomes.add(stored)
    assert outcomes  # (which of all/none happened depends on the machine's speed; both are correct)


# ----------------------------------------------------------------------------------------------- (b) kill -9 jobs


def _artifacts_all_load(workspace_dir: Path) -> None:
    """Every artifact under the workspace loads; no temporary piece is left for anyone to mistake for one."""
    from labeler.embed.ssl.train import load_checkpoint_info

    for path in workspace_dir.rglob("*"):
        if not path.is_file():
            continue
        assert not path.name.endswith(".tmp"), f"temporary file left behind: {path}"
        if path.suffix == ".npy":
            artifacts.load_npy(path)
        elif path.suffix == ".npz":
            artifacts.load_npz(path)
        elif path.suffix == ".pt":
            load_checkpoint_info(path)
        elif path.suffix == ".json":
            artifacts.load_json(path)


def _kill_when(process: subprocess.Popen[str], marker: str, delay: float, timeout: float = 240) -> str:
    """SIGKILL ``process`` ``delay`` seconds after ``marker`` appears on its stderr; returns what it printed."""
    seen: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            seen.append(line)
            if marker in line:
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not found.wait(0.05) and process.poll() is None and time.monotonic() < deadline:
        pass
    assert found.is_set(), f"never saw {marker!r}: {''.join(seen)[-2000:]}"
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    reader.join(timeout=10)
    return "".join(seen)


@pytest.mark.slow
def test_kill_9_during_training_then_restart(colour_folder: tuple[Path, dict[str, str]]) -> None:
    root, _ = colour_folder
    ws = Workspace.open(Settings(root))
    ws.import_folder()
    ws.store.label_paths([("img_000.png", "red"), ("img_030.png", "green"), ("img_060.png", "blue")], "ann")
    labels = ws.store.human_labels()
    delay = random.Random(SEED + 20).uniform(0.0, 2.0)
    training = subprocess.Popen(
        [sys.executable, "-m", "labeler.cli", "train", str(root), "--epochs", "400", "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )
    _kill_when(training, "epoch", delay)
    status = _cli("status", str(root))
    assert status.returncode == 0, status.stderr
    train_lines = [line for line in status.stdout.splitlines() if line.startswith("job ") and " train:" in line]
    assert train_lines, status.stdout
    assert "interrupted" in train_lines[0], status.stdout  # never "running"
    assert ws.store.human_labels() == labels
    JobRunner(ws.settings).close()  # what the app does on start: remove the pieces a killed writer left
    _artifacts_all_load(ws.workspace_dir)
    again = _cli("train", str(root), "--epochs", "1", "--device", "cpu")  # resumes from the last checkpoint
    assert again.returncode == 0, again.stderr
    assert "encoder trained" in again.stdout
    assert [job.status for job in ws.store.jobs(kind="train")] == ["done", "interrupted"]


@pytest.mark.slow
def test_kill_9_during_the_map_then_restart(colour_folder: tuple[Path, dict[str, str]]) -> None:
    root, truth = colour_folder
    ws = Workspace.open(Settings(root))
    ws.import_folder()
    ws.store.label_paths([("img_000.png", "red"), ("img_030.png", "green"), ("img_060.png", "blue")], "ann")
    first = refresh(ws, compute_map=False)  # a good state to keep
    delay = random.Random(SEED + 30).uniform(0.0, 1.0)
    mapping = subprocess.Popen([sys.executable, "-m", "labeler.cli", "map", str(root)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    _kill_when(mapping, "UMAP", delay)
    jobs = ws.store.jobs(kind="refresh")
    assert jobs[0].status == "interrupted", jobs[0]
    state = load_state(ws)  # the state from before the kill, or a complete newer one: never a torn one
    assert state is not None
    np.testing.assert_array_equal(state.image_ids, first.image_ids)
    JobRunner(ws.settings).close()
    _artifacts_all_load(ws.workspace_dir)
    again = _cli("map", str(root))
    assert again.returncode == 0, again.stderr
    state = load_state(ws)
    assert state is not None
    assert state.umap is not None
    assert state.umap.shape == (len(truth), 2)


# ----------------------------------------------------------------------------------------------- (c) disk full


def test_disk_full_while_saving_artifacts_is_a_clear_failure_and_loses_nothing(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = ws.records()
    ws.store.set_labels([records[0].id], ws.classes()[0].id, "ann")
    ws.store.set_labels([records[30].id], ws.classes()[1].id, "ann")
    refresh(ws, compute_map=False)
    saved_state = state_path(ws).read_bytes()
    ws.store.set_labels([records[60].id], ws.classes()[2].id, "ann")
    labels = ws.store.human_labels()

    def disk_full(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 3])  # part of it reaches the disk, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(artifacts, "_write_all", disk_full)
    runner = JobRunner(ws.settings)
    runner.request_refresh(compute_map=False)
    assert runner.wait("refresh", timeout=120)
    job = runner.status()[0]
    assert job.status == "failed"
    assert "the disk is full" in (job.error or "")
    assert "previous version is kept" in (job.error or "")
    assert state_path(ws).read_bytes() == saved_state  # the old state, whole
    assert ws.store.human_labels() == labels
    assert not list(ws.workspace_dir.rglob("*.tmp"))
    monkeypatch.undo()  # space freed: the same request works
    runner.request_refresh(compute_map=False)
    assert runner.wait("refresh", timeout=120)
    assert runner.status()[0].status == "done"
    state = load_state(ws)
    assert state is not None
    assert state.counts["human"] == 3
    runner.close()


@functools.cache
def _mount_namespaces() -> bool:
    """Whether this process may make a private mount namespace with tmpfs and read-only bind mounts."""
    if shutil.which("unshare") is None or sys.platform != "linux":
        return False
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         "d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs \"$d\" && mount --bind \"$d\" \"$d\" && "
         "mount -o remount,bind,ro \"$d\" && ! touch \"$d/x\" 2>/dev/null"],
        capture_output=True,
    )
    return probe.returncode == 0


_DRIVER = """
import json, subprocess, sys
setup, commands = json.loads(sys.argv[1])
subprocess.run(setup, shell=True, check=True)
results = []
for command in commands:
    done = subprocess.run(command, shell=isinstance(command, str), capture_output=True, text=True)
    results.append([done.returncode, done.stdout, done.stderr])
print(json.dumps(results))
"""


def _in_namespace(setup: str, commands: list[list[str] | str]) -> list[tuple[int, str, str]]:
    """Run ``setup`` (shell, e.g. mounts) and then ``commands`` inside one private mount namespace: the mounts
    vanish with it."""
    if not _mount_namespaces():
        pytest.skip("no private mount namespaces here (unshare -m not permitted)")
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", sys.executable, "-c", _DRIVER, json.dumps([setup, commands])],
        capture_output=True, text=True, env=ENV, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return [tuple(result) for result in json.loads(done.stdout)]  # type: ignore[misc]


def _labeler(*args: str) -> list[str]:
    return [sys.executable, "-m", "labeler.cli", *args]


@pytest.mark.slow
def test_a_really_full_disk_gives_a_clear_message_and_loses_nothing(colour_folder: tuple[Path, dict[str, str]],
                                                                    tmp_path: Path) -> None:
    root, _ = colour_folder
    prepared = tmp_path / "prepared"
    ws = Workspace.open(Settings(root, workspace_dir=prepared))
    ws.import_folder()
    ws.store.label_paths([("img_000.png", "red"), ("img_030.png", "green"), ("img_060.png", "blue")], "ann")
    seeds = tmp_path / "more.csv"
    seeds.write_text("path,label\nimg_001.png,red\n")
    small = tmp_path / "small"
    small.mkdir()
    workspace = small / "ws"
    setup = (f"mount -t tmpfs -o size=8m tmpfs {small} && cp -a {prepared} {workspace} && "
             f"(dd if=/dev/zero of={small}/filler bs=4k 2>/dev/null || true)")
    results = _in_namespace(setup, [
        _labeler("propagate", str(root), "--workspace", str(workspace)),
        _labeler("label", str(root), "--workspace", str(workspace), "--csv", str(seeds)),
        f"find {workspace} -name '*.tmp'",
        f"rm {small}/filler",
        _labeler("propagate", str(root), "--workspace", str(workspace)),
        _labeler("label", str(root), "--workspace", str(workspace), "--csv", str(seeds)),
        _labeler("status", str(root), "--workspace", str(workspace)),
    ])
    (full_rc, _, full_err), (label_rc, _, label_err), (_, leftovers, _), _, (ok_rc, _, ok_err), \
        (label2_rc, _, _), (status_rc, status_out, _) = results
    for rc, err in ((full_rc, full_err), (label_rc, label_err)):
        assert rc in (1, 2), err
        assert "Traceback" not in err, err
        assert "disk is full" in err, err
    assert leftovers.strip() == ""
    assert ok_rc == 0, ok_err  # space freed: everything works again
    assert label2_rc == 0
    assert status_rc == 0
    assert "human labels: 4" in status_out  # the three from before the disk filled, and the one added after


@pytest.mark.slow
def test_a_read_only_workspace_gives_a_clear_message_and_loses_nothing(colour_folder: tuple[Path, dict[str, str]],
                                                                       tmp_path: Path) -> None:
    root, _ = colour_folder
    ws = Workspace.open(Settings(root))
    ws.import_folder()
    ws.store.label_paths([("img_000.png", "red"), ("img_030.png", "green")], "ann")
    labels = ws.store.human_labels()
    seeds = tmp_path / "more.csv"
    seeds.write_text("path,label\nimg_060.png,blue\n")
    workspace = ws.workspace_dir
    setup = f"mount --bind {workspace} {workspace} && mount -o remount,bind,ro {workspace}"
    (label_rc, _, label_err), (propagate_rc, _, propagate_err) = _in_namespace(setup, [
        _labeler("label", str(root), "--csv", str(seeds)),
        _labeler("propagate", str(root)),
    ])
    for rc, err in ((label_rc, label_err), (propagate_rc, propagate_err)):
        assert rc == 2, err
        assert "Traceback" not in err, err
        assert "read-only" in err, err
    assert LabelStore(ws.settings.db_path).human_labels() == labels


@pytest.mark.slow
def test_a_read_only_workspace_can_be_read_and_exported_elsewhere(colour_folder: tuple[Path, dict[str, str]],
                                                                  tmp_path: Path) -> None:
    """status and export only read: they work on a read-only workspace (status was refused with "cannot write the
    label database"), and an export that would need a propagation first says why it cannot be made there."""
    root, truth = colour_folder
    ws = Workspace.open(Settings(root))
    ws.import_folder()
    ws.store.label_paths([("img_000.png", "red"), ("img_030.png", "green"), ("img_060.png", "blue")], "ann")
    refresh(ws, compute_map=False)
    out, stale = tmp_path / "labels.csv", tmp_path / "stale.csv"
    workspace = ws.workspace_dir
    setup = f"mount --bind {workspace} {workspace} && mount -o remount,bind,ro {workspace}"
    (status_rc, status_out, status_err), (export_rc, _, export_err) = _in_namespace(setup, [
        _labeler("status", str(root)),
        _labeler("export", str(root), "-o", str(out)),
    ])
    assert status_rc == 0, status_err
    assert f"workspace: {workspace} (read-only: nothing can be changed here)" in status_out
    assert "human labels: 3" in status_out
    assert "propagation: up to date with the labels" in status_out
    assert export_rc == 0, export_err
    rows = out.read_text().splitlines()
    assert len(rows) == len(truth) + 1
    ws.store.label_paths([("img_001.png", "red")], "ann")  # the propagation is out of date now
    (export_rc, _, export_err), (status_rc, status_out, _) = _in_namespace(setup, [
        _labeler("export", str(root), "-o", str(stale)),
        _labeler("status", str(root)),
    ])
    assert export_rc == 2
    assert "Traceback" not in export_err
    assert (f"the propagation is out of date (1 human label added since it ran) and the workspace {workspace} is "
            "read-only") in export_err
    assert not stale.exists()
    assert status_rc == 0
    assert "propagation: OUT OF DATE: 1 human label added since it ran" in status_out


@pytest.mark.slow
def test_a_read_only_data_folder_works_with_the_workspace_elsewhere(colour_folder: tuple[Path, dict[str, str]],
                                                                    tmp_path: Path) -> None:
    root, truth = colour_folder
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("path,label\nimg_000.png,red\nimg_030.png,green\nimg_060.png,blue\n")
    elsewhere = tmp_path / "elsewhere"
    out = tmp_path / "labels.csv"
    setup = f"mount --bind {root} {root} && mount -o remount,bind,ro {root}"
    results = _in_namespace(setup, [
        _labeler("import", str(root)),
        _labeler("import", str(root), "--workspace", str(elsewhere)),
        _labeler("label", str(root), "--workspace", str(elsewhere), "--csv", str(seeds)),
        _labeler("export", str(root), "--workspace", str(elsewhere), "-o", str(out)),
    ])
    (refused_rc, _, refused_err), *rest = results
    assert refused_rc == 2
    assert "Traceback" not in refused_err
    assert "--workspace OTHER_DIR" in refused_err
    assert [rc for rc, _, _ in rest] == [0, 0, 0], rest
    assert not (root / ".labeler").exists()
    assert len(out.read_text().splitlines()) == len(truth) + 1


_HOME_OPENS = """
import json, sys, time
from streamlit.testing.v1 import AppTest
folder, app = sys.argv[1], sys.argv[2]
at = AppTest.from_file(app, default_timeout=60)
at.run()
at.text_input(key="folder_text").input(folder)
at.button(key="open_folder").click()
at.run()
deadline = time.monotonic() + 120
while not any(m.label == "Readable images" for m in at.metric) and time.monotonic() < deadline:
    time.sleep(0.5)  # the first import runs in the background; the page polls for it
    at.run()
at.text_input(key="new_class_name").input("cat")
next(b for b in at.button if b.label == "Add class").click()
at.run()
home = {"infos": [i.value for i in at.info], "errors": [e.value for e in at.error],
        "metrics": {m.label: m.value for m in at.metric}, "exceptions": [e.value for e in at.exception]}
at.switch_page("pages/label.py").run()
print(json.dumps({**home, "label_exceptions": [e.value for e in at.exception],
                  "label_errors": [e.value for e in at.error]}))
"""


@pytest.mark.slow
def test_home_opens_a_read_only_folder_with_its_workspace_in_the_cache(colour_folder: tuple[Path, dict[str, str]],
                                                                      tmp_path: Path) -> None:
    root, truth = colour_folder
    from pages.shared.text import plain

    start = root.parent / "start"  # the app starts on another (empty) folder; Home opens the read-only one
    start.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    script = tmp_path / "home_opens.py"
    script.write_text(_HOME_OPENS)
    setup = f"mount --bind {root} {root} && mount -o remount,bind,ro {root}"
    ((rc, out, err),) = _in_namespace(setup, [
        f"HOME={home} LABELER_DATA_DIR={start} {sys.executable} {script} {root} {ROOT / 'app.py'}",
    ])
    assert rc == 0, err
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["exceptions"] == [], seen
    assert seen["errors"] == [], seen
    assert seen["metrics"]["Readable images"] == str(len(truth))
    workspaces = list((home / ".cache" / "labeler" / "workspaces").iterdir())
    assert len(workspaces) == 1
    (said,) = [info for info in seen["infos"] if "is read-only" in info]
    assert plain(workspaces[0]) in said  # Home says where the labels are kept (escaped for Markdown)
    assert [c.name for c in LabelStore(workspaces[0] / "labeler.db").classes()] == ["cat"]
    assert seen["label_exceptions"] == [], seen
    assert seen["label_errors"] == [], seen
    assert not (root / ".labeler").exists()


# ----------------------------------------------------------------------------------------------- (d) write load


def _write_many(db_path: str, worker: int, n: int) -> None:
    store = LabelStore(Path(db_path))
    classes = [c.id for c in store.classes()]
    for i, image in enumerate(store.readable_images()[worker * n:(worker + 1) * n]):
        store.label(image.id, classes[i % 2], f"writer#{worker}")


@pytest.mark.slow
@pytest.mark.usefixtures("clean_main_module")
def test_eight_processes_writing_labels_at_once(tmp_path: Path) -> None:
    """Correctness only; the latency of one write is measured by ``python -m benchmarks.label_writes``. 250 writes
    each: the eight still overlap for most of their run (1,000 each took 28 s, mostly waiting on the disk)."""
    per_writer = 250
    store = _synthetic_store(tmp_path / "labeler.db", 8 * per_writer)
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_many, args=(str(store.db_path), w, per_writer)) for w in range(8)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=600)
        assert writer.exitcode == 0
    labels = store.human_labels()
    assert len(labels) == 8 * per_writer
    events = store.history(limit=100_000)
    assert len(events) == 8 * per_writer
    # Every write its own action, none merged or lost.
    assert len({event["batch"] for event in events}) == 8 * per_writer
    assert {event["image_id"] for event in events} == set(labels)
    written = {f"writer#{w}": 0 for w in range(8)}
    for event in events:
        written[event["annotator"]] += 1
        assert labels[event["image_id"]] == event["class_id"]
    assert set(written.values()) == {per_writer}
