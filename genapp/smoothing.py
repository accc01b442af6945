"""TensorBoard's smoothing of a scalar curve: a debiased exponential moving average.

With weight ``w`` (TensorBoard's slider, 0 = raw, 0.99 = very smooth) each finite value ``y``
updates ``last = last * w + (1 - w) * y``, starting from ``last = 0``, and the plotted value is
``last / (1 - w**n)``, ``n`` being the number of finite values so far: the division undoes the
pull towards the zero start, so the first point is the first value itself. Non-finite values are
plotted as they are and do not count. This is TensorBoard's ``classicSmoothing``
(``tensorboard/webapp/widgets/line_chart_v2/lib/data_transformer.ts``), which W&B also uses, so
the same slider value draws the same curve in all three. No streamlit, no torch.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

DEFAULT_WEIGHT = 0.6  # TensorBoard's default
MAX_WEIGHT = 0.99


def debiased_ema(values: Sequence[float] | np.ndarray, weight: float) -> np.ndarray:
    """The smoothed curve of ``values`` (float [n]) with ``weight`` in [0, 1): float64 [n].

    Equal to TensorBoard's loop; computed by pandas' adjusted EWM with ``alpha = 1 - weight``,
    whose weights ``w**i / sum(w**i)`` are exactly the debiased EMA's (``sum`` over the n values
    so far is ``(1 - w**n) / (1 - w)``), in C rather than a Python loop (100k steps: ~2 ms).
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    y = np.asarray(values, dtype=np.float64)
    if y.size == 0 or weight == 0.0:
        return y.copy()
    finite = np.isfinite(y)
    smoothed = pd.Series(np.where(finite, y, np.nan)).ewm(alpha=1.0 - weight, adjust=True, ignore_na=True).mean()
    return np.where(finite, smoothed.to_numpy(), y)
