"""Shared fixtures: tiny configs on the CPU, seeded, in temporary run directories."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from genapp.config import TrainConfig
from genapp.models import RunConfig
from genapp.models import VAEConfig

ROOT = Path(__file__).resolve().parents[1]


def tiny_vae_run(epochs: int = 1, **train) -> RunConfig:
    """A VAE run that trains in about a second: 512 images, small hidden layers."""
    options = dict(epochs=epochs, batch_size=64, train_size=512, valid_size=256, device="cpu",
                   sample_count=16, log_every=4)
    options.update(train)
    return RunConfig("vae", VAEConfig(latent_dim=2, hidden=(64, 32)), TrainConfig(**options))


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _own_job_queue(tmp_path_factory, monkeypatch):
    """A job queue of each test's own (the server's queue is per user otherwise, and a job left
    by one test would hold another's slot), inherited by every job the test starts."""
    monkeypatch.setenv("GENAPP_QUEUE_DIR", str(tmp_path_factory.mktemp("queue")))


@pytest.fixture
def python() -> str:
    return sys.executable
