"""The pipeline end to end on the local target: every stage notebook executed for real."""

import json
import signal
import re
from pathlib import Path
import socket
import subprocess
import sys
import time

import nbformat
import pytest
from matplotlib.image import imread

from conftest import free_port, ROOT, run_cli
from runbook.core.errors import ConfigError, StageFailed
from runbook.pipeline import declared_parameters, NOTEBOOKS, execute_stage, stages_to_run
from runbook.core.config import RunConfig
from runbook.targets.local import is_our_process

TOKEN = "ghp_RunbookTestToken1234567890abcdefXYZ"


def all_text(folder):
    for path in folder.rglob("*"):
        if path.is_file():
            yield path, path.read_bytes()


def test_a_full_local_run(tmp_path, port):
    run = tmp_path / "run"
    done = run_cli("run", "--target", "local", "--run-time", "4s", "--output-dir", str(run),
                   "--ingress-port", str(port), env={"GITHUB_TOKEN": TOKEN})
    assert done.returncode == 0, done.stdout + done.stderr
    # A person watching sees every stage start and end with its wall time.
    for number, stage in enumerate(NOTEBOOKS, 1):
        assert f"==> [{number}/8] {stage} started" in done.stdout
        assert f"<== [{number}/8] {stage} passed in " in done.stdout
    assert "target: local (--target local was asked for)" in done.stdout

    for stage, name in NOTEBOOKS.items():
        executed = nbformat.read(run / "notebooks" / name, as_version=4)
        assert not executed.metadata.papermill.get("exception")
        assert any(cell.get("outputs") for cell in executed.cells if cell.cell_type == "code"), stage
    for name in ["locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv", "locust_exceptions.csv", "report.html"]:
        assert (run / "load_test" / name).stat().st_size > 0
    charts = sorted((run / "report").glob("*.png"))
    assert len(charts) >= 3
    for chart in charts:
        assert imread(chart)[..., :3].std() > 0.05
    summary = (run / "report" / "summary.md").read_text()
    assert "| `foo` |" in summary and "| `bar` |" in summary and "stands in for the Kubernetes cluster" in summary
    result = json.loads((run / "report" / "result.json").read_text())
    assert result["status"] == "passed" and result["target"] == "local"
    assert result["config"]["users"] == 100 and result["config"]["run_time_s"] == 4
    # One file to open: the summary, every chart embedded, every executed notebook, nothing fetched.
    page = (run / "report" / "report.html").read_text()
    assert f"report: {run / 'report' / 'report.html'}" in done.stdout
    assert page.count('src="data:image/png;base64,') >= 2 * len(charts) and "<table>" in page  # summary and notebook
    # The report notebook shows the summary, then each chart as an image with the summary's alt text.
    report_nb = nbformat.read(run / "notebooks" / NOTEBOOKS["report"], as_version=4)
    outputs = [o for cell in report_nb.cells for o in cell.get("outputs", [])]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == len(charts) and 'alt="Latency' in page
    assert all(o.metadata["image/png"]["alt"] for o in images)
    assert not any("data:image" in o.get("data", {}).get("text/markdown", "") for o in outputs)
    assert all(name in page for name in NOTEBOOKS.values()) and "Routing verified through" in page
    assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)="(https?:)?//', page)
    assert 'href="../load_test/requests.csv"' in page and 'href="../load_test/server/samples.jsonl"' in page
    assert 'href="../load_test/report.html"' in page  # Locust's own report
    # Status in words, coloured: an emoji may not render where no emoji font is installed.
    assert '<span class="good">held</span>' in page and "passed" in page
    # Each stage's outcome on the console, and what was decided at the end.
    assert "    publish: not published: " in done.stdout or "    publish: " in done.stdout
    assert "    report: verdict passed" in done.stdout and "    teardown: " in done.stdout
    for service in ("foo", "bar"):
        assert result["services"][service]["requests"] > 0 and result["services"][service]["failures"] == 0
    # The server side: the stand-in counted what Locust sent (within 1%), its percentiles, CPU and memory,
    # and the generator's CPU; the raw samples are in the run folder.
    server = result["server"]
    for service in ("foo", "bar"):
        side = server["services"][service]
        assert side["locust_requests"] == result["services"][service]["requests"]
        assert side["complete"] and abs(side["traefik_requests"] - side["locust_requests"]) <= 0.01 * side["locust_requests"]
        assert side["reconciled"] is True
        assert 0 < side["p50"]["ms"] <= side["p95"]["ms"] and side["p95"]["bucket_ms"][0] <= side["p95"]["ms"] <= side["p95"]["bucket_ms"][1]
        assert side["peak_cpu_cores"] > 0 and side["peak_memory_bytes"] > 10 * 2**20
    assert server["processes"]["locust"]["peak_cpu_percent"] > 0 and server["processes"]["locust"]["samples"] >= 1
    assert server["processes"]["stand-in"]["peak_rss_bytes"] > 10 * 2**20
    assert server["samples"]["traefik"]["missing"] == server["samples"]["processes"]["missing"] == 0
    assert server["samples"]["traefik"]["taken"] >= 3
    samples = [json.loads(line) for line in (run / "load_test" / "server" / "samples.jsonl").read_text().splitlines()]
    assert {s["moment"] for s in samples} == {"before", "during", "after"}
    assert "traefik_service_requests_total{" in (run / "load_test" / "server" / "traefik" / "0000-metrics.prom").read_text()
    assert {"server-latency.png", "resources.png"} <= {chart.name for chart in charts}
    assert "#### Server side" in summary and "![CPU and memory of the stand-in and Locust](resources.png)" in summary

    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "passed" and record["exit_code"] == 0 and record["verdict"] == "passed"
    assert [record["stages"][s]["status"] for s in NOTEBOOKS] == ["passed"] * 8
    assert all(record["stages"][s]["wall_time_s"] > 0 for s in NOTEBOOKS)
    assert record["config"]["ingress_port"] == port and record["target"]["name"] == "local"
    # The local ingress is gone after teardown.
    state = json.loads((run / "target" / "local.json").read_text())
    assert state["stopped"] and not is_our_process(state["pid"])
    # The token was in the environment of the whole run and is nowhere in what it wrote.
    assert TOKEN not in done.stdout + done.stderr
    leaks = [str(path) for path, data in all_text(run) if TOKEN.encode() in data]
    assert leaks == []


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--users", "-5"], "users='-5'"),
        (["--run-time", "abc"], "run_time='abc'"),
        (["--target", "mars"], "target='mars'"),
        (["--stages", "provision,smoke"], "stages='smoke'"),
        (["--spawn-rate", "0"], "spawn_rate='0'"),
        (["--services", "foo,nosuch"], "services='nosuch'"),
    ],
)
def test_bad_input_exits_2_naming_the_value_and_writes_nothing(tmp_path, args, named):
    run = tmp_path / "run"
    done = run_cli("run", "--target", "local", "--output-dir", str(run), *args, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert named in done.stderr
    assert not run.exists()
    assert "started" not in done.stdout


def test_unknown_flag_is_bad_input(tmp_path):
    done = run_cli("run", "--userz", "5", timeout=60)
    assert done.returncode == 2 and "--userz" in done.stderr


def test_help_explains_each_flag():
    done = run_cli("run", "--help", timeout=60)
    assert done.returncode == 0
    for flag in ["--target", "--users", "--spawn-rate", "--run-time", "--output-dir", "--stages", "--keep-cluster"]:
        assert flag in done.stdout
    assert "auto: kind where" in " ".join(done.stdout.split())


def test_an_unreachable_target_fails_the_load_test_and_keeps_its_notebook(tmp_path, port):
    run = tmp_path / "run"
    started = time.monotonic()
    done = run_cli("run", "--target", "local", "--stages", "load_test,report", "--output-dir", str(run),
                   "--ingress-port", str(port), "--preflight-timeout", "1.5", timeout=120)
    assert time.monotonic() - started < 20
    assert done.returncode == 1, done.stdout + done.stderr
    assert "load_test FAILED" in done.stdout and "unreachable" in done.stdout
    assert "report skipped" in done.stdout
    executed = nbformat.read(run / "notebooks" / NOTEBOOKS["load_test"], as_version=4)
    assert executed.metadata.papermill.exception is True
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors and errors[0]["ename"] == "TargetUnreachable"
    assert not (run / "notebooks" / NOTEBOOKS["report"]).exists()
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "failed" and record["exit_code"] == 1
    assert record["stages"]["load_test"]["status"] == "failed" and record["stages"]["report"]["status"] == "skipped"
    assert "unreachable" in (run / "diagnostics" / "load_test-error.txt").read_text()
    assert "within 1.5s" in done.stdout  # the budget it was given, not the default 10 s


def test_keep_cluster_then_a_later_teardown(tmp_path, port):
    run = tmp_path / "run"
    done = run_cli("run", "--target", "local", "--stages", "provision,verify", "--keep-cluster",
                   "--output-dir", str(run), "--ingress-port", str(port))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[3/3] teardown passed" in done.stdout  # teardown joined, and kept the target up
    pid = json.loads((run / "target" / "local.json").read_text())["pid"]
    assert is_our_process(pid)
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    done = run_cli("run", "--target", "local", "--stages", "teardown", "--output-dir", str(run), "--ingress-port", str(port))
    assert done.returncode == 0, done.stdout + done.stderr
    assert not is_our_process(pid)
    record = json.loads((run / "run.json").read_text())
    assert record["stages"]["verify"]["status"] == "passed" and record["stages"]["teardown"]["status"] == "passed"
    assert len(record["invocations"]) == 2


def test_teardown_joins_any_run_that_provisions():
    assert stages_to_run(RunConfig.from_parameters(stages="provision,verify")) == ["provision", "verify", "teardown"]
    assert stages_to_run(RunConfig.from_parameters(stages="load_test,report")) == ["load_test", "report"]


def test_unknown_notebook_parameters_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="questoin=.*is not a parameter of tiny.ipynb; it has answer"):
        execute_stage(ROOT / "tests" / "fixtures" / "tiny.ipynb", tmp_path / "out.ipynb", {"questoin": 2})
    assert not (tmp_path / "out.ipynb").exists()


