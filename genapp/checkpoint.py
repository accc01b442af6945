"""Self-describing checkpoints: plain tensors and JSON-able config, never pickled code.

A checkpoint is a dict::

    format_version  int      FORMAT_VERSION
    family          str      "vae" | ...
    model_config    dict     the family's config dataclass as a dict
    train_config    dict     TrainConfig as a dict
    state_dict      dict     weights
    step, epoch     int      progress when written (epoch = completed epochs)
    metrics         dict     optional: last validation metrics
    resume          dict     optional, run checkpoints only: optimizer and RNG states
    parts           list     optional: a snapshot of part of the model, by state-dict prefix
                             (a GAN's generator); the rest keeps its initial weights
    weights_dtype   str      optional: "float16" when the weights were stored at half precision

It is written to a temporary file and renamed, so a reader never sees a torn file, and read
with ``torch.load(weights_only=True)``, so a checkpoint can never run code.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from genapp.config import ConfigError, from_dict, to_dict
from genapp.files import atomic_write
from genapp.models import GenerativeModel, get_family

FORMAT_VERSION = 1
REQUIRED = ("format_version", "family", "model_config", "state_dict")


class CheckpointError(RuntimeError):
    """A file is not a usable genapp checkpoint; the message says why, for a user."""


def save_checkpoint(
    path: str | Path,
    model: GenerativeModel,
    *,
    train_config: Any = None,
    step: int = 0,
    epoch: int = 0,
    metrics: dict | None = None,
    resume: dict | None = None,
    parts: list[str] | None = None,
    half: bool = False,
) -> None:
    """Write ``model`` (weights moved to the CPU) and its description to ``path``, atomically:
    only the weights under the state-dict prefixes ``parts`` when given, at float16 with ``half``."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()
             if parts is None or any(k.startswith(p) for p in parts)}
    payload = {
        "format_version": FORMAT_VERSION,
        "family": model.name,
        "model_config": to_dict(model.config),
        "train_config": to_dict(train_config) if train_config is not None else {},
        "state_dict": _half(state) if half else state,
        "step": int(step),
        "epoch": int(epoch),
        "metrics": dict(metrics or {}),
    }
    if resume is not None:
        payload["resume"] = resume
    if parts is not None:
        payload["parts"] = list(parts)
    if half:
        payload["weights_dtype"] = "float16"
    atomic_write(Path(path), lambda f: torch.save(payload, f))


def _half(state_dict: dict) -> dict:
    return {k: v.half() if v.is_floating_point() else v for k, v in state_dict.items()}


def write_half_precision(source: str | Path, target: str | Path) -> None:
    """Copy a checkpoint with its floating-point weights stored as float16 (half the bytes).

    Loading upcasts them into the float32 model, so the figures measured on ``target`` are those
    of the weights as shipped.
    """
    payload = read_checkpoint(source)
    payload["state_dict"] = _half(payload["state_dict"])
    payload["weights_dtype"] = "float16"
    atomic_write(Path(target), lambda f: torch.save(payload, f))


def read_checkpoint(path: str | Path, family: str | None = None) -> dict:
    """Load and check a checkpoint dict; ``family`` (if given) must match."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses anything that would construct arbitrary objects or run code.
        detail = str(e)
        if "GLOBAL" not in detail and "global" not in detail:
            raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or not a torch file)") from None
        culprit = next((line.strip() for line in detail.splitlines() if "GLOBAL" in line or "global" in line), "")
        raise CheckpointError(
            f"{path}: refused: the file holds objects other than tensors and plain data, which could "
            f"run code when loaded; only genapp checkpoints can be opened ({culprit})"
        ) from None
    except Exception as e:  # torch raises many types on corrupt bytes (KeyError, EOFError, ...)
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or truncated): {e}") from None
    if not isinstance(payload, dict) or any(k not in payload for k in REQUIRED):
        raise CheckpointError(f"{path}: not a genapp checkpoint (missing {', '.join(REQUIRED)})")
    version = payload["format_version"]
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version}, this genapp reads version {FORMAT_VERSION}"
        )
    if family is not None and payload["family"] != family:
        raise CheckpointError(f"{path}: a {payload['family']} checkpoint, expected a {family} one")
    return payload


def model_from_checkpoint(payload: dict, source: str = "checkpoint") -> GenerativeModel:
    """Rebuild the model a checkpoint describes and load its weights. A snapshot of ``parts`` of
    a model loads those parts only, and the model says so (``model.parts``)."""
    parts = payload.get("parts")
    try:
        cls = get_family(payload["family"])
        model = cls(from_dict(cls.Config, payload["model_config"]))
        if parts is None:
            model.load_state_dict(payload["state_dict"])
        else:
            result = model.load_state_dict(payload["state_dict"], strict=False)
            inside = [k for k in result.missing_keys if any(k.startswith(p) for p in parts)]
            if result.unexpected_keys or inside:
                raise RuntimeError(f"snapshot of {', '.join(parts)}: unexpected {result.unexpected_keys}, "
                                   f"missing {inside}")
    except (ConfigError, RuntimeError, TypeError) as e:
        raise CheckpointError(f"{source}: checkpoint does not match its model: {e}") from None
    model.parts = tuple(parts) if parts is not None else None
    return model


def load_model(path: str | Path, family: str | None = None, device: str | torch.device = "cpu") -> GenerativeModel:
    """Any saved model, ready to use: on ``device`` (the CPU by default), in eval mode.

    The checkpoint's own description rebuilds the architecture; the caller need not know it.
    Raises ``CheckpointError`` with a readable message for anything that is not a valid
    checkpoint (of ``family``, when given).
    """
    payload = read_checkpoint(path, family)
    model = model_from_checkpoint(payload, str(path))
    model.checkpoint_info = {k: payload.get(k) for k in ("step", "epoch", "metrics", "train_config")}
    return model.to(device).eval()
