"""What genapp reads from files, checked in one place: each field of a checkpoint's description,
a run's status.json and a metrics line has its type and range here, and a value outside them is a
clear message (``Invalid``) or, where a reader can do without it, dropped. Standard library only.

Every file is data that anyone may have written: a shared server's users upload checkpoints and
point the explorer at folders. Nothing past these checks needs to guard against a string where a
number belongs, a negative step, a NaN metric or a list where a dict was promised.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

MAX_TEXT = 20_000  # characters of one text field (an error message with a traceback fits)
MAX_METRICS = 200  # named values in one record or one checkpoint's metrics
MAX_NAME = 100  # characters of a metric's name
SPLITS = ("train", "valid", "quality")


class Invalid(ValueError):
    """A field of a file is missing, of the wrong type or out of range; the message names it."""


def integer(value: Any, name: str, low: int | None = 0, high: int | None = 10**15) -> int:
    """An int (never a bool) in [low, high]."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise Invalid(f"{name} must be a whole number, got {_shown(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise Invalid(f"{name} must be in {low}..{high}, got {value}")
    return value


def number(value: Any, name: str, low: float | None = None, high: float | None = None) -> float:
    """A finite int or float (never a bool) in [low, high], as a float."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise Invalid(f"{name} must be a number, got {_shown(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise Invalid(f"{name} must be finite, got {value}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise Invalid(f"{name} must be in {low}..{high}, got {value}")
    return value


def text(value: Any, name: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{name} must be text, got {_shown(value)}")
    if len(value) > limit:
        raise Invalid(f"{name} is {len(value):,} characters long; at most {limit:,}")
    return value


def boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{name} must be true or false, got {_shown(value)}")
    return value


def mapping(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise Invalid(f"{name} must be an object (a dict), got {_shown(value)}")
    return value


def metrics(value: Any, name: str) -> dict[str, float]:
    """A dict of metric name -> finite number (as a checkpoint's or a status's metrics)."""
    mapping(value, name)
    if len(value) > MAX_METRICS:
        raise Invalid(f"{name} holds {len(value)} values; at most {MAX_METRICS}")
    return {text(k, f"a name in {name}", MAX_NAME): number(v, f"{name}[{k!r}]") for k, v in value.items()}


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


# ----------------------------------------------------------------------------- status.json


def _optional(check: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    return lambda value, name: None if value is None else check(value, name)


# A Unix time the C library can still turn into a date (the year 9999): later ones overflow.
LAST_TIMESTAMP = 253_402_300_799.0

# The fields the explorer reads, with their checks; any other field is kept as it is.
STATUS_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "pid": lambda v, n: integer(v, n, 1, 2**31),
    "pid_start": lambda v, n: integer(v, n, 0),
    "step": integer,
    "total_steps": lambda v, n: integer(v, n, 1),
    "epoch": integer,
    "epochs": lambda v, n: integer(v, n, 1),
    "images_per_s": lambda v, n: number(v, n, 0.0),
    "eta_s": _optional(lambda v, n: number(v, n, 0.0)),
    "started": lambda v, n: number(v, n, 0.0, LAST_TIMESTAMP),
    "updated": lambda v, n: number(v, n, 0.0, LAST_TIMESTAMP),
    "train_seconds": lambda v, n: number(v, n, 0.0),
    "threads": lambda v, n: integer(v, n, 1, 100_000),
    "device": lambda v, n: text(v, n, 100),
    "device_name": lambda v, n: text(v, n, 300),
    "metrics": metrics,
    "error": _optional(text),
    "warning": _optional(text),
    "diverged_step": integer,
    "cuda_graph": boolean,
}


def status(data: dict) -> tuple[dict, list[str]]:
    """A status.json's fields that pass their checks, and a message for each one that did not
    (dropped: a reader does without it)."""
    kept, problems = {}, []
    for key, value in data.items():
        check = STATUS_FIELDS.get(key)
        if check is None:
            kept[key] = value
            continue
        try:
            checked = check(value, key)
        except Invalid as e:
            problems.append(str(e))
            continue
        if checked is not None:
            kept[key] = checked
    if "step" in kept and "total_steps" in kept and kept["step"] > kept["total_steps"]:
        problems.append(f"step {kept.pop('step')} is past total_steps {kept['total_steps']}")
    return kept, problems


# ----------------------------------------------------------------------------- metrics lines


def metrics_record(record: Any) -> dict | None:
    """One metrics.jsonl line as readers use it: an integer step (>= 0), a split, if it has them an
    integer epoch (>= 0) and a time, and its finite numeric values; None when it is no such record.
    Values that are not finite numbers are dropped (a NaN loss ends a run as diverged before it is
    ever written)."""
    if not isinstance(record, dict) or record.get("split") not in SPLITS:
        return None
    try:
        out = {"step": integer(record.get("step"), "step")}
        if "epoch" in record:
            out["epoch"] = integer(record["epoch"], "epoch")
        out["split"] = record["split"]
        if "time" in record:
            out["time"] = number(record["time"], "time", 0.0)
    except Invalid:
        return None
    for key, value in list(record.items())[:MAX_METRICS + 4]:
        if key in out or not isinstance(key, str) or len(key) > MAX_NAME:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[key] = float(value) if isinstance(value, float) else value
    return out


# ----------------------------------------------------------------------------- checkpoints


def checkpoint_header(payload: Any, format_version: int) -> dict:
    """The description of a checkpoint (everything but its tensors), checked: raises ``Invalid``.

    Returns the fields as genapp uses them: format_version, family, model_config, train_config,
    step, epoch, metrics, parts (None or a list of state-dict prefixes), weights_dtype.
    """
    mapping(payload, "the checkpoint")
    missing = [k for k in ("format_version", "family", "model_config", "state_dict") if k not in payload]
    if missing:
        raise Invalid(f"not a genapp checkpoint (missing {', '.join(missing)})")
    version = payload["format_version"]
    if version != format_version:
        raise Invalid(f"checkpoint format version {_shown(version)}, this genapp reads version {format_version}")
    header = {
        "format_version": version,
        "family": text(payload["family"], "family", MAX_NAME),
        "model_config": mapping(payload["model_config"], "model_config"),
        "train_config": mapping(payload.get("train_config", {}), "train_config"),
        "step": integer(payload.get("step", 0), "step"),
        "epoch": integer(payload.get("epoch", 0), "epoch"),
        "metrics": metrics(payload.get("metrics", {}), "metrics"),
        "parts": None,
        "weights_dtype": text(payload.get("weights_dtype", "float32"), "weights_dtype", 20),
    }
    mapping(payload["state_dict"], "state_dict")
    parts = payload.get("parts")
    if parts is not None:
        if not isinstance(parts, list) or not parts or len(parts) > 20:
            raise Invalid(f"parts must be a list of 1 to 20 state-dict prefixes, got {_shown(parts)}")
        header["parts"] = [text(p, "a part", MAX_NAME) for p in parts]
    return header
