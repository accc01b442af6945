"""The seed's Variational Autoencoder: MLP encoder and decoder, Bernoulli likelihood.

    encoder  x[784] -> 500 -> 250 (ReLU) -> mean[d], log-variance[d]
    decoder  z[d]   -> 250 -> 500 (ReLU) -> 784 Bernoulli logits

Trained on binarized MNIST (a fresh Bernoulli draw each epoch), evaluated on one fixed
binarization of the validation and test sets. All quantities are in nats per image.

Two options go beyond the seed's model: ``kl_weight`` scales the KL term in training (a β-VAE;
a large weight collapses the posterior), and ``autoencoder`` trains the same networks as a plain
deterministic autoencoder (z = the encoder's mean, no KL term), the seed's Q1.1 contrast.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genapp import data
from genapp.config import check, setting
from genapp.data import PIXELS
from genapp.models.base import GenerativeModel, Likelihood, Progress, no_progress

LOG_2PI = math.log(2 * math.pi)
LIKELIHOOD_ROWS = 16384  # decoder rows alive at once in log_likelihood (about 100 MB)
MANIFOLD_PICTURE = 15  # the manifold recorded each epoch: 15 x 15 decodings
IWAE_KEY = re.compile(r"^test_iwae_nll_k(\d+)_nats$")


@dataclass
class VAEConfig:
    latent_dim: int = setting(20, "Latent dimensions")
    hidden: tuple[int, ...] = setting((500, 250), "Hidden layer sizes", "From the image inwards; the decoder mirrors them.")
    kl_weight: float = setting(1.0, "KL weight β", "Multiplies the KL term of the training loss (a β-VAE). Far above "
                               "1 the encoder is pushed onto the prior: the posterior collapses (KL → 0) and the "
                               "decoder learns to ignore z. Validation reports the true −ELBO (β = 1).")
    autoencoder: bool = setting(False, "Plain autoencoder (no sampling, no KL)",
                                "The same networks as a deterministic autoencoder: z is the encoder's mean and the "
                                "loss the reconstruction alone. Its codes form clusters with gaps between them, "
                                "and what is decoded from a gap is no digit (the seed's Q1.1).")

    def __post_init__(self) -> None:
        check(1 <= self.latent_dim <= 512, f"latent_dim must be in 1..512, got {self.latent_dim}")
        self.hidden = tuple(self.hidden)
        check(len(self.hidden) >= 1, "hidden needs at least one layer size")
        check(all(1 <= h <= 8192 for h in self.hidden), f"hidden sizes must be in 1..8192, got {self.hidden}")
        check(len(self.hidden) <= 16, f"hidden has {len(self.hidden)} layers; at most 16")
        check(0.0 <= self.kl_weight <= 1000.0, f"kl_weight must be in 0..1000, got {self.kl_weight}")


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I): a draw from N(mu, diag exp(logvar)) that gradients
    flow through (the reparameterization trick). mu, logvar [n, d] -> z [n, d]."""
    if generator is None:
        eps = torch.randn_like(mu)  # traceable by torch.compile, unlike a generator argument
    else:
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) of each row, in closed form: [n] nats."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(-1)


