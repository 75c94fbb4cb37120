"""The load test: locust as a subprocess against the ingress endpoint.

Locust runs gevent, which must never be imported into a Jupyter kernel, so it
always runs as its own process with the project's locustfile. Before it
starts, a preflight checks that the target answers at all, so an unreachable
target fails in seconds instead of producing a run of failures.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

from runbook.core import commands
from runbook.core.config import RunConfig, format_duration, project_root
from runbook.load import in_cluster
from runbook.load.live import LoadTestProgress
from runbook.core.errors import LoadTestError, TargetNotReady, TargetUnreachable, WaitTimeout, tail
from runbook.core.rundir import utc_now, write_json
from runbook.load.sampler import Processes, Sampler, Sampling
from runbook.core.services import Service, answers, get
from runbook.core.waiting import wait_for

log = logging.getLogger(__name__)

PREFLIGHT_S = 10.0
PROGRESS_S = 3.0  # between progress lines while Locust runs
CSV_PREFIX = "locust"
REQUEST_LOG = "requests.csv"
WORKER_PARTS = "requests.worker-*.csv"  # each worker's own request log (the locustfile's worker_part), merged at the end
PROFILE = "profile.json"
SERVER = "server"  # the sampler's folder under load_test/


@dataclass(frozen=True)
class LoadTestRun:
    """What the load_test stage leaves for the report, also written as profile.json."""

    users: int
    spawn_rate: float
    run_time_s: int
    wait_min_s: float
    wait_max_s: float
    request_timeout_s: float
    endpoint: str
    services: list[dict[str, str]]
    locustfile: str
    started: str
    finished: str
    wall_time_s: float
    locust_exit_code: int
    requests: int
    failures: int
    schedule: dict[str, Any] | None = None  # with a baseline: how the sides share the load (schedule())
    baseline_services: list[dict[str, str]] | None = None
    interrupted: bool = False  # Ctrl-C or SIGTERM: the numbers cover only the time before it
    server_readings: dict[str, list[int]] | None = None  # per source of the server side: [taken, missing]
    injected_delays: dict[str, float] | None = None  # --inject-delay: ms added to a service's candidate side
    generator: str = ""  # what sent the load: Locust here (one process, or a master and workers) or in the cluster

    def _repr_markdown_(self) -> str:
        verdict = "no failed requests" if self.failures == 0 else f"**{self.failures:,} failed requests**"
        return "\n".join([
            f"Locust ran {self.users} users (spawn {self.spawn_rate:g}/s) for {self.run_time_s} s against "
            f"`{self.endpoint}`, waiting {self.wait_min_s:g}-{self.wait_max_s:g} s between a user's requests:",
            "",
            f"- {self.requests:,} requests, {verdict} (locust exit code {self.locust_exit_code})",
            f"- services: {', '.join(s['name'] + ' (' + s['host'] + ')' for s in self.services)}",
            f"- {self.started} to {self.finished}, {self.wall_time_s:.1f} s wall time",
            f"- load generator: {self.generator or 'Locust, one process on this machine'}",
            "- files: `locust_stats.csv`, `locust_stats_history.csv`, `locust_failures.csv`, "
            "`locust_exceptions.csv`, `report.html`, `requests.csv`, `locust.log`",
            "- server side (`server/samples.jsonl`): " + (", ".join(
                f"{source} {taken - missing}/{taken}" + (f" (**{missing} missing**)" if missing else "")
                for source, (taken, missing) in (self.server_readings or {}).items()) or "not sampled"),
        ])


def generator(config: RunConfig) -> str:
    """What sends the load, in words: the summary says what measured its numbers."""
    if config.load_generator == "cluster":
        return f"Locust in the cluster: a master and {config.workers} worker pods ({in_cluster.image()})"
    if config.processes == 1:
        return "Locust, one process on this machine"
    workers = "one per core" if config.processes == -1 else str(config.processes)
    return f"Locust on this machine: a master and {workers} worker processes"


def locustfile_path() -> Path:
    return project_root() / "load_test" / "locustfile.py"


#: With a baseline, each user's first requests are left out of the comparison: the first opens its connection.
WARMUP_REQUESTS = 1


def schedule(config: RunConfig) -> dict[str, Any]:
    """How a comparison's load is laid out: the same --run-time as without a baseline, all of it measured.

    A service's requests go to the candidate and the baseline in pairs in random order from
    the first second (the locustfile), so both sides share every second of the machine and of
    the cluster, the ramp-up included. Left out: each user's first request, which opens its
    connection (a few milliseconds more) and comes whenever that user starts.
    """
    return {"design": "interleaved", "warmup_requests": WARMUP_REQUESTS, "measured_s": config.run_time}


def locust_command(config: RunConfig, out: Path, endpoint: str, locustfile: Path) -> list[str]:
    """The locust CLI call for the configured profile (also what the benchmark runs bare).

    With a baseline too: both sides share the run, so a comparison costs no load time.
    """
    return [
        sys.executable, "-m", "locust",
        "-f", str(locustfile),
        "--headless",
        "--users", str(config.users),
        "--spawn-rate", f"{config.spawn_rate:g}",
        "--run-time", format_duration(config.run_time),
        # At the end, requests in flight finish and are recorded (at most one per user, within the request
        # timeout), rather than being cut off after the target has counted them.
        "--stop-timeout", str(math.ceil(config.request_timeout)),
        "--host", endpoint,
        *(["--processes", str(config.processes)] if config.processes != 1 else []),
        "--csv", str(out / CSV_PREFIX),
        "--csv-full-history",
        "--html", str(out / "report.html"),
        "--only-summary",
        "--loglevel", "INFO",
        "--logfile", str(out / "locust.log"),
    ]


def _services_json(services: list[Service]) -> str:
    return json.dumps([{"name": s.name, "host": s.host, "expect": s.expect, "path": s.path} for s in services])


def locust_environment(
    config: RunConfig, services: list[Service], request_log: Path | None, baseline: list[Service] | None = None
) -> dict[str, str]:
    env = {
        "LOAD_TEST_SERVICES": _services_json(services),
        "LOAD_TEST_WAIT_MIN": f"{config.wait_min:g}",
        "LOAD_TEST_WAIT_MAX": f"{config.wait_max:g}",
        "LOAD_TEST_TIMEOUT": f"{config.request_timeout:g}",
    }
    if request_log is not None:
        env["LOAD_TEST_REQUEST_LOG"] = str(request_log)
    if baseline:
        env["LOAD_TEST_BASELINE"] = _services_json(baseline)
        env["LOAD_TEST_WARMUP_REQUESTS"] = str(WARMUP_REQUESTS)
    return env


def preflight(host: str, port: int, services: list[Service], timeout: float, budget: float = PREFLIGHT_S) -> None:
    """Before the load starts, every service must answer right through the endpoint.

    No HTTP answer within the budget is TargetUnreachable; answers that are wrong
    (Traefik's 404 before it has loaded a route, 503 while a Service has no
    endpoints, the wrong text) are TargetNotReady. Either way the stage fails in
    seconds instead of producing a run of failures.
    """
    deadline = time.monotonic() + budget
    for service in services:
        answered: list[str] = []

        def probe(service: Service = service, answered: list[str] = answered) -> tuple[bool, str, None]:
            remaining = max(deadline - time.monotonic(), 0.1)
            reply = get(host, port, service, timeout=min(timeout, remaining))
            answered.append(f"HTTP {reply.status} {reply.body.strip()[:80]!r}")
            return answers(reply, service), answered[-1], None

        where = f"http://{host}:{port}{service.path} with Host {service.host}"
        try:
            wait_for(f"{where} to answer", probe, timeout=max(deadline - time.monotonic(), 0), interval=0.25)
        except WaitTimeout as exc:
            if answered:
                raise TargetNotReady(
                    f"the target answers but not as {service.name} should: {where} gave {exc.last} "
                    f"(expected HTTP 200 containing {service.expect!r}); did the verify stage pass?"
                ) from None
            raise TargetUnreachable(
                f"the target is unreachable: no HTTP answer from {where} within {budget:g}s (last: {exc.last}); "
                "is the target up (provision, ingress, deploy) and the ingress port right?"
            ) from None
        log.info("preflight %s: %s", service.host, answered[-1])


def run_load_test(
    config: RunConfig, services: list[Service], out: Path, host: str, port: int,
    baseline: list[Service] | None = None, preflight_budget: float = PREFLIGHT_S,
    say: Callable[[str], None] = log.info, sampling: Sampling | None = None, cluster: in_cluster.ClusterLoad | None = None,
) -> LoadTestRun:
    """Run the profile against host:port; write CSVs, HTML report, request log and profile.json to out.

    With baseline services, the requests go to both sides in random pairs (schedule()).
    The sampler reads the target's server side (sampling) and Locust's own process into out/server/.
    With cluster, Locust runs as pods in the cluster (in_cluster) and its files come back into out.
    """
    import shutil

    out = out.resolve()  # Locust runs inside out: every path handed to it must hold from there
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob(f"{CSV_PREFIX}*"), *out.glob(WORKER_PARTS), out / REQUEST_LOG, out / "cluster-load.json"]:
        old.unlink(missing_ok=True)
    shutil.rmtree(out / SERVER, ignore_errors=True)
    preflight(host, port, [*services, *(baseline or [])], timeout=config.request_timeout, budget=preflight_budget)
    request_log = out / REQUEST_LOG
    locustfile = locustfile_path()
    compare = bool(baseline)
    argv = locust_command(config, out, f"http://{host}:{port}", locustfile)
    env = locust_environment(config, services, request_log, baseline)
    started, clock = utc_now(), time.monotonic()
    total = config.run_time
    watch = LoadTestProgress(request_log, total, config.users, config.spawn_rate, parts=WORKER_PARTS)
    sampler, processes = _sampler(out / SERVER, sampling or Sampling())
    interrupted = False
    if cluster is not None:
        process: commands.Background | _Finished = _Finished(None, out / "locust.log")
        try:
            process = _Finished(in_cluster.run(config, cluster, locust_environment(config, services, None, baseline),
                                               locustfile, out, watch.phase, say), out / "locust.log")
        except KeyboardInterrupt:
            interrupted = True
        finally:
            sampler.stop()
        returncode = process.poll() or 0
    else:
        say(f"load_test: locust starts {config.users} users (spawn {config.spawn_rate:g}/s) for {total} s against {host}:{port}")
        stdout = out / "locust-stdout.txt"
        stdout.unlink(missing_ok=True)
        try:
            process = commands.start(argv, log_path=stdout, env=env, cwd=out)
        except BaseException:
            sampler.stop()
            raise
        processes.watch("locust", process.pid)
        try:
            returncode = _wait_showing_progress(process, total + 120, watch, say)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            # It ended as planned: no reading from here on looks for Locust (one taken while its workers are
            # being stopped would find it gone and count a missing sample).
            processes.forget("locust")
            process.stop()  # an interrupt, a timeout: Locust and its workers never outlive the stage
            sampler.stop()
    wall = time.monotonic() - clock
    merge_worker_logs(request_log)

    def record(run_time_s: int, exit_code: int, **extra: Any) -> LoadTestRun:
        """profile.json: what the report needs of this run."""
        requests, failures = _count(request_log)
        run = LoadTestRun(
            users=config.users, spawn_rate=config.spawn_rate, run_time_s=run_time_s,
            wait_min_s=config.wait_min, wait_max_s=config.wait_max, request_timeout_s=config.request_timeout,
            endpoint=cluster.endpoint if cluster else f"http://{host}:{port}", generator=generator(config), services=[{"name": s.name, "host": s.host, "expect": s.expect} for s in services],
            locustfile=str(locustfile.relative_to(project_root())), started=started, finished=utc_now(),
            wall_time_s=round(wall, 3), locust_exit_code=exit_code, requests=requests, failures=failures,
            server_readings=sampler.readings, **extra,
        )
        write_json(out / PROFILE, asdict(run))
        return run

    if interrupted:
        # Keep what was recorded, marked as interrupted, for a report of the partial numbers; then stop.
        if request_log.is_file() and _count(request_log)[0]:
            record(max(1, math.ceil(wall)), process.poll() or 0, interrupted=True)
        raise KeyboardInterrupt
    exceptions = read_exceptions(out / f"{CSV_PREFIX}_exceptions.csv")
    if exceptions:
        raise LoadTestError("the locustfile raised during the run:\n" + "\n".join(exceptions))
    # Locust exits 1 when any request failed: that is a result, judged by the report.
    if returncode not in (0, 1):
        raise LoadTestError(f"locust exited with code {returncode}:\n{tail(process.output())}")
    if not request_log.is_file():
        raise LoadTestError(f"locust wrote no request log; see {out / 'locust.log'}")
    if _count(request_log)[0] == 0:
        raise LoadTestError("locust sent no requests; see " + str(out / "locust.log"))
    return record(
        config.run_time, returncode,
        schedule=schedule(config) if compare else None, injected_delays=config.delays or None,
        baseline_services=[{"name": s.name, "host": s.host, "expect": s.expect} for s in baseline] if baseline else None,
    )


@dataclass(frozen=True)
class _Finished:
    """Locust that ran elsewhere (in the cluster), as the local process's stand-in: its exit code and its log."""

    code: int | None
    log_path: Path

    def poll(self) -> int | None:
        return self.code

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""


