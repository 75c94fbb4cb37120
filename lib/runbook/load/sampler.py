"""The server side of a load test, sampled while Locust runs: what the target itself saw.

A Sampler reads each of its sources once before the load starts, every INTERVAL_S while
it runs (in a thread of the stage's kernel, never in gevent) and once after it stopped.
Every reading is a line of load_test/server/samples.jsonl; what a source answered verbatim
(Traefik's metrics text, the kubelet's summary) is kept beside it under server/<source>/, for a
reviewer to open. A reading that fails is a line with "ok": false and the error: it is
missing, never invented, and it never fails the run by itself.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from runbook.load import prometheus_text
from runbook.core.errors import SampleFailed

log = logging.getLogger(__name__)

SAMPLES = "samples.jsonl"
META = "meta.json"
INTERVAL_S = 2.0
READ_TIMEOUT_S = 5.0  # one answer; a slower one is a missing sample, and the next tick comes on time


@dataclass
class Reading:
    """What one source gave: parsed values for the report, and raw answers (file name -> bytes) to keep."""

    values: dict[str, Any]
    raw: dict[str, bytes] = field(default_factory=dict)


class Source(Protocol):
    name: str

    def read(self) -> Reading: ...


#: What the local target's sampler says of itself (a fixed phrase: the summary shows it as plain text).
STAND_IN_NOTE = "the local stand-in is one process: no pods, replicas, limits or autoscaler to measure"


@dataclass
class Sampling:
    """What a target offers the sampler: its sources, processes on this machine, and how to read its labels."""

    sources: list[Source] = field(default_factory=list)
    processes: dict[str, int] = field(default_factory=dict)  # role -> pid (the local stand-in)
    #: Traefik's service label -> {"service": name, "side": candidate or baseline}
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    #: "<namespace>/<deployment>" -> {"service": name, "side": ...}: whose pods and replicas are whose
    workloads: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what this target cannot measure, said in the report


class Sampler:
    """Reads every source before, during (every interval seconds) and after the load test."""

    def __init__(self, sources: list[Source], out: Path, interval: float = INTERVAL_S, clock: Callable[[], float] = time.time) -> None:
        self.sources = sources
        self.out = out
        self.interval = interval
        self.clock = clock
        self.seq = 0
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._taking = threading.Lock()
        self.readings: dict[str, list[int]] = {}  # source -> [taken, missing]  # a thread stuck past stop() must not interleave its lines with the last reading
        self._thread: threading.Thread | None = None

    def write_meta(self, meta: dict[str, Any]) -> None:
        """What the report needs to read the samples: the service labels and who is who."""
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / META).write_text(json.dumps({"interval_s": self.interval, **meta}, indent=2) + "\n")

    def take(self, moment: str) -> None:
        """One reading of every source, each written as a line of samples.jsonl."""
        with self._taking:
            self._take(moment)

    def _take(self, moment: str) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        seq, self.seq = self.seq, self.seq + 1
        for source in self.sources:
            at, clock = self.clock(), time.monotonic()
            line: dict[str, Any] = {"seq": seq, "moment": moment, "time": round(at, 3), "source": source.name}
            try:
                reading = source.read()
                line.update(ok=True, error=None, values=reading.values)
            except Exception as exc:  # a failed reading is a missing sample, whatever the cause
                reading = None
                line.update(ok=False, error=_describe(exc), values=None)
                log.debug("sample %s of %s failed: %s", seq, source.name, traceback.format_exc())
            line["took_s"] = round(time.monotonic() - clock, 3)
            counts = self.readings.setdefault(source.name, [0, 0])
            counts[0] += 1
            counts[1] += not line["ok"]
            if reading is not None and reading.raw:
                folder = self.out / source.name
                folder.mkdir(exist_ok=True)
                for name, data in reading.raw.items():
                    (folder / f"{seq:04d}-{name}").write_bytes(data)
                line["files"] = [f"{source.name}/{seq:04d}-{name}" for name in reading.raw]
            with (self.out / SAMPLES).open("a") as handle:
                handle.write(json.dumps(line) + "\n")

    def start(self) -> None:
        """The reading before the load, then one every interval in a thread until stop()."""
        self.take("before")
        self._thread = threading.Thread(target=self._loop, name="server-sampler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            start = time.monotonic()
            tick = 1
            while not self._stop.wait(max(0.0, start + tick * self.interval - time.monotonic())):
                self.take("during")
                # A slow reading skips the ticks it overran instead of bunching up behind it.
                tick = max(tick + 1, int((time.monotonic() - start) / self.interval) + 1)
        finally:
            self._stopped.set()

    def stop(self) -> None:
        """Stop the thread (waiting on an event, not join: an interrupted join loses the thread) and read once more."""
        self._stop.set()
        if self._thread is not None:
            self._stopped.wait(READ_TIMEOUT_S * (len(self.sources) + 1))
        self.take("after")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


class PrometheusEndpoint:
    """Traefik-shaped metrics over plain HTTP (the local stand-in's METRICS_PATH)."""

    def __init__(self, url: str, name: str = "traefik", timeout: float = READ_TIMEOUT_S) -> None:
        self.url, self.name, self.timeout = url, name, timeout

    def read(self) -> Reading:
        # http.client, not urlopen: urlopen asks the server to close, which leaves the server's port in
        # TIME_WAIT after the run; here the reader closes first, as a scraper that is done should.
        url = urllib.parse.urlsplit(self.url)
        connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=self.timeout)
        try:
            connection.request("GET", url.path or "/")
            answer = connection.getresponse()
            data = answer.read()
        finally:
            connection.close()
        if answer.status != 200:
            raise SampleFailed(f"GET {self.url}: HTTP {answer.status}")
        return Reading({"services": {k: v.as_dict() for k, v in prometheus_text.parse([data.decode()]).items()}}, {"metrics.prom": data})