def linear_elements(sizes: list[int]) -> int:
    """Weights and biases of a chain of Linear layers through ``sizes``."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them, and after the last."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers)


class VAE(GenerativeModel):
    """The seed's VAE: MLP encoder 784-500-250 and mirror decoder, Bernoulli likelihood."""

    name = "vae"
    label = "VAE"
    Config = VAEConfig
    objective = "max ELBO = E_q log p(x|z) − KL(q ‖ p)"
    likelihood_data = "binarized (fixed draw)"
    seed_epochs = (1, 10, 20, 30, 40)

    def __init__(self, config: VAEConfig | None = None) -> None:
        super().__init__(config or VAEConfig())
        d, hidden = self.config.latent_dim, list(self.config.hidden)
        self.encoder = mlp([PIXELS, *hidden])
        self.mean = nn.Linear(hidden[-1], d)
        self.logvar = nn.Linear(hidden[-1], d)
        self.decoder = nn.Sequential(*mlp([d, *hidden[::-1]]), nn.Linear(hidden[0], PIXELS))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @classmethod
    def tensor_elements(cls, config: VAEConfig) -> int:
        d, hidden = config.latent_dim, list(config.hidden)
        return (linear_elements([PIXELS, *hidden]) + 2 * (hidden[-1] * d + d)
                + linear_elements([d, *hidden[::-1], PIXELS]))

    # -- the two networks ---------------------------------------------------------------------

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x float [n,1,28,28] in [0,1] -> (mean, log-variance), each [n, latent_dim]."""
        h = self.encoder(x.reshape(x.shape[0], PIXELS))
        return self.mean(h), self.logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z [n, latent_dim] -> Bernoulli logits [n,1,28,28]."""
        return self.decoder(z).view(z.shape[0], 1, 28, 28)

    # -- objective ----------------------------------------------------------------------------

    def prepare(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return data.binarize(images, generator)

    def _parts(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """Per-image reconstruction term -log p(x|z) (one z ~ q) and analytic KL(q(z|x) || p(z));
        for a plain autoencoder, z is the mean and the KL term exactly 0."""
        mu, logvar = self.encode(x)
        if self.config.autoencoder:
            z, kl = mu, torch.zeros(mu.shape[0], device=mu.device, dtype=mu.dtype)
        else:
            z, kl = reparameterize(mu, logvar, generator), kl_to_standard_normal(mu, logvar)
        logits = self.decode(z)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        return recon, kl

    def forward(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """The training loss on binarized images [n,1,28,28]: reconstruction + β·KL (the negative
        ELBO when β = 1), per-image means in nats, with its two parts.

        ``forward`` is the training objective so that ``Module.compile()`` compiles exactly it.
        """
        recon, kl = self._parts(batch)
        recon, kl = recon.mean(), kl.mean()
        return {"loss": recon + self.config.kl_weight * kl, "recon": recon, "kl": kl}

    def loss(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return self(batch)

    def elbo(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One-sample ELBO of each binarized image, [n], in nats (<= log p(x) in expectation); for a
        plain autoencoder minus its reconstruction term, which bounds nothing."""
        recon, kl = self._parts(x, generator)
        return -(recon + kl)

    @torch.no_grad()
    def mean_neg_elbo(self, x: torch.Tensor, generator: torch.Generator | None = None) -> float:
        """Mean negative one-sample ELBO in nats of binary images ``x`` [n,1,28,28]."""
        return -torch.cat([self.elbo(chunk, generator) for chunk in x.split(2048)]).mean().item()

    @torch.no_grad()
    def log_likelihood(
        self,
        x: torch.Tensor,
        k: int = 1000,
        generator: torch.Generator | None = None,
        max_rows: int = LIKELIHOOD_ROWS,
    ) -> torch.Tensor:
        """Importance-weighted estimate of log p(x) with k samples from q(z|x), [n], in nats.

        log p(x) ~= logsumexp_i [log p(x|z_i) + log p(z_i) - log q(z_i|x)] - log k.
        At most ``max_rows`` decoder rows are alive at once (about 100 MB at the default), so
        k=1000 over the 10k test images stays far below 2 GB.
        """
        check(k >= 1, f"k must be at least 1, got {k}")
        out = []
        images_per_chunk = max(1, max_rows // k)
        samples_per_chunk = min(k, max_rows)
        for x_chunk in x.split(images_per_chunk):
            n = x_chunk.shape[0]
            mu, logvar = self.encode(x_chunk)
            std = torch.exp(0.5 * logvar)
            flat = x_chunk.reshape(1, n, PIXELS)
            log_w = []
            for start in range(0, k, samples_per_chunk):
                s = min(samples_per_chunk, k - start)
                eps = torch.randn((s, n, mu.shape[1]), generator=generator, device=mu.device)
                z = mu + std * eps  # [s, n, d]
                logits = self.decoder(z.reshape(s * n, -1)).view(s, n, PIXELS)
                log_px_z = -F.binary_cross_entropy_with_logits(
                    logits, flat.expand(s, n, PIXELS), reduction="none"
                ).sum(-1)
                log_pz = -0.5 * (z.square() + LOG_2PI).sum(-1)
                log_qz = -0.5 * (eps.square() + LOG_2PI + logvar).sum(-1)
                log_w.append(log_px_z + log_pz - log_qz)
            out.append(torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k))
        return torch.cat(out)

    @torch.no_grad()
    def test_figures(self, images: torch.Tensor, *, k: int = 1000, draws: int = 4, seed: int = 0,
                     progress: Progress = no_progress) -> dict:
        """Negative ELBO (one z per image) and the IWAE bound with ``k`` samples, per-image means
        in nats, on the fixed binarization of uint8 ``images`` [n,1,28,28] (so that figures are
        comparable across models and runs). ``draws`` is not used: the binarization is fixed.

        Progress is reported every few hundred images, in parts that keep the random draws those
        of one ``log_likelihood`` call over all the images: the figures do not depend on it.
        """
        x = data.fixed_binarization(images.to(self.device))
        generator = torch.Generator(device=self.device).manual_seed(seed)
        if self.config.autoencoder:  # no likelihood: how well it reconstructs, deterministically
            progress(1.0, f"reconstruction of {len(x):,} test images")
            return {"test_recon_nats": self.mean_neg_elbo(x)}
        neg_elbo = self.mean_neg_elbo(x, generator)
        progress(0.05, f"−ELBO of {len(x):,} test images")
        rows = max(1, LIKELIHOOD_ROWS // k)  # log_likelihood's images per decoder batch
        chunk = rows * max(1, 500 // rows)
        nll = 0.0
        for i, part in enumerate(x.split(chunk)):
            nll -= self.log_likelihood(part, k=k, generator=generator).sum().item()
            done = min((i + 1) * chunk, len(x))
            progress(0.05 + 0.95 * done / len(x), f"IWAE bound (k={k}): {done:,} of {len(x):,} test images")
        return {"test_neg_elbo_nats": neg_elbo, f"test_iwae_nll_k{k}_nats": nll / len(x)}

    @classmethod
    def no_likelihood(cls, model_config: dict) -> str | None:
        return "a plain autoencoder defines no likelihood" if model_config.get("autoencoder") else None

    @classmethod
    def likelihood(cls, figures: dict, logged: dict) -> Likelihood | None:
        """The IWAE bound with the largest k measured, else the test −ELBO, else the validation
        −ELBO: each an upper bound on −log p(x)."""
        ks = sorted((int(m.group(1)), key) for key in figures if (m := IWAE_KEY.match(key)))
        if ks:
            return Likelihood(float(figures[ks[-1][1]]), f"IWAE bound, k={ks[-1][0]}", "test")
        if "test_neg_elbo_nats" in figures:
            return Likelihood(float(figures["test_neg_elbo_nats"]), "−ELBO bound", "test")
        if "loss" in logged:
            return Likelihood(float(logged["loss"]), "−ELBO bound", "validation")
        return None

    @torch.no_grad()
    def validate(self, images: torch.Tensor) -> dict[str, float]:
        """Negative ELBO and its parts on one fixed binarization, with fixed noise."""
        x = data.fixed_binarization(images)
        generator = torch.Generator(device=images.device).manual_seed(0)
        recon = kl = 0.0
        for chunk in x.split(2048):
            r, k = self._parts(chunk, generator)
            recon, kl = recon + r.sum().item(), kl + k.sum().item()
        n = x.shape[0]
        return {"loss": (recon + kl) / n, "recon": recon / n, "kl": kl / n}

    # -- pictures -----------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Bernoulli means of n decodings of z ~ N(0, I): float [n,1,28,28] in [0,1]."""
        z = torch.randn((n, self.latent_dim), generator=generator, device=self.device)
        return torch.sigmoid(self.decode(z))

    @torch.no_grad()
    def epoch_pictures(self, count: int, fixed: torch.Generator, fresh: torch.Generator) -> dict[str, torch.Tensor]:
        """Bernoulli means and one Bernoulli draw of each, from fixed and from fresh noise (the
        seed's Fig. 6 and 7, draws above means), and the manifold of a 2-D latent space."""
        pictures = {}
        for kind, generator in (("fixed", fixed), ("fresh", fresh)):
            means = self.sample(count, generator=generator)
            pictures[kind], pictures[f"{kind}-draws"] = means, torch.bernoulli(means, generator=generator)
        if self.latent_dim == 2:
            pictures["manifold"] = self.manifold(MANIFOLD_PICTURE)
        return pictures

    @torch.no_grad()
    def epoch_latents(self, images: torch.Tensor) -> torch.Tensor | None:
        """The posterior means of ``images`` (their fixed binarization) when the latent space is 2-D."""
        if self.latent_dim != 2:
            return None
        return self.encode(data.fixed_binarization(images.to(self.device)))[0]

    @torch.no_grad()
    def manifold(self, n: int) -> torch.Tensor:
        """The n x n grid of decodings of the 2-D latent space, float [n*n,1,28,28] in [0,1].

        Latents are the inverse normal CDF of an evenly spaced grid in (0,1)^2 (cell centres
        (i + 0.5) / n). Row-major: row r, column c is index r*n + c; z1 grows left to right
        along columns, z2 grows bottom to top (row 0 is the largest z2), as on a plot.
        """
        check(self.latent_dim == 2, f"the manifold needs latent_dim 2, this model has {self.latent_dim}")
        check(1 <= n <= 100, f"n must be in 1..100, got {n}")
        z = torch.distributions.Normal(0.0, 1.0).icdf((torch.arange(n) + 0.5) / n)
        z1 = z.repeat(n)  # columns
        z2 = z.flip(0).repeat_interleave(n)  # rows, top = largest
        grid = torch.stack([z1, z2], dim=1).to(self.device)
        return torch.sigmoid(self.decode(grid))
