"""Axis ticks shared by the explorer's plotly charts and the report's PNG charts. Pure functions."""
from __future__ import annotations

import math


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks for a logarithmic axis over [low, high] (both > 0): 1, 2 and 5 times powers of ten,
    finer over a short span and decades only over a long one; at least the two ends."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    decades = math.log10(high / low)
    multiples = (1,) if decades > 4 else (1, 2, 5) if decades > 2 else (1, 1.5, 2, 3, 5, 7)
    ticks = [m * 10.0**e for e in range(first, last + 1) for m in multiples if low <= m * 10.0**e <= high]
    return ticks if len(ticks) >= 2 else [low, high]
