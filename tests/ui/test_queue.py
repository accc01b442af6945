"""Many users on one machine: the job queue (GENAPP_MAX_JOBS), a server killed while jobs train and
wait (they go on, and a new server finds them, queue places included), and sessions that do not
see each other's choices."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from genapp.jobs import queue
from genapp.runs import locks
from genapp.jobs.local import (
    JobTable, LaunchError, activity, pending_run_names, run_state, start_run, stop_run,
)
from genapp.runs import RunDir
from tests.test_data import write_mnist_dir

from .conftest import APP, REPO, run, tiny_config, wait_for

# Started in its own session and then killed with its whole process group, as a server is when
# its terminal closes: the jobs it launched live in sessions of their own.
SERVER = textwrap.dedent("""
    import json, sys, time
    from genapp.jobs.local import JobTable, start_run
    from tests.ui.conftest import tiny_config

    runs_dir, data_dir = sys.argv[1], sys.argv[2]
    jobs = JobTable()
    pids = {}
    for name, epochs in (("long", 400), ("next", 1), ("last", 1)):
        config = tiny_config(epochs=epochs, data_dir=data_dir, quality_every=0)
        pids[name] = start_run(config, runs_dir, name, jobs, max_jobs=1).process.pid
        time.sleep(0.3)  # a queue order that does not hang on clock resolution
    print(json.dumps(pids), flush=True)
    time.sleep(3600)
""")


@pytest.fixture
def small_mnist(tmp_path):
    directory = tmp_path / "mnist"
    write_mnist_dir(directory)
    return directory


def texts(at: AppTest) -> str:
    parts = [m.value for m in [*at.markdown, *at.caption, *at.info, *at.error]]
    return "\n".join(parts + [p.proto.text for p in at.get("progress")])


def test_the_queue_holds_extra_jobs_in_order_and_survives_a_server_restart(tmp_path, small_mnist, monkeypatch):
    runs_dir = tmp_path / "runs"
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(runs_dir), str(small_mnist)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    pids = json.loads(server.stdout.readline())
    os.killpg(server.pid, signal.SIGKILL)  # the server dies; its jobs must not
    server.wait()
    try:
        jobs = JobTable()  # a new server: it knows nothing but the runs directory
        long, nxt, last = (RunDir(runs_dir / name) for name in ("long", "next", "last"))
        wait_for(lambda: run_state(long, jobs).state == "running", timeout=120, what="the first job to train")
        first, second = run_state(nxt, jobs), run_state(last, jobs)
        assert (first.state, first.label, second.label) == ("queued", "queued (1 of 2)", "queued (2 of 2)")
        assert pending_run_names(runs_dir, jobs, "vae") == ["next", "last"]  # no directories yet
        assert activity(runs_dir) == (1, 2)
        nice = Path(f"/proc/{pids['long']}/stat")
        if nice.exists():  # training yields the CPU to the server
            assert int(nice.read_text().rsplit(")", 1)[1].split()[16]) == queue.DEFAULT_NICE
        with pytest.raises(LaunchError, match="already waiting"):
            start_run(tiny_config(), runs_dir, "last", jobs)

        # The explorer of the new server shows the queue and each waiting job's place in it.
        monkeypatch.setenv("GENAPP_RUNS_DIR", str(runs_dir))
        monkeypatch.setenv("GENAPP_MAX_JOBS", "1")
        at = AppTest.from_file(APP, default_timeout=90)
        at.session_state["vae-view"] = "Train"
        run(at)
        assert at.selectbox(key="vae-watched").options == ["next", "last", "long"]
        shown = texts(at)
        assert "**next** · :blue[queued]" in shown
        assert "waiting for a free training slot: 1st of 2 in the queue · 1 job train at a time" in shown
        assert "Training now: 1 job, 2 waiting (1 at a time, GENAPP_MAX_JOBS)." in shown

        stop_run(last, jobs)  # leaves the queue, and leaves no trace
        assert pending_run_names(runs_dir, jobs, "vae") == ["next"] and not last.path.exists()
        wait_for(lambda: not locks.process_alive(pids["last"]), timeout=10, what="the waiter to leave")

        stop_run(long, jobs)  # frees the slot: the next job trains, never two at once
        most = 0
        while (state := run_state(nxt, jobs)).state != "finished":  # read once: it may finish any moment
            most = max(most, activity(runs_dir)[0])
            assert state.state in ("queued", "starting", "running"), state
            time.sleep(0.1)
        assert most <= 1 and run_state(long, jobs).state == "stopped"
        assert activity(runs_dir) == (0, 0) and queue.queue(runs_dir) == []
    finally:
        for pid in pids.values():
            if locks.process_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_job_limit_holds_across_runs_folders(tmp_path, small_mnist):
    """Pointing the explorer at another folder is no way past GENAPP_MAX_JOBS: the queue is the
    server's."""
    jobs = JobTable()
    first, second = tmp_path / "alice", tmp_path / "bob"
    long = start_run(tiny_config(epochs=400, data_dir=str(small_mnist), quality_every=0), first, "long", jobs, max_jobs=1)
    try:
        wait_for(lambda: run_state(RunDir(first / "long"), jobs).state == "running", timeout=120, what="the first job")
        start_run(tiny_config(epochs=1, data_dir=str(small_mnist), quality_every=0), second, "other", jobs, max_jobs=1)
        other = RunDir(second / "other")
        wait_for(lambda: run_state(other, jobs).state == "queued", timeout=30, what="the second job to queue")
        state = run_state(other, jobs)
        assert state.label == "queued (1 of 1)" and activity(second) == (0, 1)
        time.sleep(2)
        assert run_state(other, jobs).state == "queued"  # still waiting while the other folder's job trains
        stop_run(RunDir(first / "long"), jobs)
        wait_for(lambda: run_state(other, jobs).state == "finished", timeout=120, what="the second job to train")
    finally:
        if long.alive:
            long.process.kill()


