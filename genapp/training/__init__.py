"""Training, inside a job: the engine's loop (``engine``), the step as a CUDA graph (``graphs``),
the job around it (``job``: lock, SIGTERM, run directory) and a console progress bar."""
from genapp.training.engine import Callback, RunResult, Trainer
from genapp.training.job import resume, train

__all__ = ["Callback", "RunResult", "Trainer", "resume", "train"]
