"""Static charts and picture strips as PNG-ready Pillow images, for the report.

Drawn with Pillow alone: plotly's image export needs kaleido and a browser, which an offline
laptop may not have. Enough of a chart for a report: lines with optional markers, a linear or
logarithmic y axis with round ticks, dashed reference lines, a title, axis titles and a legend.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from genapp.axes import log_ticks

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
GREY = (120, 120, 120)
GRID = (228, 228, 228)
MAX_POINTS = 4000  # per line; more cannot be told apart at this width
# Pillow's built-in font has ASCII glyphs only: spell the few others the labels use.
ASCII = {"−": "-", "‖": "||", "×": "x", "⁻¹": "^-1", "≤": "<=", "≥": ">=", "→": "->", "θ": "theta", "σ": "sigma",
         "μ": "mu", "…": "...", "·": "-", "–": "-", "—": "-"}


@dataclass
class Line:
    """One series: x and y (NaN or inf breaks the line there)."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    color: tuple[int, int, int] | None = None
    width: int = 2
    markers: bool = False


@dataclass
class Reference:
    """A dashed horizontal line across the plot, labelled at its right end."""

    y: float
    label: str
    color: tuple[int, int, int] = GREY


def font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def plain(text: str) -> str:
    """``text`` in the characters the built-in font can draw."""
    for symbol, spelling in ASCII.items():
        text = text.replace(symbol, spelling)
    return text.encode("ascii", "replace").decode()


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if not math.isfinite(low) or not math.isfinite(high):
        return []
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count - 1)
    power = 10.0 ** math.floor(math.log10(raw))
    # The round step whose number of ticks comes nearest ``count`` (fewer on a tie).
    step = min((m * power for m in (1, 2, 5, 10)),
               key=lambda s: (abs((high - low) / s + 1 - count), -s))
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        if value >= low - step * 1e-9:
            ticks.append(round(value, 12))
        value += step
    return ticks


def tick_text(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.0e}"


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= MAX_POINTS:
        return x, y
    keep = np.unique(np.append(np.linspace(0, len(x) - 1, MAX_POINTS).astype(int), len(x) - 1))
    return x[keep], y[keep]


