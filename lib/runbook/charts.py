"""The report's charts, drawn with matplotlib's object API (no pyplot state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter

from runbook.results import LoadTestResults

CHARTS = {
    "throughput": "throughput.png",
    "latency": "latency.png",
    "percentiles": "percentiles.png",
    "rounds": "rounds.png",  # with a baseline only
}
_SIZE = (9, 4.8)
_DPI = 110


def draw_all(results: LoadTestResults, out: Path, subtitle: str) -> dict[str, Path]:
    """Write every chart to out; returns {chart: path}."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    drawn = [("throughput", throughput), ("latency", latency), ("percentiles", percentile_curve)]
    if results.baseline:
        drawn.append(("rounds", rounds_p95))
    for key, draw in drawn:
        figure = draw(results, subtitle)
        path = out / CHARTS[key]
        figure.savefig(path, dpi=_DPI)
        paths[key] = path
    return paths


def _colors(results: LoadTestResults) -> dict[str, str]:
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]
    return {name: palette[i % len(palette)] for i, name in enumerate(results.services)}


def throughput(results: LoadTestResults, subtitle: str) -> Figure:
    figure = Figure(figsize=_SIZE, layout="constrained")
    axes = figure.add_subplot()
    colors = _colors(results)
    for name, stats in results.services.items():
        series = stats.series
        axes.plot(series.t, series.ok_rps, color=colors[name], label=f"{name} ok/s")
        if series.fail_rps.any():
            axes.plot(series.t, series.fail_rps, color=colors[name], linestyle="--", label=f"{name} failures/s")
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("requests per second")
    axes.set_ylim(bottom=0)
    users = axes.twinx()
    if results.users.size:
        users.step(results.users_t, results.users, where="post", color="grey", alpha=0.6, label="users")
    users.set_ylabel("users")
    users.set_ylim(bottom=0)
    _legend(axes, users)
    axes.set_title(f"Throughput per service ({results.bucket_s:g}s buckets)\n{subtitle}", fontsize=10)
    return figure


def latency(results: LoadTestResults, subtitle: str) -> Figure:
    figure = Figure(figsize=_SIZE, layout="constrained")
    axes = figure.add_subplot()
    colors = _colors(results)
    styles = {"p50": "-", "p95": "--", "p99": ":"}
    for name, stats in results.services.items():
        for key, style in styles.items():
            axes.plot(stats.series.t, getattr(stats.series, key), color=colors[name], linestyle=style, label=f"{name} {key}")
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("response time of successful requests (ms)")
    axes.set_ylim(bottom=0)
    axes.legend(fontsize=8, ncols=2)
    axes.grid(alpha=0.3)
    axes.set_title(f"Latency over time, successful requests only\n{subtitle}", fontsize=10)
    return figure


def percentile_curve(results: LoadTestResults, subtitle: str) -> Figure:
    """Response time by percentile, on a scale that spreads out the tail (50%, 90%, 99%, 99.9%)."""
    figure = Figure(figsize=_SIZE, layout="constrained")
    axes = figure.add_subplot()
    colors = _colors(results)
    q = np.concatenate([np.linspace(0, 90, 91), np.linspace(90.1, 99.9, 99)])
    x = -np.log10(1 - q / 100)
    for name, stats in results.services.items():
        if stats.latencies_ms.size:
            axes.plot(x, np.percentile(stats.latencies_ms, q), color=colors[name], label=name)
        base = results.baseline.get(name)
        if base is not None and base.latencies_ms.size:
            axes.plot(x, np.percentile(base.latencies_ms, q), color=colors[name], linestyle="--", label=f"{name} (baseline)")
    ticks = [0, 50, 90, 99, 99.9]
    axes.xaxis.set_major_locator(FixedLocator([-np.log10(1 - t / 100) for t in ticks]))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{100 * (1 - 10 ** -v):.4g}%"))
    axes.set_xlabel("percentile")
    axes.set_ylabel("response time (ms)")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend()
    axes.set_title(f"Response-time percentiles, successful requests only\n{subtitle}", fontsize=10)
    return figure


def rounds_p95(results: LoadTestResults, subtitle: str) -> Figure:
    """p95 of each round, candidate (solid) and baseline (dashed), so the spread between rounds shows."""
    figure = Figure(figsize=_SIZE, layout="constrained")
    axes = figure.add_subplot()
    colors = _colors(results)
    order = results.profile["schedule"]["order"]  # type: ignore[index]
    for name in results.services:
        for side, style in (("candidate", "-o"), ("baseline", "--s")):
            xs, ys = [], []
            for number, round_side in enumerate(order, 1):
                if round_side != side:
                    continue
                latency, ok = results.rounds.get((name, side, number), (np.array([]), np.array([], dtype=bool)))
                if latency[ok].size:
                    xs.append(number)
                    ys.append(float(np.percentile(latency[ok], 95)))
            label = name if side == "candidate" else f"{name} (baseline)"
            axes.plot(xs, ys, style, color=colors[name], label=label)
    axes.set_xticks(range(1, len(order) + 1), [f"{i}\n{side[0].upper()}" for i, side in enumerate(order, 1)])
    axes.set_xlabel("round (C candidate, B baseline)")
    axes.set_ylabel("p95 response time (ms)")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    axes.set_title(f"p95 per round, candidate against baseline\n{subtitle}", fontsize=10)
    return figure


def _legend(*axes_list: object) -> None:
    handles, labels = [], []
    for axes in axes_list:
        h, l = axes.get_legend_handles_labels()  # type: ignore[attr-defined]
        handles += h
        labels += l
    axes_list[0].legend(handles, labels, fontsize=8, loc="upper left")  # type: ignore[attr-defined]
