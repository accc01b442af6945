"""The Compare tab: the three families measured side by side, and the report download.

One table holds every pretrained checkpoint (figures from MANIFEST.json, measured on the test
set at export) and the runs the user adds (what each run logged, until "Measure" scores it on
the test set); sampling speed is timed live, once per checkpoint. Under it, a bar chart of the
likelihoods (one panel per kind of data) and one of the classifier scores, then a zip of
figures, metrics and configurations for download. The table logic lives in
``genapp.evaluation.catalog`` (its presentation in ``genapp.ui.compare_table``), the measuring in
``genapp.evaluation.evaluate`` and the zip in ``genapp.report``; this module only draws.
"""
from __future__ import annotations

import dataclasses
import time

import streamlit as st
import torch

from genapp.checkpoint import CheckpointError
from genapp.evaluation import catalog, evaluate
from genapp.evaluation.catalog import ModelEntry
from genapp.models import FAMILIES
from genapp.report import build_report
from genapp.runs import RunDir, list_runs
from genapp.ui import compare_charts, compare_table
from genapp.ui.resources import Settings, model_from_file, test_split
from genapp.ui.text import plain

STATE_KEYS = ["compare-runs", "compare-k", "compare-samples", "compare-report-pretrained", "compare-report-epochs"]
SPEED_BATCH = 256
QUALITY_CHOICES = [10_000, 5_000, 2_000, 0]
FIGURE_HELP = {
    "Objective": "What training maximises (VAE, flow) or the game it plays (GAN).",
    "NLL (nats)": "Negative log-likelihood per image. VAE: an upper bound (IWAE, or the −ELBO). Flow: exact for the "
                  "dequantized data. Lower is better; only comparable on the same data.",
    "Bits/dim": "NLL / (784 ln 2). A VAE's counts bits per binary pixel, a flow's bits per 8-bit pixel.",
    "Likelihood on": "The split and the kind of data the likelihood is measured on.",
    "FID ↓": "Fréchet distance between the classifier's features of samples and of the test images.",
    "IS ↑": "Classifier Inception Score: 10 for confident, evenly spread digits.",
    "Label KL ↓": "KL of the predicted-digit histogram to uniform: 0 when every digit is drawn equally often.",
    "Scores from": "When the classifier scores were measured, and on how many samples (FID grows as they shrink).",
    "Epochs": "Training epochs of the compared checkpoint (a run's best.pt, else last.pt).",
    "Training time": "Wall-clock time of training, and the device it ran on (next row).",
    "Samples/s": f"Measured now on this server's CPU: model.sample({SPEED_BATCH}) (fewer for a slow model, about "
                 "a quarter of a second per call), median of 3.",
}


# ----------------------------------------------------------------------------- cached work


@st.cache_resource
def measured_figures() -> dict[str, dict]:
    """Test figures measured here, by checkpoint "path:mtime" (server-wide; a rewritten
    checkpoint gets a new key, so its old figures are never shown for it)."""
    return {}


@st.cache_data(max_entries=64, show_spinner=False)
def sampling_speed_of(path: str, modified: float, family: str) -> float:
    """Images per second of one checkpoint's ``sample``, timed once per file version."""
    return catalog.sampling_speed(model_from_file(path, modified, family), n=SPEED_BATCH)


def _checkpoint_key(entry: ModelEntry) -> str:
    return f"{entry.checkpoint}:{entry.checkpoint.stat().st_mtime}" if entry.checkpoint else ""


def _with_measured(entry: ModelEntry) -> ModelEntry:
    figures = measured_figures().get(_checkpoint_key(entry))
    if figures and not entry.figures:
        return dataclasses.replace(entry, figures=figures, figures_source="measured here")
    return entry


