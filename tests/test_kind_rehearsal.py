"""A rehearsal of the whole kind path through the real CLI, notebooks and kernels, with stand-ins.

docker, kind, helm and kubectl are stand-in scripts (tests/support/fake_tools.py), the
Kubernetes API is a local fake, and "Traefik" is the local ingress process. This checks
that the stages drive the cluster path in the right order, end to end, and clean up;
it does not, and cannot, show that a real cluster behaves. That happens in GitHub Actions.
"""

import json

import pytest

from conftest import run_cli
from support.fake_kube import FakeKube, deployment, node
from support.fake_tools import calls, environment, install_fake_tools


@pytest.fixture
def rehearsal(tmp_path, port):
    with FakeKube() as fake:
        fake.node_states = [[node("runbook-control-plane"), node("runbook-worker")]]
        for name in ("foo", "bar"):
            fake.deployments[("runbook", name)] = [deployment(name, "runbook")]
            fake.deployments[("runbook-baseline", f"{name}-baseline")] = [deployment(f"{name}-baseline", "runbook-baseline")]
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
    assert [c.split()[2] for c in helm if c.startswith("upgrade")] == ["traefik", "foo", "bar"]
    assert [c.split()[1] for c in helm if c.startswith("test")] == ["foo", "bar"]
    upgrades = [c.split() for c in helm if c.startswith("upgrade")]
    assert all("--wait=legacy" in c and "--rollback-on-failure" not in c and "--atomic" not in c for c in upgrades)
    rendered = (state / "kind-config.yaml").read_text()
    assert f"hostPort: {port}" in rendered and "containerPort: 30080" in rendered
    result = json.loads((run / "report" / "result.json").read_text())
    assert result["target"] == "kind" and result["status"] == "passed"
    assert result["services"]["foo"]["requests"] > 0 and result["services"]["bar"]["failures"] == 0
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
    done = run_cli("run", "--target", "kind", "--run-time", "2s", "--users", "20", "--spawn-rate", "20",
                   "--baseline", "HEAD", "--rounds", "2", "--ingress-port", str(port), "--output-dir", str(run), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    upgrades = [c.split() for c in commands_of(state, "helm") if c.startswith("upgrade")]
    assert [c[2] for c in upgrades] == ["traefik", "foo", "bar", "foo-baseline", "bar-baseline"]
    base = upgrades[3]
    assert base[3] == str(run / "baseline" / "k8s" / "charts" / "echo")
    assert base[base.index("--namespace") + 1] == "runbook-baseline"
    assert "ingressRoute.host=foo.baseline.localhost" in base
    result = json.loads((run / "report" / "result.json").read_text())
    assert result["comparison"]["available"] and set(result["comparison"]["services"]) == {"foo", "bar"}
    assert commands_of(state, "kind")[-1] == "delete cluster --name runbook"


def test_the_stand_in_traefik_routes_only_what_deploy_installed(tmp_path, rehearsal):
    # Verify after provision and ingress alone: the IngressRoute CRD exists, but nothing routes foo yet.
    state, env, port = rehearsal
    run = tmp_path / "run"
    done = run_cli("run", "--target", "kind", "--stages", "provision,ingress", "--keep-cluster", "--ingress-port", str(port),
                   "--output-dir", str(run), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    from runbook.services import get, load_services

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
    assert [c.split()[2] for c in helm if c.startswith("upgrade")] == ["traefik", "foo", "bar"]
    assert all("--namespace runbook-run" in c for c in helm if c.startswith(("upgrade", "uninstall")))
    assert [c.split()[1] for c in helm if c.startswith("uninstall")] == ["foo", "bar", "traefik"]
    assert json.loads((run / "report" / "result.json").read_text())["status"] == "passed"
    assert not (state / "routes.json").exists() or json.loads((state / "routes.json").read_text()) == {}
