"""TensorBoard event files, read back with TensorBoard's own ``EventAccumulator``: every logged
quantity as a scalar series, the fixed-noise grid per epoch, the config as text; a stopped and
resumed run (in process, or killed with SIGKILL) with no duplicated steps."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genapp.runs import RunDir
from genapp.training import resume, train
from tests.conftest import ROOT, tiny_vae_run

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

# Keep every event: the default reservoir keeps 10,000 scalars but only 4 images per tag.
EVERYTHING = {event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0, event_accumulator.TENSORS: 0}


def events(run: RunDir):
    accumulator = event_accumulator.EventAccumulator(str(run.path), size_guidance=EVERYTHING)
    accumulator.Reload()
    return accumulator


def steps(accumulator, tag: str) -> list[int]:
    return [event.step for event in accumulator.Scalars(tag)]


def metric_steps(run: RunDir, split: str) -> list[int]:
    records, _ = run.read_metrics()
    return [r["step"] for r in records if r["split"] == split]


def test_a_tiny_run_writes_every_curve_its_grids_and_its_config(runs_dir):
    run = train(tiny_vae_run(epochs=2), runs_dir, "tiny").run
    assert list(run.path.glob("events.out.tfevents.*"))
    acc = events(run)
    tags = acc.Tags()
    records, _ = run.read_metrics()
    train_names = {k for r in records if r["split"] == "train" for k in r} - {"step", "epoch", "split", "time"}
    valid_names = {k for r in records if r["split"] == "valid" for k in r} - {"step", "epoch", "split", "time"}
    assert {f"{n}/train" for n in train_names} | {f"{n}/valid" for n in valid_names} <= set(tags["scalars"])
    assert "loss/train" in tags["scalars"] and "loss/valid" in tags["scalars"]
    # Per step and per epoch, at the run's own global steps, with the values of metrics.jsonl.
    assert steps(acc, "loss/train") == metric_steps(run, "train") == list(range(16))
    assert steps(acc, "loss/valid") == metric_steps(run, "valid") == [8, 16]
    train_loss = [r["loss"] for r in records if r["split"] == "train"]
    assert [e.value for e in acc.Scalars("loss/train")] == pytest.approx(train_loss, rel=1e-6)
    # Wall times are the records' own.
    assert [e.wall_time for e in acc.Scalars("loss/valid")] == pytest.approx(
        [r["time"] for r in records if r["split"] == "valid"], abs=1e-3)
    # The fixed-noise grid at epoch 0 (step 0) and at the end of every epoch, as PNG of its size.
    images = acc.Images("samples/fixed")
    assert [i.step for i in images] == [0, 8, 16]
    assert images[-1].encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image
    with Image.open(run.sample_path(2)) as grid:
        assert (images[-1].width, images[-1].height) == grid.size
    # The configuration as text (the text plugin stores it as a string tensor).
    assert "config/text_summary" in tags["tensors"]  # add_text("config") as the text plugin names it
    text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert '"latent_dim": 2' in text and '"epochs": 2' in text


def test_a_stopped_and_resumed_run_has_each_step_once(runs_dir):
    from tests.test_engine import StopAfter
    stopped = train(tiny_vae_run(epochs=2), runs_dir, "stopped", callbacks=[StopAfter(12)])
    assert stopped.state == "stopped" and stopped.step == 12
    assert steps(events(stopped.run), "loss/train") == list(range(12))
    result = resume(runs_dir, "stopped")
    assert result.state == "finished"
    acc = events(result.run)
    assert len(list(result.run.path.glob("events.out.tfevents.*"))) == 2  # one per session
    assert steps(acc, "loss/train") == list(range(16)) == metric_steps(result.run, "train")
    assert steps(acc, "loss/valid") == [8, 16]
    assert [i.step for i in acc.Images("samples/fixed")] == [0, 8, 12, 16]  # 12: the resumed session's first grid


def test_a_killed_run_leaves_readable_events_and_resumes_without_duplicates(runs_dir):
    """SIGKILL (no handler runs) mid-training: the events up to the last flush read back; the
    resumed run purges what the killed session wrote after its checkpoint."""
    cmd = [sys.executable, "-m", "train", "vae", "--latent-dim", "2", "--hidden", "64,32", "--epochs", "500",
           "--train-size", "512", "--valid-size", "128", "--batch-size", "64", "--device", "cpu",
           "--runs-dir", str(runs_dir), "--run-name", "killed", "--no-progress"]
    job = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    run = RunDir.open(runs_dir, "killed")
    deadline = time.time() + 120
    try:
        while time.time() < deadline and len(metric_steps(run, "valid") if run.metrics_path.exists() else []) < 3:
            assert job.poll() is None, job.stderr.read()
            time.sleep(0.1)
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=30)
    valid_steps = metric_steps(run, "valid")
    assert len(valid_steps) >= 3
    killed = events(run)
    # Flushed after every epoch: at least the epochs before the last one are there, in order.
    written = steps(killed, "loss/valid")
    assert written == valid_steps[: len(written)] and len(written) >= len(valid_steps) - 1
    assert steps(killed, "loss/train") == sorted(set(steps(killed, "loss/train")))
    from genapp.checkpoint import read_checkpoint
    checkpoint = read_checkpoint(run.last_checkpoint)
    result = resume(runs_dir, "killed", epochs=checkpoint["epoch"] + 2)
    assert result.state == "finished"
    acc = events(run)
    train_steps = steps(acc, "loss/train")
    assert train_steps == list(range(result.step)) == metric_steps(run, "train")
    assert steps(acc, "loss/valid") == metric_steps(run, "valid")
    assert len(set(steps(acc, "loss/valid"))) == checkpoint["epoch"] + 2
