"""The kind and kubeconfig targets at their seams.

No cluster runs here. The command wrapper is replaced by a recorder that answers
like kind, helm and kubectl would; the kubernetes-client waits read a local fake
API server; the port-forward is stood in for by the local ingress process. These
tests check what the targets ask for, in which order, with which timeouts, and
how they react when something fails. They do not show that a cluster works.
"""

import json
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, free_port
from runbook import stages
from runbook.core import commands
from runbook.targets import kubewait
from runbook.core.config import RunConfig
from runbook.core.errors import CommandError, ConfigError, RunbookError
from runbook.core.errors import PortForwardDied
from runbook.core.rundir import RunFolder
from runbook.core.services import get, load_services
from runbook.targets.cluster import KindTarget
from runbook.targets.kubeconfig import KubeconfigTarget
from runbook.targets.tools import Tool, Toolbox
from support.fake_kube import FakeKube, deployment, node

KIND, HELM, KUBECTL = "/fake/kind", "/fake/helm", "/fake/kubectl"


def toolbox(helm_major=4):
    return Toolbox({
        "kind": Tool("kind", KIND, (0, 33, 0)),
        "helm": Tool("helm", HELM, (helm_major, 1, 4) if helm_major == 4 else (3, 17, 3)),
        "kubectl": Tool("kubectl", KUBECTL, (1, 35, 1)),
    })


class Recorder:
    """Stands in for commands.run: records (argv, timeout) and answers by rules."""

    def __init__(self):
        self.calls = []
        self.rules = []

    def on(self, *prefix, result=None, effect=None):
        self.rules.append((list(prefix), result, effect))
        return self

    def __call__(self, argv, *, timeout, check=True, **_kwargs):
        self.calls.append((list(argv), timeout))
        for prefix, result, effect in reversed(self.rules):
            if argv[: len(prefix)] == prefix:
                if effect is not None:
                    effect(argv)
                if isinstance(result, Exception):
                    raise result
                out = result or ""
                return commands.Result(list(argv), 0, out, "")
        return commands.Result(list(argv), 0, "", "")

    def commands(self):
        return [" ".join(argv) for argv, _ in self.calls]

    def find(self, *words):
        return [(argv, timeout) for argv, timeout in self.calls if all(w in argv for w in words)]


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    monkeypatch.setattr(kubewait, "POLL_S", 0.01)


@pytest.fixture
def fake_api():
    with FakeKube() as fake:
        fake.node_states = [[node("runbook-control-plane", "False")], [node("runbook-control-plane"), node("runbook-worker")]]
        for name in ("foo", "bar"):
            fake.deployments[("runbook", name)] = [deployment(name, "runbook", updated=1, available=1),
                                                   deployment(name, "runbook")]
        yield fake


def kind_target(tmp_path, recorder, port=None, helm_major=4, **params):
    port = port or free_port()  # provision checks that the port is free: never the default 8080
    config = RunConfig.from_parameters(target="kind", run_dir=str(tmp_path / "run"), ingress_port=port, **params)
    folder = RunFolder(config.run_path).create()
    return KindTarget(config, folder, load_services(config.services), tools=toolbox(helm_major), runner=recorder)


def write_kubeconfig_on_create(fake):
    def effect(argv):
        fake.write_kubeconfig(Path(argv[argv.index("--kubeconfig") + 1]))
    return effect


def test_provision_creates_the_cluster_then_waits_for_both_nodes(tmp_path, fake_api):
    recorder = Recorder().on(KIND, "get", "clusters", result="other\n")
    recorder.on(KIND, "create", "cluster", effect=write_kubeconfig_on_create(fake_api))
    target = kind_target(tmp_path, recorder)
    outcome = target.provision()
    run = tmp_path / "run"
    assert recorder.calls == [
        ([KIND, "get", "clusters"], 60),
        ([KIND, "create", "cluster", "--name", "runbook", "--config", str(run / "target" / "kind-config.yaml"),
          "--kubeconfig", str(run / "target" / "kubeconfig")], 900),
    ]
    assert "--wait" not in recorder.calls[1][0]  # it waits for the control plane only, and exits 0 on timeout
    assert sum(r.startswith("/api/v1/nodes") for r in fake_api.requests) == 2
    assert "created the kind cluster runbook" in outcome.summary
    assert "runbook-control-plane, runbook-worker" in outcome.details[0]
    rendered = yaml.safe_load((run / "target" / "kind-config.yaml").read_text())
    assert rendered["nodes"][1]["extraPortMappings"][0]["hostPort"] == target.config.ingress_port
    state = json.loads((run / "target" / "cluster.json").read_text())
    assert state["context"] == "kind-runbook" and state["cluster"] == "runbook"


