"""The engine (loop, callbacks), the run directory, and (for the UI) the job launcher."""
from __future__ import annotations

_EXPORTS = {
    "Callback": "engine", "RunResult": "engine", "Trainer": "engine", "available_devices": "engine",
    "resolve_device": "engine", "resume": "engine", "train": "engine",
    "RunDir": "runs", "RunError": "runs", "list_runs": "runs",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    # Imported on first use: ``genapp.training.slots`` (the queue waiter) must not load torch.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"genapp.training.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'genapp.training' has no attribute {name!r}")
