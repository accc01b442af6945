"""One zip for a set of runs and pretrained models: the figures the seed's questions ask for as
PNG, the metrics as CSV, every configuration as JSON, and a README.txt that lists it all.

    README.txt                      what is where
    comparison.csv                  the Compare tab's table (when given)
    runs/<run>/config.json          the run's configuration; status.json its final state
    runs/<run>/metrics.csv          every metrics.jsonl record: step, epoch, split, time, values
    runs/<run>/figures/*.png        curves, samples at chosen epochs, model pictures (by family)
    runs/<run>/samples/epoch-NNNN.png  the fixed-noise grids of the chosen epochs, as written
    pretrained/<name>/entry.json    a pretrained model's MANIFEST.json entry (configs and figures)
    pretrained/<name>/*.png         its samples (and manifold, interpolations)

Built in memory; nothing is written to disk. No streamlit here.
"""
from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from genapp.checkpoint import CheckpointError, load_model
from genapp.evaluation.catalog import ModelEntry
from genapp.images import make_grid
from genapp.models import GenerativeModel
from genapp.models.gan import interpolate_latents
from genapp.report.png_charts import Line, Reference, line_chart, picture_strip
from genapp.runs import RunDir, RunError
from genapp.runs.history import MetricsHistory

SAMPLE_EPOCHS = 6  # sample grids per run when no epochs are chosen: evenly spread, first and last
MANIFOLD_N = 20
SEED = 0
META = ("step", "epoch", "split", "time")


def choose_epochs(available: Sequence[int], wanted: Sequence[int] | None = None, count: int = SAMPLE_EPOCHS) -> list[int]:
    """The wanted epochs that have a grid; without any, ``count`` evenly spread ones (first and
    last included)."""
    available = sorted(available)
    chosen = sorted(set(wanted or ()) & set(available))
    if chosen or not available:
        return chosen
    if len(available) <= count:
        return available
    index = np.linspace(0, len(available) - 1, count).round().astype(int)
    return sorted({available[i] for i in index})


