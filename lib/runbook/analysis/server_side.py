"""The server side of a load test, read from the sampler's files and set beside Locust's numbers.

Per service: the requests Traefik counted against those Locust recorded (a gap beyond
GAP_TOLERANCE means requests lost or retried on the way), Traefik's p50/p95 next to
Locust's (the difference is time spent outside Traefik and the pods: the network, the
kind port mapping, the load generator itself), the pods' peak CPU and memory against
their limits, and the replicas at the start, peak and end. For the load generator: how
often it ran near a full core, when its numbers are bounded by it rather than the services.
"""

from __future__ import annotations

import warnings

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runbook.load import prometheus_text
from runbook.load.cluster_sources import workload_of
from runbook.analysis.results import LoadTestResults
from runbook.load.sampler import META, SAMPLES, STAND_IN_NOTE

GAP_TOLERANCE = 0.01  # Traefik's count and Locust's may differ by requests in flight at the edges
SATURATED_CPU_PERCENT = 90.0  # a Locust process is single-threaded: near one full core, it cannot send more
SATURATED_SHARE = 0.2  # ... for this share of the run's samples or more: the generator bounds the numbers
#: Whose CPU and memory a service's row shows: its pods, or on the local target the one stand-in process.
CPU_OF = ("pods", "the stand-in process (shared by every service)")


@dataclass
class Samples:
    """The sampler's lines, by source, in time order; missing ones kept (values None)."""

    meta: dict[str, Any]
    lines: dict[str, list[dict[str, Any]]]

    def ok(self, source: str) -> list[dict[str, Any]]:
        return [line for line in self.lines.get(source, []) if line["ok"]]

    def missing(self, source: str) -> list[dict[str, Any]]:
        return [line for line in self.lines.get(source, []) if not line["ok"]]


def read_samples(folder: Path) -> Samples | None:
    """What the sampler left in load_test/server/, or None when it did not run."""
    if not (folder / SAMPLES).is_file():
        return None
    meta = json.loads((folder / META).read_text()) if (folder / META).is_file() else {}
    lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for text in (folder / SAMPLES).read_text().splitlines():
        if text.strip():
            line = json.loads(text)
            lines[line["source"]].append(line)
    return Samples(meta, {k: sorted(v, key=lambda line: line["seq"]) for k, v in lines.items()})


@dataclass
class Series:
    t: np.ndarray  # seconds since the load test's start (the client charts' clock)
    values: np.ndarray  # NaN where the sample is missing


@dataclass
class ServiceSide:
    """One service (one side, with a baseline), as Traefik and its pods saw it."""

    name: str
    side: str
    locust_requests: int
    traefik_requests: int | None = None
    complete: bool = False  # readings before and after the load both present: the count covers all of it
    p50: prometheus_text.Quantile | None = None
    p95: prometheus_text.Quantile | None = None
    client_p50_ms: float | None = None
    client_p95_ms: float | None = None
    p95_series: Series | None = None  # server-side p95 per sampling interval, ms
    peak_cpu_cores: float | None = None
    cpu_limit_cores: float | None = None
    peak_memory_bytes: float | None = None
    memory_limit_bytes: float | None = None
    cpu_of: str = "pods"
    replicas: dict[str, int | None] = field(default_factory=dict)  # start, peak, end (ready)
    autoscaler: dict[str, Any] = field(default_factory=dict)  # desired_peak, cpu_percent_peak, scaling (its last word)

    @property
    def gap(self) -> float | None:
        if self.traefik_requests is None or not self.locust_requests:
            return None
        return (self.traefik_requests - self.locust_requests) / self.locust_requests

    @property
    def reconciled(self) -> bool | None:
        """True within tolerance; None when the count is incomplete (a reading before or after is missing)."""
        if self.gap is None or not self.complete:
            return None
        return abs(self.gap) <= GAP_TOLERANCE

    def as_dict(self) -> dict[str, Any]:
        def q(value: prometheus_text.Quantile | None) -> dict[str, float | None]:
            if value is None:
                return {"ms": None, "bucket_ms": None}
            high = None if math.isinf(value.high_s) else round(value.high_s * 1000, 3)
            return {"ms": round(value.value_s * 1000, 3), "bucket_ms": [round(value.low_s * 1000, 3), high]}

        return {
            "traefik_requests": self.traefik_requests, "locust_requests": self.locust_requests,
            "gap": None if self.gap is None else round(self.gap, 5), "complete": self.complete, "reconciled": self.reconciled,
            "p50": q(self.p50), "p95": q(self.p95), "client_p50_ms": _round(self.client_p50_ms), "client_p95_ms": _round(self.client_p95_ms),
            "cpu_of": self.cpu_of, "peak_cpu_cores": _round(self.peak_cpu_cores, 4), "cpu_limit_cores": self.cpu_limit_cores,
            "peak_memory_bytes": self.peak_memory_bytes, "memory_limit_bytes": self.memory_limit_bytes,
            "replicas": self.replicas, "autoscaler": self.autoscaler,
        }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None or value != value else round(value, digits)


