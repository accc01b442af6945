"""The job launcher and the incremental metric reader: real jobs (``python -m train``), tiny configs."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from genapp.runs.history import MetricsHistory
from genapp.jobs.local import (
    Job, JobTable, LaunchError, delete_run, log_path, pending_run_names, resume_run, run_state, start_run,
    stop_run, train_command,
)
from genapp.runs import RunDir
from train.cli import build_parser, dataclass_from_args

from .conftest import tiny_config, wait_for, wait_for_state


def test_train_command_round_trips_every_field():
    config = tiny_config(latent_dim=3, lr=3e-4, lr_schedule="cosine", compile=True)
    argv = train_command(config, "/tmp/runs", "r1")
    assert argv[1:4] == ["-m", "train", "vae"]
    args = build_parser().parse_args(argv[3:])
    assert dataclass_from_args(type(config.model), args) == config.model
    assert dataclass_from_args(type(config.train), args) == config.train
    assert (args.runs_dir, args.run_name, args.no_progress) == ("/tmp/runs", "r1", True)


def test_start_runs_to_the_end_and_logs(tmp_path):
    jobs = JobTable()
    job = start_run(tiny_config(), tmp_path, "job1", jobs)
    run = RunDir(tmp_path / "job1")
    assert wait_for_state(run, ("finished", "failed"), jobs) == "finished"
    wait_for(lambda: not job.alive, timeout=30, what="the process to be reaped")
    assert job.process.returncode == 0
    assert "$ " in log_path(tmp_path, "job1").read_text()  # the command, then the job's output
    assert run.best_checkpoint.is_file() and run.sample_epochs() == [0, 1, 2]
    assert pending_run_names(tmp_path, jobs, "vae") == []
    with pytest.raises(LaunchError, match="already exists"):
        start_run(tiny_config(), tmp_path, "job1", jobs)


def test_stop_then_resume(tmp_path):
    jobs = JobTable()
    start_run(tiny_config(epochs=400), tmp_path, "long", jobs)
    run = RunDir(tmp_path / "long")
    wait_for(lambda: run_state(run, jobs).state == "running" and run.read_status().get("step", 0) > 0,
             what="the first steps")
    stop_run(run, jobs)
    assert wait_for_state(run, ("stopped", "failed"), jobs, timeout=60) == "stopped"
    assert run.last_checkpoint.is_file()
    done = run.read_status()["epoch"]
    with pytest.raises(LaunchError, match="not running"):
        stop_run(run, jobs)

    resume_run(run, epochs=done + 1, jobs=jobs)
    assert wait_for_state(run, ("finished", "failed"), jobs) == "finished"
    assert run.read_status()["epoch"] == done + 1


def test_a_job_that_dies_silently_reads_as_failed(tmp_path):
    run = RunDir(tmp_path / "ghost")
    run.create(tiny_config().to_dict())
    impostor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # A live pid that is not a training process (a recycled pid) does not count as alive.
        run.write_status("running", pid=impostor.pid, step=3, total_steps=10)
        state = run_state(run)
        assert state.state == "failed" and not state.active
        assert "ended without reporting" in state.error
    finally:
        impostor.kill()
        impostor.wait()


def test_launched_job_is_starting_until_it_writes(tmp_path):
    jobs = JobTable()
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    jobs.add(Job("vae", "early", tmp_path.resolve(), process, ["sleep"]))
    run = RunDir(tmp_path / "early")
    assert run_state(run, jobs).state == "starting"
    assert pending_run_names(tmp_path, jobs, "vae") == ["early"]
    process.kill()
    process.wait()
    state = run_state(run, jobs)
    assert state.state == "failed" and "before creating the run" in state.error


def test_delete_refuses_active_runs_and_removes_the_rest(tmp_path):
    jobs = JobTable()
    run = RunDir(tmp_path / "doomed")
    run.create(tiny_config().to_dict())
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    jobs.add(Job("vae", "doomed", tmp_path.resolve(), process, ["sleep"]))
    run.write_status("running", pid=process.pid)
    with pytest.raises(LaunchError, match="stop it"):
        delete_run(run, jobs)
    process.kill()
    process.wait()
    log_path(tmp_path, "doomed").parent.mkdir(parents=True, exist_ok=True)
    log_path(tmp_path, "doomed").write_text("log")
    delete_run(run, jobs)
    assert not run.path.exists() and not log_path(tmp_path, "doomed").exists()


def test_history_reads_incrementally_and_restarts_on_rewrite(tmp_path):
    run = RunDir(tmp_path / "h")
    run.create(tiny_config().to_dict())
    history = MetricsHistory(run)
    assert history.refresh() == 0
    run.append_metrics([{"step": 0, "epoch": 1, "split": "train", "loss": 5.0, "kl": 1.0},
                        {"step": 1, "epoch": 1, "split": "train", "loss": 4.0}])
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 2, "epoch"')  # a line being written
    assert history.refresh() == 2
    columns = {name: values.tolist() for name, values in history.columns("train").items()}
    assert columns["step"] == [0, 1] and columns["loss"] == [5.0, 4.0]
    assert columns["kl"][0] == 1.0 and math.isnan(columns["kl"][1])  # a metric one record lacks
    with open(run.metrics_path, "a") as f:
        f.write(': 1, "split": "train", "loss": 3.0}\n')
    run.append_metrics([{"step": 3, "epoch": 1, "split": "valid", "loss": 3.5}])
    assert history.refresh() == 2
    assert history.columns("train")["loss"].tolist() == [5.0, 4.0, 3.0]
    assert history.best("loss") == (3.5, 1)
    # A resumed run replaces the file with its history up to the checkpoint.
    replacement = tmp_path / "new.jsonl"
    replacement.write_text(json.dumps({"step": 0, "epoch": 1, "split": "train", "loss": 9.0}) + "\n")
    replacement.replace(run.metrics_path)
    history.refresh()
    assert history.columns("train")["loss"].tolist() == [9.0] and history.best("loss") is None


def test_the_app_says_what_to_install_when_ray_is_asked_for_but_missing(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    from genapp.ui.resources import job_backend

    from .conftest import APP

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as where it is not installed
    monkeypatch.setenv("GENAPP_JOB_BACKEND", "ray")
    monkeypatch.setenv("GENAPP_RUNS_DIR", str(tmp_path))
    job_backend.clear()
    try:
        at = AppTest.from_file(APP, default_timeout=90).run()
    finally:
        job_backend.clear()
    assert not at.exception
    assert any('pip install "ray[default]"' in e.value.replace("\\", "") for e in at.error)
