"""Locust's pods for --load-generator cluster: their manifests, and the calls that run and collect them.

Nothing here runs on a cluster. The manifests are validated against Kubernetes' own schemas, the calls
are checked against a recording kubectl, and tests/targets/test_kind_rehearsal.py runs the very container
commands as local processes. Whether a real cluster pulls the image and schedules the pods is for CI's
kind job to show.
"""

import json
import re
import subprocess
from types import SimpleNamespace

import kubernetes_validate
import pytest

from conftest import ROOT
from runbook.core.config import RunConfig
from runbook.core.errors import LoadTestError
from runbook.load import in_cluster
from runbook.load.in_cluster import ClusterLoad, manifests

KUBERNETES = "1.35.0"  # the minor of the pinned kind node image
ENV = {"LOAD_TEST_SERVICES": "[]", "LOAD_TEST_WAIT_MIN": "0", "LOAD_TEST_WAIT_MAX": "1", "LOAD_TEST_TIMEOUT": "5"}


def config(tmp_path, **extra):
    return RunConfig.from_parameters(target="kind", load_generator="cluster", run_dir=str(tmp_path), **extra)


def objects(tmp_path, **extra):
    load = ClusterLoad("runbook", "http://traefik.traefik.svc.cluster.local:80", kubectl=None)
    return manifests(config(tmp_path, **extra), load, ENV, ROOT / "load_test" / "locustfile.py")


def test_the_manifests_validate_against_the_kubernetes_schemas(tmp_path):
    found = objects(tmp_path, workers=3)
    for manifest in found:
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
    assert [(m["kind"], m["metadata"]["name"]) for m in found] == [
        ("ConfigMap", "runbook-locust"), ("Service", "runbook-locust-master"),
        ("Job", "runbook-locust-master"), ("Job", "runbook-locust-workers")]
    workers = found[3]["spec"]
    assert workers["parallelism"] == workers["completions"] == 3 and workers["backoffLimit"] == 0
    # The Service selects the master's pods, and only them.
    master_labels = found[2]["spec"]["template"]["metadata"]["labels"]
    assert found[1]["spec"]["selector"].items() <= master_labels.items()
    assert not found[1]["spec"]["selector"].items() <= found[3]["spec"]["template"]["metadata"]["labels"].items()


def test_the_image_is_the_locust_pinned_in_requirements(tmp_path):
    pinned = re.search(r"^locust==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)[1]
    for job in objects(tmp_path)[2:]:
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == f"locustio/locust:{pinned}"
        assert "limits" not in container["resources"] or "cpu" not in container["resources"]["limits"]  # never throttled
    assert objects(tmp_path)[0]["data"]["locustfile.py"] == (ROOT / "load_test" / "locustfile.py").read_text()
    (tmp_path / "requirements.txt").write_text("numpy==2.4.6\n")
    with pytest.raises(LoadTestError, match="pins no locust"):
        in_cluster.image(tmp_path)


def test_the_master_runs_the_profile_and_both_carry_the_locustfiles_options(tmp_path):
    master, worker = (job["spec"]["template"]["spec"]["containers"][0] for job in objects(tmp_path, users=40, run_time="45s")[2:])
    script = master["command"][2]
    for part in ("--master", "--headless", "--expect-workers 2", "--users 40", "--run-time 45s",
                 "--host http://traefik.traefik.svc.cluster.local:80", "--csv /out/locust", "--html /out/report.html"):
        assert part in script
    assert "--worker --master-host runbook-locust-master --master-port 5557" in worker["command"][2]
    # Locust hands a worker its master's options: the request log's path must be in the master's environment too.
    for container in (master, worker):
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["LOAD_TEST_REQUEST_LOG"] == "/out/requests.csv" and env["LOAD_TEST_WAIT_MAX"] == "1"
    assert "echo $? > /out/exit-code" in script and "/out/collected" in script


def test_the_container_script_keeps_the_exit_code_and_waits_to_be_collected(tmp_path):
    """The script itself, run by sh: the exit code of the command, then a wait that ends when collected appears."""
    script = in_cluster._waiting_script(["sh", "-c", "exit 3"]).replace("/out", str(tmp_path))
    waiting = subprocess.Popen(["sh", "-c", script])
    try:
        for _ in range(50):
            if (tmp_path / "exit-code").exists():
                break
            subprocess.run(["sleep", "0.1"])
        assert (tmp_path / "exit-code").read_text().strip() == "3"
        assert waiting.poll() is None  # still there, waiting for the runbook
        (tmp_path / "collected").touch()
        assert waiting.wait(timeout=5) == 0
    finally:
        waiting.kill()


class RecordingKubectl:
    """kubectl as the runbook calls it: answers pods, exit codes and copies from a dict of pod folders."""

    def __init__(self, tmp_path, fail_copy=False, refused=()):
        self.calls, self.tmp_path, self.fail_copy, self.refused = [], tmp_path, fail_copy, refused
        self.pods = {"master": ["m-0"], "worker": ["w-0", "w-1"]}

    def __call__(self, *args, timeout=60, check=True):
        self.calls.append(list(args))
        if args[:2] == ("auth", "can-i"):
            return SimpleNamespace(stdout="no\n" if args[3] in self.refused else "yes\n", stderr="", returncode=0)
        if args[:2] == ("get", "pods"):
            component = args[args.index("-l") + 1].split("component=")[1]
            return SimpleNamespace(stdout=json.dumps({"items": [{"metadata": {"name": n}} for n in self.pods[component]]}),
                                   stderr="", returncode=0)
        if args[0] == "exec" and "cat" in args:
            return SimpleNamespace(stdout="0\n", stderr="", returncode=0)
        if args[0] == "cp":
            if self.fail_copy:
                from runbook.core.errors import CommandError

                raise CommandError(["kubectl", *args], 1, "error: tar not found")
            pod = args[1].split("/")[1].split(":")[0]
            folder = self.tmp_path / "copied" / pod
            folder.mkdir(parents=True)
            (folder / "locust.log").write_text(f"log of {pod}\n")
            (folder / "exit-code").write_text("0\n")
            if pod.startswith("w"):
                (folder / f"requests.worker-{pod}-1.csv").write_text("time,service,side,round,response_ms,ok,error\n")
            subprocess.run(["cp", "-r", str(folder), args[2]], check=True)
            return SimpleNamespace(stdout="", stderr="", returncode=0)
        return SimpleNamespace(stdout="", stderr="", returncode=0)


def test_every_pods_files_come_back_then_the_objects_go(tmp_path, monkeypatch):
    monkeypatch.setattr(in_cluster, "POLL_S", 0.01)
    kubectl = RecordingKubectl(tmp_path)
    out = tmp_path / "load_test"
    out.mkdir()
    load = ClusterLoad("team-a", "http://traefik.team-a.svc.cluster.local:80", kubectl)
    lines = []
    assert in_cluster.run(config(tmp_path), load, ENV, ROOT / "load_test" / "locustfile.py", out, lambda t: "measuring",
                          lines.append) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "cluster-load.json", "locust-w-0.log", "locust-w-1.log", "locust.log",
        "requests.worker-w-0-1.csv", "requests.worker-w-1-1.csv"]
    assert (out / "locust.log").read_text() == "log of m-0\n"  # the master's log under the plain name
    verbs = [c[0] for c in kubectl.calls if c[0] != "auth"]
    assert verbs[0] == "apply" and verbs[-1] == "delete" and verbs.count("cp") == 3
    assert all("team-a" in " ".join(c) for c in kubectl.calls)
    touched = [c[3] for c in kubectl.calls if c[0] == "exec" and "touch" in c]
    assert touched == ["m-0", "w-0", "w-1"]  # each pod told it may go, after its copy


