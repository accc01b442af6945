"""A small MNIST CNN, trained by the project, that judges samples of every family.

    conv 5x5 1->32, ReLU, max-pool 2  ->  conv 5x5 32->64, ReLU, max-pool 2  ->  1024
    -> linear 128, ReLU (the features for the Frechet distance) -> dropout -> linear 10

Trained on the 50k training images with random shifts of up to 2 pixels; reaches >= 99.3% on
the test set. ``python -m train classifier`` reproduces ``checkpoints/classifier.pt``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genapp.checkpoint import CheckpointError
from genapp.files import atomic_write
from genapp.data import load_mnist, to_unit

FORMAT = "genapp-classifier-1"
FEATURES = 128


class Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.hidden = nn.Linear(64 * 4 * 4, FEATURES)
        self.dropout = nn.Dropout(0.3)
        self.out = nn.Linear(FEATURES, 10)

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x float [n,1,28,28] in [0,1] -> (features [n,128], logits [n,10])."""
        h = F.relu(self.hidden(self.conv(x - 0.5).flatten(1)))
        return h, self.out(self.dropout(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[1]


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image [n,1,28,28] by up to ``max_shift`` pixels in x and y, filling with 0."""
    n = x.shape[0]
    padded = F.pad(x, (max_shift,) * 4)
    dx, dy = (torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator)).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + 28, dx[i] : dx[i] + 28] for i in range(n)])


@dataclass
class ClassifierTraining:
    epochs: int = 12
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0
    max_shift: int = 2


def train_classifier(settings: ClassifierTraining = ClassifierTraining(), log=print) -> tuple[Classifier, dict]:
    """Train on the 50k training images; returns the model (eval mode) and its figures."""
    torch.manual_seed(settings.seed)
    mnist = load_mnist()
    x, y = to_unit(mnist.train.images), mnist.train.labels
    model = Classifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    steps = settings.epochs * (len(x) // settings.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings.lr, total_steps=steps)
    generator = torch.Generator().manual_seed(settings.seed)
    start = time.time()
    for epoch in range(settings.epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for i in range(len(x) // settings.batch_size):
            idx = order[i * settings.batch_size : (i + 1) * settings.batch_size]
            batch = random_shift(x[idx], settings.max_shift, generator)
            loss = F.cross_entropy(model(batch), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        model.eval()
        log(f"epoch {epoch + 1}: validation accuracy {accuracy(model, mnist.valid.images, mnist.valid.labels):.4f}")
    figures = {
        "test_accuracy": accuracy(model, mnist.test.images, mnist.test.labels),
        "validation_accuracy": accuracy(model, mnist.valid.images, mnist.valid.labels),
        "train_seconds": round(time.time() - start, 1),
    }
    return model.eval(), figures


@torch.no_grad()
def accuracy(model: Classifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    predictions = torch.cat([model(to_unit(chunk)).argmax(1) for chunk in images.split(2000)])
    return (predictions == labels).float().mean().item()


def save_classifier(model: Classifier, path: Path, figures: dict) -> None:
    payload = {"format": FORMAT, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, "figures": figures}
    atomic_write(Path(path), lambda f: torch.save(payload, f))


def load_classifier(path: Path) -> Classifier:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: no classifier; create it with: python -m train classifier"
        ) from None
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable classifier checkpoint ({e})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a genapp classifier checkpoint")
    model = Classifier()
    model.load_state_dict(payload["state_dict"])
    return model.eval()
