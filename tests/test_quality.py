"""Sample-quality scores with the shipped classifier: real data gives the floor and the ceiling,
noise and collapsed samples score badly."""
from __future__ import annotations

import pytest
import torch

from genapp.data import load_mnist, to_unit
from genapp.evaluation import quality
from genapp.evaluation.classifier import accuracy, load_classifier, random_shift


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def test_the_shipped_classifier_is_accurate(mnist):
    classifier = load_classifier(quality.classifier_path())
    assert accuracy(classifier, mnist.test.images, mnist.test.labels) >= 0.993


def test_real_images_reach_the_floor_and_the_ceiling(mnist):
    scores = quality.score_images(to_unit(mnist.valid.images))
    ref = quality.reference()
    # Held-out real digits: about as far from the test set as the training digits are.
    assert scores["fid"] < 3 * ref["fid_floor"] + 0.5
    assert scores["inception_score"] > 9.5 and ref["is_test"] > 9.5
    assert scores["label_kl"] < 0.01 and scores["smallest_class_share"] > 0.08
    assert scores["confidence"] > 0.98


def test_noise_and_a_collapsed_generator_score_badly(mnist):
    noise = torch.rand(2000, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    bad = quality.score_images(noise)
    ref = quality.reference()
    assert bad["fid"] > 50 * ref["fid_floor"]
    assert bad["inception_score"] < 3
    ones = to_unit(mnist.test.images[mnist.test.labels == 1][:1000])  # mode collapse onto one digit
    collapsed = quality.score_images(ones)
    assert collapsed["inception_score"] < 1.5
    assert collapsed["label_kl"] > 2.0 and collapsed["smallest_class_share"] == 0.0


def test_frechet_distance_of_known_gaussians():
    eye = torch.eye(3, dtype=torch.float64)
    a = (torch.zeros(3, dtype=torch.float64), eye)
    assert quality.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    b = (torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64), 4 * eye)
    # |mu|^2 + tr(I + 4I - 2 * 2I) = 9 + 3
    assert quality.frechet_distance(a, b) == pytest.approx(12.0, abs=1e-9)


def test_random_shift_moves_pixels_and_keeps_shapes():
    x = torch.zeros(4, 1, 28, 28)
    x[:, :, 14, 14] = 1
    shifted = random_shift(x, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape and torch.all(shifted.sum((1, 2, 3)) == 1)
