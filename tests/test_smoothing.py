"""The smoothing slider's curve is TensorBoard's debiased EMA, value for value."""
from __future__ import annotations

import math

import numpy as np
import pytest

from genapp.smoothing import debiased_ema


def tensorboard_smoothing(values, weight):
    """TensorBoard's classicSmoothing, transcribed line for line (non-finite values pass through)."""
    last, n, out = 0.0, 0, []
    for y in values:
        if not math.isfinite(y):
            out.append(y)
            continue
        last = last * weight + (1 - weight) * y
        n += 1
        out.append(last / (1 - weight ** n))
    return out


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.6, 0.9, 0.99])
def test_the_smoothed_curve_is_tensorboards(weight):
    values = np.random.default_rng(0).normal(100, 20, 3000) * np.linspace(3, 1, 3000)
    assert debiased_ema(values, weight) == pytest.approx(tensorboard_smoothing(values, weight), rel=1e-9)


def test_the_first_point_is_the_first_value_and_a_constant_stays_constant():
    assert debiased_ema([7.0, 1.0], 0.9)[0] == 7.0  # debiased: no pull towards the zero start
    assert debiased_ema([5.0] * 50, 0.95) == pytest.approx([5.0] * 50)
    # by hand, w = 0.5: last = 1, 2 ; debias 0.5, 0.75
    assert debiased_ema([2.0, 4.0], 0.5) == pytest.approx([2.0, (0.5 * 1.0 + 2.0) / 0.75])


def test_gaps_pass_through_and_do_not_count():
    values = [1.0, math.nan, 3.0, math.inf, 5.0]
    smoothed = debiased_ema(values, 0.6)
    assert math.isnan(smoothed[1]) and smoothed[3] == math.inf
    assert smoothed[[0, 2, 4]] == pytest.approx(debiased_ema([1.0, 3.0, 5.0], 0.6))
    assert smoothed[[0, 2, 4]] == pytest.approx([v for v in tensorboard_smoothing(values, 0.6) if math.isfinite(v)])


def test_a_stopped_and_resumed_run_draws_the_straight_runs_smoothed_curve(runs_dir):
    """The resumed run's history (replaced up to its checkpoint, then appended) smooths to the
    same curve as a run that never stopped: each step once, in order, same values."""
    from genapp.runs.history import MetricsHistory
    from genapp.training import resume, train
    from tests.conftest import tiny_vae_run
    from tests.test_engine import StopAfter
    straight = train(tiny_vae_run(epochs=2), runs_dir, "straight").run
    train(tiny_vae_run(epochs=2), runs_dir, "stopped", callbacks=[StopAfter(12)])
    resumed = resume(runs_dir, "stopped").run
    curves = []
    for run in (straight, resumed):
        history = MetricsHistory(run)
        history.refresh()
        columns = history.columns("train")
        assert list(columns["step"]) == list(range(16))
        curves.append(debiased_ema(columns["loss"], 0.8))
    assert curves[0] == pytest.approx(curves[1], rel=1e-6)


def test_a_weight_outside_the_slider_is_refused():
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="weight"):
            debiased_ema([1.0], bad)
    assert len(debiased_ema([], 0.6)) == 0
