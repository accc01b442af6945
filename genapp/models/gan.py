"""The seed's GAN (its section 2.5): MLP generator and discriminator on images scaled to [-1, 1].

    generator      z[100] -> 128 -> 256 -> 512 -> 1024 -> 784, tanh
                   LeakyReLU(0.2); BatchNorm and dropout 0.2 on every hidden layer but the first
    discriminator  x[784] -> 512 -> 256 -> 1 logit
                   LeakyReLU(0.2); dropout 0.2 on the first layer

The GAN has two optimizers (Adam 2e-4, betas 0.5/0.999), so it owns its ``train_step``: one
discriminator update on real and generated images, then one generator update. Options follow
the seed's questions: one-sided label smoothing, noisy (flipped) labels, the non-saturating or
minimax generator loss, discriminator warm-up steps, and the same or fresh noise for the G step.

One option is not the seed's: ``ema`` keeps an exponential moving average of the generator's
weights (Karras et al. 2018; Yazıcı et al. 2019), and pictures come from the average. At a
constant learning rate the players circle the equilibrium rather than settle on it, so the live
generator's samples wander from epoch to epoch; the average sits near the middle of the circle.
Averaged weights need BatchNorm statistics of their own (as for SWA's ``update_bn``): after each
epoch the average's are measured on fresh noise, with dropout off as when it draws.
"""
from __future__ import annotations

import copy
import math
import typing
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genapp import data
from genapp.config import TrainConfig, check, setting
from genapp.data import PIXELS
from genapp.models.base import GenerativeModel, fused_if_supported

GeneratorLoss = Literal["non_saturating", "minimax"]
GENERATOR_LOSSES = typing.get_args(GeneratorLoss)