@dataclass
class ProcessSide:
    """A watched process with its children (Locust's master and workers): CPU summed, and its busiest process."""

    role: str
    t: np.ndarray
    cpu_percent: np.ndarray  # percent of one core, summed over the processes
    rss_bytes: np.ndarray
    busiest_cpu_percent: np.ndarray | None = None  # the busiest single process (older runs: the sum)
    processes: int = 1  # the most processes seen at once

    def as_dict(self) -> dict[str, Any]:
        cpu = self.cpu_percent[~np.isnan(self.cpu_percent)]
        rss = self.rss_bytes[~np.isnan(self.rss_bytes)]
        return {"peak_cpu_percent": _round(float(cpu.max())) if cpu.size else None,
                "mean_cpu_percent": _round(float(cpu.mean())) if cpu.size else None,
                "peak_rss_bytes": int(rss.max()) if rss.size else None,
                "saturated_share": _round(self.saturated_share, 3), "samples": int(cpu.size),
                "processes": self.processes}

    @property
    def saturated_share(self) -> float | None:
        """The share of readings in which one process was near a full core (it cannot go beyond one)."""
        busiest = self.cpu_percent if self.busiest_cpu_percent is None else self.busiest_cpu_percent
        busiest = busiest[~np.isnan(busiest)]
        return float((busiest >= SATURATED_CPU_PERCENT).mean()) if busiest.size else None


@dataclass
class ServerSide:
    services: dict[tuple[str, str], ServiceSide]
    processes: dict[str, ProcessSide]
    pods: dict[str, dict[str, Any]]  # ns/pod -> {"t", "cpu", "memory", "cpu_limit", "memory_limit", "workload"}
    replicas: dict[str, dict[str, Series]]  # deployment -> {"ready": ..., "desired": ...}
    sampled: dict[str, dict[str, Any]]  # source -> {"taken", "missing", "first_error"}
    notes: list[str]
    missing_at: dict[str, list[float]] = field(default_factory=dict)  # source -> seconds since start of each missing sample
    interval_s: float = 2.0

    @property
    def generator_saturated(self) -> bool:
        locust = self.processes.get("locust")
        share = locust.saturated_share if locust else None
        return share is not None and share >= SATURATED_SHARE

    def as_dict(self) -> dict[str, Any]:
        return {
            "services": {name: s.as_dict() for (name, side), s in self.services.items() if side == "candidate"},
            "baseline_services": {name: s.as_dict() for (name, side), s in self.services.items() if side == "baseline"},
            "processes": {role: p.as_dict() for role, p in self.processes.items()},
            "generator_saturated": self.generator_saturated,
            "samples": self.sampled,
            "notes": self.notes,
        }


PROXY_NOTE = ("Traefik's numbers are missing because the API server could not proxy to its metrics port (some managed "
              "control planes do not proxy to pods, and a default-deny NetworkPolicy blocks it)")
#: Notes the runbook itself writes, word for word: shown as text. Any other note (it may quote an error) is shown inert.
PLAIN_NOTES = (STAND_IN_NOTE, PROXY_NOTE)


def analyse(folder: Path, results: LoadTestResults) -> ServerSide | None:
    """The server side of the run in folder (load_test/server/), or None when nothing was sampled."""
    samples = read_samples(folder)
    if samples is None:
        return None
    t0 = results.t0
    services = {(info["service"], info["side"]): None for info in samples.meta.get("labels", {}).values()}
    sides = {key: _service(key, samples, results) for key in services}
    processes = {role: _process(role, samples, t0) for role in samples.meta.get("processes", [])}
    pods = _pods(samples, t0)
    in_cluster = _generator_pods(pods)
    if in_cluster is not None:  # Locust ran as pods: the generator is their CPU and memory, not a process here
        processes["locust"] = in_cluster
    replicas = _replicas(samples, t0)
    for entry in sides.values():
        _resources(entry, samples, pods, processes)
    sampled = {source: {"taken": len(lines), "missing": len(samples.missing(source)),
                        "first_error": next((line["error"] for line in lines if not line["ok"]), None)}
               for source, lines in samples.lines.items()}
    missing_at = {source: [line["time"] - t0 for line in samples.missing(source)] for source in samples.lines}
    notes = list(samples.meta.get("notes", []))
    traefik = samples.lines.get("traefik", [])
    if traefik and not any(line["ok"] for line in traefik) and "/proxy/metrics" in str(sampled["traefik"]["first_error"]):
        notes.append(PROXY_NOTE)
    return ServerSide(sides, processes, pods, replicas, sampled, notes, missing_at,
                      float(samples.meta.get("interval_s", 2.0)))


