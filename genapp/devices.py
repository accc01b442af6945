"""Where a model can train: what this machine has, and the device a config's name means."""
from __future__ import annotations

import os
import platform

import torch


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then the CPU; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device cuda requested, but this machine has no CUDA device")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(f"device {name} requested, but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not _mps_available():
        raise RuntimeError("device mps requested, but MPS is not available here")
    return device


def device_name(device: torch.device) -> str:
    """A human description of the hardware behind ``device`` (GPU or CPU model)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple GPU (MPS)"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        model = ""
    return f"{model or platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def available_devices() -> list[tuple[str, str]]:
    """(device id, description) for every device this machine can train on."""
    devices = [("cpu", f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            devices.append((f"cuda:{i}", f"{p.name}, {p.total_memory / 2**30:.0f} GiB"))
    if _mps_available():
        devices.append(("mps", "Apple GPU (MPS)"))
    return devices