@dataclass
class GANConfig:
    latent_dim: int = setting(100, "Latent dimensions")
    generator_hidden: tuple[int, ...] = setting((128, 256, 512, 1024), "Generator layer sizes")
    discriminator_hidden: tuple[int, ...] = setting((512, 256), "Discriminator layer sizes")
    dropout: float = setting(0.2, "Dropout")
    # real targets become 1 - label_smoothing (one-sided; seed: 0.1)
    label_smoothing: float = setting(0.0, "Label smoothing", "Real targets become 1 − this (one-sided; the seed tried 0.1).")
    # probability of flipping each discriminator target (seed: up to 0.05)
    label_flip: float = setting(0.0, "Label flip", "Probability of flipping each discriminator target (the seed: up to 0.05).")
    # non_saturating: -log D(G(z)); minimax: log(1 - D(G(z)))
    generator_loss: GeneratorLoss = setting("non_saturating", "Generator loss",
                                            "non_saturating: minimise −log D(G(z)); minimax: minimise log(1 − D(G(z))), "
                                            "which starves G of gradient while D wins (the seed's Q2.3).")
    d_warmup_steps: int = setting(0, "Discriminator-only steps first", "The seed's Q2.4: train D alone for a while.")
    same_noise: bool = setting(True, "Generator step reuses the discriminator's noise", "Else a fresh draw of z.")
    beta1: float = setting(0.5, "Adam β1")
    ema: float = setting(0.0, "Average of the generator's weights: decay (0 = off)",
                         "Samples come from a moving average of G's weights, which wanders less than G "
                         "itself; 0.999 averages over about the last 1,000 steps.")

    def __post_init__(self) -> None:
        self.generator_hidden = tuple(self.generator_hidden)
        self.discriminator_hidden = tuple(self.discriminator_hidden)
        check(1 <= self.latent_dim <= 1024, f"latent_dim must be in 1..1024, got {self.latent_dim}")
        for name in ("generator_hidden", "discriminator_hidden"):
            sizes = getattr(self, name)
            check(len(sizes) >= 1 and all(1 <= h <= 8192 for h in sizes), f"{name} sizes must be in 1..8192, got {sizes}")
            check(len(sizes) <= 16, f"{name} has {len(sizes)} layers; at most 16")
        check(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        check(0.0 <= self.label_smoothing < 0.5, f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        check(0.0 <= self.label_flip < 0.5, f"label_flip must be in [0, 0.5), got {self.label_flip}")
        check(self.generator_loss in GENERATOR_LOSSES,
              f"generator_loss must be one of {', '.join(GENERATOR_LOSSES)}; got {self.generator_loss!r}")
        check(self.d_warmup_steps >= 0, f"d_warmup_steps must be >= 0, got {self.d_warmup_steps}")
        check(0.0 <= self.beta1 < 1.0, f"beta1 must be in [0, 1), got {self.beta1}")
        check(0.0 <= self.ema < 1.0, f"ema must be in [0, 1) (0 = off), got {self.ema}")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       real_targets: torch.Tensor | None = None, fake_targets: torch.Tensor | None = None) -> torch.Tensor:
    """-log D(x) - log(1 - D(G(z))) as two mean binary cross-entropies on logits [n]: 2 ln 2 at
    the equilibrium D = 1/2. Targets default to 1 for real and 0 for generated images."""
    real_targets = torch.ones_like(real_logits) if real_targets is None else real_targets
    fake_targets = torch.zeros_like(fake_logits) if fake_targets is None else fake_targets
    return (F.binary_cross_entropy_with_logits(real_logits, real_targets)
            + F.binary_cross_entropy_with_logits(fake_logits, fake_targets))


def generator_loss(fake_logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """The generator's loss on D's logits [n] for its samples: ``non_saturating`` -log D(G(z)),
    or ``minimax`` log(1 - D(G(z))), the game's own term, whose gradient vanishes while D wins."""
    if kind == "non_saturating":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def generator_net(c: GANConfig) -> nn.Sequential:
    sizes = [c.latent_dim, *c.generator_hidden]
    layers: list[nn.Module] = [nn.Linear(sizes[0], sizes[1]), nn.LeakyReLU(0.2)]
    for n_in, n_out in zip(sizes[1:-1], sizes[2:]):
        layers += [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.LeakyReLU(0.2), nn.Dropout(c.dropout)]
    layers += [nn.Linear(sizes[-1], PIXELS), nn.Tanh()]
    return nn.Sequential(*layers)


def discriminator_net(c: GANConfig) -> nn.Sequential:
    sizes = [PIXELS, *c.discriminator_hidden]
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [nn.Linear(n_in, n_out), nn.LeakyReLU(0.2)]
        if i == 0:
            layers.append(nn.Dropout(c.dropout))
    layers.append(nn.Linear(sizes[-1], 1))
    return nn.Sequential(*layers)


class GAN(GenerativeModel):
    """The seed's GAN: MLP generator 100-128-256-512-1024-784 and discriminator 784-512-256-1."""

    name = "gan"
    label = "GAN"
    Config = GANConfig
    objective = "min_G max_D V(D, G)"
    seed_epochs = (1, 12, 50, 110, 200)
    monitor = "fid"  # picks best.pt when the engine measures sample quality
    train_defaults = {"lr": 2e-4, "epochs": 200, "batch_size": 128, "quality_every": 5}

    def __init__(self, config: GANConfig | None = None) -> None:
        super().__init__(config or GANConfig())
        self.generator = generator_net(self.config)
        self.discriminator = discriminator_net(self.config)
        # The averaged generator that pictures come from (``ema`` > 0); never trained directly.
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False) if self.config.ema else None
        # Generator updates so far: a buffer so that warm-up survives save and resume.
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @classmethod
    def tensor_elements(cls, config: GANConfig) -> int:
        sizes = [config.latent_dim, *config.generator_hidden, PIXELS]
        linears = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        norms = sum(4 * h + 1 for h in config.generator_hidden[1:])  # weight, bias, running mean and var, count
        generator = linears + norms
        d_sizes = [PIXELS, *config.discriminator_hidden, 1]
        discriminator = sum(a * b + b for a, b in zip(d_sizes[:-1], d_sizes[1:]))
        return generator * (2 if config.ema else 1) + discriminator + 1  # + the steps_done counter

    # -- the two networks ---------------------------------------------------------------------

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """z [n, latent_dim] -> images float [n,1,28,28] in [0,1], from the averaged G if there is one."""
        generator = self.generator if self.generator_ema is None else self.generator_ema
        return (generator(z).view(z.shape[0], 1, 28, 28) + 1.0) / 2.0

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """Images float [n,1,28,28] in [0,1] -> logits [n] (D(x) = sigmoid(logit))."""
        return self._d(x * 2.0 - 1.0)

    def _d(self, x_symmetric: torch.Tensor) -> torch.Tensor:
        return self.discriminator(x_symmetric.reshape(x_symmetric.shape[0], PIXELS)).squeeze(1)

    def _g(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    # -- objective ----------------------------------------------------------------------------

    def prepare(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return data.to_symmetric(images)

    def _real_targets(self, n: int, device) -> torch.Tensor:
        targets = torch.full((n,), 1.0 - self.config.label_smoothing, device=device)
        if self.config.label_flip > 0:
            flip = torch.rand(n, device=device) < self.config.label_flip
            targets = torch.where(flip, 1.0 - targets, targets)
        return targets

    def _fake_targets(self, n: int, device) -> torch.Tensor:
        targets = torch.zeros(n, device=device)
        if self.config.label_flip > 0:
            targets = (torch.rand(n, device=device) < self.config.label_flip).float()
        return targets

    @classmethod
    def objective_text(cls, model_config: dict) -> str:
        loss = str(model_config.get("generator_loss", "non_saturating")).replace("_", "-")
        return f"{cls.objective}, {loss} G"

    def _generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return generator_loss(fake_logits, self.config.generator_loss)

    def loss(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Both players' losses on a batch in [-1, 1], without updating anything.

        d_loss = -log D(x) - log(1 - D(G(z))) (2 ln 2 at the equilibrium D = 1/2); ``loss`` is
        d_loss + g_loss, a single number for divergence checks, not an objective to read.
        """
        z = torch.randn(batch.shape[0], self.latent_dim, device=batch.device)
        real, fake = self._d(batch), self._d(self._g(z))
        d_loss = discriminator_loss(real, fake)
        g_loss = self._generator_loss(fake)
        return {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss,
                "d_real": torch.sigmoid(real).mean(), "d_fake": torch.sigmoid(fake).mean()}

    # -- optimisation: two players ------------------------------------------------------------

    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        betas = (self.config.beta1, 0.999)
        return {
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=train.lr, betas=betas,
                                              **fused_if_supported(self)),
            "generator": torch.optim.Adam(self.generator.parameters(), lr=train.lr, betas=betas,
                                          **fused_if_supported(self)),
        }

    def compile_for_training(self) -> None:
        """Compile both players: ``train_step`` calls them directly, never ``forward``."""
        self.generator.compile(dynamic=False)
        self.discriminator.compile(dynamic=False)

    def train_step(self, batch: torch.Tensor, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
        """One discriminator update, then (after the warm-up) one generator update.

        The D step trains on real images and on G(z) detached, so it leaves G alone; the G step
        back-propagates through D but only G's optimizer steps, so it leaves D alone.
        """
        n, device = batch.shape[0], batch.device
        d_opt, g_opt = optimizers["discriminator"], optimizers["generator"]

        z = torch.randn(n, self.latent_dim, device=device)
        fake = self._g(z)
        d_opt.zero_grad(set_to_none=True)
        real_logits, fake_logits = self._d(batch), self._d(fake.detach())
        d_loss = discriminator_loss(real_logits, fake_logits, self._real_targets(n, device), self._fake_targets(n, device))
        d_loss.backward()
        d_opt.step()

        warm = self.config.d_warmup_steps == 0 or int(self.steps_done) >= self.config.d_warmup_steps
        if warm:
            if not self.config.same_noise:
                fake = self._g(torch.randn(n, self.latent_dim, device=device))
            g_opt.zero_grad(set_to_none=True)
            self.discriminator.requires_grad_(False)  # its weight gradients here would be thrown away
            try:
                g_loss = self._generator_loss(self._d(fake))
                g_loss.backward()
            finally:
                self.discriminator.requires_grad_(True)
            g_opt.step()
            if self.generator_ema is not None:
                self._update_ema()
        else:
            with torch.no_grad():
                g_loss = self._generator_loss(fake_logits)
        self.steps_done += 1
        d_loss, g_loss = d_loss.detach(), g_loss.detach()
        return {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss,
                "d_real": torch.sigmoid(real_logits.detach()).mean(),
                "d_fake": torch.sigmoid(fake_logits.detach()).mean()}

    @property
    def graph_capturable(self) -> bool:
        return self.config.d_warmup_steps == 0  # the warm-up asks the device how many steps were done

    @torch.no_grad()
    def _update_ema(self) -> None:
        """Move the average towards the live generator: w_ema <- w_ema + (1 - decay)(w - w_ema).

        The decay ramps up as (1 + n)/(10 + n) over the first updates, so the average forgets
        the random initial weights quickly. Weights only: ``calibrate_average`` measures the
        average's BatchNorm statistics after each epoch.
        """
        n = self.steps_done.float()  # a tensor: no wait for the device in the step
        weight = 1.0 - torch.clamp((1.0 + n) / (10.0 + n), max=self.config.ema)
        for average, current in zip(self.generator_ema.parameters(), self.generator.parameters()):
            average.lerp_(current, weight)

    def end_epoch(self) -> None:
        if self.generator_ema is not None:
            self.calibrate_average()

    @torch.no_grad()
    def calibrate_average(self, samples: int = 25_600, batch_size: int = 256, seed: int = 0) -> None:
        """Measure the averaged generator's BatchNorm statistics: means over ``samples`` draws of z.

        The live generator's running statistics belong to other weights, and were gathered with
        dropout on; the average draws with dropout off, so its statistics are measured that way.
        The noise comes from its own seeded generator: training's random stream is untouched.
        """
        g = self.generator_ema
        norms = [m for m in g.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        was_training, momenta = g.training, [m.momentum for m in norms]
        g.eval()  # dropout off ...
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # ... and a plain average over the batches below
            m.train()
        noise = torch.Generator(device=self.device).manual_seed(seed)
        for _ in range(max(1, samples // batch_size)):
            g(torch.randn(batch_size, self.latent_dim, generator=noise, device=self.device))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        g.train(was_training)

    def num_parameters(self) -> int:
        """The two players' parameters; the averaged copy of G is not counted."""
        copy_size = sum(p.numel() for p in self.generator_ema.parameters()) if self.generator_ema is not None else 0
        return super().num_parameters() - copy_size

    @torch.no_grad()
    def validate(self, images: torch.Tensor) -> dict[str, float]:
        """The discriminator's view of held-out real images and of generated ones (fixed noise)."""
        generator = torch.Generator(device=images.device).manual_seed(0)
        z = torch.randn(len(images), self.latent_dim, generator=generator, device=images.device)
        real, fake = self._d(data.to_symmetric(images)), self._d(self._g(z))
        d_loss = discriminator_loss(real, fake)
        return {"d_loss": d_loss.item(), "g_loss": self._generator_loss(fake).item(),
                "d_real": torch.sigmoid(real).mean().item(), "d_fake": torch.sigmoid(fake).mean().item()}

    # -- pictures -----------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images G(z), z ~ N(0, I): float [n,1,28,28] in [0,1]."""
        z = torch.randn((n, self.latent_dim), generator=generator, device=self.device)
        return self.generate(z)

    def snapshot_parts(self) -> list[str]:
        """Only the generator that pictures come from: what exploring a past epoch needs."""
        return ["generator_ema."] if self.generator_ema is not None else ["generator."]

    @torch.no_grad()
    def interpolate(self, z0: torch.Tensor, z1: torch.Tensor, steps: int, mode: str = "linear") -> torch.Tensor:
        """Images along a path from z0 to z1 (each [latent_dim]), both ends included: [steps,1,28,28].

        ``linear`` blends the vectors; ``slerp`` turns the direction along the great circle and
        blends the lengths, so the norm stays where typical latents live (it is kept exactly
        when |z0| = |z1|) instead of dipping towards the origin halfway.
        """
        return self.generate(interpolate_latents(z0, z1, steps, mode).to(self.device))


def interpolate_latents(z0: torch.Tensor, z1: torch.Tensor, steps: int, mode: str = "linear") -> torch.Tensor:
    """The latents of ``GAN.interpolate``: [steps, d], row 0 = z0, row steps-1 = z1."""
    check(steps >= 2, f"steps must be at least 2, got {steps}")
    check(mode in ("linear", "slerp"), f"mode must be linear or slerp, got {mode!r}")
    t = torch.linspace(0.0, 1.0, steps, dtype=z0.dtype, device=z0.device)[:, None]
    if mode == "linear":
        return (1 - t) * z0 + t * z1
    n0, n1 = z0.norm(), z1.norm()
    u0, u1 = z0 / n0, z1 / n1
    omega = torch.arccos(torch.clamp((u0 * u1).sum(), -1.0, 1.0))
    if omega.abs() < 1e-6:  # (anti)parallel: the great circle is undefined, blend linearly
        direction = (1 - t) * u0 + t * u1
        direction = direction / direction.norm(dim=1, keepdim=True)
    else:
        direction = (torch.sin((1 - t) * omega) * u0 + torch.sin(t * omega) * u1) / math.sin(omega.item())
    path = direction * ((1 - t) * n0 + t * n1)
    path[0], path[-1] = z0, z1  # exact endpoints
    return path