def _service(key: tuple[str, str], samples: Samples, results: LoadTestResults) -> ServiceSide:
    name, side = key
    labels = [label for label, info in samples.meta.get("labels", {}).items() if (info["service"], info["side"]) == key]
    client = results.requests.get((name, side))
    entry = ServiceSide(name, side, locust_requests=int(client.t.size) if client is not None else 0)
    ok_latency = client.latency_ms[client.ok] if client is not None else np.array([])
    if ok_latency.size:
        entry.client_p50_ms, entry.client_p95_ms = (float(np.percentile(ok_latency, q)) for q in (50, 95))
    lines = samples.lines.get("traefik", [])
    readings = [(line, _counters(line, labels)) for line in lines if line["ok"]]
    if not readings:
        return entry
    earliest, latest = readings[0][1], readings[-1][1]
    entry.complete = bool(lines) and lines[0]["ok"] and lines[0]["moment"] == "before" and lines[-1]["ok"] and lines[-1]["moment"] == "after"
    window = prometheus_text.difference(latest, earliest)
    entry.traefik_requests = int(round(window.requests))
    entry.p50, entry.p95 = prometheus_text.quantile(0.5, window), prometheus_text.quantile(0.95, window)
    t, p95 = [], []
    for line in lines[1:]:
        t.append(line["time"] - results.t0)
        previous = next((c for l, c in reversed(readings) if l["seq"] < line["seq"]), None)
        current = next((c for l, c in readings if l["seq"] == line["seq"]), None)
        value = prometheus_text.quantile(0.95, prometheus_text.difference(current, previous)) if current and previous else None
        p95.append(value.value_s * 1000 if value else np.nan)
    entry.p95_series = Series(np.array(t), np.array(p95, dtype=float))
    return entry


def _counters(line: dict[str, Any], labels: list[str]) -> prometheus_text.ServiceCounters:
    """One reading's counters for a service (its labels summed; none counted yet: zero)."""
    total = prometheus_text.ServiceCounters()
    for label in labels:
        raw = (line["values"].get("services") or {}).get(label)
        if raw is None:
            continue
        total.add(prometheus_text.ServiceCounters.from_dict(raw))
    return total


def _process(role: str, samples: Samples, t0: float) -> ProcessSide:
    lines = samples.lines.get("processes", [])
    values = [(line["values"] or {}).get(role) if line["ok"] else None for line in lines]
    # A process's CPU since the previous reading: the first reading of each only starts the clock.
    timed = [v if v and line["moment"] != "before" else None for v, line in zip(values, lines)]
    return ProcessSide(role, np.array([line["time"] - t0 for line in lines]),
                       np.array([v["cpu_percent"] if v else np.nan for v in timed], dtype=float),
                       np.array([v["rss_bytes"] if v else np.nan for v in values], dtype=float),
                       np.array([v.get("busiest_cpu_percent", v["cpu_percent"]) if v else np.nan for v in timed], dtype=float),
                       max([int(v.get("processes", 1)) for v in values if v] or [1]))


def _pods(samples: Samples, t0: float) -> dict[str, dict[str, Any]]:
    lines = samples.lines.get("pods", [])
    limits: dict[str, dict[str, Any]] = {}
    for line in samples.ok("workloads"):
        limits.update(line["values"].get("limits") or {})
    names = sorted({pod for line in lines if line["ok"] for pod in line["values"]["pods"]})
    pods = {}
    for pod in names:
        readings = [(line["values"]["pods"].get(pod) if line["ok"] else None) for line in lines]
        limit = limits.get(pod, {})
        pods[pod] = {
            "t": np.array([line["time"] - t0 for line in lines]),
            "cpu": np.array([r["cpu_cores"] if r and r["cpu_cores"] is not None else np.nan for r in readings], dtype=float),
            "memory": np.array([r["memory_bytes"] if r and r["memory_bytes"] is not None else np.nan for r in readings], dtype=float),
            "cpu_limit": limit.get("cpu_cores"), "memory_limit": limit.get("memory_bytes"),
            "workload": limit.get("deployment") or f"{pod.split('/')[0]}/{workload_of(pod.split('/')[-1])}",
        }
    return pods


