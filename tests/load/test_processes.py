"""Locust past one process (--processes): a master and its workers, every request recorded once."""

import csv
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from conftest import ROOT
from runbook.load import runner
from runbook.core.config import RunConfig
from runbook.core.errors import ConfigError
from runbook.load.runner import locust_command, merge_worker_logs


def _locusts(run: Path) -> list[psutil.Process]:
    """Locust processes of this run: the master and its workers carry the run folder in their command line."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        line = " ".join(process.info["cmdline"] or [])
        if "locust" in line and str(run) in line:
            found.append(process)
    return found


def test_two_processes_count_every_request_once_and_match_the_stand_in(tmp_path, port):
    run = tmp_path / "run"
    most = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            most.append(len(_locusts(run)))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        finished = subprocess.run(
            [sys.executable, "-m", "runbook", "run", "--target", "local", "--processes", "2", "--run-time", "6s",
             "--users", "20", "--spawn-rate", "20", "--wait-max", "0.2", "--output-dir", str(run),
             "--ingress-port", str(port), "--stages", "provision,ingress,deploy,verify,load_test,report,teardown"],
            cwd=ROOT, capture_output=True, text=True, timeout=240)
    finally:
        done.set()
        watcher.join()
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert max(most) == 3  # the master and two workers, seen while the load ran
    assert _locusts(run) == []
    out = run / "load_test"
    assert not list(out.glob("requests.worker-*"))  # the workers' parts were merged into one log
    with (out / "requests.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    with (out / "locust_stats.csv").open() as handle:
        locust_total = {row["Name"]: int(row["Request Count"]) for row in csv.DictReader(handle)}
    result = json.loads((run / "report" / "result.json").read_text())
    for service in ("foo", "bar"):
        logged = sum(row["service"] == service for row in rows)
        assert logged > 50
        assert logged == locust_total[service] == result["services"][service]["requests"]
        server = result["server"]["services"][service]
        assert server["traefik_requests"] == server["locust_requests"] == logged  # the stand-in counted each once
    assert len(rows) == len({(row["time"], row["response_ms"], row["service"]) for row in rows})
    locust = result["server"]["processes"]["locust"]
    assert locust["processes"] == 3 and locust["samples"] >= 2
    summary = (run / "report" / "summary.md").read_text()
    assert "Load generator (Locust, 3 processes: a master and its workers): peak " in summary


def test_the_command_passes_processes_to_locust_and_one_process_stays_plain(tmp_path):
    base = RunConfig.from_parameters(target="local", run_dir=str(tmp_path))
    assert "--processes" not in locust_command(base, tmp_path, "http://127.0.0.1:8080", tmp_path / "f.py")
    for value in (2, -1):
        argv = locust_command(base.replace(processes=value), tmp_path, "http://127.0.0.1:8080", tmp_path / "f.py")
        assert argv[argv.index("--processes") + 1] == str(value)


@pytest.mark.parametrize(("params", "named", "reason"), [
    (dict(processes=0), "processes", "must be 1 (one process), N (N worker processes) or -1"),
    (dict(processes=-2), "processes", "must be between -1 and 512"),
    (dict(processes="two"), "processes", "expected a whole number"),
    (dict(load_generator="cluster", target="local"), "load_generator", "needs --target kind or kubeconfig"),
    (dict(load_generator="pods", target="kind"), "load_generator", "must be one of local, cluster"),
    (dict(load_generator="cluster", target="kind", processes=2), "processes", "give --workers"),
    (dict(workers=4, target="kind"), "workers", "counts worker pods of --load-generator cluster"),
    (dict(load_generator="cluster", target="kind", workers=0), "workers", "must be between 1 and 1000"),
])
def test_generator_flags_are_checked_together(tmp_path, params, named, reason):
    with pytest.raises(ConfigError) as raised:
        RunConfig.from_parameters(run_dir=str(tmp_path), **params)
    assert raised.value.name == named and reason in str(raised.value)


def test_the_local_target_refuses_the_cluster_generator_naming_the_flag(tmp_path):
    done = subprocess.run([sys.executable, "-m", "runbook", "run", "--target", "local", "--load-generator", "cluster",
                           "--output-dir", str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--load-generator cluster" in done.stderr and not (tmp_path / "run").exists()


def test_worker_parts_merge_into_one_log_keeping_complete_rows(tmp_path):
    log = tmp_path / runner.REQUEST_LOG
    header = "time,service,side,round,response_ms,ok,error\n"
    (tmp_path / "requests.worker-a-1.csv").write_text(header + "1.0,foo,candidate,1,2.0,1,\n2.0,bar,candidate,1,3.0,1,\n")
    (tmp_path / "requests.worker-a-2.csv").write_text(header + "1.5,foo,candidate,1,4.0,0,HTTP 500\n2.5,bar,cand")
    (tmp_path / "requests.worker-b-1.csv").write_text("")  # a worker that never got to write its header
    assert merge_worker_logs(log) == 3
    assert log.read_text() == header + ("1.0,foo,candidate,1,2.0,1,\n2.0,bar,candidate,1,3.0,1,\n"
                                        "1.5,foo,candidate,1,4.0,0,HTTP 500\n")
    assert not list(tmp_path.glob("requests.worker-*"))
    assert merge_worker_logs(log) == 0 and log.read_text().count("\n") == 4  # nothing to merge: the log stays


def _server(saturated: bool, processes: int, busiest_share: float = 0.5) -> dict:
    locust = {"peak_cpu_percent": 180.0, "mean_cpu_percent": 150.0, "peak_rss_bytes": 1, "samples": 4,
              "saturated_share": busiest_share, "processes": processes}
    return {"processes": {"locust": locust}, "generator_saturated": saturated}


def test_the_generator_line_speaks_of_cores_and_names_the_flag_that_adds_generators():
    from runbook.report.summary import _generator_lines

    local = " ".join(_generator_lines(_server(True, 3), local=True))
    assert "one of Locust's 3 processes (a master and its workers) used at least 90% of a CPU core in 50%" in local
    assert "peak 1.8 CPU cores, mean 1.5" in local and "`--processes N` (or `-1`, one worker per core)" in local
    cluster = " ".join(_generator_lines(_server(True, 1), local=False))
    assert "Locust used at least 90%" in cluster and "`--load-generator cluster --workers N`" in cluster
    calm = " ".join(_generator_lines(_server(False, 3, 0.0), local=True))
    assert "Load generator (Locust, 3 processes: a master and its workers): peak 1.8 CPU cores" in calm and "⚠️" not in calm


def test_the_sampler_sums_a_process_with_its_children_and_keeps_the_busiest():
    from runbook.load.sampler import Processes

    spin = "import time\nend = time.time() + 3\nwhile time.time() < end: pass\n"
    parent = subprocess.Popen([sys.executable, "-c",
                               f"import subprocess, sys\nkids = [subprocess.Popen([sys.executable, '-c', {spin!r}]) for _ in range(2)]\n"
                               "[kid.wait() for kid in kids]"])
    try:
        time.sleep(0.5)  # the children are up
        processes = Processes()
        processes.watch("locust", parent.pid)
        processes.read()  # starts every child's clock
        time.sleep(1.0)
        reading = processes.read().values["locust"]
        assert reading["processes"] == 3
        # Both children spin: the sum holds more than the busiest one alone (how much each gets depends on what
        # else shares the two cores while the suite runs).
        assert reading["cpu_percent"] > reading["busiest_cpu_percent"] > 0
    finally:
        parent.kill()
        parent.wait()
