"""The catalog of models to compare: one entry per pretrained checkpoint or run, with the figures
measured on it, and one plain row of those figures per model (the Compare tab and the report).

A pretrained checkpoint's figures come from ``checkpoints/MANIFEST.json`` (measured on the test
set at export: IWAE with k=1000 for a VAE, 4 dequantization draws for a flow, 10k samples for the
classifier scores); a run's from what it logged (its checkpoint's validation metrics and, where
the run scored samples, its quality record), until ``genapp.evaluation.evaluate`` measures them.
Nothing here imports streamlit: the Compare tab and the report both build on it; how the table
looks is the tab's (``genapp.ui.compare_table``).

Likelihoods live on different data: the VAE models the fixed binarization of the test images
(bits per *binary* pixel), the flow the dequantized 8-bit images (bits per 8-bit pixel); the GAN
defines none. Every row says which data its likelihood is on.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genapp.checkpoint import read_header
from genapp.config import ConfigError, from_dict
from genapp.data import PIXELS
from genapp.manifest import read_manifest
from genapp.models import FAMILIES, GenerativeModel, get_family
from genapp.runs import RunDir, RunError


@dataclass
class ModelEntry:
    """One model to compare: where it comes from and everything recorded about it.

    ``figures`` uses the manifest's test keys (``test_neg_elbo_nats``, ``test_iwae_nll_k1000_nats``,
    ``test_bpd``, ``test_nll_nats``, ``quality_fid``, ...); ``logged`` holds the validation
    metrics saved with the checkpoint (``loss``/``recon``/``kl``, ``bpd``, ``fid``, ...).
    """

    name: str
    kind: str  # "pretrained" | "run"
    family: str
    model_config: dict
    train_config: dict = field(default_factory=dict)
    checkpoint: Path | None = None
    epoch: int | None = None
    figures: dict = field(default_factory=dict)
    figures_source: str = "measured"  # where ``figures`` come from: "at export" (the manifest), "measured here"
    logged: dict = field(default_factory=dict)
    train_seconds: float | None = None
    device: str | None = None
    device_name: str | None = None
    run: RunDir | None = None

    @property
    def key(self) -> str:
        """Unique among entries: a pretrained model and a run may share a name."""
        return f"{self.kind}:{self.name}"

    @property
    def label(self) -> str:
        return self.name if self.kind == "pretrained" else f"run {self.name}"

    @property
    def has_test_figures(self) -> bool:
        return bool(self.figures)


# ----------------------------------------------------------------------------- gathering


def pretrained_entries(checkpoints_dir: Path) -> list[ModelEntry]:
    """Every model checkpoint in ``checkpoints_dir``: those in its MANIFEST.json with their
    measured figures, then any other ``*.pt`` model file with what it recorded itself."""
    manifest = read_manifest(checkpoints_dir / "MANIFEST.json")
    entries, seen = [], set()
    for name, item in manifest.items():
        path = checkpoints_dir / item.get("file", f"{name}.pt")
        if item.get("family") not in FAMILIES or not path.is_file():
            continue
        seen.add(path.name)
        entries.append(ModelEntry(
            name=name, kind="pretrained", family=item["family"], model_config=dict(item.get("model_config") or {}),
            train_config=dict(item.get("train_config") or {}), checkpoint=path, epoch=item.get("epoch"),
            figures=dict(item.get("test") or {}), figures_source="at export", logged=dict(item.get("validation") or {}),
            train_seconds=item.get("train_seconds"), device=item.get("device"), device_name=item.get("device_name"),
        ))
    for path in sorted(checkpoints_dir.glob("*.pt")):
        if path.name in seen:
            continue
        try:
            header = read_header(path)
        except (OSError, RuntimeError, ValueError):
            continue
        if header["family"] not in FAMILIES:  # the classifier, or something else
            continue
        entries.append(ModelEntry(
            name=path.stem, kind="pretrained", family=header["family"], model_config=header["model_config"] or {},
            train_config=header["train_config"] or {}, checkpoint=path, epoch=header["epoch"],
            logged=dict(header["metrics"] or {}),
        ))
    return sorted(entries, key=lambda e: (list(FAMILIES).index(e.family), e.name))


def run_entry(run: RunDir) -> ModelEntry | None:
    """A run with a checkpoint, described by its config, status and checkpoint; None without one."""
    path = run.checkpoint
    if path is None:
        return None
    try:
        config = run.read_config()
        header = read_header(path)
    except (RunError, OSError, RuntimeError, ValueError):
        return None
    if config.get("family") not in FAMILIES:
        return None
    status = run.read_status()
    seconds = status.get("train_seconds")
    if seconds is None and status.get("started") and status.get("updated"):
        seconds = status["updated"] - status["started"]
    return ModelEntry(
        name=run.name, kind="run", family=config["family"], model_config=dict(config.get("model") or {}),
        train_config=dict(config.get("train") or {}), checkpoint=path, epoch=header["epoch"],
        logged=dict(header["metrics"] or {}), train_seconds=seconds, device=status.get("device"),
        device_name=status.get("device_name"), run=run,
    )


def parameter_count(entry: ModelEntry) -> int | None:
    """Parameters, as measured or by building the architecture the config describes (no weights)."""
    if entry.figures.get("parameters"):
        return int(entry.figures["parameters"])
    try:
        cls = get_family(entry.family)
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            return cls(from_dict(cls.Config, entry.model_config)).num_parameters()
    except (ConfigError, TypeError, ValueError, RuntimeError):
        return None


# ----------------------------------------------------------------------------- rows


def likelihood(entry: ModelEntry) -> dict:
    """nll_nats, bpd, estimate and data of an entry's best-known likelihood, as its family judges
    it (all None, with the reason, for a family without one).

    A VAE's is an upper bound on -log p(x): IWAE with the largest k measured, else the -ELBO;
    bits per dimension divide nats by 784 ln 2 either way, so a VAE's are bits per binary
    pixel and a flow's bits per 8-bit pixel.
    """
    family = get_family(entry.family)
    none = {"nll_nats": None, "bpd": None, "likelihood_estimate": None}
    reason = family.no_likelihood(entry.model_config)
    if reason is not None:
        return {**none, "likelihood_data": f"— ({reason})"}
    best = family.likelihood(entry.figures, entry.logged)
    if best is None:
        return {**none, "likelihood_data": "not measured"}
    images = entry.figures.get("test_images") if best.split == "test" else None
    where = f"{best.split} set" + (f" ({images:,} images)" if images and images != 10_000 else "")
    return {"nll_nats": best.nll_nats, "bpd": best.nll_nats / (PIXELS * math.log(2)),
            "likelihood_estimate": best.estimate, "likelihood_data": f"{where}, {family.likelihood_data}"}


def quality(entry: ModelEntry) -> dict:
    """The classifier scores: measured ones (``quality_*``), else those the run logged."""
    figures, logged = entry.figures, entry.logged
    if "quality_fid" in figures:
        get, samples, when = (lambda k: figures.get(f"quality_{k}")), figures.get("quality_samples"), entry.figures_source
    elif "fid" in logged:
        get, samples, when = logged.get, entry.train_config.get("quality_samples"), "logged in training"
    else:
        return {k: None for k in ("fid", "fid_real_floor", "inception_score", "inception_score_real", "label_kl",
                                  "quality_samples", "quality_measured")}
    return {"fid": get("fid"), "fid_real_floor": get("fid_real_floor"), "inception_score": get("inception_score"),
            "inception_score_real": get("inception_score_real"), "label_kl": get("label_kl"),
            "quality_samples": samples, "quality_measured": when}


def objective(entry: ModelEntry) -> str:
    return get_family(entry.family).objective_text(entry.model_config)


def comparison_row(entry: ModelEntry, samples_per_s: float | None = None) -> dict:
    """One row of plain values (None where a figure is undefined or unknown): the table's and
    the report's CSV."""
    return {
        "model": entry.label, "source": entry.kind, "family": get_family(entry.family).label,
        "objective": objective(entry), **likelihood(entry), **quality(entry),
        "parameters": parameter_count(entry), "epoch": entry.epoch,
        "train_seconds": entry.train_seconds, "device": device_text(entry),
        "samples_per_s": samples_per_s,
    }


