"""A digit of the user's own through every model: MNIST-style preprocessing, the VAE posterior and
its ellipse, the flow's bits per dimension and percentile, the GAN's nearest image."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from genapp.data import load_mnist
from genapp.evaluation import digit as digits
from genapp.models import GAN, VAE, Flow, FlowConfig, GANConfig, VAEConfig


def canvas(height: int = 280, width: int = 280) -> np.ndarray:
    """A blank canvas as the drawing component returns it: RGBA, black and opaque."""
    image = np.zeros((height, width, 4), np.uint8)
    image[..., 3] = 255
    return image


def mass_centre(image: np.ndarray) -> tuple[float, float]:
    a = image.astype(float)
    rows, cols = np.mgrid[0 : a.shape[0], 0 : a.shape[1]]
    return (rows * a).sum() / a.sum(), (cols * a).sum() / a.sum()


# ----------------------------------------------------------------------------- preprocessing


def test_ink_reads_grey_rgb_and_rgba_alike():
    grey = np.zeros((4, 4), np.uint8)
    grey[1, 2] = 255
    rgb = np.repeat(grey[..., None], 3, axis=2)
    transparent = np.zeros((4, 4, 4), np.uint8)
    transparent[1, 2] = 255  # a white, opaque stroke on a transparent background
    for image in (grey, rgb, transparent):
        ink = digits.ink(image)
        assert ink.shape == (4, 4) and ink[1, 2] == pytest.approx(1.0) and ink.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="RGBA"):
        digits.ink(np.zeros((4, 4, 2), np.uint8))


@pytest.mark.parametrize("image", [canvas(), np.zeros((50, 60), np.uint8), np.full((28, 28), 10, np.uint8)],
                         ids=["blank canvas", "black", "too faint"])
def test_a_blank_drawing_is_a_clear_error(image):
    with pytest.raises(digits.EmptyDrawingError, match="draw"):
        digits.to_mnist(image)


def test_a_tall_stroke_is_scaled_to_20_pixels_keeping_its_shape_and_centred_by_mass():
    image = canvas()
    image[20:260, 30:54, :3] = 255  # a tall bar near the left edge: 240 x 24
    digit = digits.to_mnist(image)
    assert digit.dtype == torch.uint8 and digit.shape == (1, 1, 28, 28)
    pixels = digit[0, 0].numpy()
    rows, cols = np.nonzero(pixels > 25)
    assert rows.max() - rows.min() + 1 == 20  # the longer side fills the 20-pixel box
    assert 1 <= cols.max() - cols.min() + 1 <= 4  # the shorter keeps the 10:1 aspect
    centre = mass_centre(pixels)
    assert abs(centre[0] - 14) <= 0.5 and abs(centre[1] - 14) <= 0.5


def test_a_wide_stroke_fills_the_box_across():
    image = canvas()
    image[100:120, 10:270, :3] = 255
    rows, cols = np.nonzero(digits.to_mnist(image)[0, 0].numpy() > 25)
    assert cols.max() - cols.min() + 1 == 20 and rows.max() - rows.min() + 1 <= 3


def test_an_enlarged_mnist_digit_comes_back_as_it_was():
    """MNIST digits were made this way, so an enlarged test image survives the round trip."""
    test = load_mnist().test
    for index in range(5):
        image = test.images[index, 0].numpy()
        enlarged = np.kron(image, np.ones((10, 10), np.uint8))
        again = digits.to_mnist(enlarged)[0, 0].numpy().astype(float)
        assert np.abs(again - image).mean() / 255 < 0.02, index


# ----------------------------------------------------------------------------- VAE


def test_vae_posterior_and_its_one_sigma_ellipse():
    model = VAE(VAEConfig(latent_dim=2, hidden=(32,))).eval()
    digit = load_mnist().test.images[:1]
    view = digits.vae_posterior(model, digit)
    assert view.mean.shape == (2,) and view.std.shape == (2,) and np.all(view.std > 0)
    assert view.reconstruction.shape == (1, 1, 28, 28)
    assert 0 <= view.reconstruction.min() and view.reconstruction.max() <= 1
    assert np.isfinite(view.elbo) and view.elbo < 0
    projection = digits.latent_projection(np.random.default_rng(0).normal(size=(50, 2)))
    ellipse = digits.sigma_ellipse(view, projection)
    # Axis-aligned for a diagonal posterior seen on its own axes: ((z - mean) / std)² sums to 1.
    radius = (((ellipse - view.mean) / view.std) ** 2).sum(1)
    assert np.allclose(radius, 1.0, atol=1e-6)


def test_a_higher_dimensional_posterior_is_seen_along_principal_components():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(200, 5)) * np.array([5.0, 3.0, 0.1, 0.1, 0.1])
    projection = digits.latent_projection(means)
    assert projection.components.shape == (2, 5)
    assert np.allclose(projection.components @ projection.components.T, np.eye(2), atol=1e-9)
    assert abs(projection.components[0, 0]) > 0.99 and abs(projection.components[1, 1]) > 0.99
    view = digits.PosteriorView(mean=means[0], std=np.array([1.0, 2.0, 0.5, 0.5, 0.5]),
                                reconstruction=torch.zeros(1, 1, 28, 28), elbo=-1.0)
    ellipse = digits.sigma_ellipse(view, projection)
    centre = projection.points(view.mean[None])[0]
    half_lengths = np.abs(ellipse - centre).max(0)
    assert half_lengths == pytest.approx([1.0, 2.0], rel=0.02)  # the stds along the first two axes


# ----------------------------------------------------------------------------- flow


def test_flow_bits_per_dim_of_a_digit_and_its_percentile_among_test_images():
    model = Flow(FlowConfig(couplings=2, hidden=16, mlp_layers=1)).eval()
    images = load_mnist().test.images[:300]
    shares = []
    distribution = digits.images_bits_per_dim(model, images, chunk=100, progress=shares.append)
    assert distribution.shape == (300,) and np.all(np.isfinite(distribution))
    assert shares == pytest.approx([1 / 3, 2 / 3, 1.0])
    value = digits.flow_bits_per_dim(model, images[:1])
    assert abs(value - distribution[0]) < 0.05  # 8 dequantization draws against one
    assert digits.percentile(distribution.min() - 1, distribution) == 0.0
    assert digits.percentile(distribution.max(), distribution) == 100.0
    assert digits.percentile(float(np.median(distribution)), distribution) == pytest.approx(50, abs=1)
    # Out of time after the first chunk: the first 100 images, with the same values.
    shares = []
    first = digits.images_bits_per_dim(model, images, chunk=100, progress=shares.append, seconds=0.0)
    assert np.array_equal(first, distribution[:100]) and shares == [1.0]


# ----------------------------------------------------------------------------- GAN


@pytest.fixture
def tiny_gan() -> GAN:
    torch.manual_seed(1)
    return GAN(GANConfig(latent_dim=4, generator_hidden=(32, 64), discriminator_hidden=(32,))).eval()


def test_nearest_generated_finds_an_image_the_generator_can_make(tiny_gan):
    z_true = torch.randn(1, 4, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        target = tiny_gan.generate(z_true)
        random_images = tiny_gan.generate(torch.randn(64, 4, generator=torch.Generator().manual_seed(6)))
    typical = (random_images - target).square().flatten(1).mean(1).sqrt().median().item()
    before = [p.clone() for p in tiny_gan.parameters()]
    nearest = digits.nearest_generated(tiny_gan, target, restarts=4, steps=100, prior_weight=0.0)
    assert nearest.image.shape == (1, 1, 28, 28) and nearest.z.shape == (4,)
    assert nearest.rmse < 0.25 * typical
    with torch.no_grad():
        assert (tiny_gan.generate(nearest.z[None]) - nearest.image).abs().max() < 1e-5
    assert all(torch.equal(a, b) for a, b in zip(before, tiny_gan.parameters()))  # only z was optimised
    assert all(p.grad is None for p in tiny_gan.parameters())


def test_discriminator_scores_are_probabilities(tiny_gan):
    scores = digits.discriminator_scores(tiny_gan, torch.rand(3, 1, 28, 28))
    assert scores.shape == (3,) and np.all((scores > 0) & (scores < 1))
