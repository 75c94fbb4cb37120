"""The baseline: taken from git, served beside the change, compared side by side at every moment, on the local target for real."""

import json
import shutil
import subprocess

import pytest

from conftest import ROOT, run_cli
from runbook.targets import baseline
from runbook.core.config import RunConfig
from runbook.core.errors import ConfigError, RunbookError
from runbook.core.rundir import RunFolder


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=30).stdout


@pytest.fixture
def repo(tmp_path):
    """A repository whose first commit has no k8s/ and whose second has foo and bar."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "t@example.invalid")
    git(path, "config", "user.name", "t")
    (path / "README.md").write_text("first\n")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "first")
    shutil.copytree(ROOT / "k8s", path / "k8s")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "second")
    return path


def prepare(tmp_path, repo, ref, **params):
    config = RunConfig.from_parameters(target="local", run_dir=str(tmp_path / "run"), baseline=ref, **params)
    return baseline.prepare(config, RunFolder(config.run_path).create(), root=repo)


def test_the_base_comes_from_git_not_the_working_tree(tmp_path, repo):
    values = repo / "k8s" / "deployment" / "foo" / "values.yaml"
    values.write_text(values.read_text().replace("text: foo", "text: changed-in-the-working-tree"))
    prepared = prepare(tmp_path, repo, "HEAD")
    assert prepared.available and prepared.sha == git(repo, "rev-parse", "HEAD").strip()
    foo = prepared.service_list()[0]
    assert (foo.name, foo.host, foo.expect) == ("foo", "foo.baseline.localhost", "foo")
    assert foo.values_file == str(tmp_path / "run" / "baseline" / "k8s" / "deployment" / "foo" / "values.yaml")
    assert (prepared.chart / "Chart.yaml").is_file()
    assert json.loads((tmp_path / "run" / "baseline" / "baseline.json").read_text())["available"] is True


def test_a_base_without_k8s_gives_a_run_without_comparison(tmp_path, repo):
    prepared = prepare(tmp_path, repo, "HEAD^1")
    assert not prepared.available and "has no k8s/ (the first pull request?)" in prepared.why
    with pytest.raises(RunbookError, match="--require-baseline: the base commit .* has no k8s/"):
        prepare(tmp_path / "again", repo, "HEAD^1", require_baseline=True)


def test_a_ref_that_does_not_exist_is_bad_input(tmp_path, repo):
    with pytest.raises(ConfigError, match="not a commit of this repository") as caught:
        prepare(tmp_path, repo, "no-such-branch")
    assert caught.value.name == "baseline"


def test_hosts_of_the_baseline():
    assert baseline.baseline_host("foo.localhost") == "foo.baseline.localhost"
    assert baseline.baseline_host("api.example.test") == "api.baseline.example.test"


@pytest.mark.parametrize(("args", "message"), [
    (["--baseline", "no-such-ref-anywhere"], "baseline='no-such-ref-anywhere': not a commit of this repository"),
    (["--inject-delay", "foo=5", "--target", "kind"], "only the local target can delay its answers"),
    (["--inject-delay", "nope=5", "--target", "local"], "expected SERVICE=MS"),
    (["--inject-delay", "foo=5", "--target", "local"], "inject_delay='foo=5': it calibrates the comparison with the base"),
    (["--rounds", "3"], "unrecognized arguments: --rounds 3"),
])
def test_bad_comparison_input_exits_2_before_anything_starts(tmp_path, args, message):
    done = run_cli("run", *args, "--output-dir", str(tmp_path / "run"), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and not (tmp_path / "run").exists()


def test_a_misspelt_slo_key_exits_2_naming_it(tmp_path):
    slo = tmp_path / "slo.yaml"
    slo.write_text("default:\n  max_p95ms: 10\n")
    done = run_cli("run", "--target", "local", "--slo", str(slo), "--output-dir", str(tmp_path / "run"), timeout=60)
    assert done.returncode == 2 and "default.max_p95ms" in done.stderr and "unknown key" in done.stderr


def run_local(tmp_path, port, *extra, name="run"):
    run = tmp_path / name
    done = run_cli("run", "--target", "local", "--ingress-port", str(port), "--users", "20", "--spawn-rate", "20",
                   "--run-time", "2s", "--output-dir", str(run), *extra, timeout=240)
    return run, done


def test_a_p95_limit_no_run_can_meet_fails_the_run_with_the_check_in_the_summary(tmp_path, port):
    slo = tmp_path / "slo.yaml"
    slo.write_text("default:\n  max_p95_ms: 0.001\n")
    run, done = run_local(tmp_path, port, "--slo", str(slo))
    assert done.returncode == 1, done.stdout + done.stderr
    result = json.loads((run / "report" / "result.json").read_text())
    failed = [c for c in result["slo"]["checks"] if not c["held"]]
    assert {(c["service"], c["check"]) for c in failed} == {("foo", "p95"), ("bar", "p95")}
    summary = (run / "report" / "summary.md").read_text()
    assert "SLO checks (some failed ❌)" in summary and "≤ 0.0 ms | failed ❌ |" in summary


@pytest.mark.notebooks
def test_the_change_against_its_own_commit_with_a_delay_on_one_service(tmp_path, port):
    # The base is this very commit: bar's sides are identical, foo's candidate answers 20 ms later.
    # 16 s with 20 users started at once, all measured but each user's first request; p50 and p95 have the requests, p99 not.
    # Within a generous limit the run passes...
    generous = tmp_path / "slo.yaml"
    generous.write_text("default:\n  regression: {p50: 100, p95: 100, p99: 100}\n")
    run, done = run_local(tmp_path, port, "--baseline", "HEAD", "--inject-delay", "foo=20", "--run-time", "16s",
                          "--slo", str(generous))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((run / "report" / "result.json").read_text())
    comparison = result["comparison"]
    assert comparison["available"] and set(comparison["services"]) == {"foo", "bar"} and not comparison["failed"]
    from runbook.analysis.result_document import parse

    assert parse(result) == result  # the one definition: what the report writes is what publish reads back
    assert (comparison["design"], comparison["warmup_requests"], comparison["measured_s"]) == ("interleaved", 1, 16)
    rows = (run / "load_test" / "requests.csv").read_text().splitlines()
    assert rows[0] == "time,service,side,round,response_ms,ok,error"
    seen = {tuple(r.split(",")[1:4]) for r in rows[1:]}
    # Both sides of both services, in the warm-up (0: users' first requests) and after it (1).
    assert seen == {(name, side, phase) for name in ("foo", "bar") for side in ("candidate", "baseline") for phase in "01"}
    profile = json.loads((run / "load_test" / "profile.json").read_text())
    assert profile["schedule"] == {"design": "interleaved", "warmup_requests": 1, "measured_s": 16}
    # Every user's first request, and only it, is the warm-up: 20 users, 20 requests in round 0.
    assert sum(r.split(",")[3] == "0" for r in rows[1:]) == 20
    # The sides take turns in pairs: over the run, each service's measured requests split evenly, give or take one
    # (a coin per request would be off by about the square root of their number).
    for name in ("foo", "bar"):
        sides = [r.split(",")[2] for r in rows[1:] if r.split(",")[1] == name and r.split(",")[3] == "1"]
        assert abs(sides.count("candidate") - sides.count("baseline")) <= 1, (name, len(sides))
    verified = json.loads((run / "verify.json").read_text())["services"]
    assert {(v["host"], v["side"]) for v in verified} >= {("foo.baseline.localhost", "baseline"), ("bar.baseline.localhost", "baseline")}
    assert (run / "baseline" / "k8s" / "charts" / "echo" / "Chart.yaml").is_file()
    assert (run / "report" / "change.png").is_file()
    foo, bar = comparison["services"]["foo"], comparison["services"]["bar"]
    assert foo["p50"]["verdict"] == foo["p95"]["verdict"] == "slower" and foo["p50"]["change"] > 1  # +20 ms on a few ms
    assert bar["p50"]["verdict"] != "slower" and bar["p95"]["verdict"] != "slower"
    assert foo["p99"]["verdict"] == bar["p99"]["verdict"] == "too few requests" and foo["p99"]["change"] is None
    # One number per figure: the comparison's candidate is the main table's.
    assert foo["p95"]["candidate"] == pytest.approx(result["services"]["foo"]["p95_ms"], abs=0.005)
    summary = (run / "report" / "summary.md").read_text()
    assert "Change against the baseline" in summary and "| p99 |" in summary and "p99: 500 a side" in summary
    assert "- **Injected delay**: `foo`'s candidate side answers 20 ms later (`--inject-delay`" in summary
    assert comparison["injected_delay_ms"] == {"foo": 20.0}
    # ... and under the shipped limits (p50 may get 10% slower) the same numbers fail it.
    done = run_cli("run", "--target", "local", "--stages", "report", "--output-dir", str(run), "--baseline", "HEAD",
                   timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    summary = (run / "report" / "summary.md").read_text()
    assert "**Against the base**: foo " in summary and "foo p50 +" in summary and "over the 10% limit" in summary
    assert "(not judged, too few requests: foo p99, bar p99)" in summary
    # Recomputed from the run folder, twice: the very same verdicts and intervals. Under the shipped limits it is
    # the report's own headline and fails; by default the limits are those the run recorded (the generous ones).
    shipped = str(ROOT / "load_test" / "slo.yaml")
    first, again = (run_cli("compare", str(run), "--slo", shipped, timeout=120) for _ in range(2))
    assert first.returncode == again.returncode == 1 and first.stdout == again.stdout
    headline = json.loads((run / "report" / "result.json").read_text())["comparison"]["headline"]
    assert first.stdout.splitlines()[0] == headline and "| `foo` | p95 |" in first.stdout
    assert run_cli("compare", str(run), timeout=120).returncode == 0
