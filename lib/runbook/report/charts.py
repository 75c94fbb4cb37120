"""The report's charts, drawn with matplotlib's object API (no pyplot state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter

from runbook.analysis.results import LoadTestResults
from runbook.report.style import DPI, SIZE, service_colors

CHARTS = {
    "throughput": "throughput.png",
    "latency": "latency.png",
    "percentiles": "percentiles.png",
    "change": "change.png",  # with a baseline only
}


def draw_all(results: LoadTestResults, out: Path, subtitle: str) -> dict[str, Path]:
    """Write every chart to out; returns {chart: path}."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    drawn = [("throughput", throughput), ("latency", latency), ("percentiles", percentile_curve)]
    if results.compared:
        drawn.append(("change", change_over_time))
    for key, draw in drawn:
        figure = draw(results, subtitle)
        path = out / CHARTS[key]
        figure.savefig(path, dpi=DPI)
        paths[key] = path
    return paths


def throughput(results: LoadTestResults, subtitle: str) -> Figure:
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.add_subplot()
    colors = service_colors(results.services)
    for name, side, stats in _sides(results):
        series, faint = stats.series, side == "baseline"
        label = name if not faint else f"{name} (baseline)"
        axes.plot(series.t, series.ok_rps, color=colors[name], alpha=0.55 if faint else 1.0,
                  linestyle="-." if faint else "-", label=f"{label} ok/s")
        if series.fail_rps.any():
            axes.plot(series.t, series.fail_rps, color=colors[name], alpha=0.55 if faint else 1.0, linestyle="--",
                      label=f"{label} failures/s")
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("requests per second")
    axes.set_ylim(bottom=0)
    users = axes.twinx()
    if results.users.size:
        users.step(results.users_t, results.users, where="post", color="grey", alpha=0.6, label="users")
    users.set_ylabel("users")
    users.set_ylim(bottom=0)
    _legend(axes, users)
    both = " and side (requests to both sides in random pairs)" if results.compared else ""
    axes.set_title(f"Throughput per service{both} ({results.bucket_s:g}s buckets)\n{subtitle}", fontsize=10)
    return figure


def latency(results: LoadTestResults, subtitle: str) -> Figure:
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.add_subplot()
    colors = service_colors(results.services)
    # With a baseline, p50 and p95 of both sides (p99 of a bucket is too noisy to read beside them).
    styles = {"p50": "-", "p95": "--"} if results.compared else {"p50": "-", "p95": "--", "p99": ":"}
    for name, side, stats in _sides(results):
        faint = side == "baseline"
        for key, style in styles.items():
            axes.plot(stats.series.t, getattr(stats.series, key), color=colors[name], linestyle=style,
                      alpha=0.5 if faint else 1.0, linewidth=1.0 if faint else 1.5,
                      label=f"{name}{' (baseline)' if faint else ''} {key}")
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("response time of successful requests (ms)")
    axes.set_ylim(bottom=0)
    axes.legend(fontsize=8, ncols=2)
    axes.grid(alpha=0.3)
    axes.set_title(f"Latency over time, successful requests only\n{subtitle}", fontsize=10)
    return figure


def percentile_curve(results: LoadTestResults, subtitle: str) -> Figure:
    """Response time by percentile, on a scale that spreads out the tail (50%, 90%, 99%, 99.9%)."""
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.add_subplot()
    colors = service_colors(results.services)
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


def change_over_time(results: LoadTestResults, subtitle: str) -> Figure:
    """The change against the baseline (and its 95% interval) on the first seconds measured, growing: did it settle?"""
    from runbook.analysis.compare import over_time

    metrics = ("p50", "p95")
    found = over_time(results.requests, list(results.baseline), metrics)
    figure = Figure(figsize=SIZE, layout="constrained")
    colors = service_colors(results.services)
    for i, metric in enumerate(metrics):
        axes = figure.add_subplot(1, len(metrics), i + 1)
        for name, by_metric in found.items():
            points = by_metric[metric]
            if not points:
                continue
            data = np.array(points)
            t, (change, low, high) = data[:, 0], data[:, 1:].T * 100
            axes.plot(t, change, color=colors.get(name, "black"), marker="o", markersize=3, label=name)
            axes.fill_between(t, low, high, color=colors.get(name, "black"), alpha=0.18)
        axes.axhline(0, color="grey", linewidth=0.8)
        axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:+.0f}%"))
        axes.set_xlabel("seconds measured")
        axes.set_ylabel(f"{metric}: candidate against baseline")
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:  # a run too short to judge has no line yet
            axes.legend(fontsize=8)
        axes.set_title(metric, fontsize=10)
    figure.suptitle(f"Change against the baseline as the run goes on (band: 95% interval)\n{subtitle}", fontsize=10)
    return figure


def _sides(results: LoadTestResults) -> list[tuple[str, str, object]]:
    """(service, side, stats): the candidate's services, each followed by its baseline when there is one."""
    found = []
    for name, stats in results.services.items():
        found.append((name, "candidate", stats))
        if name in results.baseline:
            found.append((name, "baseline", results.baseline[name]))
    return found


def _legend(*axes_list: object) -> None:
    handles, labels = [], []
    for axes in axes_list:
        h, l = axes.get_legend_handles_labels()  # type: ignore[attr-defined]
        handles += h
        labels += l
    axes_list[0].legend(handles, labels, fontsize=8, loc="upper left")  # type: ignore[attr-defined]
