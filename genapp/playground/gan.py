"""The toy GAN: a generator G from Gaussian noise to 2-D points and a discriminator D on points,
2 x 64 MLPs, with the MNIST GAN's losses (``genapp.models.gan``: the discriminator's
cross-entropy, the non-saturating or minimax generator loss).

Beyond the MNIST GAN, for the failure-mode lab: ``d_steps`` discriminator updates per generator
update, ``d_warmup`` discriminator-only steps first (the seed's Q2.4), and ``pack`` (PacGAN,
Lin et al. 2018): D judges packs of samples side by side, so a generator that puts every
sample on one mode is caught by the packs' lack of variety: the fix for mode collapse.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from genapp.config import check, setting
from genapp.models.gan import GENERATOR_LOSSES, discriminator_loss, generator_loss
from genapp.playground.base import ToyModel, mlp


@dataclass
class GANOptions:
    noise_dim: int = setting(2, "Noise dimensions", "The size of z ~ N(0, I) that G maps to a point.")
    hidden: int = setting(64, "Hidden units", "Width of each hidden layer of G and D.")
    layers: int = setting(2, "Hidden layers")
    loss: Literal["non_saturating", "minimax"] = setting(
        "non_saturating", "Generator loss", "non_saturating: minimise −log D(G(z)); minimax: minimise "
        "log(1 − D(G(z))), whose gradient vanishes when D wins (the seed's Q2.3).")
    d_steps: int = setting(1, "D steps per G step")
    d_warmup: int = setting(0, "D-only steps first", "Train D alone this many steps first (the seed's Q2.4).")
    pack: int = setting(1, "Pack size (PacGAN)", "D judges this many samples at once: 1 = a plain GAN; 2 or more "
                        "lets D see that G's samples lack variety (the fix for mode collapse).")
    g_lr_scale: float = setting(1.0, "G learning rate × ", "The generator's learning rate relative to D's.")
    optimizer: Literal["adam", "sgd"] = setting("adam", "Optimizer", "adam (β1 = 0.5, as the MNIST GAN) rescales every "
                                                "gradient to a step of about the learning rate; sgd (momentum 0.9) "
                                                "steps in proportion to the gradient, so a vanishing one shows.")

    def __post_init__(self) -> None:
        check(1 <= self.noise_dim <= 64, f"noise_dim must be in 1..64, got {self.noise_dim}")
        check(1 <= self.hidden <= 1024, f"hidden must be in 1..1024, got {self.hidden}")
        check(1 <= self.layers <= 8, f"layers must be in 1..8, got {self.layers}")
        check(self.loss in GENERATOR_LOSSES, f"loss must be one of {', '.join(GENERATOR_LOSSES)}; got {self.loss!r}")
        check(1 <= self.d_steps <= 20, f"d_steps must be in 1..20, got {self.d_steps}")
        check(0 <= self.d_warmup <= 100_000, f"d_warmup must be in 0..100000, got {self.d_warmup}")
        check(1 <= self.pack <= 8, f"pack must be in 1..8, got {self.pack}")
        check(0 < self.g_lr_scale <= 100, f"g_lr_scale must be in (0, 100], got {self.g_lr_scale}")
        check(self.optimizer in ("adam", "sgd"), f"optimizer must be adam or sgd, got {self.optimizer!r}")


class ToyGAN(ToyModel):
    """G: noise [n, noise_dim] -> points [n, 2]; D: packs [n / pack, 2 pack] -> logits."""

    family = "gan"
    Options = GANOptions
    structural = frozenset({"noise_dim", "hidden", "layers"})

    def _build(self) -> None:
        o = self.options
        self.generator = mlp([o.noise_dim, *[o.hidden] * o.layers, 2])
        self.discriminator = self._new_discriminator()
        self.d_steps_done = 0

    def _new_discriminator(self) -> nn.Sequential:
        o = self.options
        return mlp([2 * o.pack, *[o.hidden] * o.layers, 1], activation=lambda: nn.LeakyReLU(0.2))

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        def make(parameters, lr: float) -> torch.optim.Optimizer:
            if self.options.optimizer == "sgd":
                return torch.optim.SGD(parameters, lr=lr, momentum=0.9)
            return torch.optim.Adam(parameters, lr=lr, betas=(0.5, 0.999))

        return {"discriminator": make(self.discriminator.parameters(), self.lr),
                "generator": make(self.generator.parameters(), self.lr * self.options.g_lr_scale)}

    def set_lr(self, lr: float) -> None:
        super().set_lr(lr)
        for group in self.optimizers["generator"].param_groups:
            group["lr"] = self.lr * self.options.g_lr_scale

    def set_option(self, name: str, value) -> bool:
        """As ``ToyModel.set_option``; a new pack size gives D a new input layer (a fresh D, the
        generator keeps its weights), a new optimizer starts afresh, ``g_lr_scale`` applies at once."""
        if name in self.structural:
            return False
        old = self.options
        self.options = self._checked(**{name: value})
        if self.options.pack != old.pack:
            self.discriminator = self._new_discriminator()
            self.optimizers["discriminator"] = self._make_optimizers()["discriminator"]
        if self.options.optimizer != old.optimizer:
            self.optimizers = self._make_optimizers()
        self.set_lr(self.lr)
        return True

    # -- the two networks ----------------------------------------------------------------------

    def noise(self, n: int) -> torch.Tensor:
        """Training's noise z [n, noise_dim], from the model's own stream."""
        return torch.randn(n, self.options.noise_dim, generator=self.rng)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """z [n, noise_dim] -> points [n, 2]."""
        return self.generator(z)

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """Points [n, 2] -> D's logits [n / pack]: consecutive rows are packed together (a
        remainder of fewer than ``pack`` rows is dropped)."""
        p = self.options.pack
        n = (len(x) // p) * p
        return self.discriminator(x[:n].reshape(n // p, 2 * p)).squeeze(1)

    def d_of_points(self, x: torch.Tensor) -> torch.Tensor:
        """D(x) in (0, 1) for each point [n, 2] -> [n] (a pack of copies of the point when pack > 1)."""
        with torch.no_grad():
            return torch.sigmoid(self.discriminator(x.repeat(1, self.options.pack)).squeeze(1))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n points G(z), z ~ N(0, I): float [n, 2]."""
        with torch.no_grad():  # the global stream when no generator is given: training's is left alone
            return self.generate(torch.randn(n, self.options.noise_dim, generator=generator))

    # -- the game, one player at a time --------------------------------------------------------

    def d_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """One discriminator update on real points [b, 2] and as many fresh G(z), detached."""
        fake = self.generate(self.noise(len(real))).detach()
        real_logits, fake_logits = self.discriminate(real), self.discriminate(fake)
        loss = discriminator_loss(real_logits, fake_logits)
        self._stepped(self.optimizers["discriminator"], loss)
        self.d_steps_done += 1
        return {"d_loss": loss.detach(), "d_real": torch.sigmoid(real_logits).mean().detach(),
                "d_fake": torch.sigmoid(fake_logits).mean().detach()}

    def g_step(self, n: int) -> dict[str, torch.Tensor]:
        """One generator update on n fresh samples; D is left alone."""
        self.discriminator.requires_grad_(False)  # its weight gradients here would be thrown away
        try:
            loss = generator_loss(self.discriminate(self.generate(self.noise(n))), self.options.loss)
            self._stepped(self.optimizers["generator"], loss)
        finally:
            self.discriminator.requires_grad_(True)
        return {"g_loss": loss.detach()}

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """``d_steps`` discriminator updates, then one generator update (none during the warm-up)."""
        for _ in range(self.options.d_steps):
            losses = self.d_step(batch)
        if self.d_steps_done <= self.options.d_warmup:
            with torch.no_grad():
                g_loss = generator_loss(self.discriminate(self.generate(self.noise(len(batch)))), self.options.loss)
            return {**losses, "g_loss": g_loss}
        return {**losses, **self.g_step(len(batch))}

    def generator_gradient(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(G(z) [n, 2], −∇ of the generator's loss with respect to each sample [n, 2]): where the
        discriminator is pushing each generated point, the arrows of the GAN's view."""
        self.discriminator.requires_grad_(False)
        try:
            points = self.generate(z).detach().requires_grad_(True)
            loss = generator_loss(self.discriminate(points), self.options.loss) * len(points)
            (grad,) = torch.autograd.grad(loss, points)
        finally:
            self.discriminator.requires_grad_(True)
        return points.detach(), -grad