def comparison_rows(entries: list[ModelEntry], speeds: dict[str, float] | None = None) -> list[dict]:
    speeds = speeds or {}
    return [comparison_row(e, speeds.get(e.key)) for e in entries]


def device_text(entry: ModelEntry) -> str | None:
    if not entry.device:
        return None
    return f"{entry.device} ({entry.device_name})" if entry.device_name else entry.device


def real_data_row(rows: list[dict]) -> dict | None:
    """The real-data reference the scores are judged against: the FID floor (10k training vs
    the 10k test images) and the test set's IS, from the first row that records them."""
    floor = next((r["fid_real_floor"] for r in rows if r.get("fid_real_floor") is not None), None)
    real_is = next((r["inception_score_real"] for r in rows if r.get("inception_score_real") is not None), None)
    if floor is None and real_is is None:
        return None
    return {"model": "real MNIST", "fid": floor, "inception_score": real_is}


# ----------------------------------------------------------------------------- speed


@torch.no_grad()
def sampling_speed(model: GenerativeModel, n: int = 256, repeats: int = 3, seconds: float = 0.25) -> float:
    """Images per second of ``model.sample(n)`` where the model is, the median of ``repeats``
    timed draws after one small warm-up draw. A slow model draws fewer than ``n`` per call (as many
    as the warm-up says fit in about ``seconds``, at least 8), so that measuring it stays quick:
    the conv flow draws 64 images in 1.3 s on a 2-core CPU."""
    model.eval()
    generator = torch.Generator(device=model.device).manual_seed(0)
    start = time.perf_counter()
    model.sample(8, generator=generator)
    per_image = (time.perf_counter() - start) / 8
    n = max(8, min(n, int(seconds / max(per_image, 1e-9))))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.sample(n, generator=generator)
        times.append(time.perf_counter() - start)
    return n / max(statistics.median(times), 1e-9)