class Processes:
    """CPU (percent of one core, since the last reading) and resident memory of processes on this machine.

    A watched process counts with its children: Locust with --processes is a master and
    its workers, and the generator is all of them. Each reading also gives the busiest
    process (a Locust worker is single-threaded: one core is its ceiling) and how many there were.
    """

    name = "processes"

    def __init__(self) -> None:
        self._watched: dict[str, Any] = {}
        self._children: dict[str, dict[int, Any]] = {}  # role -> pid -> the child, kept so its CPU has a clock
        self._lock = threading.Lock()

    def watch(self, role: str, pid: int) -> None:
        import psutil

        try:
            process = psutil.Process(pid)
            process.cpu_percent(None)  # the first call only starts the measurement
        except psutil.Error as exc:
            log.warning("cannot watch %s (pid %s): %s", role, pid, exc)
            return
        with self._lock:
            self._watched[role] = process
            self._children[role] = {}

    def forget(self, role: str) -> None:
        """A process that ended as planned (Locust at the end of its run): not missing from then on, just done."""
        with self._lock:
            self._watched.pop(role, None)
            self._children.pop(role, None)

    def _tree(self, role: str, process: Any) -> dict[str, Any]:
        """The process and its children, summed; raises psutil.Error when the process itself is gone."""
        import psutil

        with process.oneshot():
            if process.status() == psutil.STATUS_ZOMBIE:
                raise psutil.NoSuchProcess(process.pid)
            cpu, rss = [process.cpu_percent(None)], [process.memory_info().rss]
        known = self._children.setdefault(role, {})
        try:
            alive = {child.pid: child for child in process.children(recursive=True)}
        except psutil.Error:
            alive = {}
        for pid in list(known):
            if pid not in alive:
                del known[pid]
        for pid, child in alive.items():
            try:
                if pid not in known:
                    known[pid] = child
                    child.cpu_percent(None)  # its clock starts now: it counts from the next reading
                    rss.append(child.memory_info().rss)
                    continue
                cpu.append(known[pid].cpu_percent(None))
                rss.append(known[pid].memory_info().rss)
            except psutil.Error:
                known.pop(pid, None)
        return {"pid": process.pid, "cpu_percent": sum(cpu), "busiest_cpu_percent": max(cpu),
                "rss_bytes": sum(rss), "processes": 1 + len(alive)}

    def read(self) -> Reading:
        import psutil

        values: dict[str, Any] = {}
        with self._lock:
            watched = dict(self._watched)
        for role, process in watched.items():
            try:
                values[role] = self._tree(role, process)
            except psutil.Error as exc:
                values[role] = None  # gone: missing from here on, not zero
                values.setdefault("errors", {})[role] = _describe(exc)
        if watched and all(values.get(role) is None for role in watched):
            raise SampleFailed("; ".join(f"{r}: {e}" for r, e in values.get("errors", {}).items()))
        return Reading({**values, "cpu_count": psutil.cpu_count() or 1})