def metrics_csv(run: RunDir) -> str:
    """All of a run's metric records as CSV: step, epoch, split, time, then each metric (blank
    where a record lacks it), in the order they first appear."""
    records, _ = run.read_metrics(0)
    names: dict[str, None] = {}
    for record in records:
        names.update((k, None) for k in record if k not in META)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*META, *names], extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def rows_csv(rows: Sequence[dict]) -> str:
    """Plain rows (one dict each, same keys) as CSV; None becomes a blank cell."""
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def epoch_means(columns: dict[str, np.ndarray], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(epoch, mean of ``metric`` over that epoch's training steps) from a history's columns."""
    if metric not in columns or "epoch" not in columns:
        return np.empty(0), np.empty(0)
    epochs, values = columns["epoch"], columns[metric]
    keep = np.isfinite(values)
    epochs, values = epochs[keep], values[keep]
    unique = np.unique(epochs)
    return unique, np.array([values[epochs == e].mean() for e in unique])


def png(image: Image.Image | np.ndarray) -> bytes:
    image = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- curves


def _valid(columns: dict, metric: str) -> tuple[np.ndarray, np.ndarray]:
    if metric not in columns:
        return np.empty(0), np.empty(0)
    keep = np.isfinite(columns[metric])
    return columns["epoch"][keep], columns[metric][keep]


def curve_figures(family: str, history: MetricsHistory) -> dict[str, tuple[Image.Image, str]]:
    """{file name: (chart, description)} of a run's curves against epoch."""
    train, valid, quality = history.columns("train"), history.columns("valid"), history.columns("quality")
    figures: dict[str, tuple[Image.Image, str]] = {}
    if family == "vae":
        lines = [Line("training −ELBO (mean of the epoch)", *epoch_means(train, "loss")),
                 Line("validation −ELBO", *_valid(valid, "loss"), markers=True),
                 Line("validation reconstruction −log p(x|z)", *_valid(valid, "recon")),
                 Line("validation KL(q(z|x) ‖ p(z))", *_valid(valid, "kl"))]
        figures["elbo.png"] = (line_chart(lines, title="Negative ELBO and its two terms per epoch", x_label="epoch",
                                          y_label="nats per image (log scale)", log_y=True),
                               "−ELBO (training and validation) with its reconstruction and KL terms, per epoch")
    elif family == "gan":
        lines = [Line("D loss (training mean)", *epoch_means(train, "d_loss")),
                 Line("G loss (training mean)", *epoch_means(train, "g_loss")),
                 Line("D loss (validation)", *_valid(valid, "d_loss"), markers=True),
                 Line("G loss (validation)", *_valid(valid, "g_loss"), markers=True)]
        figures["losses.png"] = (line_chart(lines, title="Discriminator and generator losses per epoch", x_label="epoch",
                                            y_label="loss", references=[Reference(2 * np.log(2), "D at equilibrium: 2 ln 2")]),
                                 "discriminator and generator losses per epoch, with D's loss at the equilibrium")
        lines = [Line("D(real) (validation)", *_valid(valid, "d_real"), markers=True),
                 Line("D(G(z)) (validation)", *_valid(valid, "d_fake"), markers=True)]
        figures["d-outputs.png"] = (line_chart(lines, title="What the discriminator says per epoch", x_label="epoch",
                                               y_label="mean D output", references=[Reference(0.5, "equilibrium 0.5")]),
                                    "mean D output on held-out real and on generated images per epoch")
    elif family == "flow":
        lines = [Line("training (mean of the epoch)", *epoch_means(train, "bpd")),
                 Line("validation", *_valid(valid, "bpd"), markers=True)]
        figures["bpd.png"] = (line_chart(lines, title="Bits per dimension per epoch (dequantized 8-bit MNIST)",
                                         x_label="epoch", y_label="bits/dim"),
                              "bits per dimension (training and validation) per epoch")
    if "fid" in quality and np.isfinite(quality["fid"]).any():
        floor = quality.get("fid_real_floor")
        refs = []
        if floor is not None and np.isfinite(floor).any():
            value = float(np.nanmean(floor))
            refs.append(Reference(value, f"real data floor {value:.2f}"))
        figures["quality.png"] = (line_chart([Line("FID (classifier features)", *_valid(quality, "fid"), markers=True)],
                                             title="Sample quality during training", x_label="epoch",
                                             y_label="FID (log scale)", log_y=True, references=refs),
                                  "FID of samples per scored epoch, with the real-data floor")
    return figures


# ----------------------------------------------------------------------------- model pictures


@torch.no_grad()
def model_figures(model: GenerativeModel) -> dict[str, tuple[Image.Image | np.ndarray, str]]:
    """{file name: (picture, description)} drawn from a model: seeded samples for every family,
    the 2-D manifold of a VAE with z=2, interpolations of a GAN, a flow's samples at temperatures."""
    generator = torch.Generator().manual_seed(SEED)
    figures: dict[str, tuple[Image.Image | np.ndarray, str]] = {}
    if model.name == "flow":
        panels = [(f"T = {t}", make_grid(model.sample(36, temperature=t, generator=torch.Generator().manual_seed(SEED))))
                  for t in (1.0, 0.8, 0.6)]
        figures["samples.png"] = (picture_strip(panels, "Flow samples x = f⁻¹(T z) at three temperatures", scale=2),
                                  "36 flow samples at temperatures 1.0, 0.8 and 0.6 (same z)")
        return figures
    figures["samples.png"] = (np.kron(make_grid(model.sample(64, generator=generator), nrow=8), np.ones((2, 2), np.uint8)),
                              "64 samples from seeded noise")
    if model.name == "vae" and model.latent_dim == 2:
        figures["manifold.png"] = (make_grid(model.manifold(MANIFOLD_N), nrow=MANIFOLD_N),
                                   f"the 2-D latent manifold: {MANIFOLD_N}×{MANIFOLD_N} decodings on a grid of normal quantiles")
    if model.name == "gan":
        z = torch.randn(8, model.latent_dim, generator=generator)
        panels = []
        for mode, label in (("linear", "linear"), ("slerp", "spherical (slerp)")):
            rows = [model.generate(interpolate_latents(z[2 * i], z[2 * i + 1], 10, mode)) for i in range(4)]
            panels.append((label, make_grid(torch.cat(rows), nrow=10)))
        figures["interpolation.png"] = (picture_strip(panels, "GAN interpolations between four pairs of latents", scale=2),
                                        "four interpolations in z (10 steps), linear and spherical, same endpoints")
    return figures


# ----------------------------------------------------------------------------- the zip


class _Zip:
    """A zip being written, remembering a description of each member for README.txt."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.file = zipfile.ZipFile(self.buffer, "w", compression=zipfile.ZIP_DEFLATED)
        self.contents: list[tuple[str, str]] = []

    def add(self, path: str, data: bytes | str, description: str) -> None:
        self.file.writestr(path, data)
        self.contents.append((path, description))

    def close(self, readme: str) -> bytes:
        self.file.writestr("README.txt", readme)
        self.file.close()
        return self.buffer.getvalue()


def _add_run(archive: _Zip, run: RunDir, epochs: Sequence[int] | None,
             load: Callable[[str], GenerativeModel]) -> list[str]:
    """A run's files; returns notes for the README (what could not be included)."""
    notes = []
    base = f"runs/{run.name}"
    try:
        config = run.read_config()
    except RunError as e:
        return [f"{run.name}: skipped ({e})"]
    family = str(config.get("family"))
    archive.add(f"{base}/config.json", json.dumps(config, indent=2), f"{family} run configuration (model and training)")
    archive.add(f"{base}/status.json", json.dumps(run.read_status(), indent=2, default=str),
                "final state, progress, training time and device")
    archive.add(f"{base}/metrics.csv", metrics_csv(run), "every logged record: step, epoch, split (train/valid/quality), values")
    history = MetricsHistory(run)
    history.refresh()
    for name, (image, description) in curve_figures(family, history).items():
        archive.add(f"{base}/figures/{name}", png(image), description)
    chosen = choose_epochs(run.sample_epochs(), epochs)
    grids = []
    for epoch in chosen:
        data = run.sample_path(epoch).read_bytes()
        archive.add(f"{base}/samples/epoch-{epoch:04d}.png", data, f"fixed-noise samples after epoch {epoch}" if epoch else "fixed-noise samples before training")
        grids.append((f"epoch {epoch}", np.asarray(Image.open(io.BytesIO(data)).convert("L"))))
    if grids:
        archive.add(f"{base}/figures/progress.png",
                    png(picture_strip(grids, f"{run.name}: the same noise through training", scale=1)),
                    f"the fixed-noise grids of epochs {', '.join(map(str, chosen))} side by side")
    checkpoint = run.checkpoint
    if checkpoint is None:
        notes.append(f"{run.name}: no checkpoint yet, so no pictures drawn from the model")
        return notes
    try:
        model = load(str(checkpoint))
    except CheckpointError as e:
        return [*notes, f"{run.name}: {e}"]
    for name, (image, description) in model_figures(model).items():
        archive.add(f"{base}/figures/{name}", png(image), f"{description} ({checkpoint.name})")
    return notes


def build_report(runs: Sequence[RunDir], pretrained: Sequence[ModelEntry] = (), table: Sequence[dict] = (),
                 epochs: Sequence[int] | None = None, load: Callable[[str], GenerativeModel] | None = None) -> bytes:
    """The zip's bytes for ``runs`` and ``pretrained`` models, with ``table`` (comparison rows)
    as comparison.csv; ``epochs`` picks the sample grids (default: 6 evenly spread per run);
    ``load`` opens a checkpoint path (default ``load_model``, on the CPU)."""
    load = load or (lambda path: load_model(path))
    archive = _Zip()
    notes: list[str] = []
    if table:
        archive.add("comparison.csv", rows_csv(table), "the comparison table: likelihoods, sample quality, "
                    "parameters, training time and device, sampling speed (blank = undefined or not measured)")
    for run in runs:
        notes += _add_run(archive, run, epochs, load)
    for entry in pretrained:
        base = f"pretrained/{entry.name}"
        record = {"name": entry.name, "family": entry.family, "epoch": entry.epoch, "model_config": entry.model_config,
                  "train_config": entry.train_config, "test": entry.figures, "validation": entry.logged,
                  "train_seconds": entry.train_seconds, "device": entry.device, "device_name": entry.device_name}
        archive.add(f"{base}/entry.json", json.dumps(record, indent=2), "configuration and measured figures")
        if entry.checkpoint is None:
            continue
        try:
            model = load(str(entry.checkpoint))
        except CheckpointError as e:
            notes.append(f"{entry.name}: {e}")
            continue
        for name, (image, description) in model_figures(model).items():
            archive.add(f"{base}/{name}", png(image), description)
    return archive.close(readme(archive.contents, notes))


def readme(contents: Sequence[tuple[str, str]], notes: Sequence[str] = ()) -> str:
    width = max((len(path) for path, _ in contents), default=10)
    lines = ["genapp report", f"made {time.strftime('%Y-%m-%d %H:%M')} by the genapp explorer (Compare tab)", "",
             "Likelihoods: a VAE's are bounds in nats on the fixed binarization of the test images (bits per",
             "binary pixel); a flow's are exact on the dequantized 8-bit images (bits per 8-bit pixel); the two",
             "are different data and not comparable. A GAN has none. Sample-quality scores (FID, Inception",
             "Score, label KL) come from the project's MNIST classifier.", "", "Contents:", ""]
    lines += [f"  {path.ljust(width)}  {description}" for path, description in contents]
    lines += ["  " + "README.txt".ljust(width) + "  this file"]
    if notes:
        lines += ["", "Not included:", *[f"  {note}" for note in notes]]
    return "\n".join(lines) + "\n"
