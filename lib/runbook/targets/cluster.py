"""The Kubernetes targets: a kind cluster the runbook creates, or an existing cluster.

Both install Traefik from its pinned chart, deploy each service from the echo
chart with its own values file, confirm the rollouts, and reach the ingress
either through the kind port mapping (nodeport) or kubectl port-forward.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from runbook.targets import baseline

from runbook.core import commands
from runbook.core.config import RunConfig, project_root
from runbook.core.errors import CommandError, ConfigError, OutOfOrder, RunbookError, TargetUnreachable, WaitTimeout
from runbook.targets.kube import Kube, Runner, Starter
from runbook.targets.kubewait import wait_nodes_ready, wait_rollout
from runbook.core.rundir import RunFolder, read_json, utc_now, write_json
from runbook.load.in_cluster import ClusterLoad
from runbook.load.sampler import Sampling
from runbook.core.services import Service, get
from runbook.targets.addons import METRICS_SERVER_TIMEOUT_S, install_metrics_server, metrics_api_note, traefik_release
from runbook.targets.base import Outcome, Target
from runbook.targets.local import ensure_port_free
from runbook.targets.tools import Toolbox, check_tools
from runbook.core.waiting import wait_for

log = logging.getLogger(__name__)

STATE_FILE = "cluster.json"
TRAEFIK_SERVICE_PORT = 80  # the web entry point's exposed port (Service port)
HELM_TIMEOUT_S = 300
ROLLOUT_TIMEOUT_S = 180
SERVING_TIMEOUT_S = 120
NODES_TIMEOUT_S = 300
PROBE_HOST = "runbook-probe.invalid"  # routed nowhere: Traefik answers 404 once it serves


def traefik_node_port(root: Path | None = None) -> int:
    values = yaml.safe_load(((root or project_root()) / "k8s" / "traefik" / "values.yaml").read_text())
    return int(values["ports"]["web"]["nodePort"])


def render_kind_config(config: RunConfig, root: Path | None = None) -> dict[str, Any]:
    """kind/cluster-config.yaml for this run: hostPort is the ingress port; no mapping in port-forward mode."""
    template = yaml.safe_load(((root or project_root()) / "kind" / "cluster-config.yaml").read_text())
    node_port = traefik_node_port(root)
    for node in template["nodes"]:
        mappings = node.get("extraPortMappings") or []
        for mapping in mappings:
            if mapping["containerPort"] != node_port:
                raise ConfigError(
                    "containerPort", mapping["containerPort"], f"kind/cluster-config.yaml maps containerPort {mapping['containerPort']}, but Traefik's web "
                    f"nodePort is {node_port} (k8s/traefik/values.yaml): they must be equal"
                )
            mapping["hostPort"] = config.ingress_port
            mapping["listenAddress"] = config.ingress_host
        if config.ingress_mode == "port-forward":
            node.pop("extraPortMappings", None)
    return template


class ClusterTarget(Target):
    """What kind and kubeconfig share: Traefik, the echo releases, the endpoint, diagnostics."""

    traefik_namespace = "traefik"
    app_namespace = "runbook"
    extra_traefik_values: tuple[str, ...] = ()

    def __init__(
        self,
        config: RunConfig,
        folder: RunFolder,
        services: list[Service],
        *,
        tools: Toolbox | None = None,
        runner: Runner = commands.run,
        starter: Starter = commands.start,
    ) -> None:
        super().__init__(config, folder, services)
        self.root = project_root()
        self.tools = tools if tools is not None else check_tools(self.name)
        self.kube = Kube(self.tools, kubeconfig=self.kubeconfig_path(), context=self.kube_context(), runner=runner, starter=starter)

    # -- what differs per target -------------------------------------------------
    def kubeconfig_path(self) -> str:
        raise NotImplementedError

    def kube_context(self) -> str:
        raise NotImplementedError

    def uses_port_forward(self) -> bool:
        return self.config.ingress_mode == "port-forward"

    # -- shared --------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.folder.target / STATE_FILE

    def state(self) -> dict[str, Any]:
        return read_json(self.state_path) if self.state_path.is_file() else {}

    def save_state(self, **changes: Any) -> None:
        write_json(self.state_path, {**self.state(), **changes})

    def traefik_values(self) -> list[Path]:
        folder = self.root / "k8s" / "traefik"
        values = [folder / "values.yaml"]
        if self.uses_port_forward():
            values.append(folder / "values-port-forward.yaml")
        values += [folder / name for name in self.extra_traefik_values]
        return values

    def traefik_extra_args(self) -> list[str]:
        return []

    def metrics_api(self) -> str:
        """What the autoscaler gets to read: each target says (and kind installs metrics-server)."""
        return metrics_api_note(self.kube)

    def serving_hint(self) -> str:
        if self.uses_port_forward():
            return "The port-forward is up, so look at the Traefik pod's logs and events in diagnostics/."
        return (f"Nothing from Traefik on {self.config.ingress_host}:{self.config.ingress_port}: the kind port mapping "
                f"to NodePort {traefik_node_port(self.root)} is made when the cluster is created, so a cluster created "
                "another way has none. Delete it, or use --ingress-mode port-forward.")

    def install_ingress(self) -> Outcome:
        release = traefik_release(self.root)
        self.say(f"ingress: helm installs Traefik chart {release['version']} and waits for it (up to {HELM_TIMEOUT_S} s)")
        self.kube.helm_upgrade(
            release["name"], release["chart"], self.traefik_namespace, self.traefik_values(),
            timeout_s=HELM_TIMEOUT_S,
            extra=["--repo", release["repo"], "--version", release["version"], *self.traefik_extra_args()],
        )
        with self.endpoint() as (host, port):
            self.say(f"ingress: waiting for Traefik to answer on {host}:{port} (up to {SERVING_TIMEOUT_S} s)")
            try:
                seen = self.wait_serving(host, port)
            except WaitTimeout as exc:
                raise TargetUnreachable(f"{exc}. {self.serving_hint()}") from None
        metrics = self.metrics_api()
        self.save_state(metrics_api=metrics)
        return Outcome(
            "ingress", True,
            f"Traefik chart {release['version']} installed in namespace {self.traefik_namespace} and serving",
            [f"values: {', '.join(str(p.relative_to(self.root)) for p in self.traefik_values())}",
             f"probe through {host}:{port} with Host {PROBE_HOST}: {seen}",
             f"access mode: {'kubectl port-forward' if self.uses_port_forward() else 'NodePort via the kind port mapping'}",
             metrics],
        )

    def wait_serving(self, host: str, port: int) -> str:
        """Until Traefik itself answers on its web entry point (a 404 for a host it does not route)."""
        probe_service = Service(name="probe", host=PROBE_HOST, expect="")

        def probe() -> tuple[bool, str, str]:
            reply = get(host, port, probe_service, timeout=5)
            seen = f"HTTP {reply.status} {reply.body.strip()[:60]!r}"
            return reply.status == 404, seen, seen

        return wait_for(f"Traefik to answer on {host}:{port}", probe, timeout=SERVING_TIMEOUT_S, interval=1.0)

    def deploy(self) -> Outcome:
        if not self.kube.crd_exists("ingressroutes.traefik.io"):
            raise OutOfOrder("Traefik's IngressRoute CRD is not in the cluster: run the ingress stage before deploy")
        chart = str(self.root / "k8s" / "charts" / "echo")
        for service in self.services:
            self.say(f"deploy: helm installs {service.name} and waits for it (up to {HELM_TIMEOUT_S} s)")
            self.kube.helm_upgrade(service.name, chart, self.app_namespace, [Path(service.values_file)], timeout_s=HELM_TIMEOUT_S)
        api = self.kube.api_client()
        details = []
        for service in self.services:
            self.say(f"deploy: waiting for deployment {self.app_namespace}/{service.name} to roll out (up to {ROLLOUT_TIMEOUT_S} s)")
            ready = wait_rollout(api, self.app_namespace, service.name, timeout=ROLLOUT_TIMEOUT_S)
            self.kube.helm("test", service.name, "--namespace", self.app_namespace, "--timeout", "120s", timeout=180)
            details.append(f"{service.name}: rolled out, {ready} ready; helm test passed; routed by Host {service.host}")
        details += self.deploy_baseline(api)
        return Outcome("deploy", True, f"{len(self.services)} releases of k8s/charts/echo in namespace {self.app_namespace}", details)

    @property
    def baseline_namespace(self) -> str:
        return f"{self.app_namespace}{baseline.NAMESPACE_SUFFIX}"[:63].rstrip("-")

    def deploy_baseline(self, api: Any) -> list[str]:
        """The base commit's chart and values beside the candidate: own namespace, releases and hosts.

        A baseline that fails to deploy leaves the run without a comparison (and says why),
        unless --require-baseline; its failed releases stay for the diagnostics and teardown.
        """
        prepared = baseline.load(self.folder) if self.config.baseline else None
        if prepared is None:
            return []
        if not prepared.available:
            return [f"baseline {prepared.ref}: not deployed: {prepared.why}"]
        chart, namespace = str(prepared.chart), self.baseline_namespace
        try:
            for service in prepared.service_list():
                self.kube.helm_upgrade(service.name + baseline.RELEASE_SUFFIX, chart, namespace, [Path(service.values_file)],
                                       timeout_s=HELM_TIMEOUT_S, extra=["--set-string", f"ingressRoute.host={service.host}"])
            for service in prepared.service_list():
                wait_rollout(api, namespace, service.name + baseline.RELEASE_SUFFIX, timeout=ROLLOUT_TIMEOUT_S)
        except (CommandError, RunbookError) as exc:
            baseline.mark_unavailable(self.folder, f"the baseline did not deploy: {exc}", self.config.require_baseline)
            return [f"baseline {prepared.ref}: failed to deploy, no comparison: {str(exc).splitlines()[0]}"]
        return [f"baseline {prepared.ref} ({prepared.sha[:12]}): {s.name}{baseline.RELEASE_SUFFIX} in namespace "
                f"{namespace}, routed by Host {s.host}" for s in prepared.service_list()]

    @contextlib.contextmanager
    def endpoint(self) -> Iterator[tuple[str, int]]:
        if not self.uses_port_forward():
            yield self.config.ingress_host, self.config.ingress_port
            return
        log_path = self.folder.target / "port-forward.log"
        with self.kube.port_forward(
            self.traefik_namespace, "traefik", self.config.ingress_port, TRAEFIK_SERVICE_PORT, log_path
        ) as address:
            yield address

    def cluster_load(self) -> ClusterLoad:
        """Locust's pods go into the services' namespace and reach Traefik through its Service, as a client there would."""
        return ClusterLoad(self.app_namespace, f"http://traefik.{self.traefik_namespace}.svc.cluster.local:{TRAEFIK_SERVICE_PORT}",
                           self.kube.kubectl)

    def namespaces(self) -> list[str]:
        """The namespaces the run put things in (the baseline's too)."""
        names = [self.traefik_namespace, self.app_namespace] + ([self.baseline_namespace] if self.config.baseline else [])
        return list(dict.fromkeys(names))

    def collect_diagnostics(self) -> list[str]:
        return self.kube.diagnostics(self.folder.diagnostics, self.namespaces())

    def sampling(self) -> Sampling:
        """Traefik's metrics, the kubelets' pod summaries and the workloads, all through the API server."""
        from runbook.load.cluster_sources import cluster_sampling

        releases = [(self.app_namespace, s.name, s, "candidate") for s in self.services]
        releases += [(self.baseline_namespace, s.name + baseline.RELEASE_SUFFIX, s, "baseline") for s in self.baseline_services]
        return cluster_sampling(self.kube.api_client(), self.traefik_namespace, self.namespaces(), releases,
                                notes=[self.state().get("metrics_api") or "the ingress stage recorded nothing about a metrics API"])

    def uninstall_releases(self) -> list[str]:
        releases = [(s.name, self.app_namespace) for s in self.services]
        if self.config.baseline:
            releases += [(s + baseline.RELEASE_SUFFIX, self.baseline_namespace) for s in self.config.services]
        notes = []
        for release, namespace in releases:
            done = self.kube.helm("uninstall", release, "--namespace", namespace, "--ignore-not-found", "--wait",
                                  "--timeout", "120s", timeout=180, check=False)
            notes.append(f"helm uninstall {release}: {'done' if done.returncode == 0 else done.stderr.strip()[-200:]}")
        return notes


class KindTarget(ClusterTarget):
    name = "kind"
    description = "kind: an ephemeral 2-node KinD cluster (control plane + worker) with Traefik"

    def kubeconfig_path(self) -> str:
        return str(self.folder.target / "kubeconfig")

    def kube_context(self) -> str:
        return f"kind-{self.config.cluster_name}"

    def metrics_api(self) -> str:
        if not self.config.metrics_server:
            return "--no-metrics-server: metrics-server not installed, so the autoscaler cannot act"
        self.say(f"ingress: helm installs metrics-server and waits for it (up to {METRICS_SERVER_TIMEOUT_S} s)")
        return install_metrics_server(self.kube, self.root)

    def kind(self, *args: str, timeout: float = 60) -> commands.Result:
        return self.kube.runner([self.tools.path("kind"), *args], timeout=timeout)

    def cluster_exists(self) -> bool:
        clusters = self.kind("get", "clusters", timeout=60).stdout.split()
        return self.config.cluster_name in clusters

    def provision(self) -> Outcome:
        name = self.config.cluster_name
        rendered = render_kind_config(self.config, self.root)
        config_path = self.folder.target / "kind-config.yaml"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(yaml.safe_dump(rendered, sort_keys=False))
        if self.cluster_exists():
            kubeconfig = self.kind("get", "kubeconfig", "--name", name, timeout=60).stdout
            Path(self.kubeconfig_path()).write_text(kubeconfig)
            os.chmod(self.kubeconfig_path(), 0o600)
            action = "reused the existing"
        else:
            if not self.uses_port_forward():
                # The port mapping binds the host port when the node container starts; say so before that fails.
                ensure_port_free(self.config.ingress_host, self.config.ingress_port)
            # No --wait: it covers the control plane only and exits 0 on timeout. Nodes are awaited below.
            self.say(f"provision: kind creates cluster {name} (pulls the node image the first time; up to 15 min)")
            self.kind("create", "cluster", "--name", name, "--config", str(config_path),
                      "--kubeconfig", self.kubeconfig_path(), timeout=900)
            action = "created the"
        self.save_state(cluster=name, kubeconfig=self.kubeconfig_path(), context=self.kube_context(), provisioned=utc_now())
        self.say(f"provision: waiting for {len(rendered['nodes'])} nodes to be Ready (up to {NODES_TIMEOUT_S} s)")
        nodes = wait_nodes_ready(self.kube.api_client(), expected=len(rendered["nodes"]), timeout=NODES_TIMEOUT_S)
        details = [f"nodes Ready: {', '.join(nodes)}", f"kubeconfig: {self.kubeconfig_path()} (context {self.kube_context()})"]
        if not self.uses_port_forward():
            details.append(f"Traefik's NodePort {traefik_node_port(self.root)} is mapped to {self.config.ingress_host}:{self.config.ingress_port}")
        return Outcome("provision", True, f"{action} kind cluster {name}", details)

    def kept(self) -> str:
        return f"kind cluster {self.config.cluster_name} stays up"

    def take_down(self) -> Outcome:
        name = self.config.cluster_name
        if not self.cluster_exists():
            return Outcome("teardown", True, f"kind cluster {name} does not exist; nothing to delete")
        self.kind("delete", "cluster", "--name", name, timeout=300)
        # Its credentials are for a cluster that no longer exists; keep them out of the artifact anyway.
        Path(self.kubeconfig_path()).unlink(missing_ok=True)
        self.save_state(deleted=utc_now())
        return Outcome("teardown", True, f"deleted kind cluster {name}")

    def collect_diagnostics(self) -> list[str]:
        files = []
        if Path(self.kubeconfig_path()).is_file():
            files += super().collect_diagnostics()
        dest = self.folder.diagnostics / "kind-logs"
        try:
            self.kind("export", "logs", str(dest), "--name", self.config.cluster_name, timeout=300)
            files.append(str(dest))
        except CommandError as exc:
            self.folder.diagnostics.mkdir(parents=True, exist_ok=True)
            (self.folder.diagnostics / "kind-export-logs.txt").write_text(f"could not export kind logs: {exc}\n")
        return files
