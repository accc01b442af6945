"""Fixtures for the explorer's tests (tiny trained runs and checkpoints in temporary folders) and
the helpers they share (running the app, reading its charts, waiting).

Nothing here needs the pretrained checkpoints: a session-wide folder holds two tiny runs (a 2-D
and a 3-D latent VAE, a few seconds of training each) and a checkpoints folder with the 2-D one
as ``vae-z2.pt``. Tests that change runs get their own copy.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from genapp.config import TrainConfig
from genapp.models import RunConfig
from genapp.models import FlowConfig, GANConfig, VAEConfig
from genapp.training import train
from genapp.jobs.local import run_state
from genapp.runs import RunDir

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "app.py")


def tiny_config(latent_dim: int = 2, epochs: int = 2, **train_fields) -> RunConfig:
    """A VAE that trains in a second or two on the CPU."""
    fields = dict(epochs=epochs, batch_size=64, train_size=256, valid_size=128, sample_count=16, device="cpu",
                  log_every=2)
    fields.update(train_fields)
    return RunConfig("vae", VAEConfig(latent_dim=latent_dim, hidden=(64, 32)), TrainConfig(**fields))


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory) -> Path:
    """A runs folder with finished runs ``tiny-z2`` and ``tiny-z3`` (latent sizes 2 and 3)."""
    root = tmp_path_factory.mktemp("runs")
    train(tiny_config(latent_dim=2), root, "tiny-z2")
    train(tiny_config(latent_dim=3), root, "tiny-z3")
    return root


@pytest.fixture(scope="session")
def pretrained_dir(tmp_path_factory, trained_runs) -> Path:
    """A checkpoints folder holding ``vae-z2.pt`` (the tiny 2-D run) but no ``vae-z20.pt``."""
    folder = tmp_path_factory.mktemp("checkpoints")
    shutil.copy(RunDir(trained_runs / "tiny-z2").best_checkpoint, folder / "vae-z2.pt")
    return folder


@pytest.fixture(scope="session")
def digits_checkpoints(tmp_path_factory) -> Path:
    """A checkpoints folder whose ``vae-z2.pt`` draws blurry but recognisable digits (10-30 s of
    training), so the browser test's screenshots show what a user would see."""
    root = tmp_path_factory.mktemp("digits")
    config = tiny_config(latent_dim=2, epochs=2, train_size=4096, valid_size=256, sample_count=64, lr=3e-3,
                         log_every=8)
    config.model.hidden = (256, 128)
    train(config, root / "runs", "digits-z2")
    folder = root / "checkpoints"
    folder.mkdir()
    shutil.copy(RunDir(root / "runs" / "digits-z2").best_checkpoint, folder / "vae-z2.pt")
    return folder


@pytest.fixture(scope="session")
def family_checkpoints(tmp_path_factory, digits_checkpoints) -> Path:
    """``digits_checkpoints`` plus a tiny GAN as ``gan.pt`` and a tiny MLP flow as ``flow-mlp.pt``
    (the names the GAN and flow tabs offer first; one epoch on 512 images each, a few seconds)."""
    root = tmp_path_factory.mktemp("families")
    fields = dict(epochs=1, batch_size=64, train_size=512, valid_size=256, sample_count=16, device="cpu",
                  log_every=4, quality_every=0)
    gan = RunConfig("gan", GANConfig(generator_hidden=(32, 64), discriminator_hidden=(64, 32)), TrainConfig(**fields))
    flow = RunConfig("flow", FlowConfig(couplings=2, hidden=32, mlp_layers=1), TrainConfig(**fields))
    folder = root / "checkpoints"
    shutil.copytree(digits_checkpoints, folder)
    for config, name in ((gan, "gan"), (flow, "flow-mlp")):
        train(config, root / "runs", name)
        run = RunDir(root / "runs" / name)
        shutil.copy(next(p for p in (run.best_checkpoint, run.last_checkpoint) if p.is_file()), folder / f"{name}.pt")
    return folder


@pytest.fixture
def runs_copy(tmp_path, trained_runs) -> Path:
    """A private copy of the trained runs, for tests that add or delete runs."""
    root = tmp_path / "runs"
    shutil.copytree(trained_runs, root)
    return root


@pytest.fixture
def app_env(monkeypatch, runs_copy, pretrained_dir) -> Path:
    """Point the app at the private runs copy and the test checkpoints; returns the runs folder."""
    monkeypatch.setenv("GENAPP_RUNS_DIR", str(runs_copy))
    monkeypatch.setenv("GENAPP_CHECKPOINTS_DIR", str(pretrained_dir))
    return runs_copy


def wait_for(predicate, timeout: float = 180.0, interval: float = 0.5, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_for_state(run: RunDir, states: tuple[str, ...], jobs=None, timeout: float = 180.0) -> str:
    """Wait until the run's (corrected) state is one of ``states``; returns it."""
    return wait_for(lambda: (s := run_state(run, jobs).state) in states and s, timeout=timeout,
                    what=f"run {run.name} to be {' or '.join(states)}")


def run(target) -> AppTest:
    """Run the app (or, given a widget after an interaction, the app it belongs to); no exceptions."""
    at = target.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def open_app(tab: str, timeout: float = 90, **state) -> AppTest:
    """The app run on main tab ``tab``, with session ``state`` set first (``gan_steps=4`` sets
    ``gan-steps``)."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.session_state["main-tab"] = tab
    for key, value in state.items():
        at.session_state[key.replace("_", "-")] = value
    return run(at)


def chart(at: AppTest, key: str) -> dict:
    """The plotly figure (as JSON) of the chart with this key."""
    for element in at.get("plotly_chart"):
        if element.proto.id.endswith(key):
            return json.loads(element.proto.spec)
    raise AssertionError(f"no chart {key!r} on the page")
