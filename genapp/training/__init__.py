"""The engine (loop, callbacks), the run directory, and (for the UI) the job launcher."""
from genapp.training.engine import Callback, RunResult, Trainer, available_devices, resolve_device, resume, train
from genapp.training.runs import RunDir, RunError, list_runs

__all__ = ["Callback", "RunDir", "RunError", "RunResult", "Trainer", "available_devices", "list_runs",
           "resolve_device", "resume", "train"]
