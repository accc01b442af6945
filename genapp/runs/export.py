"""A finished run's history, copied beside a shipped checkpoint, so that a pretrained model opens
with its whole training: ``checkpoints/history/<name>/`` is itself a run directory (config,
final status, metrics, per-epoch pictures, a few snapshots), which the explorer reads exactly as
it reads a run. Standard library only.

Long histories are thinned to stay small: the per-step training records to about
``TRAIN_RECORDS`` evenly spread ones (every validation and quality record is kept), the
pictures to ``history_epochs``: every epoch up to 10, every 5th to 50, every 10th after, and the
epochs asked for (the seed's, the snapshots', the best one) and the last.
"""
from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterable
from pathlib import Path

from genapp.files import write_bytes, write_json
from genapp.runs import RunDir, RunError

TRAIN_RECORDS = 4000


def history_epochs(available: Iterable[int], keep: Iterable[int] = ()) -> list[int]:
    """The epochs of ``available`` whose pictures a shipped history keeps."""
    available = sorted(set(available))
    if not available:
        return []
    wanted = set(keep) | {available[0], available[-1]}
    chosen = {e for e in available if e <= 10 or (e <= 50 and e % 5 == 0) or e % 10 == 0 or e in wanted}
    return sorted(chosen)


def thinned_metrics(run: RunDir, train_records: int = TRAIN_RECORDS) -> str:
    """The run's metrics.jsonl with its training records thinned to about ``train_records``
    (evenly spread, the last always kept); every other record as it is."""
    records, _ = run.read_metrics()
    train = [r for r in records if r["split"] == "train"]
    every = max(1, math.ceil(len(train) / train_records))
    kept_train = {id(r) for r in train[::every]} | ({id(train[-1])} if train else set())
    kept = [r for r in records if r["split"] != "train" or id(r) in kept_train]
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept)


def export_history(run: RunDir, target: Path, keep_epochs: Iterable[int] = ()) -> int:
    """Write ``run``'s history into the folder ``target`` (replacing what was there); returns the
    bytes written. Raises ``RunError`` for a run without a readable config or status."""
    config, status = run.read_config(), run.read_status()
    if status.get("state") == "unknown":
        raise RunError(f"run {run.name}: {status.get('error')}")
    keep = set(keep_epochs)
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    history = RunDir(staging)
    history.create(config)
    write_json(history.status_path, status)
    write_bytes(history.metrics_path, thinned_metrics(run).encode())
    for kind in run.picture_kinds():
        for epoch in history_epochs(run.sample_epochs(kind), keep):
            _copy(run.sample_path(epoch, kind), history.sample_path(epoch, kind))
    for epoch in history_epochs(run.latent_epochs(), keep):
        _copy(run.latents_path(epoch), history.latents_path(epoch))
    for epoch in run.snapshot_epochs():
        _copy(run.snapshot_path(epoch), history.snapshot_path(epoch))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return sum(p.stat().st_size for p in target.rglob("*") if p.is_file())


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
