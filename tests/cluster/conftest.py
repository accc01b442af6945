"""A real Ray head for the tests of this folder, started once per session on 127.0.0.1 (2 CPUs,
no GPU, a small object store, its own temp dir, HOME and ``RAY_AUTH_MODE``) and stopped at the
end by killing the processes it started. The test modules skip themselves, cleanly, when Ray is
not installed (``pip install "ray[default]"``, in requirements-dev.txt); nothing here imports it."""
from __future__ import annotations

import time

import pytest

from genapp.jobs.ray_backend import RayBackend, read_record
from genapp.runs import ACTIVE_STATES, RunDir

from .head import RayHead


@pytest.fixture(scope="session")
def ray_head():
    head = RayHead(cpus=2)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in head.env.items():  # this process is a client of the head: the same HOME and auth
            patch.setenv(name, value)
        started = time.monotonic()
        head.start()
        print(f"\nRay head at {head.address} answered in {time.monotonic() - started:.1f} s")
        try:
            yield head
        finally:
            head.stop()


@pytest.fixture
def ray_env(ray_head, monkeypatch, tmp_path):
    """The app and the CLI pointed at the head (GENAPP_JOB_BACKEND=ray); returns the runs folder
    (absolute, so seen by the head's node: the same machine). Jobs left active are stopped after
    the test, so no test waits behind another's."""
    from genapp.ui.resources import job_backend

    job_backend.clear()  # the server's backend is cached: one of another test's kind would answer here
    runs = (tmp_path / "runs").resolve()
    monkeypatch.setenv("GENAPP_JOB_BACKEND", "ray")
    monkeypatch.setenv("GENAPP_RAY_ADDRESS", ray_head.address)
    monkeypatch.setenv("GENAPP_RUNS_DIR", str(runs))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield runs
    job_backend.clear()
    backend = RayBackend(ray_head.address)
    for name in backend.list(runs):
        state = backend.status(RunDir(runs / name))
        if state.active or state.state in ACTIVE_STATES:
            try:
                backend._call("stop_job", name)
            except Exception:
                pass
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # (a job no node can place waits in Ray's queue, cancelled, harmless)
        live = [j for j in backend.jobs(fresh=True).values() if str(j.status.value) == "RUNNING"
                or str(j.status.value) == "PENDING" and not read_record(runs, j.submission_id).get("verdict")]
        if not live:
            break
        time.sleep(0.5)
