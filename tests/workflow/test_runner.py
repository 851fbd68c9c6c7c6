"""Background jobs: progress recorded, refresh coalesced and never lost, a crash leaves every label intact and can
be retried, and only jobs whose process is gone are shown as interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labeler.config import Settings
from labeler.store import jobs as jobs_module
from labeler.workflow import runner as runner_module
from labeler.workflow.runner import JobRunner
from labeler.workflow.state import is_stale, load_state

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runner(colour_folder: tuple[Path, dict[str, str]]) -> Iterator[JobRunner]:
    root, _ = colour_folder
    job_runner = JobRunner(Settings(root, n_bootstrap=2))
    job_runner.workspace.import_folder()
    yield job_runner
    job_runner.close()


def _seed(runner: JobRunner) -> None:
    runner.workspace.store.label_paths([("img_000.png", "red"), ("img_030.png", "green"), ("img_060.png", "blue")],
                                       "ann")


def test_refresh_runs_in_the_background_and_records_the_job(runner: JobRunner) -> None:
    _seed(runner)
    runner.request_refresh(compute_map=False)
    runner.wait("refresh", timeout=60)
    jobs = runner.status()
    assert jobs[0].kind == "refresh"
    assert jobs[0].status == "done"
    state = load_state(runner.workspace)
    assert state is not None
    assert state.counts["propagated"] == 87


def test_catch_up_refreshes_once_per_labels_version(runner: JobRunner) -> None:
    """Labels written by another process (the CLI) reach the propagation when a page notices; a version already
    asked for is not asked again (a failing refresh would otherwise be retried every second)."""
    store = runner.workspace.store
    _seed(runner)
    version = store.labels_version()
    assert runner.catch_up(version)
    runner.wait("refresh", timeout=60)
    state = load_state(runner.workspace)
    assert state is not None
    assert state.labels_version == version
    assert not runner.catch_up(version)
    assert [job.kind for job in runner.status(limit=50)].count("refresh") == 1
    store.label_paths([("img_001.png", "red")], "cli")
    assert runner.catch_up(store.labels_version())
    runner.wait("refresh", timeout=60)
    assert load_state(runner.workspace).labels_version == store.labels_version()  # type: ignore[union-attr]


def test_many_refresh_requests_coalesce(runner: JobRunner) -> None:
    _seed(runner)
    for _ in range(20):
        runner.request_refresh(compute_map=False)
    runner.wait("refresh", timeout=60)
    refresh_jobs = [job for job in runner.status(limit=50) if job.kind == "refresh"]
    assert 1 <= len(refresh_jobs) <= 3  # twenty clicks, a couple of runs at most
    assert all(job.status == "done" for job in refresh_jobs)


def test_a_crashing_job_leaves_labels_intact_and_can_be_retried(runner: JobRunner,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(runner)
    before = runner.workspace.store.human_labels()

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("out of memory while spreading labels")

    monkeypatch.setattr(runner_module, "refresh", crash)
    runner.request_refresh(compute_map=False)
    runner.wait("refresh", timeout=60)
    failed = runner.status()[0]
    assert failed.status == "failed"
    assert "out of memory" in (failed.error or "")
    assert runner.workspace.store.human_labels() == before
    monkeypatch.undo()
    runner.request_refresh(compute_map=False)  # retry
    runner.wait("refresh", timeout=60)
    assert runner.status()[0].status == "done"


def test_a_refresh_requested_as_the_worker_goes_idle_is_not_lost(runner: JobRunner) -> None:
    """The old runner lost a request arriving after the loop's last check and before its thread ended."""
    _seed(runner)
    store = runner.workspace.store
    late = runner.workspace.records()[10]
    calls = []

    def request_at_the_worst_moment() -> None:
        calls.append(1)
        if len(calls) == 1:  # the first pass is done and the worker is about to go idle: a new label arrives
            store.label(late.id, runner.workspace.classes()[0].id, "ann")
            runner.request_refresh(compute_map=False)

    runner._before_idle = request_at_the_worst_moment
    runner.request_refresh(compute_map=False)
    assert runner.wait("refresh", timeout=60)
    state = load_state(runner.workspace)
    assert state is not None
    assert not is_stale(runner.workspace, state)  # the late label was propagated without another click
    assert state.source[10] == "human"
    assert len(calls) == 2