def test_a_failure_keeps_the_pods_logs_and_still_deletes_the_objects(tmp_path, monkeypatch):
    from runbook.core.errors import CommandError

    monkeypatch.setattr(in_cluster, "POLL_S", 0.01)
    kubectl = RecordingKubectl(tmp_path, fail_copy=True)
    out = tmp_path / "load_test"
    out.mkdir()
    with pytest.raises(CommandError, match="tar not found"):
        in_cluster.run(config(tmp_path), ClusterLoad("runbook", "http://x", kubectl), ENV,
                       ROOT / "load_test" / "locustfile.py", out, lambda t: "measuring", lambda line: None)
    verbs = [c[0] for c in kubectl.calls]
    assert verbs[-2:] == ["logs", "delete"] and (out / "locust-pods.log").is_file()


def test_the_generators_pods_are_the_generator_summed_with_the_busiest_pod():
    import numpy as np

    from runbook.analysis.server_side import _generator_pods

    t = np.array([0.0, 2.0, 4.0])
    pods = {
        "runbook/runbook-locust-master-abcde": {"t": t, "cpu": np.array([0.05, 0.05, np.nan]), "memory": np.array([1e8] * 3),
                                                "workload": "runbook/runbook-locust"},
        "runbook/runbook-locust-workers-fghij": {"t": t, "cpu": np.array([0.5, 0.95, np.nan]), "memory": np.array([2e8] * 3),
                                                 "workload": "runbook/runbook-locust"},
        "runbook/foo-5f6d7-1": {"t": t, "cpu": np.array([0.9, 0.9, 0.9]), "memory": np.array([1e7] * 3),
                                "workload": "runbook/foo"},
    }
    side = _generator_pods(pods)
    assert side.processes == 2 and side.role == "locust"
    assert side.cpu_percent[:2].tolist() == [55.0, 100.0] and np.isnan(side.cpu_percent[2])  # no pod answered: missing
    assert side.busiest_cpu_percent[:2].tolist() == [50.0, 95.0]
    assert side.saturated_share == 0.5  # the worker at 95% of a core in one of the two readings with a value
    assert _generator_pods({k: v for k, v in pods.items() if "foo" in k}) is None


def test_missing_permissions_are_named_before_anything_is_created(tmp_path):
    kubectl = RecordingKubectl(tmp_path, refused=("pods/exec", "jobs.batch"))
    with pytest.raises(LoadTestError) as raised:
        in_cluster.run(config(tmp_path), ClusterLoad("team-a", "http://x", kubectl), ENV, ROOT / "load_test" / "locustfile.py",
                       tmp_path, lambda t: "measuring", lambda line: None)
    assert "in namespace team-a: create jobs.batch, create pods/exec, delete jobs.batch" in str(raised.value)
    assert {c[0] for c in kubectl.calls} == {"auth"} and not (tmp_path / "cluster-load.json").exists()