def test_provision_reuses_an_existing_cluster(tmp_path, fake_api):
    kubeconfig_text = json.dumps({"placeholder": True})
    recorder = Recorder().on(KIND, "get", "clusters", result="runbook\n")

    recorder.on(KIND, "get", "kubeconfig", result=kubeconfig_text)
    target = kind_target(tmp_path, recorder)
    # The kubeconfig kind prints is written to the run folder; point it at the fake API for the wait.
    original = target.kube.api_client
    target.kube.api_client = lambda: (fake_api.write_kubeconfig(Path(target.kubeconfig_path())), original())[1]
    outcome = target.provision()
    assert [c for c, _ in recorder.calls] == [[KIND, "get", "clusters"], [KIND, "get", "kubeconfig", "--name", "runbook"]]
    assert "reused the existing kind cluster runbook" in outcome.summary
    assert oct(Path(target.kubeconfig_path()).stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(("helm_major", "wait"), [(4, "--wait=legacy"), (3, "--wait")])
def test_ingress_installs_the_pinned_chart_and_waits_until_traefik_serves(tmp_path, ingress, helm_major, wait):
    # The local ingress answers 404 for a host it does not route, as Traefik does once it serves.
    recorder = Recorder()
    target = kind_target(tmp_path, recorder, port=ingress, helm_major=helm_major)
    outcome = target.install_ingress()
    ((argv, timeout), (metrics_argv, metrics_timeout)) = recorder.calls
    assert argv == [HELM, "upgrade", "--install", "traefik", "traefik", "--namespace", "traefik", "--create-namespace",
                    "--values", str(ROOT / "k8s" / "traefik" / "values.yaml"),
                    "--repo", "https://traefik.github.io/charts", "--version", "41.3.0",
                    wait, "--timeout", "300s",
                    "--kubeconfig", str(tmp_path / "run" / "target" / "kubeconfig"), "--kube-context", "kind-runbook"]
    assert timeout > 300
    # Helm 4's default watcher can hold a ready Deployment "InProgress" (helm/helm#31824), and a rollback
    # flag uninstalls a failed first install with the evidence of why it failed.
    assert not {"--atomic", "--rollback-on-failure"} & set(argv)
    assert "serving" in outcome.summary and "HTTP 404" in outcome.details[1]
    # Then metrics-server, pinned, with the flag kind's self-signed kubelet certificates need.
    assert metrics_argv == [HELM, "upgrade", "--install", "metrics-server", "metrics-server", "--namespace", "kube-system",
                            "--create-namespace", "--values", str(ROOT / "k8s" / "metrics-server" / "values.yaml"),
                            "--repo", "https://kubernetes-sigs.github.io/metrics-server/", "--version", "3.13.1",
                            wait, "--timeout", "180s",
                            "--kubeconfig", str(tmp_path / "run" / "target" / "kubeconfig"), "--kube-context", "kind-runbook"]
    assert metrics_timeout > 180
    assert yaml.safe_load((ROOT / "k8s" / "metrics-server" / "values.yaml").read_text()) == {"args": ["--kubelet-insecure-tls"]}
    assert "metrics-server chart 3.13.1 installed in kube-system (the autoscaler can act)" in outcome.details


def test_no_metrics_server_installs_only_traefik_and_says_so(tmp_path, ingress):
    recorder = Recorder()
    outcome = kind_target(tmp_path, recorder, port=ingress, metrics_server=False).install_ingress()
    assert [argv[3] for argv, _ in recorder.calls] == ["traefik"]
    assert "--no-metrics-server: metrics-server not installed, so the autoscaler cannot act" in outcome.details


def test_a_metrics_server_that_fails_is_said_not_fatal(tmp_path, ingress):
    failure = CommandError([HELM, "upgrade", "--install", "metrics-server"], 1, "Error: context deadline exceeded")
    recorder = Recorder().on(HELM, "upgrade", "--install", "metrics-server", result=failure)
    outcome = kind_target(tmp_path, recorder, port=ingress).install_ingress()
    note = [d for d in outcome.details if d.startswith("metrics-server")]
    assert note == ["metrics-server chart 3.13.1 did not become ready, so the autoscaler cannot act: "
                    "Error: context deadline exceeded"]
    assert json.loads((tmp_path / "run" / "target" / "cluster.json").read_text())["metrics_api"] == note[0]


def test_deploy_installs_each_service_then_confirms_rollouts_and_runs_helm_test(tmp_path, fake_api):
    recorder = Recorder().on(KUBECTL, result="customresourcedefinition.apiextensions.k8s.io/ingressroutes.traefik.io\n")
    target = kind_target(tmp_path, recorder)
    fake_api.write_kubeconfig(Path(target.kubeconfig_path()))
    outcome = target.deploy()
    cmds = recorder.commands()
    chart = str(ROOT / "k8s" / "charts" / "echo")
    assert cmds[0].startswith(f"{KUBECTL} --kubeconfig") and "get crd ingressroutes.traefik.io" in cmds[0]
    assert cmds[1].startswith(f"{HELM} upgrade --install foo {chart} --namespace runbook --create-namespace --values "
                              f"{ROOT / 'k8s' / 'deployment' / 'foo' / 'values.yaml'} --wait=legacy --timeout 300s --kubeconfig")
    assert cmds[2].startswith(f"{HELM} upgrade --install bar {chart}")
    assert cmds[3].startswith(f"{HELM} test foo --namespace runbook --timeout 120s")
    assert cmds[4].startswith(f"{HELM} test bar --namespace runbook")
    rollout_reads = [r for r in fake_api.requests if "/deployments/" in r]
    assert sum("/foo" in r for r in rollout_reads) == 2 and sum("/bar" in r for r in rollout_reads) == 2
    assert all(timeout for _, timeout in recorder.calls)
    assert "foo: rolled out, 2 ready; helm test passed" in outcome.details[0]


def test_deploy_before_traefik_is_a_clear_error(tmp_path):
    recorder = Recorder().on(KUBECTL, result="")
    with pytest.raises(RunbookError, match="IngressRoute CRD is not in the cluster: run the ingress stage before deploy"):
        kind_target(tmp_path, recorder).deploy()
    assert not recorder.find("upgrade")


def test_a_failing_command_writes_diagnostics_and_teardown_deletes_the_cluster(tmp_path):
    failure = CommandError([HELM, "upgrade"], 1, "Error: INSTALLATION FAILED: context deadline exceeded")
    recorder = Recorder().on(HELM, "upgrade", result=failure)
    recorder.on(KUBECTL, "--kubeconfig", str(tmp_path / "run" / "target" / "kubeconfig"), "--context", "kind-runbook",
                "get", "pods", "--all-namespaces", "-o", "json",
                result=json.dumps({"items": [
                    {"metadata": {"namespace": "traefik", "name": "traefik-abc"},
                     "status": {"phase": "Pending", "containerStatuses": [{"ready": False, "restartCount": 2}]}},
                    {"metadata": {"namespace": "kube-system", "name": "fine"},
                     "status": {"phase": "Running", "containerStatuses": [{"ready": True, "restartCount": 0}]}}]}))
    recorder.on(KIND, "get", "clusters", result="runbook\n")
    target = kind_target(tmp_path, recorder)
    Path(target.kubeconfig_path()).write_text("{}")
    with pytest.raises(CommandError, match="context deadline exceeded"):
        with stages._diagnosed(target):
            target.install_ingress()
    diagnostics = tmp_path / "run" / "diagnostics"
    for name in ["nodes.txt", "pods.txt", "events.txt", "helm-releases.txt", "describe-traefik-traefik-abc.txt",
                 "logs-traefik-traefik-abc.txt", "logs-previous-traefik-traefik-abc.txt"]:
        assert (diagnostics / name).is_file(), name
    assert not (diagnostics / "describe-kube-system-fine.txt").exists()
    assert recorder.find("export", "logs", str(diagnostics / "kind-logs"))
    # By creation time: events.k8s.io events (FailedScheduling) have no lastTimestamp and would sort first.
    assert recorder.find("get", "events", "--all-namespaces", "--sort-by=.metadata.creationTimestamp")
    assert not [c for c in recorder.commands() if "lastTimestamp" in c]
    outcome = target.teardown()
    assert recorder.calls[-1] == ([KIND, "delete", "cluster", "--name", "runbook"], 300)
    assert "deleted kind cluster runbook" in outcome.summary


def test_keep_cluster_deletes_nothing(tmp_path):
    recorder = Recorder()
    outcome = kind_target(tmp_path, recorder, keep_cluster=True).teardown()
    assert recorder.calls == [] and "stays up" in outcome.summary


def stand_in_forward(port):
    """What the fake starter launches instead of kubectl port-forward: a real listener on the port."""
    started = []

    def starter(argv, *, log_path):
        started.append(list(argv))
        return commands.Background([sys.executable, "-m", "runbook.targets.standin", f"--listen=127.0.0.1:{port}",
                                    "--route=foo.localhost=foo"], log_path)
    return starter, started


def test_port_forward_mode_forwards_svc_traefik_for_the_block(tmp_path, port):
    target = kind_target(tmp_path, Recorder(), port=port, ingress_mode="port-forward")
    starter, started = stand_in_forward(port)
    target.kube.starter = starter
    foo = target.services[0]
    with target.endpoint() as (host, forwarded):
        assert (host, forwarded) == ("127.0.0.1", port)
        assert get(host, forwarded, foo, timeout=5).body == "foo\n"
    assert started[0][started[0].index("port-forward"):] == [
        "port-forward", "--address", "127.0.0.1", "--namespace", "traefik", "svc/traefik", f"{port}:80"]
    with pytest.raises(OSError):
        get("127.0.0.1", port, foo, timeout=2)  # stopped after the block


def test_a_forward_that_dies_during_the_stage_fails_it(tmp_path, port):
    target = kind_target(tmp_path, Recorder(), port=port, ingress_mode="port-forward")
    forwards = []

    def starter(argv, *, log_path):
        forwards.append(commands.Background([sys.executable, "-m", "runbook.targets.standin", f"--listen=127.0.0.1:{port}"], log_path))
        return forwards[-1]

    target.kube.starter = starter
    with pytest.raises(PortForwardDied, match="died during the stage.*not trustworthy"):
        with target.endpoint():
            forwards[0].process.kill()
            forwards[0].process.wait()


def test_a_forward_that_cannot_start_says_why(tmp_path, port):
    target = kind_target(tmp_path, Recorder(), port=port, ingress_mode="port-forward")
    target.kube.starter = lambda argv, *, log_path: commands.Background(
        [sys.executable, "-c", "import sys; print('error: services \"traefik\" not found'); sys.exit(1)"], log_path)
    with pytest.raises(PortForwardDied, match='exited with code 1.*services "traefik" not found'):
        with target.endpoint():
            pass


def kubeconfig_target(tmp_path, recorder, can_create_crds=True, **params):
    config = RunConfig.from_parameters(target="kubeconfig", run_dir=str(tmp_path / "run-42"), **params)
    context = ["--context", params["context"]] if params.get("context") else []
    recorder.on(KUBECTL, *context, "auth", "can-i", result="yes" if can_create_crds else "no")
    folder = RunFolder(config.run_path).create()
    return KubeconfigTarget(config, folder, load_services(config.services), tools=toolbox(), runner=recorder)


def test_kubeconfig_target_creates_and_removes_its_namespace(tmp_path, monkeypatch):
    kubeconfig = tmp_path / "kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    recorder = Recorder().on(KUBECTL, "--context", "staging", "version",
                             result=json.dumps({"serverVersion": {"gitVersion": "v1.34.2"}}))
    target = kubeconfig_target(tmp_path, recorder, context="staging")
    outcome = target.provision()
    prefix = [KUBECTL, "--context", "staging"]  # kubectl reads $KUBECONFIG itself
    assert [c for c, _ in recorder.calls] == [
        prefix + ["version", "-o", "json"],
        # Traefik's CRDs are not there: the first install creates them, which these credentials may.
        prefix + ["get", "crd", "ingressroutes.traefik.io", "--ignore-not-found", "-o", "name"],
        prefix + ["auth", "can-i", "create", "customresourcedefinitions.apiextensions.k8s.io"],
        prefix + ["get", "namespace", "runbook-run-42", "--ignore-not-found", "-o", "name"],
        prefix + ["create", "namespace", "runbook-run-42"],
        prefix + ["label", "namespace", "runbook-run-42", "app.kubernetes.io/managed-by=runbook", "runbook/run=run-42"],
    ]
    assert "Kubernetes v1.34.2" in outcome.summary
    assert target.uses_port_forward()
    recorder.calls.clear()
    target.teardown()
    cmds = recorder.commands()
    assert cmds[0].startswith(f"{HELM} uninstall foo --namespace runbook-run-42 --ignore-not-found --wait")
    assert cmds[1].startswith(f"{HELM} uninstall bar --namespace runbook-run-42")
    assert cmds[2].startswith(f"{HELM} uninstall traefik --namespace runbook-run-42")
    assert cmds[3] == " ".join(prefix + ["delete", "namespace", "runbook-run-42", "--wait=true", "--timeout=180s"])