def test_settings_are_checked(monkeypatch):
    monkeypatch.setenv(queue.MAX_JOBS_ENV, "3")
    assert queue.max_jobs() == 3
    monkeypatch.setenv(queue.MAX_JOBS_ENV, "0")
    assert queue.max_jobs() == 0  # no limit
    for bad in ("two", "-1"):
        monkeypatch.setenv(queue.MAX_JOBS_ENV, bad)
        with pytest.raises(ValueError, match="GENAPP_MAX_JOBS"):
            queue.max_jobs()
    assert queue.job_nice() == 10
    monkeypatch.setenv(queue.NICE_ENV, "20")
    with pytest.raises(ValueError, match="GENAPP_JOB_NICE"):
        queue.job_nice()
    monkeypatch.setenv(queue.MAX_JOBS_ENV, "x")
    with pytest.raises(LaunchError, match="GENAPP_MAX_JOBS"):
        start_run(tiny_config(), "/nonexistent", "never")


def waiter(runs_dir, limit: int, nice: int = 0) -> subprocess.Popen:
    """The queue waiter in front of a command that prints its niceness."""
    command = [sys.executable, "-c", "import os; print('nice', os.nice(0), flush=True)"]
    return subprocess.Popen([sys.executable, "-m", "genapp.jobs.waiter", "--runs-dir", str(runs_dir), "--run",
                             "w", "--max-jobs", str(limit), "--nice", str(nice), "--", *command],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)


def test_the_waiter_holds_a_job_until_a_slot_frees_and_lowers_its_priority(tmp_path):
    started = waiter(tmp_path, 0, nice=3)  # no limit: straight on
    assert started.communicate(timeout=30)[0].splitlines()[-1] == "nice 3"
    held = queue.take_slot(1)  # the only slot is busy
    try:
        queued = waiter(tmp_path, 1)
        wait_for(lambda: queue.queue(tmp_path), timeout=30, what="the ticket")
        assert [t.run for t in queue.queue(tmp_path)] == ["w"] and queued.poll() is None
    finally:
        os.close(held)
    assert queued.communicate(timeout=30)[0].splitlines()[-1] == "nice 0"
    assert queue.tickets(tmp_path) == [] and queue.busy_slots(1) == 0


def test_one_session_never_changes_what_another_sees(app_env):
    first = AppTest.from_file(APP, default_timeout=90)
    first.session_state["vae-view"] = "Train"
    run(first)
    second = AppTest.from_file(APP, default_timeout=90)
    second.session_state["vae-view"] = "Train"
    run(second)
    watched = second.selectbox(key="vae-watched").value
    first.selectbox(key="vae-watched").set_value(next(n for n in ("tiny-z2", "tiny-z3") if n != watched))
    first.selectbox(key="vae-preset").set_value("Seed reproduction")
    first.text_input(key="vae-run-name").set_value("mine")
    first.text_input(key="runs-dir").set_value(str(app_env / "elsewhere"))
    run(first)
    run(second)
    assert second.selectbox(key="vae-watched").value == watched
    assert second.selectbox(key="vae-preset").value == "Quick"
    assert second.text_input(key="vae-run-name").value == ""
    assert second.text_input(key="runs-dir").value == str(app_env)
