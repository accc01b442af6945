"""Sample quality judged by the project's MNIST classifier, for any family.

* Frechet distance between Gaussians fitted to the classifier's 128-d penultimate features of
  the samples and of the 10k test images (the MNIST analogue of FID); the real-against-real
  floor is the distance between 10k training and the 10k test images.
* Classifier Inception Score exp(E_x KL(p(y|x) || p(y))): 10 for perfectly confident, evenly
  spread classes; the real test set scores about 9.9.
* Label coverage: KL of the predicted-label histogram to uniform (0 = every digit equally often)
  and the smallest class share (0.1 when even).
* Mean confidence: the average of max_y p(y|x).
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import torch

from genapp.data import load_mnist, to_unit
from genapp.evaluation.classifier import Classifier, load_classifier
from genapp import manifest


def classifier_path() -> Path:
    """The shipped classifier, looked up when asked (not bound at import, so a redirected
    checkpoints folder at import time cannot stick)."""
    return manifest.CHECKPOINTS_DIR / "classifier.pt"


@lru_cache(maxsize=2)
def default_classifier(path: str | None = None) -> Classifier:
    return load_classifier(Path(path) if path else classifier_path())


@torch.no_grad()
def classify(classifier: Classifier, images: torch.Tensor, chunk: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """images float [n,1,28,28] in [0,1] -> (features [n,128] float64, probabilities [n,10] float64)."""
    features, probs = [], []
    for part in images.split(chunk):
        h, logits = classifier.features_and_logits(part.float().cpu())
        features.append(h.double())
        probs.append(torch.softmax(logits.double(), dim=1))
    return torch.cat(features), torch.cat(probs)


def gaussian(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean [d] and covariance [d,d] of features [n,d] (float64)."""
    mu = features.mean(0)
    centred = features - mu
    return mu, centred.T @ centred / (len(features) - 1)


def frechet_distance(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> float:
    """|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), with the matrix root taken through
    the symmetric form S_a^(1/2) S_b S_a^(1/2), which has the same eigenvalues and is stable."""
    (mu_a, s_a), (mu_b, s_b) = a, b
    values, vectors = torch.linalg.eigh(s_a)
    root_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(root_a @ s_b @ root_a).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + torch.trace(s_a) + torch.trace(s_b) - 2 * cross)


def inception_score(probs: torch.Tensor, splits: int = 10) -> float:
    """exp(E KL(p(y|x) || p(y))), averaged over ``splits`` parts as is customary."""
    scores = []
    for part in probs.chunk(splits):
        marginal = part.mean(0, keepdim=True)
        kl = (part * (torch.log(part.clamp(min=1e-12)) - torch.log(marginal.clamp(min=1e-12)))).sum(1).mean()
        scores.append(math.exp(kl.item()))
    return sum(scores) / len(scores)


def label_coverage(probs: torch.Tensor) -> tuple[float, float]:
    """(KL of the predicted-label histogram to uniform, smallest class share)."""
    counts = torch.bincount(probs.argmax(1), minlength=10).double()
    share = counts / counts.sum()
    kl = (share * torch.log(share.clamp(min=1e-12) * 10)).sum().item()
    return kl, share.min().item()


@lru_cache(maxsize=2)
def reference(classifier_path: str | None = None) -> dict:
    """Test-set statistics and the real-data floor and ceiling, computed once per process."""
    classifier = default_classifier(classifier_path)
    mnist = load_mnist()
    test_features, test_probs = classify(classifier, to_unit(mnist.test.images))
    train_features, train_probs = classify(classifier, to_unit(mnist.train.images[:10_000]))
    test_stats = gaussian(test_features)
    return {
        "test_stats": test_stats,
        "fid_floor": frechet_distance(gaussian(train_features), test_stats),
        "is_test": inception_score(test_probs),
    }


def score_images(images: torch.Tensor, classifier_path: str | None = None) -> dict:
    """All sample-quality figures of images float [n,1,28,28] in [0,1] (n ~ 10k for FID)."""
    classifier = default_classifier(classifier_path)
    ref = reference(classifier_path)
    features, probs = classify(classifier, images)
    kl, smallest = label_coverage(probs)
    return {
        "fid": frechet_distance(gaussian(features), ref["test_stats"]),
        "fid_real_floor": ref["fid_floor"],
        "inception_score": inception_score(probs),
        "inception_score_real": ref["is_test"],
        "label_kl": kl,
        "smallest_class_share": smallest,
        "confidence": probs.max(1).values.mean().item(),
        "samples": len(images),
    }


@torch.no_grad()
def sample_quality(model, n: int = 10_000, seed: int = 0, classifier_path: str | None = None) -> dict:
    """Draw n samples from any family's ``sample`` (seeded) and score them."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    was_training = model.training
    model.eval()
    images = torch.cat([model.sample(min(1000, n - i), generator=generator).cpu() for i in range(0, n, 1000)])
    model.train(was_training)
    return score_images(images, classifier_path)
