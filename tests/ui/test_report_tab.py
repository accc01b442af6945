"""The Report tab through AppTest, on the shipped models: the seed's figures in its order, each
drawn, and no exception."""
from __future__ import annotations

from genapp.ui import report_tab

from .conftest import open_app
from .test_pretrained_history import shipped_env  # noqa: F401  (the fixture)


def test_the_report_renders_every_figure_in_the_seeds_order(shipped_env):  # noqa: F811
    at = open_app("Report", timeout=240)
    assert not at.exception
    headings = [m.value for m in at.markdown if m.value.startswith("#### Fig.")]
    assert [h.split(" ·")[0].removeprefix("#### ") for h in headings] == [f"Fig. {n}" for n in range(1, 16)]
    graphs = at.get("graphviz_chart")
    assert len(graphs) == 3 and all("784" in g.proto.spec for g in graphs)  # Fig. 3, 4, 9 with the models' sizes
    charts = [e.proto.id for e in at.get("plotly_chart")]
    for key in ("vae-codes-ae-z2", "vae-posterior", "report-fig5", "report-fig13-plane", "report-fig13-forward",
                "report-fig13-inverse", "report-fig14"):  # Fig. 1, 2, 5, 13 (the toy flow, both ways), 14
        assert any(chart.endswith(key) for chart in charts), key
    captions = [c for element in at.get("image") for c in element.captions]
    assert captions.count("") >= 5 * 3 + 1  # Fig. 6, 7 (two rows), 10, 11 at five epochs, 8 and 12
    epochs = [c.value for c in at.caption if c.value.startswith("epoch ")]
    assert epochs[:5] == [f"epoch {e}" for e in report_tab.SEED_EPOCHS["vae"]]  # vae-z20 recorded the seed's epochs
    assert epochs[-5:] == [f"epoch {e}" for e in report_tab.SEED_EPOCHS["flow"]]  # and flow-mlp (Fig. 15)
    assert not [i.value for i in at.info if "history" in i.value]  # every figure of training has its history


def test_nearest_epochs_keep_the_wanted_order_without_repeats():
    assert report_tab.nearest([0, 1, 2, 5, 10, 20, 40, 60, 100], [1, 12, 50, 110, 200]) == [1, 10, 40, 100]
    assert report_tab.nearest([3], [1, 10]) == [3]