def test_kubeconfig_target_keeps_a_namespace_it_did_not_create(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    recorder = Recorder().on(KUBECTL, "get", "namespace", result="namespace/team-a\n")
    target = kubeconfig_target(tmp_path, recorder, namespace="team-a")
    target.provision()
    assert not recorder.find("create", "namespace")
    assert [c for c, _ in recorder.calls][0] == [KUBECTL, "version", "-o", "json"]  # current context, default kubeconfig
    outcome = target.teardown()
    assert not recorder.find("delete", "namespace")
    assert "existed before the run and stays" in outcome.details[-1]


def test_kubeconfig_target_confines_traefik_to_the_run_namespace(tmp_path, monkeypatch, port):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    recorder = Recorder()
    target = kubeconfig_target(tmp_path, recorder, ingress_port=port)
    starter, started = stand_in_forward(port)
    target.kube.starter = starter
    outcome = target.install_ingress()
    # Nothing cluster-wide: whether Traefik's CRDs exist, Traefik in the run's namespace, then a look at the metrics API.
    (crds, _), (argv, _), (check, _) = recorder.calls
    assert crds == [KUBECTL, "get", "crd", "ingressroutes.traefik.io", "--ignore-not-found", "-o", "name"]
    assert "--skip-crds" not in argv  # none yet: the first install brings them
    assert check == [KUBECTL, "get", "apiservice", "v1beta1.metrics.k8s.io", "--ignore-not-found", "-o", "name"]
    assert any("has no metrics API (v1beta1.metrics.k8s.io, e.g. metrics-server): the autoscaler cannot act" in d
               for d in outcome.details)
    values = [argv[i + 1] for i, word in enumerate(argv) if word == "--values"]
    assert [Path(v).name for v in values] == ["values.yaml", "values-port-forward.yaml", "values-kubeconfig.yaml"]
    assert argv[argv.index("--set") + 1] == "providers.kubernetesCRD.namespaces={runbook-run-42}"
    assert argv[argv.index("--namespace") + 1] == "runbook-run-42"
    assert "svc/traefik" in started[0] and started[0][started[0].index("--namespace") + 1] == "runbook-run-42"
    # Namespaced RBAC: the chart then renders a Role and RoleBinding per watched namespace and no ClusterRole
    # (traefik-helm-chart v41.3.0, templates/rbac/; rendered with Helm 3 and 4 when this was written).
    kubeconfig_values = yaml.safe_load((ROOT / "k8s" / "traefik" / "values-kubeconfig.yaml").read_text())
    assert kubeconfig_values["rbac"] == {"namespaced": True} and kubeconfig_values["ingressClass"] == {"enabled": False}
    assert kubeconfig_values["providers"]["kubernetesIngress"]["enabled"] is False


def test_traefik_that_never_answers_says_where_to_look(tmp_path, port, monkeypatch):
    from runbook.targets import cluster

    monkeypatch.setattr(cluster, "SERVING_TIMEOUT_S", 1)
    target = kind_target(tmp_path, Recorder(), port=port)
    with pytest.raises(RunbookError, match=f"waiting for Traefik to answer on 127.0.0.1:{port}.*kind port mapping to NodePort 30080"):
        target.install_ingress()


def test_a_taken_ingress_port_is_reported_before_kind_creates_anything(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        recorder = Recorder()
        with pytest.raises(RunbookError, match=f"127.0.0.1:{port} is already in use.*--ingress-port"):
            kind_target(tmp_path, recorder, port=port).provision()
    assert not recorder.find("create")


def test_a_failed_install_is_left_for_diagnostics_and_removed_by_teardown(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    failure = CommandError([HELM, "upgrade"], 1, "Error: UPGRADE FAILED: resource Deployment/foo not ready")
    recorder = Recorder().on(HELM, "upgrade", "--install", "foo", result=failure)
    recorder.on(KUBECTL, "get", "crd", result="customresourcedefinition.apiextensions.k8s.io/ingressroutes.traefik.io\n")
    recorder.on(KUBECTL, "get", "namespace", result="")
    target = kubeconfig_target(tmp_path, recorder)
    target.provision()
    with pytest.raises(CommandError, match="not ready"):
        with stages._diagnosed(target):
            target.deploy()
    # Nothing between the failed install and the diagnostics removed the release.
    assert not recorder.find("uninstall") and not recorder.find("rollback")
    assert recorder.find(HELM, "list", "--all-namespaces") and recorder.find("describe", "nodes")
    diagnostics = tmp_path / "run-42" / "diagnostics"
    assert (diagnostics / "helm-releases.txt").is_file() and (diagnostics / "all-runbook-run-42.txt").is_file()
    before = len(recorder.calls)
    target.teardown()
    removed = [" ".join(argv) for argv, _ in recorder.calls[before:]]
    assert removed[0].startswith(f"{HELM} uninstall foo --namespace runbook-run-42")
    assert any(c.startswith(f"{KUBECTL} delete namespace runbook-run-42") for c in removed)


def test_a_kubeconfig_list_is_left_to_the_tools(tmp_path, monkeypatch, fake_api):
    fake_api.write_kubeconfig(tmp_path / "b.yaml")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'a.yaml'}:{tmp_path / 'b.yaml'}")
    recorder = Recorder().on(KUBECTL, "get", "crd", result="customresourcedefinition.apiextensions.k8s.io/ingressroutes.traefik.io\n")
    target = kubeconfig_target(tmp_path, recorder)
    fake_api.deployments[(target.namespace, "foo")] = [deployment("foo", target.namespace)]
    fake_api.deployments[(target.namespace, "bar")] = [deployment("bar", target.namespace)]
    target.provision()
    target.deploy()  # the rollout waits read the same list through the kubernetes client
    target.teardown()
    assert recorder.calls and all("--kubeconfig" not in argv for argv, _ in recorder.calls)
    assert any(f"/namespaces/{target.namespace}/deployments/foo" in r for r in fake_api.requests)


def with_baseline(target):
    """The run's baseline as provision prepares it: k8s/ of HEAD taken from git into the run folder."""
    from runbook.targets import baseline

    return baseline.prepare(target.config, target.folder)


def test_the_baseline_is_deployed_beside_the_candidate_from_its_own_chart(tmp_path, fake_api):
    recorder = Recorder().on(KUBECTL, result="customresourcedefinition.apiextensions.k8s.io/ingressroutes.traefik.io\n")
    target = kind_target(tmp_path, recorder, baseline="HEAD")
    prepared = with_baseline(target)
    for name in ("foo", "bar"):
        fake_api.deployments[("runbook-baseline", f"{name}-baseline")] = [deployment(f"{name}-baseline", "runbook-baseline")]
    fake_api.write_kubeconfig(Path(target.kubeconfig_path()))
    outcome = target.deploy()
    extracted = tmp_path / "run" / "baseline" / "k8s"
    upgrades = [argv for argv, _ in recorder.calls if "upgrade" in argv]
    assert [argv[3] for argv in upgrades] == ["foo", "bar", "foo-baseline", "bar-baseline"]
    foo_base = upgrades[2]
    assert foo_base[4] == str(extracted / "charts" / "echo") == str(prepared.chart)
    assert foo_base[foo_base.index("--namespace") + 1] == "runbook-baseline"
    assert foo_base[foo_base.index("--values") + 1] == str(extracted / "deployment" / "foo" / "values.yaml")
    assert foo_base[foo_base.index("--set-string") + 1] == "ingressRoute.host=foo.baseline.localhost"
    assert "--wait=legacy" in foo_base
    assert any("/namespaces/runbook-baseline/deployments/foo-baseline" in r for r in fake_api.requests)
    assert "foo-baseline in namespace runbook-baseline, routed by Host foo.baseline.localhost" in "\n".join(outcome.details)
    assert "runbook-baseline" in target.namespaces()


@pytest.mark.parametrize("required", [False, True])
def test_a_baseline_that_fails_to_deploy_leaves_the_run_without_comparison(tmp_path, fake_api, required):
    from runbook.targets import baseline

    recorder = Recorder().on(KUBECTL, result="customresourcedefinition.apiextensions.k8s.io/ingressroutes.traefik.io\n")
    recorder.on(HELM, "upgrade", "--install", "foo-baseline",
                result=CommandError([HELM, "upgrade"], 1, "Error: chart requires kubeVersion >=9"))
    target = kind_target(tmp_path, recorder, baseline="HEAD", require_baseline=required)
    with_baseline(target)
    fake_api.write_kubeconfig(Path(target.kubeconfig_path()))
    if required:
        with pytest.raises(RunbookError, match="(?s)--require-baseline: the baseline did not deploy.*kubeVersion"):
            target.deploy()
        return
    outcome = target.deploy()
    assert "failed to deploy, no comparison" in outcome.details[-1]
    state = baseline.load(target.folder)
    assert not state.available and "kubeVersion >=9" in state.why and target.baseline_services == []


def test_the_kubeconfig_target_watches_and_removes_the_baseline_namespace(tmp_path, monkeypatch, port):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    recorder = Recorder().on(KUBECTL, "get", "namespace", result="")
    target = kubeconfig_target(tmp_path, recorder, ingress_port=port, baseline="HEAD")
    starter, _ = stand_in_forward(port)
    target.kube.starter = starter
    target.provision()
    target.install_ingress()
    (argv,) = [a for a, _ in recorder.calls if "upgrade" in a]
    assert argv[argv.index("--set") + 1] == "providers.kubernetesCRD.namespaces={runbook-run-42,runbook-run-42-baseline}"
    recorder.calls.clear()
    target.teardown()
    cmds = recorder.commands()
    assert any(c.startswith(f"{HELM} uninstall foo-baseline --namespace runbook-run-42-baseline") for c in cmds)
    assert any(c.startswith(f"{KUBECTL} delete namespace runbook-run-42-baseline") for c in cmds)
    assert cmds[-1].startswith(f"{KUBECTL} delete namespace runbook-run-42 ")


def test_a_baseline_namespace_that_existed_before_the_run_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    # The run's namespace is new; the baseline's (someone else's) is there already.
    recorder = Recorder().on(KUBECTL, "get", "namespace", "runbook-run-42-baseline", result="namespace/runbook-run-42-baseline\n")
    target = kubeconfig_target(tmp_path, recorder, baseline="HEAD")
    outcome = target.provision()
    assert "namespace runbook-run-42-baseline exists already" in outcome.details
    assert recorder.find("create", "namespace", "runbook-run-42") and not recorder.find("create", "namespace", "runbook-run-42-baseline")
    recorder.calls.clear()
    outcome = target.teardown()
    assert not recorder.find("delete", "namespace", "runbook-run-42-baseline")
    assert recorder.find("delete", "namespace", "runbook-run-42")
    assert "namespace runbook-run-42-baseline existed before the run and stays" in outcome.details


def test_credentials_that_cannot_create_traefiks_crds_are_told_before_anything_is_installed(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    recorder = Recorder()
    target = kubeconfig_target(tmp_path, recorder, can_create_crds=False)
    with pytest.raises(RunbookError) as caught:
        target.provision()
    assert "Traefik's CRDs (ingressroutes.traefik.io, ...) are not in this cluster" in str(caught.value)
    assert "helm show crds traefik --repo" in str(caught.value) and "nothing was installed" in str(caught.value)
    assert not recorder.find("create", "namespace")
    # Where the CRDs exist, nobody is asked, and Helm leaves them as they are.
    present = Recorder().on(KUBECTL, "get", "crd", result="customresourcedefinition.apiextensions.k8s.io/ingressroutes.traefik.io\n")
    target = kubeconfig_target(tmp_path, present, can_create_crds=False)
    target.provision()
    assert not present.find("auth", "can-i") and "--skip-crds" in target.traefik_extra_args()


def test_a_namespace_with_no_room_for_the_baselines_suffix_is_refused():
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_parameters(target="kubeconfig", namespace="n" * 55, baseline="HEAD")
    assert caught.value.name == "namespace" and "at most 54 characters" in str(caught.value)
    assert RunConfig.from_parameters(target="kubeconfig", namespace="n" * 54, baseline="HEAD").namespace == "n" * 54
    assert RunConfig.from_parameters(target="kubeconfig", namespace="n" * 63).namespace == "n" * 63
