"""The three families side by side: one row of figures per model, from what was measured.

A pretrained checkpoint's figures come from ``checkpoints/MANIFEST.json`` (measured on the test
set at export: IWAE with k=1000 for a VAE, 4 dequantization draws for a flow, 10k samples for the
classifier scores); a run's from what it logged (its checkpoint's validation metrics and, where
the run scored samples, its quality record), until ``measure`` replaces them by test figures.
Nothing here imports streamlit: the Compare tab and the report both build on it.

Likelihoods live on different data: the VAE models the fixed binarization of the test images
(bits per *binary* pixel), the flow the dequantized 8-bit images (bits per 8-bit pixel); the GAN
defines none. Every row says which data its likelihood is on.
"""
from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genapp import data
from genapp.config import ConfigError, from_dict
from genapp.manifest import read_manifest
from genapp.models import FAMILIES, GenerativeModel, get_family
from genapp.training.runs import RunDir, RunError

PIXELS = 28 * 28
EVAL_SEED = 0
IWAE_KEY = re.compile(r"^test_iwae_nll_k(\d+)_nats$")
FAMILY_LABELS = {"vae": "VAE", "gan": "GAN", "flow": "Flow"}
OBJECTIVES = {
    "vae": "max ELBO = E_q log p(x|z) − KL(q ‖ p)",
    "gan": "min_G max_D V(D, G)",
    "flow": "max exact log p(x), change of variables",
}
LIKELIHOOD_DATA = {"vae": "binarized (fixed draw)", "flow": "dequantized 8-bit"}
NO_LIKELIHOOD = "— (a GAN defines no likelihood)"
Progress = Callable[[float, str], None]


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


def checkpoint_header(path: Path) -> dict:
    """A checkpoint's description without reading its weights into memory (memory-mapped):
    family, model_config, train_config, epoch, step, metrics. Raises ``OSError``/``RuntimeError``."""
    payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(payload, dict) or "family" not in payload:
        raise RuntimeError(f"{path}: not a genapp checkpoint")
    return {k: payload.get(k) for k in ("family", "model_config", "train_config", "epoch", "step", "metrics")}


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
            header = checkpoint_header(path)
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


def run_checkpoint(run: RunDir) -> Path | None:
    """The checkpoint a run is compared by: best.pt, else last.pt (as the model pickers do)."""
    return next((p for p in (run.best_checkpoint, run.last_checkpoint) if p.is_file()), None)


def run_entry(run: RunDir) -> ModelEntry | None:
    """A run with a checkpoint, described by its config, status and checkpoint; None without one."""
    path = run_checkpoint(run)
    if path is None:
        return None
    try:
        config = run.read_config()
        header = checkpoint_header(path)
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
    """nll_nats, bpd, estimate and data of an entry's best-known likelihood (all None for a GAN).

    A VAE's is an upper bound on -log p(x): IWAE with the largest k measured, else the -ELBO;
    bits per dimension divide nats by 784 ln 2 either way, so a VAE's are bits per binary
    pixel and a flow's bits per 8-bit pixel.
    """
    none = {"nll_nats": None, "bpd": None, "likelihood_estimate": None, "likelihood_data": NO_LIKELIHOOD}
    figures, logged, family = entry.figures, entry.logged, entry.family
    nll, estimate, split = None, None, "test"
    if family == "vae":
        ks = sorted((int(m.group(1)), key) for key in figures if (m := IWAE_KEY.match(key)))
        if ks:
            nll, estimate = figures[ks[-1][1]], f"IWAE bound, k={ks[-1][0]}"
        elif "test_neg_elbo_nats" in figures:
            nll, estimate = figures["test_neg_elbo_nats"], "−ELBO bound"
        elif "loss" in logged:
            nll, estimate, split = logged["loss"], "−ELBO bound", "validation"
    elif family == "flow":
        draws = figures.get("dequantization_draws")
        if "test_bpd" in figures:
            nll = figures.get("test_nll_nats", figures["test_bpd"] * PIXELS * math.log(2))
            estimate = f"exact, {draws} dequantization draw{'s' if draws != 1 else ''}" if draws else "exact"
        elif "bpd" in logged:
            nll, estimate, split = logged["bpd"] * PIXELS * math.log(2), "exact", "validation"
    if nll is None:
        return none if family == "gan" else {**none, "likelihood_data": "not measured"}
    images = figures.get("test_images") if split == "test" else None
    where = f"{split} set" + (f" ({images:,} images)" if images and images != 10_000 else "")
    return {"nll_nats": float(nll), "bpd": float(nll) / (PIXELS * math.log(2)), "likelihood_estimate": estimate,
            "likelihood_data": f"{where}, {LIKELIHOOD_DATA[family]}"}


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
    text = OBJECTIVES[entry.family]
    if entry.family == "gan":
        loss = str(entry.model_config.get("generator_loss", "non_saturating")).replace("_", "-")
        text += f", {loss} G"
    return text