def _generator_pods(pods: dict[str, dict[str, Any]]) -> ProcessSide | None:
    """Locust's master and worker pods (--load-generator cluster) as one generator: summed, and the busiest pod."""
    from runbook.load.in_cluster import NAME

    mine = [pod for pod in pods.values() if pod["workload"].split("/")[-1] == NAME]
    if not mine:
        return None
    cpu = np.vstack([pod["cpu"] for pod in mine]) * 100  # percent of one core, as for a process
    memory = np.vstack([pod["memory"] for pod in mine])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a reading no pod answered: nan, not zero
        return ProcessSide("locust", mine[0]["t"], _sum_present(cpu), _sum_present(memory), np.nanmax(cpu, axis=0), len(mine))


def _sum_present(rows: np.ndarray) -> np.ndarray:
    """Per reading, the sum over the pods that answered; nan where none did."""
    return np.where(np.isnan(rows).all(axis=0), np.nan, np.nansum(rows, axis=0))


def _replicas(samples: Samples, t0: float) -> dict[str, dict[str, Series]]:
    lines = samples.lines.get("workloads", [])
    names = sorted({d for line in lines if line["ok"] for d in line["values"]["deployments"]})
    hpa_of = {h["deployment"]: key for line in samples.ok("workloads") for key, h in line["values"]["autoscalers"].items()}
    t = np.array([line["time"] - t0 for line in lines])
    out = {}
    for name in names:
        def series(pick: Any) -> Series:
            return Series(t, np.array([_num(pick(line["values"])) if line["ok"] else np.nan for line in lines], dtype=float))

        out[name] = {"ready": series(lambda v, n=name: (v["deployments"].get(n) or {}).get("ready")),
                     "desired": series(lambda v, n=name: (v["autoscalers"].get(hpa_of.get(n, "")) or {}).get("desired")
                                       if n in hpa_of else (v["deployments"].get(n) or {}).get("desired"))}
    return out


def _num(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else np.nan


def _resources(entry: ServiceSide, samples: Samples, pods: dict[str, dict[str, Any]], processes: dict[str, ProcessSide]) -> None:
    """Peak CPU and memory of the service's pods (or, locally, of the one stand-in process), and its replicas."""
    workload = next((w for w, info in samples.meta.get("workloads", {}).items()
                     if (info["service"], info["side"]) == (entry.name, entry.side)), None)
    if workload is None:
        stand_in = processes.get("stand-in")
        if stand_in is not None and stand_in.as_dict()["samples"]:
            entry.cpu_of = CPU_OF[1]
            entry.peak_cpu_cores = float(np.nanmax(stand_in.cpu_percent)) / 100
            entry.peak_memory_bytes = float(np.nanmax(stand_in.rss_bytes))
        return
    mine = [p for p in pods.values() if p["workload"] == workload]
    cpu = [(float(np.nanmax(p["cpu"])), p["cpu_limit"]) for p in mine if np.isfinite(p["cpu"]).any()]
    memory = [(float(np.nanmax(p["memory"])), p["memory_limit"]) for p in mine if np.isfinite(p["memory"]).any()]
    if cpu:
        entry.peak_cpu_cores, entry.cpu_limit_cores = max(cpu, key=lambda c: c[0] / c[1] if c[1] else c[0])
    if memory:
        entry.peak_memory_bytes, entry.memory_limit_bytes = max(memory, key=lambda m: m[0] / m[1] if m[1] else m[0])
    ready = [(line["values"]["deployments"].get(workload) or {}).get("ready") for line in samples.ok("workloads")]
    ready = [r for r in ready if isinstance(r, int)]
    if ready:
        entry.replicas = {"start": ready[0], "peak": max(ready), "end": ready[-1]}
    hpas = [h for line in samples.ok("workloads") for h in line["values"]["autoscalers"].values() if h["deployment"] == workload]
    if hpas:
        desired = [h["desired"] for h in hpas if isinstance(h["desired"], int)]
        cpu = [h["cpu_percent"] for h in hpas if isinstance(h["cpu_percent"], (int, float))]
        entry.autoscaler = {"desired_peak": max(desired) if desired else None, "cpu_percent_peak": max(cpu) if cpu else None,
                            "scaling": hpas[-1].get("able_to_scale")}