def line_chart(lines: Sequence[Line], *, title: str, x_label: str, y_label: str, log_y: bool = False,
               references: Sequence[Reference] = (), size: tuple[int, int] = (960, 540)) -> Image.Image:
    """An RGB chart of ``lines``; ``log_y`` puts y on a log axis (non-positive values are dropped)."""
    width, height = size
    title, x_label, y_label = plain(title), plain(x_label), plain(y_label)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    title_font, label_font, tick_font = font(20), font(15), font(13)
    series = []
    for i, line in enumerate(lines):
        x, y = np.asarray(line.x, dtype=float), np.asarray(line.y, dtype=float)
        y = np.where(y > 0, y, np.nan) if log_y else y
        x, y = _thin(x, y)
        series.append((line, line.color or COLORS[i % len(COLORS)], x, y))
    finite_x = np.concatenate([x[np.isfinite(x) & np.isfinite(y)] for _, _, x, y in series] or [np.empty(0)])
    finite_y = np.concatenate([y[np.isfinite(x) & np.isfinite(y)] for _, _, x, y in series] or [np.empty(0)])
    ref_values = [r.y for r in references if math.isfinite(r.y) and (r.y > 0 or not log_y)]
    all_y = np.concatenate([finite_y, np.asarray(ref_values, dtype=float)])

    draw.text((16, 12), title, fill="black", font=title_font)
    # The legend: one row (or more) under the title.
    legend_top, cursor, row_height = 44, 16, 22
    for line, color, _, _ in series:
        label = plain(line.label)
        text_width = draw.textlength(label, font=label_font)
        if cursor + 40 + text_width > width - 16:
            legend_top, cursor = legend_top + row_height, 16
        draw.line([(cursor, legend_top + 9), (cursor + 26, legend_top + 9)], fill=color, width=3)
        draw.text((cursor + 32, legend_top), label, fill="black", font=label_font)
        cursor += 32 + int(text_width) + 24
    left, right, top, bottom = 86, width - 24, legend_top + row_height + 14, height - 64

    if not len(finite_x) or not len(all_y):
        draw.text((left + 20, (top + bottom) // 2), "no data", fill=GREY, font=label_font)
        return image
    x_low, x_high = float(finite_x.min()), float(finite_x.max())
    if x_high == x_low:
        x_low, x_high = x_low - 0.5, x_high + 0.5
    y_low, y_high = float(all_y.min()), float(all_y.max())
    if log_y:
        y_ticks = log_ticks(y_low, y_high) if y_high > y_low else [y_low]
        transform = math.log10
    else:
        y_ticks = nice_ticks(y_low, y_high)
        transform = float
    t_low, t_high = transform(y_low), transform(y_high)
    if t_high == t_low:
        t_low, t_high = t_low - 0.5, t_high + 0.5
    margin = 0.04 * (t_high - t_low)
    t_low, t_high = t_low - margin, t_high + margin

    def px(xv: float, yv: float) -> tuple[float, float]:
        return (left + (xv - x_low) / (x_high - x_low) * (right - left),
                bottom - (transform(yv) - t_low) / (t_high - t_low) * (bottom - top))

    for tick in y_ticks:
        _, y = px(x_low, tick)
        if top - 1 <= y <= bottom + 1:
            draw.line([(left, y), (right, y)], fill=GRID)
            text = tick_text(tick)
            draw.text((left - 8 - draw.textlength(text, font=tick_font), y - 8), text, fill="black", font=tick_font)
    for tick in nice_ticks(x_low, x_high, 8):
        x, _ = px(tick, y_ticks[0] if y_ticks else y_low)
        draw.line([(x, bottom), (x, bottom + 5)], fill="black")
        text = tick_text(tick)
        draw.text((x - draw.textlength(text, font=tick_font) / 2, bottom + 8), text, fill="black", font=tick_font)
    draw.rectangle([left, top, right, bottom], outline="black")
    draw.text(((left + right - draw.textlength(x_label, font=label_font)) / 2, height - 32), x_label,
              fill="black", font=label_font)
    y_title = Image.new("RGBA", (int(draw.textlength(y_label, font=label_font)) + 4, 20), (255, 255, 255, 0))
    ImageDraw.Draw(y_title).text((2, 0), y_label, fill="black", font=label_font)
    y_title = y_title.rotate(90, expand=True)
    image.paste(y_title, (10, int((top + bottom - y_title.height) / 2)), y_title)

    for reference in references:
        if reference.y not in ref_values:
            continue
        _, y = px(x_low, reference.y)
        for start in range(left, right, 14):
            draw.line([(start, y), (min(start + 8, right), y)], fill=reference.color, width=2)
        label = plain(reference.label)
        text_width = draw.textlength(label, font=tick_font)
        draw.text((right - text_width - 6, y - 18), label, fill=reference.color, font=tick_font)
    for line, color, xs, ys in series:
        segment: list[tuple[float, float]] = []
        for xv, yv in zip(xs, ys):
            if math.isfinite(xv) and math.isfinite(yv):
                segment.append(px(xv, yv))
                continue
            if len(segment) > 1:
                draw.line(segment, fill=color, width=line.width, joint="curve")
            segment = []
        if len(segment) > 1:
            draw.line(segment, fill=color, width=line.width, joint="curve")
        if line.markers:
            for xv, yv in zip(xs, ys):
                if math.isfinite(xv) and math.isfinite(yv):
                    cx, cy = px(xv, yv)
                    draw.ellipse([cx - 3.5, cy - 3.5, cx + 3.5, cy + 3.5], fill=color)
    return image


def picture_strip(panels: Sequence[tuple[str, np.ndarray]], title: str = "", scale: int = 1,
                  gap: int = 16) -> Image.Image:
    """Pictures side by side, each with its label above: panels of (label, uint8 [H, W] grey).

    Pictures of different heights are top-aligned; ``scale`` enlarges each (whole pixels).
    """
    label_font, title_font = font(15), font(18)
    pictures = [Image.fromarray(np.asarray(p, dtype=np.uint8)) for _, p in panels]
    if scale != 1:
        pictures = [p.resize((p.width * scale, p.height * scale), Image.NEAREST) for p in pictures]
    title_height = 34 if title else 0
    width = gap + sum(p.width + gap for p in pictures)
    height = title_height + 26 + max((p.height for p in pictures), default=0) + gap
    image = Image.new("RGB", (max(width, 200), height), "white")
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((gap, 8), plain(title), fill="black", font=title_font)
    x = gap
    for (label, _), picture in zip(panels, pictures):
        draw.text((x, title_height + 4), plain(label), fill="black", font=label_font)
        image.paste(picture.convert("RGB"), (x, title_height + 26))
        x += picture.width + gap
    return image
