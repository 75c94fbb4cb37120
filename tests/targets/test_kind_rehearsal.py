"""A rehearsal of the whole kind path through the real CLI, notebooks and kernels, with stand-ins.

docker, kind, helm and kubectl are stand-in scripts (tests/support/fake_tools.py), the
Kubernetes API is a local fake, and "Traefik" is the local ingress process. This checks
that the stages drive the cluster path in the right order, end to end, and clean up;
it does not, and cannot, show that a real cluster behaves. That happens in GitHub Actions.
"""

import json
import urllib.request

import pytest

from conftest import run_cli
from support.fake_kube import FakeKube, deployment, ingress_route, kubelet_summary, node, pod
from support.fake_tools import calls, environment, install_fake_tools


@pytest.fixture
def rehearsal(tmp_path, port):
    with FakeKube() as fake:
        fake.node_states = [[node("runbook-control-plane"), node("runbook-worker")]]
        for name in ("foo", "bar"):
            fake.deployments[("runbook", name)] = [deployment(name, "runbook")]
            fake.deployments[("runbook-baseline", f"{name}-baseline")] = [deployment(f"{name}-baseline", "runbook-baseline")]
        # The IngressRoutes the echo chart installs: the sampler derives Traefik's labels from them.
        fake.ingress_routes["runbook"] = [ingress_route(name, "runbook", f"{name}.localhost") for name in ("foo", "bar")]
        fake.ingress_routes["runbook-baseline"] = [ingress_route(f"{name}-baseline", "runbook-baseline", f"{name}.baseline.localhost")
                                                   for name in ("foo", "bar")]
        # The sampler's view: "Traefik" is the stand-in on the ingress port, read through the pod proxy.
        fake.pods["traefik"] = [pod("traefik-7c9d8-k2x4p", "traefik", {"app.kubernetes.io/name": "traefik"})]
        fake.pod_metrics[("traefik", "traefik-7c9d8-k2x4p")] = (
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/__runbook/metrics", timeout=2).read().decode())
        fake.pods["runbook"] = [pod(f"{name}-5f6d7-{i}", "runbook", limits={"cpu": "500m", "memory": "64Mi"})
                                for name in ("foo", "bar") for i in (1, 2)]
        fake.node_summaries["runbook-worker"] = kubelet_summary(
            "runbook-worker", {("runbook", p["metadata"]["name"]): (120_000_000, 9 * 2**20) for p in fake.pods["runbook"]})
        fake.node_summaries["runbook-control-plane"] = kubelet_summary("runbook-control-plane", {})
        state = tmp_path / "state"
        bin_dir = install_fake_tools(tmp_path / "bin", state)
        yield state, environment(bin_dir, state, fake.url, port), port


def commands_of(state, tool):
    return [" ".join(c[1:]) for c in calls(state) if c[0] == tool]


def test_the_kind_path_runs_every_stage_in_order(tmp_path, rehearsal):
    state, env, port = rehearsal
    run = tmp_path / "run"
    done = run_cli("run", "--target", "kind", "--run-time", "3s", "--ingress-port", str(port), "--output-dir", str(run), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "target: kind (--target kind was asked for)" in done.stdout
    kind = commands_of(state, "kind")
    assert "get clusters" in kind and any(c.startswith("create cluster --name runbook --config") for c in kind)
    assert kind[-1] == "delete cluster --name runbook"
    helm = [c for c in commands_of(state, "helm") if not c.startswith("version")]
    assert [c.split()[2] for c in helm if c.startswith("upgrade")] == ["traefik", "metrics-server", "foo", "bar"]
    assert (state / "metrics-server").read_text() == "3.13.1"
    assert [c.split()[1] for c in helm if c.startswith("test")] == ["foo", "bar"]
    upgrades = [c.split() for c in helm if c.startswith("upgrade")]
    assert all("--wait=legacy" in c and "--rollback-on-failure" not in c and "--atomic" not in c for c in upgrades)
    rendered = (state / "kind-config.yaml").read_text()
    assert f"hostPort: {port}" in rendered and "containerPort: 30080" in rendered
    result = json.loads((run / "report" / "result.json").read_text())
    assert result["target"] == "kind" and result["status"] == "passed"
    assert result["services"]["foo"]["requests"] > 0 and result["services"]["bar"]["failures"] == 0
    # The sampler read "Traefik" through the pod proxy and the kubelets through the node proxy.
    server = result["server"]
    for name in ("foo", "bar"):
        side = server["services"][name]
        assert side["reconciled"] is True and side["traefik_requests"] == side["locust_requests"] == result["services"][name]["requests"]
        assert side["peak_cpu_cores"] == 0.12 and side["cpu_limit_cores"] == 0.5 and side["memory_limit_bytes"] == 64 * 2**20
        assert side["replicas"] == {"start": 2, "peak": 2, "end": 2}
    assert all(n["missing"] == 0 for n in server["samples"].values()) and set(server["samples"]) == {"processes", "traefik", "pods", "workloads"}
    assert any("metrics-server chart 3.13.1 installed" in note for note in server["notes"])
    assert (run / "report" / "replicas.png").stat().st_size > 10_000
    assert list((run / "load_test" / "server" / "pods").glob("*-runbook-worker.json"))
    assert not (run / "target" / "kubeconfig").exists()  # removed with the cluster
    assert not (state / "cluster").exists()


def test_a_failed_deploy_leaves_diagnostics_and_deletes_the_cluster(tmp_path, rehearsal):
    state, env, port = rehearsal
    run = tmp_path / "run"
    env["FAKE_TOOLS_FAIL"] = "helm upgrade --install bar"
    done = run_cli("run", "--target", "kind", "--run-time", "3s", "--ingress-port", str(port), "--output-dir", str(run), env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "deploy FAILED" in done.stdout and "helm failed on purpose" in done.stdout
    assert "verify skipped" in done.stdout and "[8/8] teardown passed" in done.stdout
    for name in ("nodes.txt", "pods.txt", "events.txt", "helm-releases.txt", "deploy-error.txt"):
        assert (run / "diagnostics" / name).is_file(), name
    assert (run / "diagnostics" / "kind-logs" / "kind-version.txt").is_file()
    kind = commands_of(state, "kind")
    assert kind[-1] == "delete cluster --name runbook"
    # The failed release stays for the diagnostics (no rollback, no uninstall); the cluster's deletion removes it.
    assert kind.index(next(c for c in kind if c.startswith("export logs"))) < len(kind) - 1
    assert not [c for c in commands_of(state, "helm") if c.startswith(("uninstall", "rollback"))]
    record = json.loads((run / "run.json").read_text())
    assert record["stages"]["deploy"]["status"] == "failed" and record["stages"]["teardown"]["status"] == "passed"
    assert (run / "notebooks" / "03_deploy.ipynb").is_file()


def test_port_forward_mode_opens_a_forward_per_stage_and_maps_no_port(tmp_path, rehearsal):
    state, env, port = rehearsal
    run = tmp_path / "run"
    done = run_cli("run", "--target", "kind", "--ingress-mode", "port-forward", "--run-time", "3s",
                   "--ingress-port", str(port), "--output-dir", str(run), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "extraPortMappings" not in (state / "kind-config.yaml").read_text()
    forwards = [c for c in commands_of(state, "kubectl") if "port-forward" in c]
    assert len(forwards) == 3  # ingress (serving check), verify, load_test
    assert all(c.endswith(f"--namespace traefik svc/traefik {port}:80") for c in forwards)
    assert json.loads((run / "report" / "result.json").read_text())["status"] == "passed"


def test_the_kind_path_with_a_baseline_deploys_and_compares_both_sides(tmp_path, rehearsal):
    state, env, port = rehearsal
    run = tmp_path / "run"
    # 8 s, the shortest run a comparison takes, is short for a verdict, and this rehearses the path, not the
    # statistics. So no regression limit can fail it.
    slo = tmp_path / "slo.yaml"
    slo.write_text("default: {regression: {p50: 100, p95: 100, p99: 100}}\n")
    done = run_cli("run", "--target", "kind", "--run-time", "8s", "--users", "20", "--spawn-rate", "20", "--slo", str(slo),
                   "--baseline", "HEAD", "--ingress-port", str(port), "--output-dir", str(run), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    upgrades = [c.split() for c in commands_of(state, "helm") if c.startswith("upgrade")]
    assert [c[2] for c in upgrades] == ["traefik", "metrics-server", "foo", "bar", "foo-baseline", "bar-baseline"]
    base = upgrades[4]
    assert base[3] == str(run / "baseline" / "k8s" / "charts" / "echo")
    assert base[base.index("--namespace") + 1] == "runbook-baseline"
    assert "ingressRoute.host=foo.baseline.localhost" in base
    result = json.loads((run / "report" / "result.json").read_text())
    assert result["comparison"]["available"] and set(result["comparison"]["services"]) == {"foo", "bar"}
    # The baseline's side is counted by "Traefik" under its own service label, like the candidate's.
    for side in ("services", "baseline_services"):
        for name in ("foo", "bar"):
            entry = result["server"][side][name]
            assert entry["reconciled"] is True and entry["traefik_requests"] == entry["locust_requests"] > 0, (side, name)
    assert commands_of(state, "kind")[-1] == "delete cluster --name runbook"


def test_the_stand_in_traefik_routes_only_what_deploy_installed(tmp_path, rehearsal):
    # Verify after provision and ingress alone: the IngressRoute CRD exists, but nothing routes foo yet.
    state, env, port = rehearsal
    run = tmp_path / "run"
    done = run_cli("run", "--target", "kind", "--stages", "provision,ingress", "--keep-cluster", "--ingress-port", str(port),
                   "--output-dir", str(run), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    from runbook.core.services import get, load_services

    foo = load_services(("foo",))[0]
    assert get("127.0.0.1", port, foo, timeout=5).status == 404  # Traefik serves, and has no route for foo
    done = run_cli("run", "--target", "kind", "--stages", "deploy,verify,teardown", "--ingress-port", str(port),
                   "--output-dir", str(run), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((run / "verify.json").read_text())["services"][0]["body"] == "foo"


def test_deploy_before_the_ingress_stage_fails_as_helm_would(tmp_path, rehearsal):
    state, env, port = rehearsal
    run = tmp_path / "run"
    done = run_cli("run", "--target", "kind", "--stages", "provision,deploy", "--ingress-port", str(port),
                   "--output-dir", str(run), env=env)
    assert done.returncode == 1 and "IngressRoute CRD is not in the cluster" in done.stdout


@pytest.fixture
def kubeconfig_rehearsal(tmp_path, port):
    with FakeKube() as fake:
        for name in ("foo", "bar"):
            fake.deployments[("runbook-run", name)] = [deployment(name, "runbook-run")]
        state = tmp_path / "state"
        bin_dir = install_fake_tools(tmp_path / "bin", state)
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", context="staging")
        yield state, environment(bin_dir, state, fake.url, port, KUBECONFIG=str(kubeconfig)), port


def test_the_kubeconfig_path_runs_every_stage_in_its_own_namespace(tmp_path, kubeconfig_rehearsal):
    state, env, port = kubeconfig_rehearsal
    run = tmp_path / "run"
    done = run_cli("run", "--target", "kubeconfig", "--run-time", "2s", "--users", "10", "--spawn-rate", "10",
                   "--ingress-port", str(port), "--output-dir", str(run), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    kubectl = commands_of(state, "kubectl")
    assert "create namespace runbook-run" in kubectl and "delete namespace runbook-run --wait=true --timeout=180s" in kubectl
    assert not [c for c in calls(state) if "--kubeconfig" in c]  # KUBECONFIG is the tools' own to read
    helm = commands_of(state, "helm")
    assert [c.split()[2] for c in helm if c.startswith("upgrade")] == ["traefik", "foo", "bar"]  # nothing cluster-wide
    assert "get apiservice v1beta1.metrics.k8s.io --ignore-not-found -o name" in kubectl
    assert all("--namespace runbook-run" in c for c in helm if c.startswith(("upgrade", "uninstall")))
    assert [c.split()[1] for c in helm if c.startswith("uninstall")] == ["foo", "bar", "traefik"]
    result = json.loads((run / "report" / "result.json").read_text())
    assert result["status"] == "passed"
    # What this cluster lacks is said, and the samples it could not give are missing, not invented.
    assert any("has no metrics API" in note for note in result["server"]["notes"])
    assert result["server"]["samples"]["traefik"]["missing"] == result["server"]["samples"]["traefik"]["taken"] > 0
    assert result["server"]["services"]["foo"]["traefik_requests"] is None
    assert not (state / "routes.json").exists() or json.loads((state / "routes.json").read_text()) == {}


@pytest.mark.parametrize(("target", "namespace", "traefik"), [("kind", "runbook", "traefik"),
                                                           ("kubeconfig", "runbook-run", "runbook-run")])
def test_locust_as_pods_in_the_cluster_runs_their_commands_and_brings_the_files_back(tmp_path, request, target, namespace,
                                                                                      traefik):
    """--load-generator cluster: the very container commands applied run as local processes (the stand-in
    kubectl), Locust's master and two workers over its own channel; the files come back with kubectl cp."""
    import csv
    import re

    import psutil

    state, env, port = request.getfixturevalue("rehearsal" if target == "kind" else "kubeconfig_rehearsal")
    run = tmp_path / "run"
    done = run_cli("run", "--target", target, "--load-generator", "cluster", "--workers", "2", "--run-time", "4s",
                   "--users", "10", "--spawn-rate", "10", "--wait-max", "0.2", "--ingress-port", str(port),
                   "--output-dir", str(run), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Locust's master and 2 workers start as pods in namespace {namespace} (locustio/locust:2.47.0)" in done.stdout
    kubectl = [re.sub(r"^--kubeconfig \S+ --context \S+ ", "", c) for c in commands_of(state, "kubectl")]
    applied = json.loads((run / "load_test" / "cluster-load.json").read_text())["items"]
    assert [i["kind"] for i in applied] == ["ConfigMap", "Service", "Job", "Job"]
    assert sum(c.startswith(f"cp {namespace}/runbook-locust-") for c in kubectl) == 3  # the master and both workers
    deleted = [i for i, c in enumerate(kubectl) if c.startswith(f"delete --namespace {namespace} job,service,configmap")]
    copied = [i for i, c in enumerate(kubectl) if c.startswith("cp ")]
    assert deleted and max(copied) < deleted[0]  # deleted once collected
    out = run / "load_test"
    for name in ("locust_stats.csv", "locust_stats_history.csv", "report.html", "locust.log", "requests.csv"):
        assert (out / name).stat().st_size > 0, name
    assert not list(out.glob("requests.worker-*")) and not (out / "pods").exists()
    with (out / "requests.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    with (out / "locust_stats.csv").open() as handle:
        stats = {row["Name"]: int(row["Request Count"]) for row in csv.DictReader(handle)}
    result = json.loads((run / "report" / "result.json").read_text())
    for name in ("foo", "bar"):
        logged = sum(row["service"] == name for row in rows)
        assert logged > 0 and logged == stats[name] == result["services"][name]["requests"]
        if target == "kind":  # the kubeconfig rehearsal's cluster gives no Traefik metrics
            assert result["server"]["services"][name]["traefik_requests"] == logged
    profile = json.loads((out / "profile.json").read_text())
    assert profile["generator"] == "Locust in the cluster: a master and 2 worker pods (locustio/locust:2.47.0)"
    assert profile["endpoint"] == f"http://traefik.{traefik}.svc.cluster.local:80"
    leftover = [p for p in psutil.process_iter(["cmdline"]) if str(state) in " ".join(p.info["cmdline"] or [])
                and "locust" in " ".join(p.info["cmdline"] or [])]
    assert leftover == []
