"""Checkpoints describe themselves, round-trip, and refuse anything else with a clear error."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

import genapp
from genapp.checkpoint import FORMAT_VERSION, CheckpointError, read_checkpoint, save_checkpoint
from genapp.config import TrainConfig
from genapp.models import VAE, VAEConfig


@pytest.fixture
def saved(tmp_path) -> tuple[VAE, Path]:
    model = VAE(VAEConfig(latent_dim=3, hidden=(32, 16)))
    path = tmp_path / "vae.pt"
    save_checkpoint(path, model, train_config=TrainConfig(epochs=2), step=7, epoch=1, metrics={"loss": 1.5})
    return model, path


def test_round_trip_rebuilds_the_architecture_from_the_file(saved):
    model, path = saved
    loaded = genapp.load_model(path)
    assert isinstance(loaded, VAE) and loaded.config == model.config
    assert not loaded.training and loaded.device.type == "cpu"
    z = torch.randn(5, 3)
    assert torch.equal(loaded.decode(z), model.decode(z))
    assert loaded.checkpoint_info["step"] == 7 and loaded.checkpoint_info["metrics"] == {"loss": 1.5}
    payload = read_checkpoint(path)
    assert payload["format_version"] == FORMAT_VERSION and payload["family"] == "vae"
    assert payload["train_config"]["epochs"] == 2 and "resume" not in payload


def test_write_is_atomic_no_temporary_file_left(saved):
    _, path = saved
    assert [p.name for p in path.parent.iterdir()] == ["vae.pt"]


def test_wrong_family_and_wrong_version(saved, tmp_path):
    _, path = saved
    with pytest.raises(CheckpointError, match="a vae checkpoint, expected a gan one"):
        genapp.load_model(path, family="gan")
    payload = read_checkpoint(path)
    payload["format_version"] = 99
    other = tmp_path / "v99.pt"
    torch.save(payload, other)
    with pytest.raises(CheckpointError, match="format version 99"):
        genapp.load_model(other)
    payload["format_version"], payload["family"] = FORMAT_VERSION, "diffusion"
    torch.save(payload, other)
    with pytest.raises(CheckpointError, match="unknown model family 'diffusion'"):
        genapp.load_model(other)


def test_weights_that_do_not_fit_the_config(saved, tmp_path):
    _, path = saved
    payload = read_checkpoint(path)
    payload["model_config"]["latent_dim"] = 4
    other = tmp_path / "mismatch.pt"
    torch.save(payload, other)
    with pytest.raises(CheckpointError, match="does not match its model"):
        genapp.load_model(other)


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty file"), (b"not a checkpoint at all", "not a readable checkpoint")],
)
def test_garbage_files(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        genapp.load_model(path)


def test_truncated_checkpoint(saved):
    _, path = saved
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        genapp.load_model(path)


def test_foreign_torch_file_and_missing_file(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a genapp checkpoint"):
        genapp.load_model(path)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        genapp.load_model(tmp_path / "absent.pt")


class RunsCode:
    """Unpickling this would create a file: weights_only must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "family": "vae", "payload": RunsCode(marker)}, path, pickle_protocol=2)
    with pytest.raises(CheckpointError, match="refused"):
        genapp.load_model(path)
    assert not marker.exists()
    # The same through plain pickle, not torch's zip format.
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(CheckpointError):
        genapp.load_model(raw)
    assert not marker.exists()


def test_half_precision_copy_is_half_the_size_and_loads_as_float32(saved, tmp_path):
    from genapp.checkpoint import write_half_precision

    model, path = saved
    half = tmp_path / "half.pt"
    write_half_precision(path, half)
    assert half.stat().st_size < 0.6 * path.stat().st_size
    loaded = genapp.load_model(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    z = torch.randn(4, 3)
    assert torch.allclose(loaded.decode(z), model.decode(z), atol=1e-2)
