"""The report zip, opened and read back: every member listed in README.txt, CSVs that parse to the
logged records, JSON that round-trips, PNGs that decode; and the Pillow charts it draws."""
from __future__ import annotations

import csv
import io
import json
import math
import zipfile

import numpy as np
import pytest
from PIL import Image

from genapp.evaluation import catalog
from genapp.manifest import CHECKPOINTS_DIR
from genapp.report import build_report
from genapp.report.build import choose_epochs
from genapp.report.png_charts import Line, Reference, line_chart, log_ticks, nice_ticks, picture_strip, plain
from genapp.training import train
from genapp.runs import RunDir

from tests.test_catalog import tiny_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Finished three-epoch runs: a 2-D VAE, a GAN that scores its samples, a flow."""
    root = tmp_path_factory.mktemp("report-runs")
    configs = {"vae": tiny_run("vae"), "gan": tiny_run("gan"), "flow": tiny_run("flow")}
    for config in configs.values():
        config.train.epochs = 3
    configs["gan"].train.quality_every = 1
    configs["gan"].train.quality_samples = 300
    for family, config in configs.items():
        train(config, root, f"tiny-{family}")
    return [RunDir(root / f"tiny-{family}") for family in configs]


def open_zip(data: bytes) -> zipfile.ZipFile:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    return archive


def decode_png(archive: zipfile.ZipFile, name: str) -> Image.Image:
    image = Image.open(io.BytesIO(archive.read(name)))
    assert image.format == "PNG"
    image.load()
    return image


def test_the_report_holds_each_runs_figures_metrics_and_configuration(runs):
    vae, gan, flow = runs
    rows = catalog.comparison_rows([catalog.run_entry(run) for run in runs])
    archive = open_zip(build_report(runs, table=rows, epochs=[1, 3, 99]))
    names = set(archive.namelist())

    for run, family in zip(runs, ("vae", "gan", "flow")):
        base = f"runs/{run.name}"
        assert json.loads(archive.read(f"{base}/config.json")) == run.read_config()
        assert json.loads(archive.read(f"{base}/status.json"))["state"] == "finished"
        records, _ = run.read_metrics(0)
        table = list(csv.DictReader(io.StringIO(archive.read(f"{base}/metrics.csv").decode())))
        assert len(table) == len(records) and table[0]["split"] == records[0]["split"]
        last_valid = next(r for r in reversed(records) if r["split"] == "valid")
        metric = {"vae": "loss", "gan": "d_loss", "flow": "bpd"}[family]
        row = next(r for r in reversed(table) if r["split"] == "valid")
        assert float(row[metric]) == pytest.approx(last_valid[metric]) and int(row["epoch"]) == 3
        # Only the chosen epochs that exist (99 does not), as written by the run, and side by side.
        assert {n for n in names if n.startswith(f"{base}/samples/")} == \
            {f"{base}/samples/epoch-0001.png", f"{base}/samples/epoch-0003.png"}
        assert archive.read(f"{base}/samples/epoch-0003.png") == run.sample_path(3).read_bytes()
        progress = decode_png(archive, f"{base}/figures/progress.png")
        grid = Image.open(run.sample_path(1))
        assert progress.width > 2 * grid.width and progress.height > grid.height
        decode_png(archive, f"{base}/figures/samples.png")

    assert decode_png(archive, "runs/tiny-vae/figures/elbo.png").size == (960, 540)
    assert decode_png(archive, "runs/tiny-vae/figures/manifold.png").size == (20 * 30 + 2,) * 2  # z = 2
    for name in ("losses.png", "d-outputs.png", "quality.png", "interpolation.png"):
        decode_png(archive, f"runs/tiny-gan/figures/{name}")
    decode_png(archive, "runs/tiny-flow/figures/bpd.png")
    assert "runs/tiny-flow/figures/manifold.png" not in names

    comparison = list(csv.DictReader(io.StringIO(archive.read("comparison.csv").decode())))
    assert [r["model"] for r in comparison] == ["run tiny-vae", "run tiny-gan", "run tiny-flow"]
    assert float(comparison[0]["nll_nats"]) == pytest.approx(rows[0]["nll_nats"]) and comparison[1]["bpd"] == ""

    readme = archive.read("README.txt").decode()
    for name in names:
        assert name in readme, f"README.txt does not list {name}"
    assert "not comparable" in readme


def test_pretrained_models_and_default_epochs(runs):
    entries = [e for e in catalog.pretrained_entries(CHECKPOINTS_DIR) if e.name in ("vae-z2", "gan")]
    archive = open_zip(build_report(runs[:1], entries))
    names = set(archive.namelist())
    assert json.loads(archive.read("pretrained/vae-z2/entry.json"))["test"] == entries[0].figures
    assert decode_png(archive, "pretrained/vae-z2/manifold.png").width == 602
    decode_png(archive, "pretrained/gan/interpolation.png")
    assert "pretrained/vae-z20/entry.json" not in names and "comparison.csv" not in names
    # No epochs chosen: every grid of a short run (before training, then epochs 1-3).
    assert sorted(n for n in names if "/samples/" in n)[-1] == "runs/tiny-vae/samples/epoch-0003.png"
    assert len([n for n in names if "/samples/" in n]) == len(runs[0].sample_epochs())


def test_choose_epochs():
    assert choose_epochs(range(0, 101), [5, 50, 500]) == [5, 50]
    assert choose_epochs(range(0, 101)) == [0, 20, 40, 60, 80, 100]
    assert choose_epochs([0, 1, 2]) == [0, 1, 2] and choose_epochs([]) == []
    assert choose_epochs(range(0, 101), [500]) == [0, 20, 40, 60, 80, 100]  # none exist: the spread


def test_ticks():
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(87.3, 192.1) == [100, 120, 140, 160, 180]
    assert log_ticks(2.4, 500) == [5, 10, 20, 50, 100, 200, 500]
    assert log_ticks(5, 190)[:4] == [5, 7, 10, 15]


def test_line_chart_draws_each_line_where_its_values_are():
    red, blue = (214, 39, 40), (31, 119, 180)
    chart = line_chart([Line("rising", [0, 1, 2], [1, 2, 3], color=red),
                        Line("flat with a gap", [0, 1, 2], [2, math.nan, 2], color=blue, markers=True)],
                       title="A − B", x_label="epoch", y_label="value", references=[Reference(2.5, "ref")])
    pixels = np.asarray(chart)[80:]  # below the title and the legend's swatches
    ys, xs = np.nonzero(np.all(pixels == red, axis=-1))
    assert len(xs) > 100
    assert np.corrcoef(xs, -ys)[0, 1] > 0.95  # the rising line goes up to the right
    blue_rows = np.nonzero(np.all(pixels == blue, axis=-1))[0]
    assert len(blue_rows) and blue_rows.max() - blue_rows.min() < 10  # flat: a line at one height
    log = np.asarray(line_chart([Line("l", [1, 2], [0.0, 10.0])], title="t", x_label="x", y_label="y", log_y=True))
    assert log.shape == (540, 960, 3)
    empty = line_chart([], title="nothing", x_label="x", y_label="y")
    assert empty.size == (960, 540)


def test_picture_strip_and_plain_text():
    strip = picture_strip([("a", np.zeros((10, 20), np.uint8)), ("b", np.full((30, 10), 255, np.uint8))], "t", scale=2)
    assert strip.height >= 34 + 26 + 60 and strip.width >= 16 + 40 + 16 + 20 + 16
    assert plain("−ELBO ‖ f⁻¹ ×") == "-ELBO || f^-1 x"