def comparison_row(entry: ModelEntry, samples_per_s: float | None = None) -> dict:
    """One row of plain values (None where a figure is undefined or unknown): the table's and
    the report's CSV."""
    return {
        "model": entry.label, "source": entry.kind, "family": FAMILY_LABELS[entry.family],
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


def duration_text(seconds: float | None) -> str:
    """45 s, 31 min, 1 h 32 min."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _number(value: float | None, digits: int) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


FIGURE_NAMES = ["Family", "Objective", "NLL (nats)", "Bits/dim", "Likelihood on", "Estimate", "FID ↓", "IS ↑",
                "Label KL ↓", "Scores from", "Parameters", "Epochs", "Training time", "Trained on", "Samples/s"]


def display_table(rows: list[dict]) -> "pd.DataFrame":
    """The rows as the tab shows them, one column per model (and one for real MNIST), one row
    per figure (``FIGURE_NAMES``): numbers rounded, '—' where a figure is undefined or unknown."""
    import pandas as pd

    columns = {}
    for r in rows:
        scores = "—" if r.get("quality_measured") is None else (
            f"{r['quality_measured']}, {r['quality_samples']:,} samples" if r.get("quality_samples")
            else r["quality_measured"])
        columns[r["model"]] = [
            r["family"], r["objective"], _number(r["nll_nats"], 2), _number(r["bpd"], 3), r["likelihood_data"],
            r["likelihood_estimate"] or "—", _number(r["fid"], 1), _number(r["inception_score"], 2),
            _number(r["label_kl"], 3), scores, "—" if r["parameters"] is None else f"{r['parameters']:,}",
            "—" if r["epoch"] is None else str(r["epoch"]), duration_text(r["train_seconds"]), r["device"] or "—",
            "—" if r["samples_per_s"] is None else f"{r['samples_per_s']:,.0f}",
        ]
    real = real_data_row(rows)
    if real is not None:
        column = dict.fromkeys(FIGURE_NAMES, "")
        column.update({"Family": "data", "FID ↓": f"{_number(real['fid'], 2)} (floor: train vs test)",
                       "IS ↑": f"{_number(real['inception_score'], 2)} (test set)"})
        columns[real["model"]] = list(column.values())
    return pd.DataFrame(columns, index=FIGURE_NAMES)


# ----------------------------------------------------------------------------- measuring


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


@torch.no_grad()
def measure(model: GenerativeModel, images: torch.Tensor, k: int = 100, quality_samples: int = 10_000,
            progress: Progress | None = None, chunk: int = 500) -> dict:
    """Test figures of a model in the manifest's keys, with progress reports.

    images uint8 [n,1,28,28] (the test set). VAE: -ELBO and the IWAE bound with ``k`` samples on
    the fixed binarization (as ``vae_test_figures``); flow: bits per dimension of one
    dequantization draw; every family: the classifier scores of ``quality_samples`` seeded
    samples (0 skips them). ``progress(fraction, text)`` is called as parts finish.
    """
    report = progress or (lambda fraction, text: None)
    model.eval()
    device = model.device
    figures: dict = {"test_images": len(images), "parameters": model.num_parameters()}
    has_likelihood = model.name in ("vae", "flow")
    share = (0.8 if model.name == "vae" else 0.3) if has_likelihood else 0.0
    share = share if quality_samples else (1.0 if has_likelihood else 0.0)
    generator = torch.Generator(device=device).manual_seed(EVAL_SEED)
    if model.name == "vae":
        x = data.fixed_binarization(images.to(device))  # the whole set at once: the same bits as the manifest's
        elbo = nll = 0.0
        for i, part in enumerate(x.split(chunk)):
            elbo += model.elbo(part, generator).sum().item()
            nll += model.log_likelihood(part, k=k, generator=generator).sum().item()
            done = min((i + 1) * chunk, len(x))
            report(share * done / len(x), f"IWAE bound (k={k}): {done:,} of {len(x):,} test images")
        figures.update({"test_neg_elbo_nats": -elbo / len(x), f"test_iwae_nll_k{k}_nats": -nll / len(x)})
    elif model.name == "flow":
        total = 0.0
        for i, part in enumerate(images.split(chunk)):
            total += model.bits_per_dim(part.to(device), generator).sum().item()
            done = min((i + 1) * chunk, len(images))
            report(share * done / len(images), f"bits per dimension: {done:,} of {len(images):,} test images")
        bpd = total / len(images)
        figures.update({"test_bpd": bpd, "test_nll_nats": bpd * PIXELS * math.log(2), "dequantization_draws": 1})
    if quality_samples:
        from genapp.evaluation.quality import sample_quality  # loads the classifier: only when asked

        report(share, f"scoring {quality_samples:,} samples with the MNIST classifier")
        scores = sample_quality(model, n=quality_samples, seed=EVAL_SEED)
        figures.update({f"quality_{key}": value for key, value in scores.items()})
    report(1.0, "done")
    return figures
