"""What every model family provides, so the engine, the evaluator and the UI need no special cases."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from genapp.config import TrainConfig

# progress(fraction done in [0, 1], what is being done): how long work reports itself
Progress = Callable[[float, str], None]


def no_progress(fraction: float, text: str) -> None:
    """A ``Progress`` that reports nowhere."""


class Likelihood(NamedTuple):
    """A model's best-known negative log-likelihood: nats per image, how it was estimated
    ("IWAE bound, k=1000", "exact, 4 dequantization draws") and on which split."""

    nll_nats: float
    estimate: str
    split: str  # "test" | "validation"


def fused_if_supported(module: nn.Module) -> dict:
    """``fused=True`` for Adam where this torch has the fused kernel for the parameters' device."""
    device = next(module.parameters()).device.type
    return {"fused": True} if device in ("cpu", "cuda", "mps") else {}


class GenerativeModel(nn.Module):
    """Base class of the three families.

    A family sets ``name`` and ``Config`` and implements ``prepare``, ``loss``, ``validate``
    and ``sample``. It owns its optimisation: ``configure_optimizers`` and ``train_step``
    default to one Adam optimizer over all parameters; a family with another scheme (the
    GAN's two optimizers) overrides both, explicitly.

    It also owns its facts, so that no other module asks which family it holds: how it is named
    (``label``), what it optimises (``objective``), what data its likelihood is on and how to
    measure it on the test set (``test_figures``), and which recorded figure is its best-known
    likelihood (``likelihood``).
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    label: ClassVar[str]  # as a table or a tab names the family: "VAE"
    objective: ClassVar[str] = ""  # what training optimises, in one line of plain text
    # The data the likelihood is measured on ("binarized (fixed draw)"), or None: no likelihood.
    likelihood_data: ClassVar[str | None] = None
    # The validation metric that picks best.pt, and whether lower is better.
    monitor: ClassVar[str] = "loss"
    monitor_lower_is_better: ClassVar[bool] = True
    # The family's own defaults for TrainConfig fields (the seed's settings).
    train_defaults: ClassVar[dict] = {}
    # The epochs at which the seed's report shows this family's pictures (its Fig. 6-7, 10-11, 15).
    seed_epochs: ClassVar[tuple[int, ...]] = ()

    @classmethod
    def default_train_config(cls, **overrides) -> TrainConfig:
        return TrainConfig(**{**cls.train_defaults, **overrides})

    @classmethod
    def tensor_elements(cls, config: Any) -> int:
        """How many numbers a model of ``config`` holds in its tensors (parameters and buffers):
        what building it allocates. Families count it from the config alone, so that a checkpoint
        asking for an enormous model is refused before anything is built; this default builds the
        model on the meta device, which allocates nothing."""
        with torch.device("meta"):
            return sum(t.numel() for t in cls(config).state_dict().values())

    @classmethod
    def objective_text(cls, model_config: dict) -> str:
        """The objective of a model with this config (a dict, as a run or the manifest stores it)."""
        return cls.objective

    @classmethod
    def no_likelihood(cls, model_config: dict) -> str | None:
        """Why a model with this config defines no likelihood ("a GAN defines no likelihood"), or
        None when it defines one."""
        return None if cls.likelihood_data else f"a {cls.label} defines no likelihood"

    @classmethod
    def likelihood(cls, figures: dict, logged: dict) -> Likelihood | None:
        """The best-known likelihood among recorded figures: ``figures`` in the keys of
        ``test_figures`` (measured on the test set), else ``logged`` validation metrics; None
        when the family has none or nothing was recorded."""
        return None

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    # -- data -------------------------------------------------------------------------------

    def prepare(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The training view of a uint8 batch [n,1,28,28] (binarized, dequantized, scaled...)."""
        raise NotImplementedError

    # -- objective --------------------------------------------------------------------------

    def loss(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Scalar tensors: ``loss`` (minimised) plus its named parts."""
        raise NotImplementedError

    @torch.no_grad()
    def validate(self, images: torch.Tensor) -> dict[str, float]:
        """Validation metrics on uint8 images [n,1,28,28]; deterministic for fixed weights."""
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples, float [n,1,28,28] in [0,1]."""
        raise NotImplementedError

    @torch.no_grad()
    def epoch_pictures(self, count: int, fixed: torch.Generator, fresh: torch.Generator) -> dict[str, torch.Tensor]:
        """The pictures the engine records after each epoch, by kind (``genapp.runs.PICTURES``):
        each float [count (or n x n), 1, 28, 28] in [0, 1]. ``fixed`` draws the same noise every
        epoch, ``fresh`` new noise. By default the family's samples from both."""
        return {"fixed": self.sample(count, generator=fixed), "fresh": self.sample(count, generator=fresh)}

    @torch.no_grad()
    def epoch_latents(self, images: torch.Tensor) -> torch.Tensor | None:
        """Codes worth recording each epoch for uint8 ``images`` [n,1,28,28] ([n, 2] for a 2-D
        latent space, which the explorer draws), or None: nothing to record."""
        return None

    def snapshot_parts(self) -> list[str] | None:
        """The state-dict prefixes a snapshot of the model needs to be explored (None: all)."""
        return None

    @torch.no_grad()
    def test_figures(self, images: torch.Tensor, *, k: int = 1000, draws: int = 4, seed: int = 0,
                     progress: Progress = no_progress) -> dict:
        """The family's likelihood figures on uint8 images [n,1,28,28] (the test set): a dict of
        floats, seeded, ``progress`` called as parts finish. ``k`` (importance samples) and
        ``draws`` (dequantization draws) are for the families that use them. None here (the GAN)."""
        return {}

    # -- optimisation -----------------------------------------------------------------------

    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=train.lr, **fused_if_supported(self))}

    def end_epoch(self) -> None:
        """Called by the engine after each epoch, before validation, pictures and checkpoints.

        Nothing by default; the GAN gives its averaged generator its BatchNorm statistics here.
        """

    @property
    def graph_capturable(self) -> bool:
        """Whether ``train_step`` can be captured as a CUDA graph: no host decisions on device
        values inside it. True for every family as configured by default."""
        return True

    def compile_for_training(self) -> None:
        """Compile what ``train_step`` runs (by default ``forward``) with ``torch.compile``.

        Fuses the many small element-wise kernels around the matmuls; costs a cold compile of
        20-30 s on a 2-core CPU, so the engine only calls it when the config asks.
        """
        self.compile(dynamic=False)

    def train_step(
        self, batch: torch.Tensor, optimizers: dict[str, torch.optim.Optimizer]
    ) -> dict[str, torch.Tensor]:
        """One update. Returns the detached loss parts; never synchronises with the host."""
        (optimizer,) = optimizers.values()
        optimizer.zero_grad(set_to_none=True)
        parts = self.loss(batch)
        parts["loss"].backward()
        optimizer.step()
        return {k: v.detach() for k, v in parts.items()}

    # -- bookkeeping ------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