def gather(settings: Settings, run_names: list[str]) -> list[ModelEntry]:
    """The pretrained checkpoints, then the chosen runs, each with anything measured here."""
    entries = catalog.pretrained_entries(settings.checkpoints_dir)
    for name in run_names:
        entry = catalog.run_entry(RunDir(settings.runs_dir / name))
        if entry is not None:
            entries.append(entry)
    return [_with_measured(e) for e in entries]


def speeds(entries: list[ModelEntry]) -> dict[str, float]:
    out = {}
    for entry in entries:
        try:
            out[entry.key] = sampling_speed_of(str(entry.checkpoint), entry.checkpoint.stat().st_mtime, entry.family)
        except (CheckpointError, OSError):
            continue
    return out


# ----------------------------------------------------------------------------- sections


def _runs_with_checkpoints(settings: Settings) -> dict[str, str]:
    """{run name: family} of every run that has a checkpoint to compare."""
    out = {}
    for run in list_runs(settings.runs_dir):
        family = run.family
        if family in FAMILIES and run.checkpoint is not None:
            out[run.name] = family
    return out


def _table(rows: list[dict]) -> None:
    frame = compare_table.display_table(rows)
    st.table(frame)
    threads = torch.get_num_threads()
    st.caption(
        "**Likelihoods are on different data.** VAE: the fixed binarization of the 10k test images, an upper "
        "bound on −log p(x) (IWAE with k importance samples, tighter as k grows, or the −ELBO). Flow: exact "
        "−log p(x) of the dequantized 8-bit test images. A GAN defines no likelihood (—). Pretrained figures "
        "were measured at export (`checkpoints/MANIFEST.json`); a run shows what it logged on the validation "
        f"set until measured here. Samples/s: timed now, {SPEED_BATCH} images per call (fewer for a slow model), "
        "on this server's CPU "
        f"({threads} thread{'s' if threads != 1 else ''}), so other jobs on the machine slow it."
    )
    with st.expander("What each row means"):
        st.markdown("\n".join(f"- **{name}**: {text}" for name, text in FIGURE_HELP.items()))


def _measure_section(entries: list[ModelEntry]) -> None:
    """Test figures for the models that only have logged ones: a button, then progress."""
    missing = [e for e in entries if not e.has_test_figures]
    if not missing:
        return
    names = ", ".join(e.label for e in missing)
    with st.container(border=True):
        st.markdown(f"**Measure on the test set:** {plain(names)} "
                    f"{'has' if len(missing) == 1 else 'have'} only logged (validation) figures.")
        k_column, samples_column, button_column = st.columns([1, 1, 1], vertical_alignment="bottom")
        st.session_state.setdefault("compare-k", 100)
        k = k_column.number_input("IWAE samples k (VAE)", 1, 1000, step=50, key="compare-k",
                                  help="Importance samples per test image; the manifest's figures use 1000 "
                                       "(minutes on a CPU). 100 takes about 20-40 s per VAE here.")
        samples = samples_column.selectbox("Samples scored by the classifier", QUALITY_CHOICES, key="compare-samples",
                                           format_func=lambda n: f"{n:,}" if n else "none (skip the scores)",
                                           help="10,000 as in the manifest; fewer is faster but FID grows.")
        if not button_column.button("Measure", key="compare-measure", type="primary"):
            return
        bar = st.progress(0.0, text="Loading the test images…")
        images = test_split().images
        for i, entry in enumerate(missing):
            def report(fraction: float, text: str, i: int = i, entry: ModelEntry = entry) -> None:
                bar.progress(min(1.0, (i + fraction) / len(missing)), text=f"{entry.label}: {text}")

            try:
                model = model_from_file(str(entry.checkpoint), entry.checkpoint.stat().st_mtime, entry.family)
                figures = evaluate(model, images, k=int(k), draws=1, quality_samples=int(samples), progress=report)
            except (CheckpointError, OSError, RuntimeError) as e:
                st.error(plain(f"{entry.label}: not measured ({e})"))
                continue
            measured_figures()[_checkpoint_key(entry)] = figures
        st.rerun()


