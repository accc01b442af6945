"""The Compare tab's table: the catalog's plain rows (``genapp.evaluation.catalog``) as one column
per model and one row per figure, rounded and with '—' where a figure is undefined or unknown.
No streamlit here."""
from __future__ import annotations

import math

import pandas as pd

from genapp.evaluation import catalog
from genapp.ui.text import duration


def _number(value: float | None, digits: int) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


FIGURE_NAMES = ["Family", "Objective", "NLL (nats)", "Bits/dim", "Likelihood on", "Estimate", "FID ↓", "IS ↑",
                "Label KL ↓", "Scores from", "Parameters", "Epochs", "Training time", "Trained on", "Samples/s"]


def display_table(rows: list[dict]) -> pd.DataFrame:
    """The rows as the tab shows them, one column per model (and one for real MNIST), one row
    per figure (``FIGURE_NAMES``): numbers rounded, '—' where a figure is undefined or unknown."""
    columns = {}
    for r in rows:
        scores = "—" if r.get("quality_measured") is None else (
            f"{r['quality_measured']}, {r['quality_samples']:,} samples" if r.get("quality_samples")
            else r["quality_measured"])
        columns[r["model"]] = [
            r["family"], r["objective"], _number(r["nll_nats"], 2), _number(r["bpd"], 3), r["likelihood_data"],
            r["likelihood_estimate"] or "—", _number(r["fid"], 1), _number(r["inception_score"], 2),
            _number(r["label_kl"], 3), scores, "—" if r["parameters"] is None else f"{r['parameters']:,}",
            "—" if r["epoch"] is None else str(r["epoch"]), duration(r["train_seconds"], precise=False), r["device"] or "—",
            "—" if r["samples_per_s"] is None else f"{r['samples_per_s']:,.0f}",
        ]
    real = catalog.real_data_row(rows)
    if real is not None:
        column = dict.fromkeys(FIGURE_NAMES, "")
        column.update({"Family": "data", "FID ↓": f"{_number(real['fid'], 2)} (floor: train vs test)",
                       "IS ↑": f"{_number(real['inception_score'], 2)} (test set)"})
        columns[real["model"]] = list(column.values())
    return pd.DataFrame(columns, index=FIGURE_NAMES)