def _sampler(folder: Path, sampling: Sampling) -> tuple[Sampler, Processes]:
    """The server-side sampler, started (its first reading taken), and its processes (Locust joins once started)."""
    processes = Processes()
    for role, pid in sampling.processes.items():
        processes.watch(role, pid)
    sampler = Sampler([processes, *sampling.sources], folder)
    sampler.write_meta({"labels": sampling.labels, "workloads": sampling.workloads, "notes": sampling.notes, "processes": ["locust", *sampling.processes]})
    sampler.start()
    return sampler, processes


def _wait_showing_progress(
    process: commands.Background, timeout: float, watch: LoadTestProgress, say: Callable[[str], None]
) -> int:
    """Until Locust exits, a progress line every PROGRESS_S; LoadTestError when it overruns timeout."""
    deadline = time.monotonic() + timeout
    next_line = time.monotonic() + PROGRESS_S
    while (code := process.poll()) is None:
        if time.monotonic() > deadline:
            raise LoadTestError(f"locust did not finish within {timeout:g}s; its output: {tail(process.output())}")
        if time.monotonic() >= next_line:
            say(watch.line())
            next_line += PROGRESS_S
        time.sleep(0.2)
    return code


def merge_worker_logs(request_log: Path) -> int:
    """With workers (--processes), their parts become the one request log, each row once; returns the parts merged.

    A part cut short (a worker killed mid-write) keeps its complete rows only.
    """
    parts = sorted(request_log.parent.glob(WORKER_PARTS))
    if not parts:
        return 0
    header = b""
    with request_log.open("wb") as merged:
        for part in parts:
            data = part.read_bytes()
            end = data.find(b"\n") + 1
            if end and not header:
                header = data[:end]
                merged.write(header)
            merged.write(data[end:data.rfind(b"\n") + 1])
            part.unlink()
    return len(parts)


def read_exceptions(path: Path) -> list[str]:
    """The distinct exceptions locust caught in user code, with their tracebacks."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [f"{row.get('Count', '?')}x {row.get('Message', '')}\n{row.get('Traceback', '')}" for row in csv.DictReader(handle)]


def _count(request_log: Path) -> tuple[int, int]:
    """Requests and failures in the log, from its ok column alone (read by columns: millions of rows in a second)."""
    from pyarrow import csv as pacsv

    ok = pacsv.read_csv(request_log, convert_options=pacsv.ConvertOptions(include_columns=["ok"])).column("ok")
    if len(ok) == 0:
        return 0, 0
    return len(ok), len(ok) - int(ok.to_numpy().sum())