def test_wait_honours_its_timeout(runner: JobRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def slow_refresh(*args: object, **kwargs: object) -> None:
        release.wait(30)
        raise RuntimeError("released")

    monkeypatch.setattr(runner_module, "refresh", slow_refresh)
    runner.request_refresh(compute_map=False)
    started = time.monotonic()
    assert runner.wait("refresh", timeout=0.3) is False
    assert time.monotonic() - started < 2.0
    assert runner.is_running("refresh")
    release.set()
    assert runner.wait("refresh", timeout=30)
    assert runner.status()[0].status == "failed"


def test_the_heartbeat_keeps_a_long_job_alive(runner: JobRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "HEARTBEAT_S", 0.05)
    release = threading.Event()

    def silent_refresh(*args: object, **kwargs: object) -> None:
        release.wait(30)  # a long step that reports no progress
        raise RuntimeError("released")

    monkeypatch.setattr(runner_module, "refresh", silent_refresh)
    runner.request_refresh(compute_map=False)
    time.sleep(0.3)
    job = runner.status()[0]
    first = job.heartbeat_at or 0.0
    time.sleep(0.3)
    assert (runner.status()[0].heartbeat_at or 0.0) > first
    # Even a checker that considers a second of silence stale leaves it running: it beats every 0.05 s.
    assert runner.store.mark_interrupted_jobs(stale_after_s=1.0) == 0
    release.set()
    runner.wait("refresh", timeout=30)


_HOLD_A_JOB = """
import sys, time
from labeler.store import LabelStore
store = LabelStore(sys.argv[1])
job = store.create_job("train")
store.update_job(job, status="running", message="training in another process")
print(job, flush=True)
time.sleep(120)
"""


def test_a_new_runner_leaves_live_jobs_of_another_process_alone(runner: JobRunner) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    other = subprocess.Popen([sys.executable, "-c", _HOLD_A_JOB, str(runner.store.db_path)],
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert other.stdout is not None
        job_id = int(other.stdout.readline())
        again = JobRunner(runner.settings)  # a second app process, or the cache evicting the runner
        job = again.store.job(job_id)
        assert job is not None
        assert job.status == "running"  # live: left alone
        assert job.owner_pid == other.pid
        assert again.start_training(epochs=1) == job_id  # no second training beside it
        other.send_signal(signal.SIGKILL)
        other.wait(timeout=10)
        job = again.store.job(job_id)  # read by anyone after the kill: interrupted, never running
        assert job is not None
        assert job.status == "interrupted"
        assert "interrupted" in (job.error or "")
        again.close()
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()


def test_jobs_with_a_stale_heartbeat_or_no_owner_are_interrupted(runner: JobRunner) -> None:
    store = runner.store
    stale = store.create_job("refresh")
    store.update_job(stale, status="running")
    legacy = store.create_job("train")
    live = store.create_job("refresh")
    with store._write() as conn:
        old = time.time() - 2 * jobs_module.STALE_AFTER_S
        conn.execute("UPDATE jobs SET heartbeat_at=?, owner_host='elsewhere' WHERE id=?", (old, stale))
        conn.execute("UPDATE jobs SET owner_pid=NULL, owner_host=NULL WHERE id=?", (legacy,))
    assert store.mark_interrupted_jobs() == 2
    statuses = {job.id: job.status for job in store.jobs()}
    assert statuses == {stale: "interrupted", legacy: "interrupted", live: "queued"}


def test_process_alive_sees_dead_and_zombie_processes() -> None:
    assert jobs_module.process_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 20
    while jobs_module.process_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # exited but not yet reaped: a zombie counts as dead
    assert not jobs_module.process_alive(child.pid)
    child.wait()
    assert not jobs_module.process_alive(child.pid)

def test_import_runs_in_the_job_lane_then_refreshes(tmp_path: Path) -> None:
    from conftest import make_colour_folder

    root = tmp_path / "data"
    make_colour_folder(root, per_class=3)
    job_runner = JobRunner(Settings(root, n_bootstrap=2))
    job_runner.start_import()
    job_runner.wait("import", timeout=60)
    job_runner.wait("refresh", timeout=60)
    kinds = {job.kind: job for job in job_runner.status()}
    assert kinds["import"].status == "done"
    assert kinds["import"].message.startswith("9 new files: 9 readable, 0 unreadable;")
    assert job_runner.last_import is not None
    assert job_runner.last_import.counts["added"] == 9
    assert kinds["refresh"].status == "done"
    assert job_runner.workspace.image_count() == 9


def test_training_embeds_on_the_ray_address_then_refreshes(runner: JobRunner,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from labeler.embed import ray_embed
    from labeler.workflow import representations

    addresses: list[str | None] = []
    monkeypatch.setattr(runner_module, "train", lambda ws, **options: "encoder trained")
    monkeypatch.setattr(ray_embed, "ray_available", lambda: True)
    monkeypatch.setattr(representations, "embed_on_ray",
                        lambda ws, address, **options: addresses.append(address) or [Path("a.npy"), Path("b.npy")])
    _seed(runner)
    runner.start_training(minutes=0.1, ray_address=" local ")  # "local" is a Ray started here: address None
    assert runner.wait("train", timeout=60)
    runner.start_embedding(ray_address="ray://head:10001")
    assert runner.wait("train", timeout=60)
    runner.start_training(minutes=0.1)  # the settings' default: this machine, so the refresh embeds
    assert runner.wait("train", timeout=60)
    assert runner.wait("refresh", timeout=120)
    assert addresses == [None, "ray://head:10001"]
    messages = [job.message for job in runner.store.jobs(kind="train")]
    assert messages == ["encoder trained; embedding on this machine", "embedded 2 representations on Ray",
                        "encoder trained; embedded 2 representations on Ray"]
    assert not is_stale(runner.workspace, load_state(runner.workspace))  # the refresh followed


def test_embedding_on_ray_without_ray_fails_clearly_and_still_refreshes(runner: JobRunner,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from labeler.embed import ray_embed

    monkeypatch.setattr(ray_embed, "ray_available", lambda: False)
    _seed(runner)
    runner.start_embedding(ray_address="auto")
    assert runner.wait("train", timeout=60)
    assert runner.wait("refresh", timeout=120)
    job = runner.store.jobs(kind="train")[0]
    assert job.status == "failed"
    assert 'pip install "labeler[ray]"' in (job.error or "")
    assert load_state(runner.workspace) is not None  # this machine embedded and propagated instead


def test_import_embeds_on_the_ray_address_then_refreshes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With an address (`labeler app --ray`), the model embeddings an import leaves to compute go to the cluster
    before the refresh (Ray itself is not started); without one, or with nothing to embed, the refresh follows at
    once."""
    from conftest import make_colour_folder

    from labeler.embed import ray_embed
    from labeler.workflow import representations

    root = tmp_path / "data"
    make_colour_folder(root, per_class=3)
    addresses: list[str | None] = []
    monkeypatch.setattr(ray_embed, "ray_available", lambda: True)
    monkeypatch.setattr(representations, "embed_on_ray",
                        lambda ws, address, **options: addresses.append(address) or [Path("pretrained.npy")])
    job_runner = JobRunner(Settings(root, n_bootstrap=2, ray_address="ray://head:10001"))
    try:
        assert representations.models_to_embed(job_runner.workspace) == []  # not imported yet: nothing
        job_runner.start_import()
        assert job_runner.wait("import", timeout=60)
        # Small colour squares and no trained encoder: no model to run, so no cluster job.
        assert representations.models_to_embed(job_runner.workspace) == []
        assert job_runner.wait("refresh", timeout=120)
        assert job_runner.store.jobs(kind="train") == []
        assert addresses == []
        # A photo folder (or new images after training) leaves a model's vectors to compute: they go to Ray.
        monkeypatch.setattr(runner_module, "models_to_embed", lambda ws: ["pretrained"])
        make_colour_folder(root / "more", per_class=1, seed=1)  # three new files
        job_runner.start_import()
        assert job_runner.wait("import", timeout=60)
        assert job_runner.wait("train", timeout=60)
        assert job_runner.wait("refresh", timeout=120)
        assert addresses == ["ray://head:10001"]
        imported = job_runner.store.jobs(kind="import")[0]
        assert imported.message.endswith("; embedding on Ray (ray://head:10001)")
        assert job_runner.store.jobs(kind="train")[0].message == "embedded 1 representation on Ray"
        assert not is_stale(job_runner.workspace, load_state(job_runner.workspace))  # the refresh followed
    finally:
        job_runner.close()


def test_import_embedding_on_ray_without_ray_fails_clearly_and_embeds_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import make_colour_folder

    from labeler.embed import ray_embed

    root = tmp_path / "data"
    make_colour_folder(root, per_class=3)
    monkeypatch.setattr(ray_embed, "ray_available", lambda: False)
    monkeypatch.setattr(runner_module, "models_to_embed", lambda ws: ["pretrained"])
    job_runner = JobRunner(Settings(root, n_bootstrap=2, ray_address="auto"))
    try:
        job_runner.start_import()
        assert job_runner.wait("import", timeout=60)
        assert job_runner.wait("train", timeout=60)
        assert job_runner.wait("refresh", timeout=120)
        assert job_runner.store.jobs(kind="import")[0].status == "done"  # the import itself stands
        job = job_runner.store.jobs(kind="train")[0]
        assert job.status == "failed"
        assert 'pip install "labeler[ray]"' in (job.error or "")
        assert load_state(job_runner.workspace) is not None  # this machine embedded and propagated instead
    finally:
        job_runner.close()


def test_a_missing_map_is_its_own_job_and_never_holds_back_the_next_label(runner: JobRunner,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The refresh after a label is done once labels, stability and calibration are saved; the UMAP map (minutes at
    100,000 images) follows in the map lane, and a label given meanwhile is propagated without waiting for it."""
    from labeler.core import umap_map
    from labeler.workflow.state import state_version

    release = threading.Event()
    real = umap_map.umap_coordinates

    def slow_layout(*args: object, **kwargs: object) -> object:
        assert release.wait(timeout=120)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(umap_map, "umap_coordinates", slow_layout)
    _seed(runner)
    runner.request_refresh(compute_map=True)
    assert runner.wait("refresh", timeout=60)  # done while the layout is still waiting
    assert runner.status()[0].kind == "map" or runner.is_running("map")
    first = load_state(runner.workspace)
    assert first is not None
    assert first.umap is None
    runner.workspace.store.label_paths([("img_001.png", "red")], "ann")
    runner.request_refresh(compute_map=True)
    assert runner.wait("refresh", timeout=60)  # the next label's pass is not queued behind the map
    second = load_state(runner.workspace)
    assert second is not None
    assert second.counts["human"] == 4
    version = state_version(runner.workspace)
    release.set()
    assert runner.wait("map", timeout=120)
    maps = runner.store.jobs(kind="map")
    assert [job.status for job in maps] == ["done"] * len(maps)
    assert maps[0].message == "map computed"
    assert state_version(runner.workspace) != version  # pages polling the version load the state again
    shown = load_state(runner.workspace)
    assert shown is not None
    assert shown.umap is not None
    assert shown.umap.shape == (len(shown.image_ids), 2)
    assert shown.counts["human"] == 4  # the latest propagation, not overwritten by the map job
