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
class LoadTestResults:
    profile: dict[str, object]
    services: dict[str, ServiceStats]  # the candidate (the change); with a baseline, its rounds only
    users_t: np.ndarray
    users: np.ndarray
    bucket_s: float
    baseline: dict[str, ServiceStats] = field(default_factory=dict)  # the baseline's rounds, by service
    #: (service, side, round) -> (latency ms, ok) of every request, for the comparison
    rounds: dict[tuple[str, str, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    t0: float = 0.0  # the epoch second the charts' "seconds since start" count from

    @property
    def passed_requests(self) -> bool:
        """Every service got requests (whether they failed is for the SLO checks to say)."""
        return all(s.requests > 0 for s in self.services.values())


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
    sides: dict[str, dict[str, list[tuple[float, float, bool, str]]]] = {
        "candidate": {name: [] for name in names},
        "baseline": {s["name"]: [] for s in profile.get("baseline_services") or []},
    }
    by_round: dict[tuple[str, str, int], list[tuple[float, bool]]] = {}
    with (load_test_dir / REQUEST_LOG).open(newline="") as handle:
        for row in csv.DictReader(handle):
            side, round_number = row.get("side") or "candidate", int(row.get("round") or 1)
            latency, ok = float(row["response_ms"]), row["ok"] == "1"
            by_round.setdefault((row["service"], side, round_number), []).append((latency, ok))
            if compared and round_number == 0:
                continue  # the warm-up (ramp-up) is in neither side's numbers
            sides.setdefault(side, {}).setdefault(row["service"], []).append((float(row["time"]), latency, ok, row["error"]))
    users_t, users = _user_counts(load_test_dir / f"{CSV_PREFIX}_stats_history.csv")
    all_times = [r[0] for side in sides.values() for service_rows in side.values() for r in service_rows]
    t0 = min([*all_times, *(users_t.tolist() if users_t.size else [])], default=0.0)
    t_end = max(all_times, default=t0)
    span = float(profile["run_time_s"]) * (len(profile["schedule"]["order"]) if compared else 1)
    bucket = max(1.0, math.ceil(span / 120))
    services = {name: _service(name, rows, t0, t_end, bucket) for name, rows in sides["candidate"].items()}
    baseline = {name: _service(name, rows, t0, t_end, bucket) for name, rows in sides["baseline"].items()}
    if compared:  # each side was loaded in its own rounds only: rate over those
        active = float(profile["run_time_s"]) * len(profile["schedule"]["order"]) / 2
        for stats in [*services.values(), *baseline.values()]:
            stats.rps = stats.requests / active
    rounds = {key: (np.array([r[0] for r in rows]), np.array([r[1] for r in rows], dtype=bool)) for key, rows in by_round.items()}
    return LoadTestResults(profile, services, users_t - t0, users, bucket, baseline, rounds, t0)


def _service(name: str, rows: list[tuple[float, float, bool, str]], t0: float, t_end: float, bucket: float) -> ServiceStats:
    times = np.array([r[0] for r in rows]) - t0
    latency = np.array([r[1] for r in rows])
    ok = np.array([r[2] for r in rows], dtype=bool)
    span = max((max(times) - min(times)) if rows else 0.0, 1e-9)
    stats = ServiceStats(
        name=name,
        requests=len(rows),
        failures=int((~ok).sum()),
        rps=len(rows) / span if len(rows) > 1 else float(len(rows)),
        latencies_ms=np.sort(latency[ok]),
        errors=Counter(r[3] for r in rows if not r[2]),
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
