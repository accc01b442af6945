"""The Ray job backend: training jobs on a Ray cluster through its Jobs API; no torch here.

A job is the same ``python -m train ...`` command line the local backend runs, submitted with
``JobSubmissionClient.submit_job`` to ``GENAPP_RAY_ADDRESS`` (e.g. ``http://127.0.0.1:8265``, the
head's dashboard). The run directory stays the contract: ``--runs-dir`` is an absolute path that
the app and every node must see (a shared file system), and everything the job reports is in it.
What the backend itself keeps is beside the runs, in ``<runs-dir>/.ray/``:

    <run>.json      the submission record {run, family, address, submitted, entrypoint}, written
                    before the job is submitted; the job checks it sees this very file
                    (``SHARED_CHECK_ENV``) and fails at once when it does not. Ray cannot take a
                    job out of its queue (``stop_job`` reaches a supervisor that is not placed
                    yet), so a waiting job that is stopped gets ``cancelled`` here: it reads as
                    stopped at once, and should Ray place it later it exits before training. A job
                    no node can ever place (a GPU on a CPU-only cluster) gets a ``verdict`` too,
                    after ``GENAPP_RAY_PENDING_TIMEOUT`` seconds of PENDING, and reads as failed.

The submission id is the run's name; Resume submits ``<run>.resume-<n>`` (Ray refuses to reuse an
id, and a job deleted to free its id leaves a supervisor of that name dying a while: a job
resubmitted under it at once can fail), each job naming its run in its metadata, the run's
latest job answering for it. Resources: ``GENAPP_JOB_THREADS`` CPUs (default 1;
also the job's ``OMP_NUM_THREADS``), and one GPU when the run's device is CUDA. The queue is Ray's:
a PENDING job reads ``queued`` with Ray's reason. Liveness comes from Ray's job status, never from
pids or file locks, which do not cross machines: a job whose process died reads ``failed`` with
Ray's message. Stop is ``stop_job``: SIGTERM, then SIGKILL after ``RAY_JOB_STOP_WAIT_TIME_S``
(set to ``STOP_GRACE_S`` for every job), time enough to write ``last.pt``.

The code reaches the job either as a ``runtime_env`` working directory (``GENAPP_RAY_CODE=upload``,
the default: this checkout, without ``.venv``, runs, the pretrained weights and other large
files) or from the nodes' own installation (``installed``: genapp importable by the nodes'
``python``, e.g. ``pip install -e`` on shared storage). ``GENAPP_RAY_PYTHON`` names the nodes'
interpreter (default ``python``, the one on the PATH ``ray start`` was run with).
"""
from __future__ import annotations

import json
import os
import shlex
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from genapp.jobs.backend import SHARED_CHECK_ENV
from genapp.jobs.local import (
    REPO_ROOT, LaunchError, RunState, _died_message, activity_text, check_resumable, resume_command, run_state,
    train_command,
)
from genapp.runs import ACTIVE_STATES, RunDir, check_run_name, storage_message
from genapp.files import write_json

ADDRESS_ENV = "GENAPP_RAY_ADDRESS"
DEFAULT_ADDRESS = "http://127.0.0.1:8265"
CODE_ENV = "GENAPP_RAY_CODE"  # upload (the working directory) | installed (on the nodes)
PYTHON_ENV = "GENAPP_RAY_PYTHON"  # the nodes' interpreter
THREADS_ENV = "GENAPP_JOB_THREADS"  # CPUs (and torch threads) per job
PENDING_TIMEOUT_ENV = "GENAPP_RAY_PENDING_TIMEOUT"  # seconds before an unplaceable job is failed
DEFAULT_PENDING_TIMEOUT = 120.0
STOP_GRACE_S = 60  # SIGTERM -> SIGKILL: a step, a checkpoint and a status write, on a slow disk
RECORDS_DIR = ".ray"
INSTALL_HINT = 'pip install "ray[default]"'
# Left out of the uploaded working directory (gitignore syntax, anchored at the checkout: a bare
# "runs/" would leave out genapp/runs/ too): what a job never reads. The classifier stays: a run
# that scores its samples (quality_every) needs it.
EXCLUDES = ["/.venv/", "/venv/", "/.git/", "/runs/", "__pycache__/", "*.pyc", "/.pytest_cache/",
            "/tests/artifacts/", "/checkpoints/history/", "/checkpoints/*.pt", "!/checkpoints/classifier.pt",
            "events.out.tfevents.*", "*.zip", "*.tar.gz", "/benchmarks/results/"]
