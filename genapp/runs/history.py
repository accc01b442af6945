"""A run's metric history, read incrementally for dashboards that poll while the job writes.

Each ``refresh()`` reads only the lines appended since the last one (a 300-epoch run has over
100k lines), and starts over when the file was replaced, as a resumed run replaces it with the
history up to its checkpoint.
"""
from __future__ import annotations

import math
import os
import threading

import numpy as np

from genapp.runs import RunDir

META = ("step", "epoch", "split", "time")


class MetricsHistory:
    """Columns of a run's ``metrics.jsonl``, per split.

    ``columns("train")`` maps "step", "epoch", "time" (Unix seconds, when the record has it) and
    each metric name ("loss", "recon", ...) to a float array [records] (NaN where a record lacks
    that value). Thread-safe: one instance may
    serve every browser tab that watches the run.
    """

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._offset = 0
        self._inode: int | None = None
        self._splits: dict[str, dict[str, list]] = {}

    def refresh(self) -> int:
        """Read what was appended since the last call; returns the number of new records."""
        with self._lock:
            try:
                stat = os.stat(self.run.metrics_path)
            except FileNotFoundError:
                self._reset()
                return 0
            if stat.st_ino != self._inode or stat.st_size < self._offset:
                self._reset()
                self._inode = stat.st_ino
            records, self._offset = self.run.read_metrics(self._offset)
            for record in records:
                self._append(record)
            return len(records)

    def _append(self, record: dict) -> None:
        columns = self._splits.setdefault(str(record["split"]), {"step": [], "epoch": []})
        length = len(columns["step"])
        for name, value in record.items():
            if name == "split" or not isinstance(value, (int, float)):
                continue
            if name not in columns:
                columns[name] = [math.nan] * length
            columns[name].append(value)
        for values in columns.values():
            if len(values) == length:  # a metric this record lacks
                values.append(math.nan)

    def columns(self, split: str) -> dict[str, np.ndarray]:
        """A snapshot of the split's columns as float arrays (copies: safe while others refresh)."""
        with self._lock:
            return {name: np.array(values, dtype=float) for name, values in self._splits.get(split, {}).items()}

    def metric_names(self, split: str = "train") -> list[str]:
        with self._lock:
            return [name for name in self._splits.get(split, {}) if name not in META]

    def best(self, metric: str, lower_is_better: bool = True) -> tuple[float, int] | None:
        """(best validation value of ``metric``, its epoch), or None before the first validation."""
        valid = self.columns("valid")
        if metric not in valid or np.all(np.isnan(valid[metric])):
            return None
        values = valid[metric] if lower_is_better else -valid[metric]
        i = int(np.nanargmin(values))
        epoch = valid["epoch"][i]
        return float(valid[metric][i]), int(epoch) if np.isfinite(epoch) else 0
