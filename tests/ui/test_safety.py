"""Security and bad input: deleting never leaves the runs directory, malformed run files and
checkpoints never crash the explorer, and the server's defaults (127.0.0.1, upload limit) hold."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from genapp.jobs.local import LaunchError, delete_run, run_state
from genapp.runs import RunDir, list_runs

from genapp.ui.text import plain

from .conftest import APP, REPO, run, tiny_config


def make_run(path, state: str = "finished") -> RunDir:
    run = RunDir(path)
    run.create(tiny_config().to_dict())
    run.write_status(state)
    return run


def test_delete_never_leaves_the_runs_directory(tmp_path):
    runs = tmp_path / "runs"
    outside = make_run(tmp_path / "outside").path  # looks like a run, but lives elsewhere
    (outside / "precious").write_text("keep me")
    (runs).mkdir()
    (runs / "linked").symlink_to(outside, target_is_directory=True)
    assert "linked" not in [r.name for r in list_runs(runs)]  # a link is no run of this folder's
    with pytest.raises(LaunchError, match="symbolic link"):
        delete_run(RunDir(runs / "linked"))
    for path in (runs / "..", runs / "a" / "..", runs / ".", runs):  # parent, or the runs directory itself
        with pytest.raises(LaunchError, match="invalid run name|not a run directory"):
            delete_run(RunDir(path))
    assert (runs / "linked").is_symlink()
    assert (outside / "precious").read_text() == "keep me" and (outside / "config.json").is_file()

    # Links inside a run are removed as links: what they point to stays.
    inner = make_run(runs / "inner")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "data.bin").write_bytes(b"x")
    (inner.samples_dir / "escape").symlink_to(elsewhere, target_is_directory=True)
    (inner.path / "file-link").symlink_to(elsewhere / "data.bin")
    delete_run(inner)
    assert not inner.path.exists() and (elsewhere / "data.bin").read_bytes() == b"x"

    # Through a runs directory that is itself a link: the run inside it goes, nothing else.
    make_run(runs / "via-link")
    (tmp_path / "runs-link").symlink_to(runs, target_is_directory=True)
    delete_run(RunDir(tmp_path / "runs-link" / "via-link"))
    assert not (runs / "via-link").exists() and (runs / "linked").is_symlink()


def write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def broken_runs(app_env):
    """The two good tiny runs plus every kind of damaged run directory (runs genapp made, with
    their marker, whose files were then broken)."""
    good = json.loads((app_env / "tiny-z2" / "config.json").read_text())
    for name in ("not-json", "a-list", "odd-types", "torn-status", "odd-state", "no-status", "bad-checkpoint"):
        write(app_env / name / ".genapp-run", "{}")
    write(app_env / "not-json" / "config.json", "{not json")
    write(app_env / "a-list" / "config.json", "[]")
    write(app_env / "odd-types" / "config.json", json.dumps({"family": "vae", "model": "x", "train": [1]}))
    write(app_env / "odd-types" / "status.json", json.dumps(
        {"state": "running", "pid": "x", "step": "three", "total_steps": True, "epoch": None, "eta_s": "soon"}))
    write(app_env / "odd-types" / "metrics.jsonl", "\n".join([
        "garbage", json.dumps({"step": "a", "split": "train"}), json.dumps([1, 2]),
        json.dumps({"step": 0, "epoch": 1, "split": "train", "loss": "high", "kl": 1.0}),
        json.dumps({"step": 1, "epoch": "one", "split": "valid", "loss": 1.0}), '{"step": 2, "spl']))
    write(app_env / "torn-status" / "config.json", json.dumps(good))
    write(app_env / "torn-status" / "status.json", '{"state": "runn')
    write(app_env / "odd-state" / "config.json", json.dumps(good))
    write(app_env / "odd-state" / "status.json", json.dumps({"state": "exploded"}))
    write(app_env / "no-status" / "config.json", json.dumps(good))
    write(app_env / "bad-checkpoint" / "config.json", json.dumps(good))
    write(app_env / "bad-checkpoint" / "status.json", json.dumps({"state": "finished", "epoch": 2}))
    write(app_env / "bad-checkpoint" / "checkpoints" / "best.pt", "not a checkpoint")
    return app_env


def test_damaged_runs_never_crash_the_explorer(broken_runs):
    states = {r.name: run_state(r).state for r in list_runs(broken_runs)}
    assert states["odd-types"] == "failed"  # says running, but no process holds the run
    assert states["torn-status"] == states["odd-state"] == "unknown"
    assert states["no-status"] == "failed" and states["tiny-z2"] == "finished"

    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["main-tab"] = "Runs"
    run(at)
    table = at.dataframe[0].value
    assert {"odd-types", "torn-status", "odd-state", "not-json", "a-list"} <= set(table["run"])
    for name in ("odd-types", "not-json", "torn-status"):
        at.selectbox(key="runs-detail").set_value(name)
        run(at)

    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["vae-view"] = "Train"
    run(at)
    at.selectbox(key="vae-watched").set_value("odd-types")
    run(at)
    errors = " ".join(e.value for e in at.error)
    assert "ended without reporting" in errors and "cannot be resumed" in errors

    at = AppTest.from_file(APP, default_timeout=90)
    run(at)
    at.selectbox(key="vae-source").set_value("Run bad-checkpoint (best.pt)")
    run(at)
    assert any("Cannot open this checkpoint" in e.value for e in at.error)


def test_a_runs_directory_that_does_not_exist_is_empty_not_an_error(monkeypatch, tmp_path, pretrained_dir):
    monkeypatch.setenv("GENAPP_RUNS_DIR", str(tmp_path / "not" / "yet"))
    monkeypatch.setenv("GENAPP_CHECKPOINTS_DIR", str(pretrained_dir))
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["main-tab"] = "Runs"
    run(at)
    assert any("does not exist yet" in c.value for c in at.caption)
    assert any("No runs in" in i.value for i in at.info)
    assert not (tmp_path / "not").exists()  # looking creates nothing


def test_a_fixed_runs_directory_cannot_be_changed_from_the_page(app_env, monkeypatch):
    monkeypatch.setenv("GENAPP_FIXED_RUNS_DIR", "1")
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["main-tab"] = "Runs"
    run(at)
    assert not [t for t in at.text_input if t.key == "runs-dir"]
    assert any(plain(app_env) in c.value for c in at.caption)


def test_server_defaults_bind_localhost_and_limit_uploads():
    """What ``streamlit run app.py`` reads from .streamlit/config.toml in the repository."""
    script = ("from streamlit import config; config.get_config_options(force_reparse=True); "
              "print(config.get_option('server.address'), config.get_option('server.maxUploadSize'), "
              "config.get_option('server.enableXsrfProtection'), config.get_option('client.toolbarMode'))")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    address, upload_mb, xsrf, toolbar = out.stdout.split()
    assert address == "127.0.0.1" and 0 < int(upload_mb) <= 128 and xsrf == "True"
    assert toolbar == "viewer"  # no Deploy button


def test_a_copied_pretrained_folder_is_only_read(app_env, pretrained_dir, tmp_path, monkeypatch):
    """Checkpoints are data: the explorer opens them read-only and never writes beside them."""
    folder = tmp_path / "readonly-checkpoints"
    shutil.copytree(pretrained_dir, folder)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    monkeypatch.setenv("GENAPP_CHECKPOINTS_DIR", str(folder))
    run(AppTest.from_file(APP, default_timeout=90))
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_run_names_that_would_leave_the_runs_directory_are_refused_in_the_form(app_env):
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["vae-view"] = "Train"
    run(at)
    before = sorted(p.name for p in app_env.iterdir())
    for name in ("../escape", "a/b", "..", "/tmp/abs"):
        at.text_input(key="vae-run-name").set_value(name)
        run(at)
        at.button(key="vae-start").click()
        run(at)
        assert any("Not started: invalid run name" in e.value for e in at.error), name
    assert sorted(p.name for p in app_env.iterdir()) == before and not (app_env.parent / "escape").exists()
