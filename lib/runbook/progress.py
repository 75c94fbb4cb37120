"""Progress a person can follow while a long stage runs.

A stage runs in its own kernel, so it cannot print to the terminal of the CLI that
started it. It appends progress lines to the run folder's progress.log instead, and the
pipeline shows each new line as it appears: on a terminal as one line that updates in
place, in a log file (CI) as plain lines, never carriage-return spinners.
"""

from __future__ import annotations

import csv
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FILE = "progress.log"


def say(run_dir: Path, line: str) -> None:
    """Append one progress line for the pipeline to show (and log it)."""
    log.info(line)
    with open(run_dir / FILE, "a") as handle:
        handle.write(line.rstrip("\n") + "\n")


class Follower:
    """Shows the lines stages append to progress.log while the pipeline waits on them."""

    def __init__(self, path: Path, show: Callable[[str], None], interval: float = 0.5) -> None:
        self.path = path
        self.show = show
        self.interval = interval
        self.offset = path.stat().st_size if path.is_file() else 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def __enter__(self) -> Follower:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._read()  # the last lines

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._read()

    def _read(self) -> None:
        if not self.path.is_file():
            return
        with self.path.open() as handle:
            handle.seek(self.offset)
            text = handle.read()
        complete = text[: text.rfind("\n") + 1]
        self.offset += len(complete.encode())
        for line in complete.splitlines():
            self.show(line)


class LoadTestProgress:
    """Reads the request log as Locust writes it and sums it up: elapsed, users, req/s, failures, p95."""

    def __init__(self, request_log: Path, total_s: float, users: int, spawn_rate: float, warmup_s: float = 0.0,
                 parts: str = "") -> None:
        self.request_log = request_log
        self.parts = parts  # with workers: the glob of their own logs beside request_log
        self.total_s = total_s
        self.warmup_s = warmup_s  # a comparison's warm-up, left out of its numbers
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
        """What the run is doing: users still starting, the warm-up a comparison leaves out, measuring, finishing."""
        if elapsed >= self.total_s:
            return "finishing (requests in flight)"
        if elapsed < self.warmup_s:
            return "warm-up (not compared)"
        if elapsed < self.users / self.spawn_rate:
            return "ramping up"
        return "measuring"