def test_a_failing_notebook_is_kept_with_its_error(tmp_path):
    with pytest.raises(StageFailed, match="AssertionError: unlucky"):
        execute_stage(ROOT / "tests" / "fixtures" / "tiny.ipynb", tmp_path / "out.ipynb", {"answer": 13})
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert executed.metadata.papermill.parameters == {"answer": 13}
    assert any(o.get("ename") == "AssertionError" for c in executed.cells for o in c.get("outputs", []))


def test_the_notebooks_run_in_order_with_their_defaults(tmp_path):
    """What a person does in Jupyter: open each notebook in turn and run it as committed."""
    run_dir = str(tmp_path / "interactive")
    port = free_port()
    for stage, name in NOTEBOOKS.items():
        # Only the run folder (not in the checkout) and the port (8080 may be taken here) change.
        notebook = ROOT / "notebooks" / name
        changed = {"run_dir": run_dir, "ingress_port": port}
        execute_stage(notebook, tmp_path / name, {k: v for k, v in changed.items() if k in declared_parameters(notebook)})
    result = json.loads((tmp_path / "interactive" / "report" / "result.json").read_text())
    assert result["config"]["run_time_s"] == 30 and result["config"]["users"] == 100
    assert result["status"] == "passed"


def test_a_failed_verdict_exits_1(tmp_path):
    """A load test with failed requests: the report stage passes, the run does not."""
    from support.run_data import write_load_test

    run = tmp_path / "run"
    rows = [(1000 + i * 0.1, "foo", 5, 1, "") for i in range(40)]
    rows += [(1000 + i * 0.1, "bar", 5000, 0, "ReadTimeout: read timed out") for i in range(3)]
    rows += [(1000 + i * 0.1, "bar", 5, 1, "") for i in range(40)]
    write_load_test(run / "load_test", rows)
    done = run_cli("run", "--target", "local", "--stages", "report", "--output-dir", str(run), timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[1/1] report passed" in done.stdout and "    report: verdict failed" in done.stdout
    # The last lines say what was decided and why.
    closing = done.stdout.splitlines()[-2]
    assert closing.startswith("run FAILED: SLO checks failed: ") and "bar failure ratio" in closing
    assert "    report: SLO check failed: bar failure ratio 0.0698, limit <= 0" in done.stdout
    record = json.loads((run / "run.json").read_text())
    assert record["verdict"] == "failed" and record["status"] == "failed" and record["stages"]["report"]["status"] == "passed"


def test_latest_follows_runs_under_outputs_only(tmp_path, monkeypatch):
    from runbook.core import rundir
    from runbook.core.rundir import RunFolder

    (tmp_path / "notebooks").mkdir()
    monkeypatch.setattr(rundir, "project_root", lambda: tmp_path)
    first = RunFolder(tmp_path / "outputs" / "run-1").create()
    assert first.link_latest() == tmp_path / "outputs" / "latest"
    second = RunFolder(tmp_path / "outputs" / "run-2").create()
    second.link_latest()
    assert (tmp_path / "outputs" / "latest").resolve() == second.path.resolve()
    assert RunFolder(tmp_path / "elsewhere" / "run-3").create().link_latest() is None
    assert (tmp_path / "outputs" / "latest").resolve() == second.path.resolve()


@pytest.mark.parametrize(("signum", "processes"), [(signal.SIGINT, "1"), (signal.SIGTERM, "1"), (signal.SIGINT, "2")])
def test_an_interrupted_run_still_tears_down_quietly_and_reports_what_it_recorded(tmp_path, port, signum, processes):
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "runbook", "run", "--target", "local", "--run-time", "60s", "--output-dir", str(run),
         "--users", "20", "--spawn-rate", "20", "--ingress-port", str(port), "--processes", processes],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if re.search(r"load_test: [1-9]\d*/\d+ s, .* [1-9][\d,]* requests", line):
                break  # locust is running and has recorded requests
        pid = json.loads((run / "target" / "local.json").read_text())["pid"]
        process.send_signal(signum)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(lines) + out
    assert process.returncode == 130, output
    assert "load_test interrupted; reporting what it recorded, then teardown" in output and "teardown passed" in output
    assert "Traceback" not in output and "Kernel died" not in output and "Task exception" not in output
    assert "publish skipped (interrupted)" in output
    assert not is_our_process(pid)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # the port is free again
    locusts = [p for p in Path("/proc").iterdir() if p.name.isdigit() and str(run).encode() in _cmdline(p)]
    assert locusts == []  # Locust (and its workers) stopped with the stage, not when its run time would have ended
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "interrupted" and record["stages"]["load_test"]["status"] == "interrupted"
    assert record["stages"]["report"]["status"] == "passed" and record["stages"]["teardown"]["status"] == "passed"
    result = json.loads((run / "report" / "result.json").read_text())
    assert result["interrupted"] is True and result["status"] == "failed" and result["services"]["foo"]["requests"] > 0
    assert (run / "report" / "summary.md").read_text().startswith("### Load test interrupted")


