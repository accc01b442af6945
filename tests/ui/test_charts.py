"""The chart helpers every tab draws with."""
import plotly.graph_objects as go

from genapp.ui import charts


def test_layout_keeps_what_the_figure_had_and_sets_titles():
    fig = go.Figure(go.Scatter(x=[1, 2], y=[1.0, 10.0]))
    fig.update_yaxes(type="log", range=[0, 1])
    charts.rule(fig, y=5.0, line=dict(dash="dash"), text="five")
    charts.layout(fig, title="Loss", x="step", y="nats", uirevision="run-1")
    layout = fig.layout
    assert layout.yaxis.type == "log" and tuple(layout.yaxis.range) == (0, 1)
    assert (layout.title.text, layout.xaxis.title.text, layout.yaxis.title.text) == ("Loss", "step", "nats")
    assert layout.uirevision == "run-1" and layout.legend.orientation == "h" and layout.height == 360
    assert [s.y0 for s in layout.shapes] == [5.0] and layout.annotations[0].text == "five"
    assert fig.to_dict()["layout"]["template"]  # plotly's default template is still applied


def test_rules_span_the_plot_in_either_direction():
    fig = go.Figure(go.Scatter(x=[0, 10], y=[0, 1]))
    charts.rule(fig, y=0.5, line=dict(color="grey"), text="half", position="bottom left")
    charts.rule(fig, x=3.0, line=dict(color="black"))
    horizontal, vertical = fig.layout.shapes
    assert (horizontal.xref, horizontal.x0, horizontal.x1, horizontal.y0) == ("x domain", 0, 1, 0.5)
    assert (vertical.yref, vertical.y0, vertical.y1, vertical.x0) == ("y domain", 0, 1, 3.0)
    (label,) = fig.layout.annotations  # the vertical rule has no text
    assert (label.x, label.xanchor, label.yanchor, label.y) == (0, "left", "top", 0.5)


def test_merged_lays_nested_settings_over_the_base():
    base = {"xaxis": {"type": "log", "title": {"text": "old"}}, "height": 300}
    assert charts.merged(base, {"xaxis": {"title": {"text": "new"}}, "width": 10}) == {
        "xaxis": {"type": "log", "title": {"text": "new"}}, "height": 300, "width": 10}
    assert base["xaxis"]["title"]["text"] == "old"  # not changed in place


def _history():
    """A run of 2 epochs of 4 steps, a record every step, 30 s apart from t = 1000 s."""
    import numpy as np
    steps = np.arange(8)
    train = {"step": steps, "epoch": steps // 4 + 1, "time": 1000.0 + 30 * steps,
             "loss": np.array([9.0, 7, 8, 5, 6, 4, 5, 3])}
    valid = {"step": np.array([4, 8]), "epoch": np.array([1, 2]), "time": np.array([1125.0, 1245]),
             "loss": np.array([6.0, 4.0])}
    return train, valid


def test_the_smoothed_curve_is_tensorboards_and_the_raw_one_is_faint_behind():
    import pytest
    from genapp.smoothing import debiased_ema
    train, valid = _history()
    for weight in (0.0, 0.6, 0.95):
        raw, smoothed, validation = charts.training_curves(train, valid, "loss", uirevision="r", smoothing=weight).data
        assert list(raw.y) == list(train["loss"]) and raw.opacity < 0.5
        assert list(smoothed.y) == pytest.approx(list(debiased_ema(train["loss"], weight)))
        assert list(validation.y) == [6.0, 4.0]  # epoch figures are drawn as they are
    assert charts.training_curves(train, valid, "loss", uirevision="r", smoothing=0.0).data[1].y.tolist() == train["loss"].tolist()  # 0: the raw values


def test_curves_by_step_epoch_or_relative_wall_time():
    import pytest
    train, valid = _history()
    by = {x: charts.training_curves(train, valid, "loss", uirevision="r", x=x) for x in charts.X_AXES}
    assert list(by["step"].data[0].x) == list(range(8)) and list(by["step"].data[2].x) == [4, 8]
    assert list(by["epoch"].data[0].x) == pytest.approx([0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2])
    assert list(by["epoch"].data[2].x) == [1, 2]
    assert list(by["relative"].data[0].x) == pytest.approx([0.5 * i for i in range(8)])  # minutes
    assert list(by["relative"].data[2].x) == pytest.approx([2.083333, 4.083333])
    assert by["relative"].layout.xaxis.title.text == charts.X_AXES["relative"]
    # The zoom survives a new smoothing value (same uirevision), not a new axis.
    assert charts.training_curves(train, valid, "loss", uirevision="r", smoothing=0.9).layout.uirevision == "r"
    assert len({f.layout.uirevision for f in by.values()}) == 3


def test_overlaid_runs_share_the_smoothing_and_the_axis():
    import pytest
    from genapp.smoothing import debiased_ema
    train, valid = _history()
    other = {k: v for k, v in train.items()}
    other["time"] = train["time"] + 5000  # started later: relative time counts from its own start
    later = {**valid, "time": valid["time"] + 5000}
    fig = charts.overlay_curves({"a": (train, valid), "b": (other, later)}, "loss", smoothing=0.8, x="relative")
    names = [t.name for t in fig.data]
    assert names == ["a train (raw)", "a train", "a validation", "b train (raw)", "b train", "b validation"]
    assert list(fig.data[1].y) == pytest.approx(list(debiased_ema(train["loss"], 0.8)))
    assert list(fig.data[4].x) == pytest.approx(list(fig.data[1].x))
    assert fig.data[0].opacity < 0.5 and fig.data[0].showlegend is False
    assert list(charts.overlay_curves({"a": (train, valid)}, "loss").data[1].x) == pytest.approx(
        [0.25 * (i + 1) for i in range(8)])  # by epoch unless asked
