"""The engine: run directory contents, determinism, resume, SIGTERM, divergence."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from genapp.checkpoint import read_checkpoint
from genapp.config import ConfigError, TrainConfig
from genapp.models import RunConfig
from genapp.models import FAMILIES, VAE
from genapp.runs import RunDir, RunError
from genapp.training import resume, train
from genapp.runs import check_run_name
from tests.conftest import ROOT, tiny_vae_run


def weights(run: RunDir, which: str = "last") -> dict:
    return read_checkpoint(run.path / "checkpoints" / f"{which}.pt")["state_dict"]


def test_a_run_directory_holds_everything_the_design_names(runs_dir):
    result = train(tiny_vae_run(epochs=2), runs_dir, "tiny")
    run = result.run
    assert result.state == "finished" and result.step == 2 * (512 // 64)
    assert RunConfig.from_dict(run.read_config()).to_dict() == tiny_vae_run(epochs=2).to_dict()
    status = run.read_status()
    assert status["state"] == "finished" and status["step"] == status["total_steps"] == 16
    records, _ = run.read_metrics()
    train_steps = [r["step"] for r in records if r["split"] == "train"]
    assert train_steps == list(range(16))  # every step, once
    valid = [r for r in records if r["split"] == "valid"]
    assert [r["epoch"] for r in valid] == [1, 2]
    assert all({"loss", "recon", "kl"} <= set(r) for r in records)
    assert run.sample_epochs() == [0, 1, 2]
    assert run.last_checkpoint.is_file() and run.best_checkpoint.is_file()
    assert "resume" in read_checkpoint(run.last_checkpoint)
    assert "resume" not in read_checkpoint(run.best_checkpoint)  # no optimizer state in best.pt
    leftovers = [p for p in run.path.rglob("*.tmp")]
    assert leftovers == []


def test_same_seed_same_weights_other_seed_other_weights(runs_dir):
    a = train(tiny_vae_run(), runs_dir, "a").run
    b = train(tiny_vae_run(), runs_dir, "b").run
    c = train(tiny_vae_run(seed=1), runs_dir, "c").run
    wa, wb, wc = weights(a), weights(b), weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_resume_continues_exactly_where_the_run_stopped(runs_dir):
    straight = train(tiny_vae_run(epochs=2), runs_dir, "straight").run
    split = train(tiny_vae_run(epochs=1), runs_dir, "split")
    assert split.step == 8
    result = resume(runs_dir, "split", epochs=2)
    assert result.state == "finished" and result.step == 16
    ws, wr = weights(straight), weights(result.run)
    assert all(torch.equal(ws[k], wr[k]) for k in ws)
    records, _ = result.run.read_metrics()
    assert [r["step"] for r in records if r["split"] == "train"] == list(range(16))


class StopAfter:
    """A callback that raises the stop flag, as SIGTERM does, after some steps."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_steps(self, trainer, records):
        if trainer.step >= self.steps:
            trainer.stop_requested = True

    def on_start(self, trainer): ...
    def on_epoch_end(self, trainer, record): ...
    def on_end(self, trainer, state): ...


def test_a_stop_mid_epoch_resumes_to_the_same_weights(runs_dir):
    straight = train(tiny_vae_run(epochs=2), runs_dir, "straight").run
    stopped = train(tiny_vae_run(epochs=2), runs_dir, "stopped", callbacks=[StopAfter(12)])
    assert stopped.state == "stopped" and stopped.step == 12
    assert read_checkpoint(stopped.run.last_checkpoint)["resume"]["batch_in_epoch"] == 4
    result = resume(runs_dir, "stopped")
    assert result.state == "finished" and result.step == 16
    ws, wr = weights(straight), weights(result.run)
    assert all(torch.equal(ws[k], wr[k]) for k in ws)


