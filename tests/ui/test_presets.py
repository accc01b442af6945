"""The training form's presets: the GPU recipe is the shipped checkpoint's."""
from __future__ import annotations

from genapp.config import to_dict
from genapp.manifest import read_manifest
from genapp.models import FlowConfig
from genapp.ui.presets import preset_names, preset_values


def test_the_flow_gpu_preset_is_the_recipe_of_the_pretrained_conv_flow():
    assert preset_names("flow") == ["Seed reproduction", "Multi-scale conv (GPU)", "Custom"]
    assert "Multi-scale conv (GPU)" not in preset_names("vae")
    values = preset_values("flow", "Multi-scale conv (GPU)")
    entry = read_manifest()["flow-conv"]
    # The manifest predates options added since (the split MLP flow's): those are at their defaults.
    defaults = to_dict(FlowConfig())
    assert values["model"] == {**defaults, **entry["model_config"]}
    shipped = entry["train_config"]
    for name in ("epochs", "batch_size", "lr", "lr_schedule", "seed"):
        assert values["train"][name] == shipped[name], name
