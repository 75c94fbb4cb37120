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
from typing import Any
from collections.abc import Iterator

import numpy as np

from runbook.load.runner import CSV_PREFIX, PROFILE, REQUEST_LOG
from runbook.core.rundir import read_json

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
    measured: np.ndarray  # False for a comparison's warm-up (each user's first request)

    def window(self) -> Requests:
        """The measured requests only."""
        keep = self.measured
        return Requests(self.t[keep], self.latency_ms[keep], self.ok[keep], self.measured[keep])


@dataclass
class LoadTestResults:
    profile: dict[str, object]
    services: dict[str, ServiceStats]  # the candidate (the change); with a baseline, its warm-up left out
    users_t: np.ndarray
    users: np.ndarray
    bucket_s: float
    baseline: dict[str, ServiceStats] = field(default_factory=dict)  # the baseline, its warm-up left out, by service
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
    logged, errors = read_request_log(load_test_dir / REQUEST_LOG, compared)
    expected = [(name, "candidate") for name in names] + [(s["name"], "baseline") for s in profile.get("baseline_services") or []]
    none = Requests(*(np.array([], dtype=kind) for kind in (float, float, bool, bool)))
    requests = {key: logged.pop(key, none) for key in expected}  # the profile's order, every service even without requests
    requests.update(logged)
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


READ_PIECE_BYTES = 8 << 20  # the request log is parsed this much at a time: memory stays flat however long it is
#: The request log's columns as read: numbers as numbers, the few distinct names and errors as dictionaries.
_LOG_TYPES = {"time": "float64", "service": "dictionary", "side": "dictionary", "round": "int8",
              "response_ms": "float64", "ok": "int8", "error": "dictionary"}


def read_request_log(path: Path, compared: bool) -> tuple[dict[tuple[str, str], Requests], dict[tuple[str, str], Counter[str]]]:
    """Every request by (service, side) in time order, and the errors of the measured failures.

    Read by columns (pyarrow) a block at a time, each block kept only as compact numbers per
    (service, side): millions of rows take seconds and a few bytes each, not a Python object per
    row. A log from before sides and rounds were recorded is all candidate, all measured.
    """
    import pyarrow as pa
    from pyarrow import csv as pacsv

    with path.open("rb") as handle:
        header = handle.readline().decode().strip().split(",")
    types = {name: pa.dictionary(pa.int32(), pa.string()) if kind == "dictionary" else getattr(pa, kind)()
             for name, kind in _LOG_TYPES.items() if name in header}
    pool = pa.system_memory_pool()  # plain malloc: what a piece used goes back once it is read
    read = pacsv.ReadOptions(column_names=header, use_threads=False)
    parse = pacsv.ParseOptions(newlines_in_values=True)
    convert = pacsv.ConvertOptions(column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False)
    services: dict[str, int] = {}
    sides: dict[str, int] = {}
    error_names: dict[str, int] = {}

    def codes(batch: Any, name: str, default: str, known: dict[str, int]) -> np.ndarray:
        """A block's dictionary codes as codes into one table for the whole log (a missing column: default)."""
        if name not in header:
            return np.full(batch.num_rows, known.setdefault(default, len(known)), dtype=np.int32)
        column = batch.column(name)
        table = np.array([known.setdefault(v or default, len(known)) for v in column.dictionary.to_pylist()] or [0],
                         dtype=np.int32)
        return table[column.indices.to_numpy(zero_copy_only=False)]

    # Per (service, side): each block's rows of it, column by column.
    blocks: dict[int, dict[str, list[np.ndarray]]] = {}
    batches = (batch for piece in _pieces(path) for batch in
               pacsv.read_csv(pa.py_buffer(piece), read_options=read, parse_options=parse, convert_options=convert,
                              memory_pool=pool).to_batches())
    for batch in batches:
        key = codes(batch, "service", "", services) * 64 + codes(batch, "side", "candidate", sides)
        columns = {
            "t": batch.column("time").to_numpy(),
            "latency": batch.column("response_ms").to_numpy(),
            "ok": batch.column("ok").to_numpy() == 1,
            # Round 0 is a comparison's warm-up: in neither side's numbers.
            "measured": (batch.column("round").to_numpy() != 0 if compared and "round" in header
                         else np.ones(batch.num_rows, dtype=bool)),
            "error": codes(batch, "error", "", error_names),
        }
        for code in np.unique(key):
            rows = key == code
            mine = blocks.setdefault(int(code), {name: [] for name in columns})
            for name, column in columns.items():
                mine[name].append(column[rows])
    service_of = {code: name for name, code in services.items()}
    side_of = {code: name for name, code in sides.items()}
    error_of = {code: name for name, code in error_names.items()}
    requests: dict[tuple[str, str], Requests] = {}
    errors: dict[tuple[str, str], Counter[str]] = {}
    for code, mine in sorted(blocks.items()):
        name = (service_of[code // 64], side_of[code % 64])
        t = np.concatenate(mine.pop("t"))
        order = np.argsort(t, kind="stable")  # the workers' parts follow each other in the log: time order again
        latency, ok, measured, error = (np.concatenate(mine.pop(column))[order]
                                        for column in ("latency", "ok", "measured", "error"))
        requests[name] = Requests(t[order], latency, ok, measured)
        failed = ~ok & measured
        if failed.any():
            found, counts = np.unique(error[failed], return_counts=True)
            errors[name] = Counter({error_of[int(c)]: int(count) for c, count in zip(found, counts)})
    return requests, errors


def _pieces(path: Path) -> Iterator[bytes]:
    """The request log after its header, in pieces of about READ_PIECE_BYTES that each end at a row's end.

    An error's text may hold a line break inside its quotes: a piece ends only at a line break with
    an even number of quotes before it (a quote inside a quoted field is doubled, so the count holds).
    """
    with path.open("rb") as handle:
        handle.readline()
        rest = b""
        while chunk := handle.read(READ_PIECE_BYTES):
            chunk = rest + chunk
            end = _row_end(chunk)
            rest = chunk[end:]
            if end:
                yield chunk[:end]
        if rest.strip():
            yield rest


def _row_end(chunk: bytes) -> int:
    """Just past the last line break of chunk that is outside quotes (0: none)."""
    end = chunk.rfind(b"\n")
    quotes = chunk.count(b'"', 0, max(end, 0))
    while end >= 0 and quotes % 2:
        earlier = chunk.rfind(b"\n", 0, end)
        quotes -= chunk.count(b'"', max(earlier, 0), end)
        end = earlier
    return end + 1


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
    # Successes sorted by bucket, then each bucket's percentiles from its slice.
    order = np.argsort(index[ok], kind="stable")
    by_bucket, bucket_of = latency[ok][order], index[ok][order]
    bounds = np.searchsorted(bucket_of, np.arange(n + 1))
    for i in range(n):
        sample = by_bucket[bounds[i]:bounds[i + 1]]
        if sample.size:
            for q, value in zip(p, np.percentile(sample, list(p))):
                p[q][i] = value
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