CACHE_SECONDS = 1.0  # one list_jobs per second serves every run of every page


def import_ray():
    """``ray.job_submission``, or a ``LaunchError`` that says what to install."""
    try:
        from ray import job_submission
    except ImportError:
        raise LaunchError(f"GENAPP_JOB_BACKEND=ray needs Ray on this machine: {INSTALL_HINT} "
                          "(the app's own requirements leave it out)") from None
    return job_submission


def _setting(name: str, default: float, low: float, high: float, meaning: str) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise LaunchError(f"{name}={raw!r}: expected {meaning}")
    return value


def job_threads() -> int:
    return int(_setting(THREADS_ENV, 1, 1, 1024, "a whole number of CPUs per job, 1-1024"))


def pending_timeout() -> float:
    return _setting(PENDING_TIMEOUT_ENV, DEFAULT_PENDING_TIMEOUT, 0, 7 * 86400, "seconds, 0-604800")


def wants_gpu(device: str) -> bool:
    return device.startswith("cuda")


def record_path(runs_dir: str | Path, run: str) -> Path:
    return Path(runs_dir) / RECORDS_DIR / f"{run}.json"


def read_record(runs_dir: str | Path, run: str) -> dict:
    """The run's submission record ({} when there is none, or it is unreadable)."""
    try:
        record = json.loads(record_path(runs_dir, run).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def cancel(runs_dir: str | Path, run: str, verdict: str = "") -> None:
    """Mark a waiting job as cancelled (with why it failed, if it did): see the module's docstring."""
    record = read_record(runs_dir, run)
    if record:
        write_json(record_path(runs_dir, run), {**record, "cancelled": True, **({"verdict": verdict} if verdict else {})})


@dataclass
class Cluster:
    """What the head says about the cluster: per-resource (used, total), and its nodes."""

    usage: dict[str, tuple[float, float]] = field(default_factory=dict)
    nodes: dict[str, dict] = field(default_factory=dict)  # node id -> {"ip": ..., "resources": {...}}
    error: str = ""

    def free(self, resource: str) -> float:
        used, total = self.usage.get(resource, (0.0, 0.0))
        return max(0.0, total - used)

    def total(self, resource: str) -> float:
        return self.usage.get(resource, (0.0, 0.0))[1]

    def fits(self, cpus: float, gpus: float) -> bool:
        """Whether some node could ever run a job asking this much (free or not)."""
        return any(n["resources"].get("CPU", 0) >= cpus and n["resources"].get("GPU", 0) >= gpus
                   for n in self.nodes.values())

    @property
    def text(self) -> str:
        if self.error:
            return self.error
        gpus = f", GPUs {self.free('GPU'):g} free of {self.total('GPU'):g}" if self.total("GPU") else ", no GPUs"
        nodes = len(self.nodes)
        return f"{nodes} node{'s' if nodes != 1 else ''}: CPUs {self.free('CPU'):g} free of {self.total('CPU'):g}{gpus}"


class RayBackend:
    """The ``JobBackend`` of a Ray cluster (``GENAPP_RAY_ADDRESS``)."""

    name = "ray"

    def __init__(self, address: str | None = None) -> None:
        self.job_submission = import_ray()
        self.address = (address or os.environ.get(ADDRESS_ENV, "").strip() or DEFAULT_ADDRESS).rstrip("/")
        self._client = None
        self._lock = threading.Lock()
        self._jobs: dict[str, object] = {}
        self._jobs_at = 0.0
        self._cluster: Cluster | None = None
        self._cluster_at = 0.0

    # ------------------------------------------------------------------------- the head

    def client(self):
        """The Jobs API client, connected on first use (again after the head was unreachable)."""
        with self._lock:
            if self._client is None:
                try:
                    self._client = self.job_submission.JobSubmissionClient(self.address)
                except Exception as e:  # ConnectionError, a 401 of token auth, a wrong URL
                    raise LaunchError(self.unreachable(e)) from None
            return self._client

    def unreachable(self, error: Exception) -> str:
        first = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
        return (f"cannot reach the Ray cluster at {self.address} ({first}): is its head running "
                f"(`ray start --head`), and is {ADDRESS_ENV} its dashboard's address?")

    def _call(self, method: str, *args, **kwargs):
        client = self.client()
        try:
            return getattr(client, method)(*args, **kwargs)
        except Exception as e:
            if "Connection" in type(e).__name__ or "connect" in str(e).lower()[:200]:
                with self._lock:
                    self._client = None
                raise LaunchError(self.unreachable(e)) from None
            raise

    def jobs(self, fresh: bool = False) -> dict[str, object]:
        """Submission id -> ``JobDetails`` of every submitted job the head knows (cached a moment)."""
        with self._lock:
            if not fresh and time.monotonic() - self._jobs_at < CACHE_SECONDS:
                return self._jobs
        listed = self._call("list_jobs")
        jobs = {j.submission_id: j for j in listed if j.submission_id}
        with self._lock:
            self._jobs, self._jobs_at = jobs, time.monotonic()
        return jobs

    def run_jobs(self, run: RunDir, fresh: bool = False) -> list:
        """The jobs submitted for ``run`` (in its runs directory), oldest first."""
        root = str(run.path.parent.resolve())
        jobs = [j for j in self.jobs(fresh).values()
                if (j.metadata or {}).get("runs_dir") == root and (j.metadata or {}).get("run") == run.name]
        return sorted(jobs, key=lambda j: j.start_time or 0)

    def job(self, run: RunDir, fresh: bool = False):
        """The run's latest job, if one was submitted for this very runs directory."""
        jobs = self.run_jobs(run, fresh)
        return jobs[-1] if jobs else None

    def cluster(self) -> Cluster:
        """Resources used and total, and the nodes, from the head's autoscaler report (cached)."""
        with self._lock:
            if self._cluster is not None and time.monotonic() - self._cluster_at < 2 * CACHE_SECONDS:
                return self._cluster
        try:
            client = self.client()
            report = client._do_request("GET", "/api/cluster_status?format=0", timeout=5).json()
            usage = report["data"]["clusterStatus"]["loadMetricsReport"]["usage"]
            summary = client._do_request("GET", "/nodes?view=summary", timeout=5).json()["data"]["summary"]
            nodes = {}
            for node in summary:
                raylet = node.get("raylet") or {}
                if raylet.get("state", "ALIVE") != "ALIVE":
                    continue
                resources = raylet.get("resourcesTotal") or {}
                nodes[raylet.get("nodeId", node.get("ip"))] = {"ip": node.get("ip", "?"), "resources": resources}
            cluster = Cluster({k: (float(v[0]), float(v[1])) for k, v in usage.items()}, nodes)
        except LaunchError as e:
            cluster = Cluster(error=str(e))
        except Exception as e:  # an answer of another shape: say so, keep the app up
            cluster = Cluster(error=self.unreachable(e))
        with self._lock:
            self._cluster, self._cluster_at = cluster, time.monotonic()
        return cluster

    def summary(self, runs_dir: str | Path) -> str:
        """For the sidebar: the head, what the cluster has free, its jobs."""
        cluster = self.cluster()
        if cluster.error:
            return cluster.error
        return (f"Ray cluster at {self.address}, {cluster.text}. "
                + activity_text(*self.activity(runs_dir), limit_text="the cluster's resources are the limit"))

    def devices(self) -> list[tuple[str, str]]:
        """(id, description) of what a job can ask the cluster for: CPUs, and a GPU if any node has one."""
        cluster = self.cluster()
        threads = job_threads()
        cpu = f"CPUs of the Ray cluster, {threads} per job"
        if cluster.error:
            return [("cpu", f"{cpu} (the cluster does not answer)")]
        options = [("cpu", f"{cpu} ({cluster.free('CPU'):g} of {cluster.total('CPU'):g} free)")]
        if cluster.total("GPU"):
            options.append(("cuda", f"one GPU of the Ray cluster ({cluster.free('GPU'):g} of "
                                    f"{cluster.total('GPU'):g} free)"))
        return options

    def where(self, job) -> str:
        """The address of the node the job's process runs on ("" before it is placed)."""
        if job.driver_info is not None:
            return job.driver_info.node_ip_address
        node = self.cluster().nodes.get(job.driver_node_id or "")
        return node["ip"] if node else ""

    # ------------------------------------------------------------------------- submitting

    def runtime_env(self, runs_dir: Path, run_name: str) -> dict:
        env = {"OMP_NUM_THREADS": str(job_threads()), "RAY_JOB_STOP_WAIT_TIME_S": str(STOP_GRACE_S),
               SHARED_CHECK_ENV: str(record_path(runs_dir, run_name))}
        for name in ("GENAPP_MNIST_DIR",):  # the data's folder, when the app names one (shared storage)
            if os.environ.get(name):
                env[name] = os.environ[name]
        runtime_env: dict = {"env_vars": env}
        code = os.environ.get(CODE_ENV, "").strip() or "upload"
        if code == "upload":
            excludes = list(EXCLUDES)
            if runs_dir.is_relative_to(REPO_ROOT):  # a runs folder inside the checkout stays out too
                excludes.append("/" + str(runs_dir.relative_to(REPO_ROOT)) + "/")
            runtime_env.update(working_dir=str(REPO_ROOT), excludes=excludes)
        elif code != "installed":
            raise LaunchError(f"{CODE_ENV}={code!r}: expected upload (send this checkout with each job) or "
                              "installed (genapp is installed on every node)")
        return runtime_env

    def _submit(self, command: list[str], runs_dir: Path, run_name: str, family: str, device: str,
                submission_id: str | None = None) -> None:
        python = os.environ.get(PYTHON_ENV, "").strip() or "python"
        entrypoint = "exec " + shlex.join([python, *command[1:]])
        runtime_env = self.runtime_env(runs_dir, run_name)
        threads = job_threads()
        try:
            write_json(record_path(runs_dir, run_name), {"run": run_name, "family": family, "address": self.address,
                                                         "submitted": time.time(), "entrypoint": entrypoint})
        except OSError as e:
            raise LaunchError(storage_message(e, str(runs_dir))) from None
        try:
            self._call("submit_job", entrypoint=entrypoint, submission_id=submission_id or run_name, runtime_env=runtime_env,
                       entrypoint_num_cpus=threads, entrypoint_num_gpus=1 if wants_gpu(device) else 0,
                       metadata={"runs_dir": str(runs_dir), "run": run_name, "family": family, "device": device,
                                 "cpus": str(threads), "gpus": "1" if wants_gpu(device) else "0"})
        except LaunchError:
            raise
        except Exception as e:
            raise LaunchError(f"the Ray cluster at {self.address} refused the job: {str(e)[:500]}") from None
        finally:
            with self._lock:
                self._jobs_at = 0.0

    def submit(self, config, runs_dir: str | Path, run_name: str) -> None:
        runs_dir = Path(runs_dir).resolve()
        check_run_name(run_name)
        run = RunDir(runs_dir / run_name)
        if run.path.exists() and not run.is_blank():
            raise LaunchError(f"a run named {run_name!r} already exists in {runs_dir}; choose another name")
        if run_name in self.jobs(fresh=True) or self.job(run):
            raise LaunchError(f"the Ray cluster already has a job named {run_name!r}; choose another name")
        self._submit(train_command(config, runs_dir, run_name), runs_dir, run_name, config.family, config.train.device)

    def resume(self, run: RunDir, epochs: int | None = None, restart: bool = False) -> None:
        family = check_resumable(run, self.status(run), epochs, restart)
        runs_dir = run.path.parent.resolve()
        device = str((run.read_config().get("train") or {}).get("device", "cpu"))
        taken = self.jobs(fresh=True)
        n = len(self.run_jobs(run))
        while (submission_id := run.name if n == 0 else f"{run.name}.resume-{n}") in taken:
            n += 1
        self._submit(resume_command(family, runs_dir, run.name, epochs, restart), runs_dir, run.name, family, device,
                     submission_id)

    # ------------------------------------------------------------------------- state

    def status(self, run: RunDir) -> RunState:
        try:
            job = self.job(run)
        except LaunchError as e:  # the head is gone: say so; the run directory still tells its story
            status = run.read_status() if run.status_path.is_file() else {}
            state = status.get("state", "unknown")
            if state in ACTIVE_STATES:
                return RunState("unknown", status, f"{e} The job may still be training: its metrics still arrive.")
            return RunState(state, status, status.get("error", ""))
        if job is None:
            return run_state(run)  # not a job of this cluster: trained here or with the CLI
        return self._state(run, job)

    def _state(self, run: RunDir, job) -> RunState:
        status = run.read_status() if run.status_path.is_file() else {}
        started = (job.start_time or 0) / 1000
        current = bool(status) and status.get("updated", 0) >= started  # written by this job, not an earlier one
        ray_state = str(job.status.value if hasattr(job.status, "value") else job.status)
        where = self.where(job)
        message = (job.message or "").strip()
        record = read_record(run.path.parent, run.name)
        if record.get("cancelled") and not current:  # left Ray's queue (or never could be placed)
            if record.get("verdict"):
                return RunState("failed", status, record["verdict"])
            return RunState("stopped", status, "stopped while it waited on the Ray cluster" if not status else "")
        if ray_state == "PENDING":
            verdict = self._unplaceable(run, job)
            if verdict:
                return RunState("failed", status, verdict)
            return RunState("queued", status if current else {}, reason=f"waiting on the Ray cluster: {message}")
        if ray_state == "RUNNING":
            if not current:
                return RunState("starting", status, where=where)
            return RunState(status["state"], status, status.get("error", ""), where=where)
        # Ended: the run's own final status when this job wrote one, else Ray's account.
        if current and status["state"] not in ACTIVE_STATES:
            return RunState(status["state"], status, status.get("error", ""), where=where)
        if ray_state == "STOPPED":
            if not run.exists():
                return RunState("stopped", status, "stopped before it started training", where=where)
            return RunState("stopped", status, "stopped before the job could write its final status; resume "
                            "continues from its last checkpoint", where=where)
        if ray_state == "SUCCEEDED":
            return RunState("failed", status, "the job ended without reporting how", where=where)
        text = f"the job failed on the Ray cluster{f' (node {where})' if where else ''}: {message or 'no message'}"
        if status.get("state") in ACTIVE_STATES:
            text = _died_message(run, status.get("pid")).split(";")[0] + "; resume the run to continue from its " \
                   "last checkpoint. Ray says: " + (message or "no message")
        return RunState("failed", status, text, where=where)

    def _unplaceable(self, run: RunDir, job) -> str:
        """For a job PENDING past the timeout that no node can place: stop it, keep and return why."""
        submitted = (job.start_time or 0) / 1000
        if time.time() - submitted < pending_timeout():
            return ""
        cluster = self.cluster()
        if cluster.error:
            return ""
        asked = job.metadata or {}  # (a listed job does not carry its resources: the metadata does)
        cpus, gpus = float(asked.get("cpus", 1)), float(asked.get("gpus", 0))
        if cluster.fits(cpus, gpus):
            return ""  # the cluster is full, not unable: it stays queued
        asks = f"{cpus:g} CPU{'s' if cpus != 1 else ''}" + (f" and {gpus:g} GPU" if gpus else "")
        lacks = "a GPU" if gpus and not cluster.total("GPU") else f"{asks} on one node"
        verdict = (f"no node of the Ray cluster at {self.address} has {lacks}: the job asked for {asks} and waited "
                   f"{pending_timeout():g} s ({cluster.text}). Choose another device (the CPU), or add such a node "
                   "and resume the run.")
        cancel(run.path.parent, run.name, verdict)
        try:
            self._call("stop_job", job.submission_id)  # takes effect should Ray ever place it
        except Exception:
            pass
        return verdict

    def stop(self, run: RunDir) -> None:
        state = self.status(run)
        if not state.active:
            raise LaunchError(f"run {run.name} is {state.state}, not running")
        job = self.job(run)
        if job is None:
            raise LaunchError(f"run {run.name} is not a job of the Ray cluster at {self.address}: stop it where it "
                              "was started")
        if str(getattr(job.status, "value", job.status)) == "PENDING":
            cancel(run.path.parent, run.name)  # out of our queue now; out of Ray's once it places it
        self._call("stop_job", job.submission_id)
        with self._lock:
            self._jobs_at = 0.0

    def logs(self, run: RunDir, lines: int = 20) -> str:
        try:
            text = "".join(self._call("get_job_logs", j.submission_id) for j in self.run_jobs(run))
        except Exception:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def list(self, runs_dir: str | Path) -> list[str]:
        """Runs with a job on the cluster for ``runs_dir``, newest first."""
        root = str(Path(runs_dir).resolve())
        try:
            jobs = [j for j in self.jobs().values() if (j.metadata or {}).get("runs_dir") == root]
        except LaunchError:
            return []
        names = [j.metadata["run"] for j in sorted(jobs, key=lambda j: j.start_time or 0, reverse=True)]
        return list(dict.fromkeys(names))

    def pending(self, runs_dir: str | Path, family: str) -> list[str]:
        """Jobs of ``family`` with no run directory: waiting, starting, or failed before starting
        (a node that cannot see the runs directory; no node to place them), so their reason shows."""
        root = str(Path(runs_dir).resolve())
        names = []
        for name in self.list(runs_dir):
            job = self.job(RunDir(Path(root) / name))
            if job is None or (job.metadata or {}).get("family") != family or RunDir(Path(root) / name).exists():
                continue
            record = read_record(root, name)
            if record.get("cancelled") and not record.get("verdict"):
                continue  # stopped while waiting: no trace, as on the local backend
            names.append(name)
        return names

    def activity(self, runs_dir: str | Path) -> tuple[int, int]:
        """(jobs running, jobs waiting) on the whole cluster (cancelled ones not counted)."""
        try:
            jobs = list(self.jobs().values())
        except LaunchError:
            return 0, 0
        states = [str(getattr(j.status, "value", j.status)) for j in jobs
                  if not read_record((j.metadata or {}).get("runs_dir", "/nonexistent"),
                                     (j.metadata or {}).get("run", "")).get("cancelled")]
        return states.count("RUNNING"), states.count("PENDING")

    def delete(self, run: RunDir) -> None:
        from genapp.jobs.local import delete_run

        if self.status(run).active:
            raise LaunchError(f"run {run.name} is active: stop it before deleting it")
        delete_run(run)
        for job in self.run_jobs(run, fresh=True):
            try:
                self._call("delete_job", job.submission_id)
            except Exception:
                pass  # the run is gone; the head forgets its jobs when it restarts
        record_path(run.path.parent, run.name).unlink(missing_ok=True)

    def reap(self) -> None:
        pass  # nothing of this machine to collect: the head keeps the jobs
