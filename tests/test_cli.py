"""The headless CLI end to end on a small subset: train, evaluate, refuse bad input."""
from __future__ import annotations

import json
import subprocess
import sys

from genapp.runs import RunDir
from tests.conftest import ROOT


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_train_then_evaluate(tmp_path):
    runs = tmp_path / "runs"
    result = cli("vae", "--latent-dim", "2", "--hidden", "64,32", "--epochs", "2", "--train-size", "1024",
                 "--valid-size", "256", "--batch-size", "64", "--device", "cpu", "--runs-dir", str(runs),
                 "--run-name", "cli")
    assert result.returncode == 0, result.stderr
    assert "finished: run cli at step 32" in result.stderr
    assert "img/s" in result.stderr  # the progress bar
    run = RunDir.open(runs, "cli")
    assert run.read_config()["model"] == {"latent_dim": 2, "hidden": [64, 32], "kl_weight": 1.0, "autoencoder": False}

    result = cli("eval", str(run.best_checkpoint), "--limit", "100", "--k", "20", "--json", "--quality-samples", "0")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["family"] == "vae" and figures["test_images"] == 100
    # An IWAE bound with 20 samples is tighter than the ELBO: a smaller NLL.
    assert 0 < figures["test_iwae_nll_k20_nats"] < figures["test_neg_elbo_nats"] < 600


def test_bad_values_and_bad_files_are_one_line_errors(tmp_path):
    result = cli("vae", "--epochs", "0", "--runs-dir", str(tmp_path))
    assert result.returncode == 1 and "epochs must be at least 1" in result.stderr
    assert "Traceback" not in result.stderr
    result = cli("vae", "--latent-dim", "two", "--runs-dir", str(tmp_path))
    assert result.returncode == 1 and "latent_dim" in result.stderr
    result = cli("vae", "--run-name", "../x", "--epochs", "1", "--runs-dir", str(tmp_path))
    assert result.returncode == 1 and "invalid run name" in result.stderr
    (tmp_path / "junk.pt").write_bytes(b"junk")
    result = cli("eval", str(tmp_path / "junk.pt"))
    assert result.returncode == 1 and "error:" in result.stderr and "Traceback" not in result.stderr
    result = cli("vae", "--resume", "missing", "--runs-dir", str(tmp_path))
    assert result.returncode == 1 and "no run 'missing'" in result.stderr


def test_export_ships_the_best_checkpoint_with_its_figures(tmp_path, monkeypatch):
    from genapp import load_model, manifest
    from genapp.checkpoint import read_checkpoint
    from train.cli import main

    runs = tmp_path / "runs"
    assert cli("vae", "--latent-dim", "2", "--hidden", "32,16", "--epochs", "1", "--train-size", "256",
               "--valid-size", "128", "--batch-size", "64", "--device", "cpu", "--runs-dir", str(runs),
               "--run-name", "small", "--no-progress").returncode == 0
    monkeypatch.setattr(manifest, "CHECKPOINTS_DIR", tmp_path / "checkpoints")
    monkeypatch.setattr(manifest, "MANIFEST", tmp_path / "checkpoints" / "MANIFEST.json")
    assert main(["export", "small", "--name", "tiny", "--runs-dir", str(runs), "--k", "5", "--quality-samples", "0"]) == 0
    entry = manifest.read_manifest()["tiny"]
    shipped = tmp_path / "checkpoints" / "tiny.pt"
    assert "resume" not in read_checkpoint(shipped)  # no optimizer state in a shipped checkpoint
    assert load_model(shipped).config.latent_dim == 2
    assert entry["sha256"] == manifest.sha256(shipped) and entry["size_bytes"] == shipped.stat().st_size
    assert entry["test"]["test_images"] == 10_000 and entry["test"]["test_neg_elbo_nats"] > 0
    assert entry["command"].startswith("python -m train vae --latent-dim=2 --hidden=32,16 --kl-weight=1.0 "
                                       "--autoencoder=false --epochs=1")
    assert "--run-name small" in entry["command"] and entry["train_seconds"] > 0
    assert entry["run"] == "small"  # the explorer shows this run's history beside the shipped file
    # ... and ships it: the history is a run directory of its own beside the checkpoint
    history = RunDir(tmp_path / "checkpoints" / entry["history"])
    assert entry["history"] == "history/tiny" and history.family == "vae" and history.read_status()["state"] == "finished"
    assert history.read_metrics()[0] == RunDir.open(runs, "small").read_metrics()[0]  # short: nothing thinned
    assert history.sample_epochs() == [0, 1] and set(history.picture_kinds()) == {"fixed", "fixed-draws", "fresh",
                                                                                 "fresh-draws", "manifold"}
    assert history.latent_epochs() == [0, 1]
    assert entry["history_bytes"] == sum(p.stat().st_size for p in history.path.rglob("*") if p.is_file())
    assert main(["export", "small", "--name", "../escape", "--runs-dir", str(runs), "--quality-samples", "0"]) == 1
    assert not (tmp_path / "escape.pt").exists()


def test_submit_jobs_and_stop_work_on_the_local_backend(tmp_path, monkeypatch):
    monkeypatch.delenv("GENAPP_JOB_BACKEND", raising=False)
    from genapp.jobs.local import run_state
    from tests.ui.conftest import wait_for

    runs = tmp_path / "runs"
    tiny = ["--latent-dim=2", "--hidden=32,16", "--train-size=512", "--valid-size=256", "--batch-size=64",
            "--sample-count=16", "--device=cpu", f"--runs-dir={runs}"]
    out = cli("submit", "--backend", "local", "vae", *tiny, "--epochs=400", "--run-name=bg")
    assert out.returncode == 0 and out.stdout.strip() == "bg", out.stderr  # prints the run id, returns at once
    run = RunDir.open(runs, "bg")
    wait_for(lambda: run_state(run).state == "running" and run.read_status().get("step", 0) > 0, timeout=120,
             what="the first steps")
    listing = cli("jobs", f"--runs-dir={runs}")
    assert listing.returncode == 0 and listing.stdout.splitlines()[1].split()[:2] == ["bg", "running"]
    out = cli("stop", "bg", f"--runs-dir={runs}")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: run_state(run).state == "stopped", timeout=60, what="the run to stop")
    assert run.last_checkpoint.is_file()
    out = cli("stop", "bg", f"--runs-dir={runs}")
    assert out.returncode == 1 and "not running" in out.stderr


def test_the_ray_backend_without_ray_says_what_to_install():
    code = ("import sys; sys.modules['ray'] = None\n"
            "from genapp.jobs import LaunchError, backend\n"
            "try:\n    backend('ray')\nexcept LaunchError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert 'pip install "ray[default]"' in out.stdout
    result = cli("jobs", "--backend", "ray", "--runs-dir", str(ROOT / "runs-none"))
    if result.returncode == 1:  # Ray missing here, or no head: either way one line that says so
        assert "error:" in result.stderr and "Traceback" not in result.stderr
