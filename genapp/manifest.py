"""checkpoints/MANIFEST.json: each shipped checkpoint with its measured figures and the command
that reproduces it. Written by ``python -m train export``; read by the explorer."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from genapp.checkpoint import atomic_write
from genapp.config import option_name, to_dict

CHECKPOINTS_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
MANIFEST = CHECKPOINTS_DIR / "MANIFEST.json"


def read_manifest(path: Path | None = None) -> dict:
    """{name: entry}; an absent or unreadable manifest is empty."""
    path = path or MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data.get("checkpoints", {}) if isinstance(data, dict) else {}


def write_entry(name: str, entry: dict, path: Path | None = None) -> None:
    path = path or MANIFEST
    entries = read_manifest(path)
    entries[name] = entry
    document = {
        "about": "Pretrained genapp checkpoints: measured figures and the command that reproduces each.",
        "checkpoints": dict(sorted(entries.items())),
    }
    atomic_write(path, lambda f: f.write((json.dumps(document, indent=2) + "\n").encode()))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_command(config: dict, run_name: str) -> str:
    """The ``python -m train`` line that recreates a run: every model field, non-default training fields."""
    parts = ["python", "-m", "train", config["family"]]
    for name, value in config["model"].items():
        parts += [option_name(name), _flag_value(value)]
    from genapp.models import get_family

    defaults = to_dict(get_family(config["family"]).default_train_config())
    for name, value in config["train"].items():
        if value != defaults.get(name):
            parts += [option_name(name), _flag_value(value)]
    parts += ["--run-name", run_name]
    return " ".join(parts)


def _flag_value(value) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