def _charts(rows: list[dict]) -> None:
    st.plotly_chart(compare_charts.likelihood_bars(rows), key="compare-likelihood", config={"displaylogo": False})
    st.caption(compare_charts.CAVEAT + " Hatched bars are runs, plain ones pretrained checkpoints.")
    if any(r["fid"] is not None for r in rows):
        st.plotly_chart(compare_charts.quality_bars(rows), key="compare-quality", config={"displaylogo": False})
        st.caption("Dashed: real MNIST, the best a model can hope for (FID of 10k training against the 10k test "
                   "images; the test set's own Inception Score). FID is on a log axis.")
    else:
        st.info("No classifier scores yet: measure the runs above to see their sample quality.")


def parse_epochs(text: str) -> list[int] | None:
    """"1, 5, 10" -> [1, 5, 10]; empty -> None (evenly spread); anything else is skipped."""
    epochs = [int(part) for part in text.replace(";", ",").split(",") if part.strip().isdigit()]
    return epochs or None


def _report(settings: Settings, entries: list[ModelEntry], rows: list[dict]) -> None:
    st.subheader("Report")
    runs = [e.run for e in entries if e.run is not None]
    st.caption("One zip of the runs in the table (and the pretrained models): each run's curves (−ELBO, GAN "
               "losses and D outputs, bits/dim, FID), its fixed-noise samples at chosen epochs side by side, pictures "
               "drawn from its checkpoint (samples, the 2-D manifold, GAN interpolations, flow samples at three "
               "temperatures) as PNG; metrics as CSV, configurations as JSON, this table as comparison.csv, "
               "and a README.txt listing everything.")
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    st.session_state.setdefault("compare-report-pretrained", True)
    with_pretrained = left.checkbox("Include the pretrained models", key="compare-report-pretrained")
    text = right.text_input("Sample grids of epochs", key="compare-report-epochs", placeholder="e.g. 1, 5, 10, 50",
                            help="Comma-separated; empty = six evenly spread epochs of each run, first and last included.")
    pretrained = [e for e in entries if e.kind == "pretrained"] if with_pretrained else []
    if not runs and not pretrained:
        st.info("Add runs to the table, or include the pretrained models, to make a report.")
        return
    epochs = parse_epochs(text)
    table = [row for row, entry in zip(rows, entries) if entry.run is not None or with_pretrained]

    def make() -> bytes:  # runs when the button is clicked, not on every rerun
        return build_report(runs, pretrained, table, epochs)

    parts = [f"{len(runs)} run{'s' if len(runs) != 1 else ''}"] + ([f"{len(pretrained)} pretrained"] if pretrained else [])
    st.download_button(f"Download the report ({' + '.join(parts)}, .zip)", data=make, on_click="ignore",
                       file_name=f"genapp-report-{time.strftime('%Y%m%d-%H%M')}.zip", mime="application/zip",
                       key="compare-report", icon=":material/download:")


def render(settings: Settings) -> None:
    """The tab: run picker, table, measuring, charts, report."""
    options = _runs_with_checkpoints(settings)
    st.session_state["compare-runs"] = [n for n in st.session_state.get("compare-runs", []) if n in options]
    chosen = st.multiselect("Add runs to the table", list(options), key="compare-runs",
                            format_func=lambda name: f"{name} ({options[name]})",
                            placeholder="Choose runs (their best checkpoint is compared)",
                            help=f"Runs in {plain(settings.runs_dir)} that have a checkpoint.")
    entries = gather(settings, chosen)
    if not entries:
        st.info(f"No pretrained checkpoints in {plain(settings.checkpoints_dir)} and no runs chosen: train a model, or "
                "add runs above.")
        return
    with st.spinner("Timing each model's sampling…"):
        rows = catalog.comparison_rows(entries, speeds(entries))
    _table(rows)
    _measure_section(entries)
    _charts(rows)
    _report(settings, entries, rows)
