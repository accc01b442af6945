"""checkpoints/MANIFEST.json: each shipped checkpoint with its measured figures and the command
that reproduces it. Written by ``python -m train export``; read by the explorer."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from genapp.files import write_bytes
from genapp.models import RunConfig

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
    write_bytes(path, (json.dumps(document, indent=2) + "\n").encode())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recorded_command(config: dict, run_name: str) -> str:
    """The ``python -m train`` line that recreates a run (its config.json as a dict): every model
    field, and the training fields that differ from the family's defaults."""
    return " ".join(["python", "-m", "train", *RunConfig.from_dict(config).to_argv(changed_training_only=True),
                     "--run-name", run_name])
