"""The model families by name, and the run config that names one.

A family is a ``GenerativeModel`` subclass with a ``name``; ``register_family`` makes it known to
everything that lists families: the CLI's subcommands, the engine, the evaluator, the Compare
table and the training form (``genapp/models/__init__.py`` registers the three built-in ones).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genapp.config import ConfigError, TrainConfig, check, from_dict, to_argv, to_dict
from genapp.models.base import GenerativeModel

FAMILIES: dict[str, type[GenerativeModel]] = {}


def register_family(cls: type[GenerativeModel]) -> type[GenerativeModel]:
    """Make ``cls`` known by ``cls.name`` (usable as a class decorator)."""
    check(isinstance(getattr(cls, "name", None), str) and cls.name, f"{cls.__name__} needs a name")
    FAMILIES[cls.name] = cls
    return cls


def get_family(name: object) -> type[GenerativeModel]:
    try:
        return FAMILIES[name]  # type: ignore[index]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}") from None


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
        check(isinstance(data, dict), "a run config must be a JSON object")
        family = get_family(data.get("family"))
        return cls(
            family=family.name,
            model=from_dict(family.Config, data.get("model", {})),
            train=from_dict(TrainConfig, data.get("train", {})),
        )

    def to_argv(self, changed_training_only: bool = False) -> list[str]:
        """The ``python -m train`` arguments that recreate this config: the family, every model
        field and every training field (or only those that differ from the family's defaults)."""
        defaults = get_family(self.family).default_train_config() if changed_training_only else None
        return [self.family, *to_argv(self.model), *to_argv(self.train, defaults)]
