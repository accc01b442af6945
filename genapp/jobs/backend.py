"""What the explorer needs from whatever runs its training jobs: one interface, a backend each.

A backend starts ``python -m train ...`` for a run (the same command line on every backend) and
answers for the run's liveness; the run directory stays the contract between the job and
everyone else, wherever the job runs. ``local`` (``genapp.jobs.local``) runs jobs as processes of
this machine behind a queue of its own; further backends (a cluster's job API) implement the same
methods. Standard library only.
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Protocol

from genapp.runs import RunDir

# Set for a job submitted to a cluster: a file its submitter wrote in the runs directory. The job
# checks it sees that file before anything else, so a node that does not share the runs directory
# fails at once, saying so, instead of training into a folder of its own nobody will ever read.
SHARED_CHECK_ENV = "GENAPP_SUBMISSION_RECORD"


def shared_runs_dir_error(runs_dir: str | Path) -> str:
    """"" when this process sees its submitter's record (or has none to check); else the message.
    A record that says ``cancelled`` (stopped while it waited in a cluster's queue) ends the job
    too, with "cancelled"."""
    record = os.environ.get(SHARED_CHECK_ENV, "")
    if not record:
        return ""
    if Path(record).is_file():
        try:
            return "cancelled" if json.loads(Path(record).read_text(encoding="utf-8")).get("cancelled") else ""
        except (OSError, ValueError, AttributeError):
            return ""
    return (f"the runs directory {runs_dir} is not visible on this node ({socket.gethostname()}): "
            f"{record} is missing here. Every node of the cluster must see the runs directory at the same "
            "absolute path (a shared file system such as NFS), as the app does.")


class JobBackend(Protocol):
    """Submit, status, stop, logs and list, for runs in a runs directory."""

    name: str

    def submit(self, config, runs_dir: str | Path, run_name: str) -> None:
        """Start training ``config`` (a ``RunConfig``) as the new run ``runs_dir/run_name``;
        returns at once. Raises ``LaunchError`` with a user's message when it cannot."""

    def resume(self, run: RunDir, epochs: int | None = None, restart: bool = False) -> None:
        """Continue a run that is not active from its last checkpoint (to ``epochs`` in all), or
        with ``restart`` train it again from step 0 (a run whose last.pt is gone)."""

    def status(self, run: RunDir):
        """The run's ``RunState``: its status.json corrected by what the backend knows."""

    def stop(self, run: RunDir) -> None:
        """Ask the run's job to stop: it checkpoints and ends as ``stopped``."""

    def logs(self, run: RunDir, lines: int = 20) -> str:
        """The last ``lines`` lines of the job's console output ("" when there is none)."""

    def list(self, runs_dir: str | Path) -> list[str]:
        """Runs in ``runs_dir`` that have a job of this backend (a directory or not yet)."""

    def pending(self, runs_dir: str | Path, family: str) -> list[str]:
        """Runs of ``family`` submitted to ``runs_dir`` that have no run directory yet."""

    def activity(self, runs_dir: str | Path) -> tuple[int, int]:
        """(jobs training, jobs waiting) for the sidebar."""

    def delete(self, run: RunDir) -> None:
        """Remove a run that is not active, with what the backend keeps of it."""

    def reap(self) -> None:
        """Collect what ended (a cheap call made before each look at the jobs)."""

    def summary(self, runs_dir: str | Path) -> str:
        """Where jobs run and how busy it is, in one line for the sidebar."""
