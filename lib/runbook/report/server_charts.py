"""The server side's charts: Traefik's latency beside Locust's, CPU and memory with limits, replicas.

Missing samples are gaps in the lines and grey bands on the time axis, never joined over.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from runbook.report.style import DPI, SIZE, service_colors
from runbook.analysis.results import LoadTestResults
from runbook.analysis.server_side import ServerSide

CHARTS = {
    "server_latency": "server-latency.png",
    "resources": "resources.png",
    "replicas": "replicas.png",  # on a cluster only: the stand-in has no replicas
}
_MIB = 2**20


def draw_all(server: ServerSide, results: LoadTestResults, out: Path, subtitle: str, local: bool = False) -> dict[str, Path]:
    """Every server-side chart; local: the target is the stand-in, and the charts say so (no Traefik, no pods)."""
    paths = {}
    for key, draw in [("server_latency", server_latency), ("resources", resources)]:
        path = out / CHARTS[key]
        draw(server, results, subtitle, local).savefig(path, dpi=DPI)
        paths[key] = path
    if server.replicas:
        paths["replicas"] = out / CHARTS["replicas"]
        replicas(server, results, subtitle).savefig(paths["replicas"], dpi=DPI)
    return paths


def _missing_bands(axes: object, server: ServerSide, results: LoadTestResults, source: str) -> None:
    half = server.interval_s / 2
    for i, t in enumerate(server.missing_at.get(source, [])):
        axes.axvspan(t - half, t + half, color="grey", alpha=0.2, lw=0, label="sample missing" if i == 0 else None)  # type: ignore[attr-defined]


def server_latency(server: ServerSide, results: LoadTestResults, subtitle: str, local: bool = False) -> Figure:
    """p95 per service: Locust's (solid, what the client saw) and the server's (dashed: Traefik, or the stand-in)."""
    inside = "the stand-in" if local else "Traefik"
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.add_subplot()
    colors = service_colors(results.services)
    for name, stats in results.services.items():
        if stats.series is not None:
            axes.plot(stats.series.t, stats.series.p95, color=colors[name], label=f"{name} p95, Locust")
        side = server.services.get((name, "candidate"))
        if side is not None and side.p95_series is not None and side.p95_series.t.size:
            axes.plot(side.p95_series.t, side.p95_series.values, color=colors[name], linestyle="--", marker=".",
                      label=f"{name} p95, {inside}")
    _missing_bands(axes, server, results, "traefik")
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("p95 response time (ms)")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8, ncols=2)
    outside = "the stand-in" if local else "Traefik and the pods"
    axes.set_title(f"Client-side against server-side p95 (the gap: time outside {outside})\n{subtitle}", fontsize=10)
    return figure


def resources(server: ServerSide, results: LoadTestResults, subtitle: str, local: bool = False) -> Figure:
    """CPU (cores) and memory (MiB) over time of every pod, the stand-in and Locust, with the pods' limits."""
    figure = Figure(figsize=(SIZE[0], SIZE[1] * 1.4), layout="constrained")
    cpu_axes, memory_axes = figure.subplots(2, 1, sharex=True)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    rows = [(pod, p["t"], p["cpu"], p["memory"], p["cpu_limit"], p["memory_limit"]) for pod, p in server.pods.items()]
    rows += [(f"{role} (process)", p.t, p.cpu_percent / 100, p.rss_bytes, None, None) for role, p in server.processes.items()]
    for i, (label, t, cpu, memory, cpu_limit, memory_limit) in enumerate(rows):
        color = palette[i % len(palette)]
        cpu_axes.plot(t, cpu, color=color, marker=".", label=label)
        memory_axes.plot(t, memory / _MIB, color=color, marker=".", label=label)
        if cpu_limit:
            cpu_axes.axhline(cpu_limit, color=color, linestyle=":", linewidth=1)
        if memory_limit:
            memory_axes.axhline(memory_limit / _MIB, color=color, linestyle=":", linewidth=1)
    for axes in (cpu_axes, memory_axes):
        _missing_bands(axes, server, results, "pods" if server.pods else "processes")
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
    cpu_axes.set_ylabel("CPU (cores)")
    memory_axes.set_ylabel("memory (MiB)")
    limits = any(cpu_limit or memory_limit for *_, cpu_limit, memory_limit in rows)
    memory_axes.set_xlabel("seconds since start" + (" (dotted: the pod's limit)" if limits else ""))
    cpu_axes.legend(fontsize=7, ncols=2)
    whose = "the stand-in and Locust (processes)" if local else "per pod and process"
    cpu_axes.set_title(f"CPU and memory, {whose}\n{subtitle}", fontsize=10)
    return figure


def replicas(server: ServerSide, results: LoadTestResults, subtitle: str) -> Figure:
    """Per Deployment, one panel: ready replicas (solid) and what its autoscaler wanted (dashed)."""
    from matplotlib.ticker import MaxNLocator

    names = sorted(server.replicas)
    figure = Figure(figsize=(SIZE[0], 1.2 + 1.3 * len(names)), layout="constrained")
    panels = figure.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    top = max([np.nanmax(np.concatenate([s["ready"].values, s["desired"].values, [0.0]])) for s in server.replicas.values()])
    for axes, name in zip(panels, names):
        series = server.replicas[name]
        axes.step(series["ready"].t, series["ready"].values, where="post", color="#1f77b4", label="ready")
        if np.isfinite(series["desired"].values).any():
            axes.step(series["desired"].t, series["desired"].values, where="post", color="#ff7f0e", linestyle="--", label="desired")
        _missing_bands(axes, server, results, "workloads")
        axes.set_ylim(0, top + 1)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(name, fontsize=8)
        axes.grid(alpha=0.3)
    panels[0].legend(fontsize=8, loc="lower right")
    panels[-1].set_xlabel("seconds since start")
    panels[0].set_title(f"Replicas per Deployment (dashed: what the autoscaler wanted)\n{subtitle}", fontsize=10)
    return figure
