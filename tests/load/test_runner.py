import csv
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from runbook.load import runner
from runbook.core.config import RunConfig
from runbook.core.errors import TargetNotReady, TargetUnreachable
from runbook.core.errors import LoadTestError
from runbook.load.runner import locust_command, preflight, run_load_test
from runbook.core.services import load_services

SERVICES = load_services(("foo", "bar"))


def config(tmp_path, port, **extra):
    return RunConfig.from_parameters(target="local", run_dir=str(tmp_path), ingress_port=port, **extra)


#: The preflight's budget in these tests: the default (10 s) is what a run pays, not what a test needs to.
BUDGET = 1.5


def test_unreachable_target_fails_within_its_budget(tmp_path, port):
    started = time.monotonic()
    with pytest.raises(TargetUnreachable, match=f"unreachable.*127.0.0.1:{port}.*foo.localhost.*within 1.5s"):
        run_load_test(config(tmp_path, port), SERVICES, tmp_path / "load_test", "127.0.0.1", port, preflight_budget=BUDGET)
    assert BUDGET <= time.monotonic() - started < BUDGET + 3
    assert not (tmp_path / "load_test" / "profile.json").exists()


def test_a_target_that_accepts_but_never_answers_fails_within_its_budget(tmp_path, port):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", port))
        silent.listen(64)  # connections complete in the backlog; nothing ever answers
        started = time.monotonic()
        with pytest.raises(TargetUnreachable, match="no HTTP answer"):
            preflight("127.0.0.1", port, SERVICES, timeout=5.0, budget=BUDGET)
        assert time.monotonic() - started < BUDGET + 3


def test_runs_locust_and_keeps_its_files(tmp_path, ingress):
    cfg = config(tmp_path, ingress, users=4, spawn_rate=4, run_time="3s", wait_max=0.2)
    run = run_load_test(cfg, SERVICES, tmp_path / "load_test", "127.0.0.1", ingress)
    out = tmp_path / "load_test"
    assert run.requests > 10 and run.failures == 0 and run.locust_exit_code == 0
    for name in ["locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv", "locust_exceptions.csv",
                 "report.html", "requests.csv", "profile.json"]:
        assert (out / name).stat().st_size > 0, name
    with (out / "locust_stats.csv").open() as handle:
        names = {row["Name"]: int(row["Request Count"]) for row in csv.DictReader(handle)}
    assert names["foo"] > 0 and names["bar"] > 0
    with (out / "locust_stats_history.csv").open() as handle:
        history = {row["Name"] for row in csv.DictReader(handle)}
    assert {"foo", "bar", "Aggregated"} <= history  # --csv-full-history: one row per name per interval
    profile = json.loads((out / "profile.json").read_text())
    assert profile["users"] == 4 and profile["run_time_s"] == 3 and profile["requests"] == run.requests
    # No target offered server-side sources here: Locust's own process is still read, before, during and after.
    assert profile["server_readings"] == {"processes": [run.server_readings["processes"][0], 0]}
    assert run.server_readings["processes"][0] >= 3 and "processes" in run._repr_markdown_()


def test_a_target_that_answers_wrong_fails_fast_before_the_load(tmp_path, ingress):
    # bar's expected text is wrong here, as if the route pointed at another service.
    services = [SERVICES[0], type(SERVICES[1])(name="bar", host="bar.localhost", expect="BAR!")]
    cfg = config(tmp_path, ingress, users=2, spawn_rate=2, run_time="2s", wait_max=0.1)
    started = time.monotonic()
    with pytest.raises(TargetNotReady, match="answers but not as bar should.*HTTP 200 'bar'.*'BAR!'"):
        run_load_test(cfg, services, tmp_path / "load_test", "127.0.0.1", ingress, preflight_budget=BUDGET)
    assert time.monotonic() - started < BUDGET + 3
    assert not (tmp_path / "load_test" / "locust_stats.csv").exists()


def test_wrong_answers_during_the_load_are_failed_requests(tmp_path, ingress):
    # The locustfile itself judges every answer: a body without the service's text is a failure.
    env = {**os.environ, "LOAD_TEST_SERVICES": json.dumps([
        {"name": "foo", "host": "foo.localhost", "expect": "foo"},
        {"name": "bar", "host": "bar.localhost", "expect": "BAR!"},
    ]), "LOAD_TEST_REQUEST_LOG": str(tmp_path / "requests.csv"), "LOAD_TEST_WAIT_MAX": "0.1"}
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "load_test" / "locustfile.py"), "--headless",
         "-u", "2", "-r", "2", "-t", "2s", "--host", f"http://127.0.0.1:{ingress}", "--only-summary"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env,
    )
    assert done.returncode == 1  # locust's own verdict: there were failures
    with (tmp_path / "requests.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {r["ok"] for r in rows if r["service"] == "foo"} == {"1"}
    assert {r["error"] for r in rows if r["service"] == "bar"} == {"CatchResponseError: body does not contain 'BAR!'"}


def test_an_exception_in_the_locustfile_fails_the_stage(tmp_path, ingress, monkeypatch):
    monkeypatch.setattr(runner, "locustfile_path", lambda: ROOT / "tests" / "fixtures" / "raising_locustfile.py")
    monkeypatch.setattr(runner, "project_root", lambda: ROOT)
    cfg = config(tmp_path, ingress, users=2, spawn_rate=2, run_time="2s")
    with pytest.raises(LoadTestError, match="(?s)the locustfile raised.*broken on purpose"):
        run_load_test(cfg, SERVICES, tmp_path / "load_test", "127.0.0.1", ingress)


def test_the_locustfile_works_with_the_plain_locust_cli(tmp_path, ingress):
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "load_test" / "locustfile.py"), "--headless",
         "-u", "4", "-r", "4", "-t", "2s", "--host", f"http://127.0.0.1:{ingress}", "--csv", str(tmp_path / "plain"),
         "--only-summary"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    with (tmp_path / "plain_stats.csv").open() as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    assert int(rows["foo"]["Request Count"]) > 0 and int(rows["foo"]["Failure Count"]) == 0
    assert int(rows["bar"]["Request Count"]) > 0 and int(rows["bar"]["Failure Count"]) == 0


