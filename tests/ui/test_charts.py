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
