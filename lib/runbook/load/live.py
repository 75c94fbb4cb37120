"""What a load test has done so far, read from its request log(s) while Locust writes them."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np


class LoadTestProgress:
    """Reads the request log as Locust writes it and sums it up: elapsed, users, req/s, failures, p95."""

    def __init__(self, request_log: Path, total_s: float, users: int, spawn_rate: float, parts: str = "") -> None:
        self.request_log = request_log
        self.parts = parts  # with workers: the glob of their own logs beside request_log
        self.total_s = total_s
        self.users = users
        self.spawn_rate = spawn_rate
        self.started = time.monotonic()
        self.read_to: dict[Path, tuple[int, list[str] | None]] = {}  # per log: bytes read, its header
        self.requests = self.failures = 0
        self.latencies: list[np.ndarray] = []
        self.last_t, self.last_requests = self.started, 0

    def _read_new_rows(self) -> None:
        logs = [self.request_log, *(sorted(self.request_log.parent.glob(self.parts)) if self.parts else [])]
        for path in logs:
            if path.is_file():
                self._read_log(path)

    def _read_log(self, path: Path) -> None:
        offset, header = self.read_to.get(path, (0, None))
        with path.open(newline="") as handle:
            handle.seek(offset)
            text = handle.read()
        complete = text[: text.rfind("\n") + 1]
        lines = complete.splitlines()
        if header is None and lines:
            header, lines = next(csv.reader(lines[:1])), lines[1:]
        self.read_to[path] = (offset + len(complete.encode()), header)
        if not header:
            return
        ok, ms = header.index("ok"), header.index("response_ms")
        # Only the last column (an error's text) can hold a comma: split the ones before it, no csv parsing.
        complete_rows = [row for row in (line.split(",", len(header) - 1) for line in lines) if len(row) == len(header)]
        good = [float(row[ms]) for row in complete_rows if row[ok] == "1"]
        self.requests += len(complete_rows)
        self.failures += len(complete_rows) - len(good)
        if good:
            self.latencies.append(np.array(good))  # as numbers: a long run's millions stay a few bytes each

    def line(self) -> str:
        self._read_new_rows()
        now = time.monotonic()
        elapsed = now - self.started
        rate = (self.requests - self.last_requests) / max(now - self.last_t, 1e-6)
        self.last_t, self.last_requests = now, self.requests
        users = min(self.users, int(self.spawn_rate * elapsed) + 1)
        p95 = f"{np.percentile(np.concatenate(self.latencies), 95):.1f} ms" if self.latencies else "–"
        return (f"load_test: {min(elapsed, self.total_s):.0f}/{self.total_s:.0f} s, {self.phase(elapsed)}, ~{users} users, "
                f"{rate:.1f} req/s, {self.requests:,} requests, {self.failures:,} failed, p95 so far {p95}")

    def phase(self, elapsed: float) -> str:
        """What the run is doing: users still starting, measuring, finishing."""
        if elapsed >= self.total_s:
            return "finishing (requests in flight)"
        if elapsed < self.users / self.spawn_rate:
            return "ramping up"
        return "measuring"