def test_the_command_carries_the_profile(tmp_path):
    cfg = config(tmp_path, 8080, users=7, spawn_rate=2.5, run_time="1m")
    argv = locust_command(cfg, tmp_path, "http://127.0.0.1:8080", ROOT / "load_test" / "locustfile.py")
    pairs = dict(zip(argv, argv[1:]))
    assert pairs["--users"] == "7" and pairs["--spawn-rate"] == "2.5" and pairs["--run-time"] == "60s"
    assert pairs["--host"] == "http://127.0.0.1:8080" and "--csv-full-history" in argv and "--headless" in argv
    assert argv[:3] == [sys.executable, "-m", "locust"]


def test_locusts_csv_holds_the_final_numbers(tmp_path, ingress):
    from runbook.report.build import build_report

    cfg = config(tmp_path, ingress, users=20, spawn_rate=20, run_time="4s", wait_max=0.1)
    run = run_load_test(cfg, SERVICES, tmp_path / "load_test", "127.0.0.1", ingress, preflight_budget=BUDGET)
    with (tmp_path / "load_test" / "locust_stats.csv").open() as handle:
        counts = {row["Name"]: (int(row["Request Count"]), int(row["Failure Count"])) for row in csv.DictReader(handle)}
    result = build_report(tmp_path / "load_test", tmp_path / "report", "local", "local", "c").result
    for name in ("foo", "bar"):
        assert counts[name] == (result["services"][name]["requests"], result["services"][name]["failures"]), name
    assert counts["Aggregated"][0] == run.requests
    # ... and Locust's own final table (in its output) says the same.
    table = (tmp_path / "load_test" / "locust-stdout.txt").read_text()
    aggregated = [line.replace("|", " ").split() for line in table.splitlines() if "Aggregated" in line]
    assert aggregated and all(str(run.requests) in row for row in aggregated[:1])


def test_the_locustfiles_options_work_as_flags_and_are_checked(tmp_path, ingress):
    log = tmp_path / "requests.csv"
    base = [sys.executable, "-m", "locust", "-f", str(ROOT / "load_test" / "locustfile.py"), "--headless",
            "-u", "2", "-r", "2", "-t", "2s", "--host", f"http://127.0.0.1:{ingress}", "--only-summary"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOAD_TEST_")}
    done = subprocess.run([*base, "--request-log", str(log), "--wait-min", "0", "--wait-max", "0.05",
                           "--services-json", '[{"name": "foo", "host": "foo.localhost", "expect": "foo"}]'],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(log.open()))
    assert len(rows) > 20 and {r["service"] for r in rows} == {"foo"}  # the flags took effect
    bad = subprocess.run([*base, "--wait-min", "2", "--wait-max", "1"], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path, env=env)
    assert "--wait-min 2.0 / --wait-max 1.0: need 0 <= min <= max" in bad.stderr + bad.stdout


def test_requests_in_flight_at_the_end_finish_and_are_recorded(tmp_path, port):
    # Every foo answer takes 300 ms and users do not wait: at the stop, nearly every user has a request in
    # flight. The stand-in counts each request it answered; Locust must have recorded every one of them.
    from runbook.targets.standin import METRICS_PATH
    from runbook.load.prometheus_text import parse

    stand_in = subprocess.Popen([sys.executable, "-m", "runbook.targets.standin", f"--listen=127.0.0.1:{port}",
                                 "--route=foo.localhost=foo", "--delay=foo.localhost=300"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from conftest import wait_listening

        wait_listening(port)
        cfg = config(tmp_path, port, users=10, spawn_rate=10, run_time="2s", wait_max=0, services="foo")
        argv = locust_command(cfg, tmp_path, "http://x", ROOT / "load_test" / "locustfile.py")
        assert argv[argv.index("--stop-timeout") + 1] == "5"  # the request timeout, whole seconds up
        run = run_load_test(cfg, SERVICES[:1], tmp_path / "load_test", "127.0.0.1", port, preflight_budget=BUDGET)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(f"GET {METRICS_PATH} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        counted = sum(sum(c.by_code.values()) for c in parse([answer.split(b"\r\n\r\n", 1)[1].decode()]).values())
    finally:
        stand_in.terminate()
        stand_in.wait(timeout=10)
    assert run.requests > 20 and run.failures == 0
    assert counted == run.requests + 1  # the preflight's one request, and every request of the load


def test_progress_says_which_phase_the_run_is_in(tmp_path):
    from runbook.load.live import LoadTestProgress

    plain = LoadTestProgress(tmp_path / "requests.csv", 30, users=100, spawn_rate=10)
    assert [plain.phase(t) for t in (5, 20, 30)] == ["ramping up", "measuring", "finishing (requests in flight)"]
    (tmp_path / "requests.csv").write_text("time,service,side,round,response_ms,ok,error\n1,foo,candidate,1,2.5,1,\n")
    line = plain.line()
    assert line.startswith("load_test: 0/30 s, ramping up, ~1 users,") and "1 requests, 0 failed, p95 so far 2.5 ms" in line
