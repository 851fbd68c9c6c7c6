"""Background jobs: progress recorded, refresh coalesced, a crash leaves every label intact and can be retried."""

from __future__ import annotations

from pathlib import Path

import pytest

from labeler.config import Settings
from labeler.workflow import runner as runner_module
from labeler.workflow.runner import JobRunner
from labeler.workflow.state import load_state


@pytest.fixture
def runner(colour_folder: tuple[Path, dict[str, str]]) -> JobRunner:
    root, _ = colour_folder
    job_runner = JobRunner(Settings(root, n_bootstrap=2))
    job_runner.workspace.import_folder()
    return job_runner


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


def test_a_new_runner_marks_jobs_of_a_dead_process_failed(runner: JobRunner) -> None:
    job_id = runner.store.create_job("train")
    runner.store.update_job(job_id, status="running")
    again = JobRunner(runner.settings)
    job = again.store.job(job_id)
    assert job is not None
    assert job.status == "failed"


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
    assert kinds["import"].message.startswith("9 readable images")
    assert job_runner.last_import is not None
    assert job_runner.last_import.counts["added"] == 9
    assert kinds["refresh"].status == "done"
    assert job_runner.workspace.image_count() == 9
