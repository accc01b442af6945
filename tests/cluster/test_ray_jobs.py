"""Training jobs on a real Ray head (``ray_head``: 2 CPUs, no GPU): submitted from the app and from
the command line, stopped, queued by Ray, unplaceable, killed and resumed. Tiny runs throughout."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

pytest.importorskip("ray.job_submission", reason='the Ray tests need ray: pip install "ray[default]"')

from streamlit.testing.v1 import AppTest  # noqa: E402

from genapp.jobs import backend  # noqa: E402
from genapp.jobs.ray_backend import RayBackend, read_record, record_path  # noqa: E402
from genapp.runs import RunDir  # noqa: E402
from tests.conftest import ROOT, tiny_vae_run  # noqa: E402
from tests.ui.conftest import APP, run, wait_for  # noqa: E402

TINY = ["--latent-dim=2", "--hidden=64,32", "--train-size=512", "--valid-size=256", "--batch-size=64",
        "--sample-count=16", "--log-every=4", "--device=cpu"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=180, env={**os.environ})


def wait_state(jobs: RayBackend, run: RunDir, states: tuple[str, ...], timeout: float = 180):
    """The run's state once it is one of ``states`` (as the app reads it, Ray's status included)."""
    return wait_for(lambda: (s := jobs.status(run)).state in states and s, timeout=timeout, interval=0.5,
                    what=f"run {run.name} to be {' or '.join(states)} (it is {jobs.status(run).state})")


def texts(at: AppTest) -> str:
    parts = [m.value for m in [*at.markdown, *at.caption, *at.info, *at.error, *at.warning]]
    return "\n".join(parts + [p.proto.text for p in at.get("progress")]).replace("\\", "").replace("\u2060", "")  # unescaped (plain)


def sidebar_text(at: AppTest) -> str:
    return "\n".join(c.value for c in at.sidebar.caption).replace("\\", "").replace("\u2060", "")


def running_with_steps(jobs: RayBackend, run: RunDir) -> bool:
    return jobs.status(run).state == "running" and run.read_status().get("step", 0) > 0


def test_a_run_started_in_the_app_trains_on_the_cluster_and_shows_in_the_runs_tab(ray_env, ray_head):
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["vae-view"] = "Train"
    run(at)
    sidebar = sidebar_text(at)
    assert "Job backend: **ray**" in sidebar and f"Ray cluster at {ray_head.address}" in sidebar
    assert "CPUs 2 free of 2, no GPUs" in sidebar
    devices = at.selectbox(key="device").options  # what the cluster has, not this machine: no GPU to pick
    assert len(devices) == 1 and devices[0].startswith("cpu: CPUs of the Ray cluster, 1 per job (2 of 2 free)")
    at.text_input(key="vae-model-hidden").set_value("64,32")
    at.number_input(key="vae-train-epochs").set_value(1)
    at.number_input(key="vae-train-batch_size").set_value(64)
    at.number_input(key="vae-train-train_size").set_value(512)
    at.number_input(key="vae-train-valid_size").set_value(256)
    at.number_input(key="vae-train-sample_count").set_value(16)
    at.text_input(key="vae-run-name").set_value("app-run")
    run(at)
    at.button(key="vae-start").click()
    run(at)
    assert not [e.value for e in at.error]
    jobs = RayBackend(ray_head.address)
    ray_job = jobs.jobs(fresh=True)["app-run"]  # submission id = run id
    assert ray_job.metadata["runs_dir"] == str(ray_env) and ray_job.metadata["cpus"] == "1"
    assert "-m train vae" in ray_job.entrypoint and f"--runs-dir={ray_env}" in ray_job.entrypoint
    wait_for(lambda: "app-run** · :gray[finished]" in texts(run(at)), timeout=180, interval=1,
             what="the app to show the run finished")
    assert "node " in texts(at)  # where it ran
    finished = RunDir(ray_env / "app-run")
    records, _ = finished.read_metrics()
    assert {r["split"] for r in records} == {"train", "valid"} and finished.sample_epochs() == [0, 1]
    assert finished.best_checkpoint.is_file()

    at.session_state["main-tab"] = "Runs"
    run(at)
    table = at.dataframe[0].value
    row = table[table["run"] == "app-run"].iloc[0]
    assert row["status"] == "finished" and row["runs on"] not in ("", "this machine")


def test_the_command_line_submits_lists_and_stops_cluster_jobs(ray_env, ray_head):
    out = cli("submit", "--backend", "ray", "--address", ray_head.address, "vae", *TINY, "--epochs=1",
              f"--runs-dir={ray_env}", "--run-name=cli-run")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "cli-run"  # the run id, and nothing else on stdout
    jobs = RayBackend(ray_head.address)
    finished = RunDir(ray_env / "cli-run")
    assert wait_state(jobs, finished, ("finished", "failed")).state == "finished"
    assert finished.sample_epochs() == [0, 1] and finished.read_metrics()[0]

    # Defaults from the environment (GENAPP_JOB_BACKEND=ray, GENAPP_RAY_ADDRESS); a run name again is refused.
    out = cli("submit", "vae", *TINY, "--epochs=400", f"--runs-dir={ray_env}", "--run-name=cli-run")
    assert out.returncode == 1 and "already exists" in out.stderr
    out = cli("submit", "vae", *TINY, "--epochs=400", f"--runs-dir={ray_env}", "--run-name=cli-long")
    assert out.returncode == 0, out.stderr
    long = RunDir(ray_env / "cli-long")
    wait_for(lambda: running_with_steps(jobs, long), timeout=180, what="the first steps")
    listing = cli("jobs", f"--runs-dir={ray_env}")
    assert listing.returncode == 0, listing.stderr
    lines = {line.split()[0]: line.split()[1] for line in listing.stdout.splitlines()[1:]}
    assert lines == {"cli-long": "running", "cli-run": "finished"}

    out = cli("stop", "cli-long", f"--runs-dir={ray_env}")
    assert out.returncode == 0, out.stderr
    stopped = wait_state(jobs, long, ("stopped", "failed"), timeout=90)
    assert stopped.state == "stopped" and not stopped.error  # the job wrote its own final status
    assert long.last_checkpoint.is_file() and long.read_status()["state"] == "stopped"
    wait_for(lambda: str(jobs.jobs(fresh=True)["cli-long"].status.value) == "STOPPED", timeout=30,
             what="Ray to see the job stopped")  # the process ends a moment after its final status


def test_three_jobs_on_two_cpus_leave_one_queued_and_the_app_says_why(ray_env, ray_head):
    jobs = RayBackend(ray_head.address)
    for name in ("q1", "q2", "q3"):
        jobs.submit(tiny_vae_run(epochs=400), ray_env, name)
    waiting = wait_for(lambda: [n for n in ("q1", "q2", "q3") if jobs.status(RunDir(ray_env / n)).state == "queued"]
                       if sum(jobs.status(RunDir(ray_env / n)).state in ("running", "starting")
                              for n in ("q1", "q2", "q3")) == 2 else None,
                       timeout=120, what="two jobs training and one waiting")
    assert len(waiting) == 1
    queued = jobs.status(RunDir(ray_env / waiting[0]))
    assert queued.label == "queued (waiting on the Ray cluster)" and queued.active
    assert "waiting for resources" in queued.reason.lower()  # Ray's own words
    assert jobs.activity(ray_env) == (2, 1)
    assert jobs.pending(ray_env, "vae")[-1:] == [waiting[0]] or waiting[0] in jobs.pending(ray_env, "vae")

    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["vae-view"] = "Train"
    at.session_state["vae-watched"] = waiting[0]
    run(at)
    shown = texts(at)
    assert f"{waiting[0]}** · :blue[queued]" in shown and "waiting on the Ray cluster" in shown
    assert "Training now: 2 jobs, 1 waiting" in sidebar_text(at)

    jobs.stop(RunDir(ray_env / waiting[0]))  # leaves the queue at once, without a trace
    assert jobs.status(RunDir(ray_env / waiting[0])).state == "stopped"
    assert waiting[0] not in jobs.pending(ray_env, "vae") and jobs.activity(ray_env) == (2, 0)
    for name in ("q1", "q2", "q3"):
        if name != waiting[0]:
            jobs.stop(RunDir(ray_env / name))
    # Ray places the cancelled job once the CPUs free up: it exits before training.
    wait_for(lambda: str(jobs.jobs(fresh=True)[waiting[0]].status.value) in ("SUCCEEDED", "STOPPED"), timeout=90,
             what="Ray to let the cancelled job go")
    assert not (ray_env / waiting[0]).exists()


def test_a_gpu_job_on_a_cpu_only_cluster_fails_with_a_message(ray_env, ray_head, monkeypatch):
    monkeypatch.setenv("GENAPP_RAY_PENDING_TIMEOUT", "3")
    jobs = RayBackend(ray_head.address)
    jobs.submit(tiny_vae_run(device="cuda"), ray_env, "gpu-run")
    assert jobs.jobs(fresh=True)["gpu-run"].metadata["gpus"] == "1"
    state = wait_state(jobs, RunDir(ray_env / "gpu-run"), ("failed",), timeout=60)
    assert "no node of the Ray cluster" in state.error and "has a GPU" in state.error
    assert "Choose another device" in state.error
    assert read_record(ray_env, "gpu-run")["cancelled"]  # should a GPU node join, it exits before training
    assert jobs.activity(ray_env) == (0, 0)  # not counted as waiting
    assert jobs.pending(ray_env, "vae") == ["gpu-run"]  # still listed, so its message is seen
    assert not jobs.status(RunDir(ray_env / "gpu-run")).active


def test_a_killed_training_process_reads_failed_and_resume_finishes_it(ray_env, ray_head):
    jobs = RayBackend(ray_head.address)
    run_dir = RunDir(ray_env / "killed")
    # Long enough that the kill lands mid-run however slowly this test polls; resumed, a few seconds.
    jobs.submit(tiny_vae_run(epochs=30, train_size=2048), ray_env, "killed")
    wait_for(lambda: run_dir.last_checkpoint.is_file() and jobs.status(run_dir).state == "running",
             timeout=180, what="the first checkpoint")
    os.kill(run_dir.read_status()["pid"], signal.SIGKILL)
    state = wait_state(jobs, run_dir, ("failed", "finished"), timeout=60)
    assert state.state == "failed" and "exit code -9" in state.error
    assert run_dir.read_status()["state"] == "running"  # the dead process never said otherwise: Ray did

    jobs.resume(run_dir)  # the same submission id, again
    resumed = wait_state(jobs, run_dir, ("finished", "failed"))
    assert resumed.state == "finished", resumed.error
    assert run_dir.read_status()["epoch"] == 30 and run_dir.sample_epochs() == list(range(31))


def test_a_node_that_cannot_see_the_runs_directory_fails_at_once(ray_env, ray_head, monkeypatch):
    jobs = RayBackend(ray_head.address)
    import genapp.jobs.ray_backend as ray_backend

    monkeypatch.setattr(ray_backend, "write_json", lambda path, data: None)  # the record never reaches the node
    jobs.submit(tiny_vae_run(), ray_env, "unseen")
    state = wait_state(jobs, RunDir(ray_env / "unseen"), ("failed",), timeout=60)
    assert "is not visible on this node" in state.error and str(record_path(ray_env, "unseen")) in state.error
    assert not RunDir(ray_env / "unseen").exists()  # nothing trained into a folder of its own


def test_an_unreachable_head_is_a_message_not_a_crash(tmp_path):
    jobs = backend("ray", "http://127.0.0.1:9")  # nothing listens there
    assert "cannot reach the Ray cluster at http://127.0.0.1:9" in jobs.summary(tmp_path)
    with pytest.raises(RuntimeError, match="cannot reach the Ray cluster"):
        jobs.submit(tiny_vae_run(), tmp_path, "nowhere")
    assert jobs.list(tmp_path) == [] and jobs.activity(tmp_path) == (0, 0)


def test_the_app_with_its_head_gone_says_so_and_keeps_showing_runs(monkeypatch, tmp_path):
    from genapp.training import train
    from genapp.ui.resources import job_backend

    runs = tmp_path / "runs"
    train(tiny_vae_run(), runs, "done")  # a finished run, readable whatever the cluster does
    monkeypatch.setenv("GENAPP_JOB_BACKEND", "ray")
    monkeypatch.setenv("GENAPP_RAY_ADDRESS", "http://127.0.0.1:9")
    monkeypatch.setenv("GENAPP_RUNS_DIR", str(runs))
    job_backend.clear()
    try:
        at = AppTest.from_file(APP, default_timeout=90)
        at.session_state["vae-view"] = "Train"
        run(at)
        assert "cannot reach the Ray cluster at http://127.0.0.1:9" in sidebar_text(at)
        at.button(key="vae-start").click()
        run(at)
        assert any("Not started: cannot reach the Ray cluster" in e.value.replace("\\", "").replace("\u2060", "")
                   for e in at.error)
        at.session_state["main-tab"] = "Runs"
        run(at)
        table = at.dataframe[0].value
        assert list(table["run"]) == ["done"] and list(table["status"]) == ["finished"]
    finally:
        job_backend.clear()
