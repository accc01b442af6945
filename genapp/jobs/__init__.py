"""Training jobs, as the explorer starts, stops and lists them; no torch here.

A job is ``python -m train ...`` in a process of its own, reporting through its run directory
(``genapp.runs``). ``backend()`` is the one the server uses (``GENAPP_JOB_BACKEND``, default
``local``: subprocesses of this machine behind a queue, see ``genapp.jobs.local``; ``ray``: a Ray
cluster's Jobs API, see ``genapp.jobs.ray_backend``); every backend
has the methods of ``genapp.jobs.backend.JobBackend``.
"""
from __future__ import annotations

import os

from genapp.jobs.backend import JobBackend
from genapp.jobs.local import LaunchError, LocalBackend, RunState

BACKEND_ENV = "GENAPP_JOB_BACKEND"
BACKENDS = ("local", "ray")


def backend(name: str | None = None, address: str | None = None) -> JobBackend:
    """A new backend of the kind ``name`` (default ``GENAPP_JOB_BACKEND``, else ``local``) names;
    ``ray`` talks to ``address`` (default ``GENAPP_RAY_ADDRESS``). Raises ``LaunchError`` for an
    unknown name, and for ``ray`` without Ray installed (saying what to install)."""
    name = (name or os.environ.get(BACKEND_ENV, "")).strip() or "local"
    if name == "local":
        return LocalBackend()
    if name == "ray":
        from genapp.jobs.ray_backend import RayBackend  # imports Ray: only when asked for

        return RayBackend(address)
    raise LaunchError(f"{BACKEND_ENV}={name!r}: expected one of {', '.join(BACKENDS)}")


__all__ = ["BACKEND_ENV", "JobBackend", "LaunchError", "LocalBackend", "RunState", "backend"]
