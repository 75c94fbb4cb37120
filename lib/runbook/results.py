"""Numbers from a load test: per-service totals, percentiles and time series.

Latency is computed from successful requests only, from the runbook's own
request log (every request with its outcome); failed requests are counted and
plotted apart, never folded into the latency figures. Locust's own CSVs and
HTML report stay in the run folder beside it.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runbook.loadtest import CSV_PREFIX, PROFILE, REQUEST_LOG
from runbook.rundir import read_json

PERCENTILES = (50, 90, 95, 99)


@dataclass
class ServiceSeries:
    """Per time bucket: successes/s, failures/s and latency percentiles of successes."""

    t: np.ndarray
    ok_rps: np.ndarray
    fail_rps: np.ndarray
    p50: np.ndarray
    p95: np.ndarray
    p99: np.ndarray


@dataclass
class ServiceStats:
    name: str
    requests: int
    failures: int
    rps: float
    latencies_ms: np.ndarray  # successes only, sorted
    errors: Counter[str] = field(default_factory=Counter)
    series: ServiceSeries | None = None

    def percentile(self, q: float) -> float | None:
        if self.latencies_ms.size == 0:
            return None
        return float(np.percentile(self.latencies_ms, q))

    @property
    def min_ms(self) -> float | None:
        return float(self.latencies_ms[0]) if self.latencies_ms.size else None

    @property
    def max_ms(self) -> float | None:
        return float(self.latencies_ms[-1]) if self.latencies_ms.size else None

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "rps": round(self.rps, 2),
            "min_ms": _ms(self.min_ms),
            **{f"p{q}_ms": _ms(self.percentile(q)) for q in PERCENTILES},
            "max_ms": _ms(self.max_ms),
            "errors": dict(self.errors.most_common(10)),
        }


@dataclass
class Requests:
    """Every request of one service on one side, in the order recorded."""

    t: np.ndarray  # epoch seconds when it was recorded (its end)
    latency_ms: np.ndarray
    ok: np.ndarray
    measured: np.ndarray  # False for a comparison's warm-up

    def window(self) -> Requests:
        """The measured requests only."""
        keep = self.measured
        return Requests(self.t[keep], self.latency_ms[keep], self.ok[keep], self.measured[keep])


@dataclass
class LoadTestResults:
    profile: dict[str, object]
    services: dict[str, ServiceStats]  # the candidate (the change); with a baseline, after the warm-up only
    users_t: np.ndarray
    users: np.ndarray
    bucket_s: float
    baseline: dict[str, ServiceStats] = field(default_factory=dict)  # the baseline, after the warm-up, by service
    #: (service, side) -> every request, the warm-up included (the comparison takes Requests.window())
    requests: dict[tuple[str, str], Requests] = field(default_factory=dict)
    t0: float = 0.0  # the epoch second the charts' "seconds since start" count from

    @property
    def passed_requests(self) -> bool:
        """Every service got requests (whether they failed is for the SLO checks to say)."""
        return all(s.requests > 0 for s in self.services.values())

    @property
    def compared(self) -> bool:
        return bool(self.profile.get("schedule")) and bool(self.baseline)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def load_results(load_test_dir: Path) -> LoadTestResults:
    """Read what the load_test stage left in load_test_dir."""
    profile_path = load_test_dir / PROFILE
    if not profile_path.is_file():
        raise FileNotFoundError(f"{profile_path} is missing: run the load_test stage first")
    profile = read_json(profile_path)
    names = [s["name"] for s in profile["services"]]
    compared = bool(profile.get("schedule"))
    columns: dict[tuple[str, str], tuple[list[float], list[float], list[bool], list[bool]]] = {
        (name, "candidate"): ([], [], [], []) for name in names}
    for s in profile.get("baseline_services") or []:
        columns[(s["name"], "baseline")] = ([], [], [], [])
    errors: dict[tuple[str, str], Counter[str]] = {}
    with (load_test_dir / REQUEST_LOG).open(newline="") as handle:
        for row in csv.DictReader(handle):
            key = (row["service"], row.get("side") or "candidate")
            t, latency, ok, measured = columns.setdefault(key, ([], [], [], []))
            t.append(float(row["time"]))
            latency.append(float(row["response_ms"]))
            ok.append(row["ok"] == "1")
            # Round 0 is a comparison's warm-up: in neither side's numbers.
            measured.append(not compared or int(row.get("round") or 1) != 0)
            if row["ok"] != "1" and measured[-1]:
                errors.setdefault(key, Counter())[row["error"]] += 1
    requests = {key: Requests(np.array(t, dtype=float), np.array(latency, dtype=float), np.array(ok, dtype=bool),
                              np.array(measured, dtype=bool)) for key, (t, latency, ok, measured) in columns.items()}
    users_t, users = _user_counts(load_test_dir / f"{CSV_PREFIX}_stats_history.csv")
    windows = {key: r.window() for key, r in requests.items()}
    starts = [float(r.t.min()) for r in requests.values() if r.t.size] + ([float(users_t.min())] if users_t.size else [])
    t0 = min(starts, default=0.0)
    t_end = max([float(w.t.max()) for w in windows.values() if w.t.size], default=t0)
    span = float(profile["run_time_s"])
    bucket = max(1.0, math.ceil(span / 120))
    by_side: dict[str, dict[str, ServiceStats]] = {"candidate": {}, "baseline": {}}
    for (name, side), window in windows.items():
        by_side.setdefault(side, {})[name] = _service(name, window, errors.get((name, side), Counter()), t0, t_end, bucket)
    services = {name: by_side["candidate"][name] for name in by_side["candidate"]}
    return LoadTestResults(profile, services, users_t - t0, users, bucket, by_side["baseline"], requests, t0)


def _service(name: str, window: Requests, errors: Counter[str], t0: float, t_end: float, bucket: float) -> ServiceStats:
    times, latency, ok = window.t - t0, window.latency_ms, window.ok
    count = int(times.size)
    span = max(float(times.max() - times.min()) if count else 0.0, 1e-9)
    stats = ServiceStats(
        name=name,
        requests=count,
        failures=int((~ok).sum()),
        rps=count / span if count > 1 else float(count),
        latencies_ms=np.sort(latency[ok]),
        errors=errors,
    )
    edges = np.arange(0.0, (t_end - t0) + bucket, bucket)
    if edges.size < 2:
        edges = np.array([0.0, bucket])
    index = np.clip(np.digitize(times, edges) - 1, 0, edges.size - 2)
    n = edges.size - 1
    p = {q: np.full(n, np.nan) for q in (50, 95, 99)}
    for i in range(n):
        sample = latency[(index == i) & ok]
        if sample.size:
            for q in p:
                p[q][i] = np.percentile(sample, q)
    stats.series = ServiceSeries(
        t=edges[:-1] + bucket / 2,
        ok_rps=np.bincount(index[ok], minlength=n)[:n] / bucket,
        fail_rps=np.bincount(index[~ok], minlength=n)[:n] / bucket,
        p50=p[50], p95=p[95], p99=p[99],
    )
    return stats


def _user_counts(history: Path) -> tuple[np.ndarray, np.ndarray]:
    """User count over time from locust's stats history (its Aggregated rows)."""
    if not history.is_file():
        return np.array([]), np.array([])
    points: dict[float, int] = {}
    with history.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("Name") == "Aggregated":
                points[float(row["Timestamp"])] = int(float(row["User Count"]))
    t = np.array(sorted(points))
    return t, np.array([points[k] for k in sorted(points)])