def test_sigterm_checkpoints_and_exits_cleanly(runs_dir):
    cmd = [sys.executable, "-m", "train", "vae", "--latent-dim", "2", "--hidden", "64,32", "--epochs", "500",
           "--train-size", "512", "--valid-size", "128", "--batch-size", "64", "--device", "cpu",
           "--runs-dir", str(runs_dir), "--run-name", "long", "--no-progress"]
    job = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = RunDir.open(runs_dir, "long")
    deadline = time.time() + 120
    while time.time() < deadline and not run.last_checkpoint.exists():
        time.sleep(0.2)
    assert run.last_checkpoint.exists(), job.stderr.read() if job.poll() is not None else "no checkpoint"
    job.send_signal(signal.SIGTERM)
    out, err = job.communicate(timeout=60)
    assert job.returncode == 0, err
    status = run.read_status()
    assert status["state"] == "stopped"
    checkpoint = read_checkpoint(run.last_checkpoint)
    assert checkpoint["step"] == status["step"] > 0
    # And it resumes from there, counting on.
    result = subprocess.run(cmd[:4] + ["--runs-dir", str(runs_dir), "--resume", "long", "--epochs",
                            str(checkpoint["epoch"] + 1), "--no-progress"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert run.read_status()["state"] == "finished"
    assert run.read_status()["step"] > checkpoint["step"]


class ExplodingVAE(VAE):
    """Returns NaN from the 13th training step on."""

    name = "exploding"
    calls = 0

    def forward(self, batch):
        parts = super().forward(batch)
        ExplodingVAE.calls += 1
        if ExplodingVAE.calls > 12:
            parts["loss"] = parts["loss"] * float("nan")
        return parts


def test_a_nan_loss_ends_as_diverged_and_keeps_the_last_good_checkpoint(runs_dir, monkeypatch):
    monkeypatch.setitem(FAMILIES, "exploding", ExplodingVAE)
    ExplodingVAE.calls = 0
    config = tiny_vae_run(epochs=3)
    config.family = "exploding"
    result = train(config, runs_dir, "boom")
    assert result.state == "diverged"
    status = result.run.read_status()
    assert status["state"] == "diverged" and status["diverged_step"] == 12
    assert "nan" in status["error"]
    assert read_checkpoint(result.run.last_checkpoint)["step"] == 8  # the end of epoch 1
    records, _ = result.run.read_metrics()
    assert max(r["step"] for r in records if r["split"] == "train") == 11


def test_run_names_cannot_leave_the_runs_directory(runs_dir):
    for bad in ["../escape", "a/b", "..", "", ".hidden", "x" * 101, "a\\b"]:
        with pytest.raises(RunError):
            check_run_name(bad)
    with pytest.raises(RunError):
        train(tiny_vae_run(), runs_dir, "../outside")
    assert not (runs_dir.parent / "outside").exists()


def test_an_existing_run_is_not_overwritten(runs_dir):
    train(tiny_vae_run(), runs_dir, "once")
    with pytest.raises(RunError, match="already exists"):
        train(tiny_vae_run(), runs_dir, "once")


def test_partial_and_malformed_metric_lines_are_skipped(runs_dir):
    run = train(tiny_vae_run(), runs_dir, "m").run
    records, offset = run.read_metrics()
    with open(run.metrics_path, "a") as f:
        f.write("{not json}\n")
        f.write('{"step": 99, "split": "train", "loss": 1')  # a write in progress
    more, offset2 = run.read_metrics(offset)
    assert more == []
    with open(run.metrics_path, "a") as f:
        f.write("}\n")
    more, _ = run.read_metrics(offset2)
    assert more == [{"step": 99, "split": "train", "loss": 1}]


@pytest.mark.parametrize(
    "field, value, message",
    [("epochs", 0, "epochs"), ("batch_size", 0, "batch_size"), ("lr", -1.0, "lr"),
     ("device", "tpu", "device"), ("lr_schedule", "step", "lr_schedule")],
)
def test_invalid_training_values_are_refused(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{field: value})


def test_config_from_json_refuses_unknown_fields_and_wrong_types():
    good = tiny_vae_run().to_dict()
    assert RunConfig.from_dict(json.loads(json.dumps(good))).to_dict() == good
    with pytest.raises(ConfigError, match="unknown TrainConfig field"):
        RunConfig.from_dict({**good, "train": {**good["train"], "epochz": 3}})
    with pytest.raises(ConfigError, match="epochs: expected an integer"):
        RunConfig.from_dict({**good, "train": {**good["train"], "epochs": 2.5}})
    with pytest.raises(ConfigError, match="unknown model family"):
        RunConfig.from_dict({**good, "family": "nope"})


def test_a_sigterm_during_start_up_stops_the_run_cleanly(runs_dir):
    import os

    from genapp.training import job

    previous = signal.getsignal(signal.SIGTERM)
    try:
        job.catch_sigterm_early()
        os.kill(os.getpid(), signal.SIGTERM)  # arrives before the trainer exists
        result = train(tiny_vae_run(epochs=2), runs_dir, "early")
    finally:
        job._early_stop.clear()
        signal.signal(signal.SIGTERM, previous)
    assert result.state == "stopped" and result.step == 0
    assert read_checkpoint(result.run.last_checkpoint)["step"] == 0
    assert resume(runs_dir, "early").state == "finished"
