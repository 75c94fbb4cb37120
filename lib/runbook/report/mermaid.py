"""Mermaid xychart-beta blocks of the main charts: GitHub renders them with no image hosting.

xychart-beta draws no legend: each line gets its colour from the chart's own palette
(set in an init directive, the same colours as the PNG charts) and the title names the
colour of each service. The time axis is numeric, so it shows a few ticks rather than a
label per point. Values are plain decimals (no exponent, NaN or infinity), labels carry
no double quotes.
"""

from __future__ import annotations

import math

import numpy as np

from runbook.analysis.results import LoadTestResults

MAX_POINTS = 60
#: The PNG charts' colours (matplotlib's first ones), with the names the titles use for them.
PALETTE = [("#1f77b4", "blue"), ("#ff7f0e", "orange"), ("#2ca02c", "green"), ("#9467bd", "purple"),
           ("#8c564b", "brown"), ("#e377c2", "pink")]


def _number(value: float) -> str:
    if not math.isfinite(value):
        value = 0.0
    return f"{value:.1f}".rstrip("0").rstrip(".") if abs(value) < 1e12 else "0"


def _label(text: str) -> str:
    return text.replace('"', "'")


def _downsample(t: np.ndarray, series: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    if t.size <= MAX_POINTS:
        return t, series
    step = math.ceil(t.size / MAX_POINTS)
    usable = (t.size // step) * step

    def mean(a: np.ndarray) -> np.ndarray:
        return np.nanmean(a[:usable].reshape(-1, step), axis=1) if usable else a

    return t[:usable].reshape(-1, step)[:, 0], [mean(s) for s in series]


def throughput_chart(results: LoadTestResults) -> str:
    names = list(results.services)
    first = results.services[names[0]].series
    t, series = _downsample(first.t, [results.services[n].series.ok_rps for n in names])
    peak = max([float(np.nanmax(s)) if s.size else 0.0 for s in series] + [1.0])
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
    legend = ", ".join(f"{name} {word}" for name, (_, word) in zip(names, colours))
    palette = ", ".join(code for code, _ in colours)
    end = float(t[-1]) if t.size else 1.0
    lines = [
        "```mermaid",
        f'%%{{init: {{"themeVariables": {{"xyChart": {{"plotColorPalette": "{palette}"}}}}}}}}%%',
        "xychart-beta",
        f'    title "Successful requests per second: {_label(legend)}"',
        f'    x-axis "seconds since start" 0 --> {_number(math.ceil(end))}',
        f'    y-axis "requests per second" 0 --> {_number(math.ceil(peak * 1.1))}',
    ]
    lines += [f"    line [{', '.join(_number(v) for v in s)}]" for s in series]
    lines.append("```")
    return "\n".join(lines)


def latency_chart(results: LoadTestResults) -> str:
    labels, values = [], []
    for name, stats in results.services.items():
        for q in (50, 95, 99):
            labels.append(f"{name} p{q}")
            values.append(stats.percentile(q) or 0.0)
    top = max(values + [1.0])
    categories = ", ".join('"' + _label(label) + '"' for label in labels)
    return "\n".join([
        "```mermaid",
        "xychart-beta",
        '    title "Latency of successful requests (ms)"',
        f"    x-axis [{categories}]",
        f'    y-axis "ms" 0 --> {_number(math.ceil(top * 1.1))}',
        f"    bar [{', '.join(_number(v) for v in values)}]",
        "```",
    ])
