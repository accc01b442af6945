"""One browser session's playground, without streamlit: the chosen family, data and options,
the toy model, its curves, and the actions of the tab's buttons (play a frame, step, reset,
change a knob, open a preset, switch its fix on). The tab keeps one in ``st.session_state``;
a refresh of the page starts a new one, and nothing is written to disk.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch

from genapp.config import check
from genapp.playground import TOY_FAMILIES, build, make_data, train_steps
from genapp.playground.base import DEFAULT_BATCH, DEFAULT_LR, ToyModel
from genapp.playground.presets import PRESETS, Preset

DEFAULT_DATA = {"gan": "ring", "vae": "two-moons", "flow": "two-moons"}
DEFAULT_POINTS = 2000
DEFAULT_STEPS_PER_FRAME = 10
MAX_HISTORY = 1500  # records of the curves; older ones are thinned to every other


@dataclasses.dataclass
class PlaygroundSession:
    family: str = "gan"
    dataset: str = DEFAULT_DATA["gan"]
    points: int = DEFAULT_POINTS
    seed: int = 0
    lr: float = DEFAULT_LR
    batch_size: int = DEFAULT_BATCH
    steps_per_frame: int = DEFAULT_STEPS_PER_FRAME
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # overrides of the family's defaults
    preset: str | None = None
    fix_on: bool = False
    custom_points: torch.Tensor | None = None  # the user's own data, when dataset == "custom"
    model: ToyModel | None = None
    data: torch.Tensor | None = None
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)
    phase: str = "d"  # the GAN's next single step: "d" (discriminator) or "g" (generator)
    frames: int = 0
    last: dict[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model is None:
            self.reset()

    # -- building ------------------------------------------------------------------------------

    def reset(self) -> None:
        """A fresh model and data from the current choices; the curves start over."""
        if self.dataset == "custom":
            check(self.custom_points is not None and len(self.custom_points) > 0, "no points of your own yet")
            self.data = self.custom_points.clone()
        else:
            self.data = make_data(self.dataset, self.points, self.seed)
        self.model = build(self.family, seed=self.seed, lr=self.lr, batch_size=self.batch_size, **self.options)
        self.history, self.phase, self.frames, self.last = [], "d", 0, {}

    def choose(self, **choices: Any) -> None:
        """New family, dataset, size or seed (any of them): the options go back to the family's
        defaults if the family changed, the preset is left, and everything starts over."""
        if choices.get("family", self.family) != self.family:
            self.options = {}
            choices.setdefault("dataset", DEFAULT_DATA[choices["family"]])
        for name, value in choices.items():
            setattr(self, name, value)
        self.preset, self.fix_on = None, False
        self.reset()

    def option_values(self) -> dict[str, Any]:
        """Every option of the current model, by name."""
        return dataclasses.asdict(self.model.options)

    def set_option(self, name: str, value: Any) -> bool:
        """Change an option mid-run; a structural one (a network's shape) rebuilds the model.
        Returns whether the model kept its training. Raises ``ConfigError``."""
        self.options = {**self.options, name: value}
        if self.model.set_option(name, value):
            return True
        self.reset()
        return False

    def set_training(self, lr: float | None = None, batch_size: int | None = None,
                     steps_per_frame: int | None = None) -> None:
        """Learning rate, batch size, steps per frame: all take effect at the next step."""
        if lr is not None:
            self.model.set_lr(lr)
            self.lr = float(lr)
        if batch_size is not None:
            self.model.set_batch_size(batch_size)
            self.batch_size = int(batch_size)
        if steps_per_frame is not None:
            check(1 <= steps_per_frame <= 1000, f"steps per frame must be in 1..1000, got {steps_per_frame}")
            self.steps_per_frame = int(steps_per_frame)

    # -- presets -------------------------------------------------------------------------------

    def open_preset(self, name: str) -> Preset:
        """Start over on the failure ``name`` of ``PRESETS``, its fix off."""
        preset = PRESETS[name]
        self.family, self.dataset, self.options = preset.family, preset.dataset, dict(preset.options)
        self.lr, self.batch_size, self.points = preset.lr, preset.batch_size, DEFAULT_POINTS
        self.preset, self.fix_on = name, False
        self.reset()
        return preset

    def switch_fix_on(self) -> None:
        """Apply the open preset's fix to the running model (what can change in place does)."""
        check(self.preset is not None, "no preset is open")
        for name, value in PRESETS[self.preset].fix.items():
            self.set_option(name, value)
        self.fix_on = True

    # -- training ------------------------------------------------------------------------------

    def frame(self) -> dict[str, float]:
        """One frame of play: ``steps_per_frame`` training steps, recorded on the curves."""
        losses = train_steps(self.model, self.data, self.steps_per_frame)
        self.phase = "d"
        self._record(losses)
        self.frames += 1
        return losses

    def step(self) -> str:
        """One step: for the GAN half of one (the discriminator's update, then at the next call the
        generator's), for the others a whole one. Returns what was done."""
        model = self.model
        if self.family != "gan":
            self._record(train_steps(model, self.data, 1))
            return "one training step"
        index = torch.randint(len(self.data), (model.batch_size,), generator=model.rng)
        model.train()
        try:
            if self.phase == "d":
                self.last = {**self.last, **{k: float(v) for k, v in model.d_step(self.data[index]).items()}}
                self.phase = "g"
                return "one discriminator step"
            self.last = {**self.last, **{k: float(v) for k, v in model.g_step(model.batch_size).items()}}
            model.steps += 1
            self.phase = "d"
            self._record(self.last)
            return "one generator step"
        finally:
            model.eval()

    def _record(self, losses: dict[str, float]) -> None:
        if not losses:
            return
        self.last = dict(losses)
        self.history.append({"step": float(self.model.steps), **losses})
        if len(self.history) > MAX_HISTORY:
            self.history = self.history[::2]


__all__ = ["DEFAULT_DATA", "PlaygroundSession", "TOY_FAMILIES"]
