"""Training jobs, as the explorer starts, stops and lists them; no torch here.

A job is ``python -m train ...`` in a process of its own, reporting through its run directory
(``genapp.runs``). ``backend()`` is the one the server uses (``GENAPP_JOB_BACKEND``, default
``local``: subprocesses of this machine behind a queue, see ``genapp.jobs.local``); every backend
has the methods of ``genapp.jobs.backend.JobBackend``.
"""
from __future__ import annotations

import os

from genapp.jobs.backend import JobBackend
from genapp.jobs.local import LaunchError, LocalBackend, RunState

BACKEND_ENV = "GENAPP_JOB_BACKEND"
BACKENDS = ("local",)


def backend() -> JobBackend:
    """A new backend of the kind ``GENAPP_JOB_BACKEND`` names (default ``local``)."""
    name = os.environ.get(BACKEND_ENV, "").strip() or "local"
    if name == "local":
        return LocalBackend()
    raise LaunchError(f"{BACKEND_ENV}={name!r}: expected one of {', '.join(BACKENDS)}")


__all__ = ["BACKEND_ENV", "JobBackend", "LaunchError", "LocalBackend", "RunState", "backend"]