def _cmdline(proc_dir):
    try:
        return (proc_dir / "cmdline").read_bytes()
    except OSError:
        return b""


def test_a_later_invocation_keeps_the_runs_target(tmp_path, port):
    run = tmp_path / "run"
    done = run_cli("run", "--target", "local", "--stages", "provision", "--keep-cluster", "--output-dir", str(run),
                   "--ingress-port", str(port))
    assert done.returncode == 0, done.stdout + done.stderr
    pid = json.loads((run / "target" / "local.json").read_text())["pid"]
    done = run_cli("run", "--stages", "teardown", "--output-dir", str(run), "--ingress-port", str(port))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"target: local (the run in {run} used target local)" in done.stdout
    assert not is_our_process(pid)


def test_the_load_test_shows_progress_as_plain_lines_in_a_log(tmp_path, port):
    done = run_cli("run", "--target", "local", "--stages", "provision,load_test,teardown", "--run-time", "10s",
                   "--users", "20", "--spawn-rate", "10", "--ingress-port", str(port), "--output-dir", str(tmp_path / "run"))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if re.search(r"load_test: \d+/\d+ s, .* req/s, .* failed, p95", line)]
    assert len(lines) >= 3, done.stdout
    assert "\r" not in done.stdout and "\x1b" not in done.stdout  # no spinners in a log file
    assert done.stdout.index(lines[0]) > done.stdout.index("load_test started")
    assert done.stdout.index(lines[-1]) < done.stdout.index("load_test passed")


def test_kernels_warmed_later_never_start_after_the_run_has_closed_its_pool(tmp_path):
    from runbook.kernels import KernelPool

    pool = KernelPool(str(ROOT))
    pool.warm(["report", "publish"], delay=0.3)  # as during the load test
    pool.close()  # a run that ended first (a short --run-time, an interrupt)
    time.sleep(0.6)
    assert pool._kernels == {} and all(not t.is_alive() for t in pool._timers)
