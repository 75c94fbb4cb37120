"""The sampler's cluster sources, all read through the Kubernetes API server (no port-forward).

- Traefik's metrics: each Traefik pod's metrics port through the pod proxy,
  /api/v1/namespaces/NS/pods/POD:9100/proxy/metrics.
- Pods' CPU and memory: the kubelet's summary through the node proxy,
  /api/v1/nodes/NODE/proxy/stats/summary (no metrics-server needed).
- Deployments, autoscalers and the pods' limits: the apps, autoscaling/v2 and core lists.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from runbook.load import prometheus_text
from runbook.core.errors import SampleFailed
from runbook.load.sampler import READ_TIMEOUT_S, Reading, Sampling
from runbook.core.services import Service

TRAEFIK_SELECTOR = "app.kubernetes.io/name=traefik"
TRAEFIK_METRICS_PORT = 9100  # the chart's metrics entry point
_QUANTITY = re.compile(r"^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_SCALE = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(text: object) -> float | None:
    """A Kubernetes quantity ("500m", "64Mi", "1") as a number; None when absent or not understood."""
    match = _QUANTITY.match(str(text)) if text is not None else None
    return float(match[1]) * _SCALE[match[2]] if match else None


class KubeGet:
    """GET a path of the API server with the run's kubeconfig; SampleFailed unless it answers 200 in time."""

    def __init__(self, api_client: Any, timeout: float = READ_TIMEOUT_S) -> None:
        import copy

        from kubernetes.client import ApiClient

        # Its own client without urllib3's three retries: a slow answer must cost one timeout, not four.
        configuration = copy.copy(api_client.configuration)
        configuration.retries = False
        self.api, self.timeout = ApiClient(configuration), timeout

    def raw(self, path: str) -> bytes:
        method, url, headers, body, post = self.api.param_serialize(
            "GET", path, header_params={"Accept": "*/*"}, auth_settings=["BearerToken"])
        answer = self.api.call_api(method, url, headers, body, post, _request_timeout=self.timeout)
        data = answer.read()
        if answer.status != 200:
            raise SampleFailed(f"GET {path}: HTTP {answer.status} {data[:200].decode(errors='replace').strip()}")
        return bytes(data)

    def json(self, path: str) -> Any:
        return json.loads(self.raw(path))


def _running(pods: dict[str, Any]) -> list[str]:
    return [p["metadata"]["name"] for p in pods.get("items", []) if (p.get("status") or {}).get("phase") == "Running"]


class TraefikMetrics:
    """Traefik's per-service counters, summed over its running pods (a pod that does not answer: missing)."""

    name = "traefik"

    def __init__(self, get: KubeGet, namespace: str) -> None:
        self.get, self.namespace = get, namespace

    def read(self) -> Reading:
        selector = urllib.parse.quote(TRAEFIK_SELECTOR, safe="")
        pods = _running(self.get.json(f"/api/v1/namespaces/{self.namespace}/pods?labelSelector={selector}"))
        if not pods:
            raise SampleFailed(f"no running Traefik pod in namespace {self.namespace}")
        raw = {f"{pod}.prom": self.get.raw(f"/api/v1/namespaces/{self.namespace}/pods/{pod}:{TRAEFIK_METRICS_PORT}/proxy/metrics")
               for pod in pods}
        services = prometheus_text.parse([data.decode() for data in raw.values()])
        return Reading({"services": {k: v.as_dict() for k, v in services.items()}, "pods": pods}, raw)


class KubeletSummary:
    """Each pod's CPU (cores) and working-set memory in the given namespaces, from the kubelets of their nodes.

    Only the nodes that hold the run's pods are asked, and only for CPU and memory: on a large cluster a
    summary of every node every 2 s would cost the API server and the kubelets more than the run is worth.
    """

    name = "pods"

    def __init__(self, get: KubeGet, namespaces: list[str]) -> None:
        self.get, self.namespaces = get, namespaces

    def read(self) -> Reading:
        nodes = sorted({(p.get("spec") or {}).get("nodeName") for ns in self.namespaces
                        for p in self.get.json(f"/api/v1/namespaces/{ns}/pods").get("items", [])} - {None, ""})
        raw, pods = {}, {}
        for node in nodes:
            raw[f"{node}.json"] = self.get.raw(f"/api/v1/nodes/{node}/proxy/stats/summary?only_cpu_and_memory=true")
            for pod in json.loads(raw[f"{node}.json"]).get("pods", []):
                ref = pod.get("podRef") or {}
                if ref.get("namespace") not in self.namespaces:
                    continue
                cpu, memory = (pod.get("cpu") or {}).get("usageNanoCores"), (pod.get("memory") or {}).get("workingSetBytes")
                pods[f"{ref['namespace']}/{ref['name']}"] = {
                    "node": node, "cpu_cores": None if cpu is None else cpu / 1e9, "memory_bytes": memory}
        return Reading({"pods": pods, "nodes": nodes}, raw)


def workload_of(pod_name: str) -> str:
    """A Deployment's pod is named <deployment>-<replicaset hash>-<pod hash>."""
    return pod_name.rsplit("-", 2)[0] if pod_name.count("-") >= 2 else pod_name


class Workloads:
    """Deployments' desired and ready replicas, autoscalers' current and desired replicas and CPU, pods' limits."""

    name = "workloads"

    def __init__(self, get: KubeGet, namespaces: list[str]) -> None:
        self.get, self.namespaces = get, namespaces

    def read(self) -> Reading:
        deployments, autoscalers, limits, raw = {}, {}, {}, {}
        for ns in self.namespaces:
            answers = {kind: self.get.raw(path) for kind, path in (
                ("deployments", f"/apis/apps/v1/namespaces/{ns}/deployments"),
                ("hpa", f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers"),
                ("pods", f"/api/v1/namespaces/{ns}/pods"))}
            raw.update({f"{ns}-{kind}.json": data for kind, data in answers.items()})
            for d in json.loads(answers["deployments"]).get("items", []):
                spec, status = d.get("spec") or {}, d.get("status") or {}
                deployments[f"{ns}/{d['metadata']['name']}"] = {
                    "desired": spec.get("replicas"), "ready": status.get("readyReplicas", 0)}
            for h in json.loads(answers["hpa"]).get("items", []):
                spec, status = h.get("spec") or {}, h.get("status") or {}
                cpu = next((m["resource"]["current"].get("averageUtilization") for m in status.get("currentMetrics") or []
                            if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"
                            and "current" in m["resource"]), None)
                autoscalers[f"{ns}/{h['metadata']['name']}"] = {
                    "deployment": f"{ns}/{(spec.get('scaleTargetRef') or {}).get('name', '')}",
                    "current": status.get("currentReplicas"), "desired": status.get("desiredReplicas"),
                    "min": spec.get("minReplicas"), "max": spec.get("maxReplicas"), "cpu_percent": cpu,
                    "able_to_scale": _condition(status, "ScalingActive")}
            for p in json.loads(answers["pods"]).get("items", []):
                containers = (p.get("spec") or {}).get("containers") or []
                cpu = [quantity(((c.get("resources") or {}).get("limits") or {}).get("cpu")) for c in containers]
                memory = [quantity(((c.get("resources") or {}).get("limits") or {}).get("memory")) for c in containers]
                limits[f"{ns}/{p['metadata']['name']}"] = {
                    "deployment": f"{ns}/{workload_of(p['metadata']['name'])}",
                    # a pod's limit is its containers' sum, and only if every container has one
                    "cpu_cores": sum(cpu) if cpu and None not in cpu else None,  # type: ignore[arg-type]
                    "memory_bytes": sum(memory) if memory and None not in memory else None}  # type: ignore[arg-type]
        return Reading({"deployments": deployments, "autoscalers": autoscalers, "limits": limits}, raw)


def _condition(status: dict[str, Any], kind: str) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return f"{condition.get('status')}: {condition.get('reason', '')}"
    return None


def traefik_service_label(namespace: str, ingress_route: str, match: str) -> str:
    """How Traefik names the service of an IngressRoute route with one Kubernetes service, in its metrics.

    <namespace>-<IngressRoute name>-<the first 10 bytes of sha256(the route's match), in hex>@kubernetescrd,
    every run of characters other than letters and digits made one '-' (Traefik's crd provider:
    makeServiceKey, makeID, provider.Normalize). Only the children of a weighted route with several
    services are named <namespace>-<service>-<port>.
    """
    key = f"{namespace}-{ingress_route}-{hashlib.sha256(match.encode()).hexdigest()[:20]}"
    return "-".join(part for part in re.split(r"[^0-9A-Za-z]+", key) if part) + "@kubernetescrd"


def chart_route(release: str, values_file: str, host: str) -> tuple[str, str]:
    """(IngressRoute name, match) as the echo chart renders them: the release (or fullnameOverride), Host(`host`).

    host is the one the release was installed with (a baseline's is set on the command line, not in its values).
    """
    values = (yaml.safe_load(Path(values_file).read_text()) if values_file and Path(values_file).is_file() else None) or {}
    name = str(values.get("fullnameOverride") or release)[:63].rstrip("-")
    return name, f"Host(`{host}`)"


def installed_route_labels(get: KubeGet, namespace: str, release: str) -> list[str]:
    """Traefik's labels for the single-service routes of the IngressRoutes a release installed (read from the API)."""
    found = get.json(f"/apis/traefik.io/v1alpha1/namespaces/{namespace}/ingressroutes"
                     f"?labelSelector=app.kubernetes.io%2Finstance%3D{release}")
    return [traefik_service_label(namespace, item["metadata"]["name"], route["match"])
            for item in found.get("items") or [] for route in (item.get("spec") or {}).get("routes") or []
            if len(route.get("services") or []) == 1 and route.get("match")]


def service_labels(get: KubeGet, releases: list[tuple[str, str, Service, str]], notes: list[str]) -> dict[str, dict[str, str]]:
    """Each release's Traefik label(s): from its installed IngressRoute, else as the chart renders it (and a note why)."""
    labels = {}
    for ns, release, service, side in releases:
        try:
            installed = installed_route_labels(get, ns, release)
        except (SampleFailed, OSError, ValueError) as exc:
            installed = []
            notes.append(f"the IngressRoute of {ns}/{release} could not be read ({exc}); its Traefik label is "
                         "taken from the chart's values")
        for label in installed or [traefik_service_label(ns, *chart_route(release, service.values_file, service.host))]:
            labels[label] = {"service": service.name, "side": side}
    return labels


def cluster_sampling(api_client: Any, traefik_namespace: str, namespaces: list[str],
                     releases: list[tuple[str, str, Service, str]], notes: list[str] | None = None) -> Sampling:
    """The sampler's plan on a cluster; releases are (namespace, release, service, side)."""
    get = KubeGet(api_client)
    notes = list(notes or [])
    labels = service_labels(get, releases, notes)
    workloads = {f"{ns}/{release}": {"service": s.name, "side": side} for ns, release, s, side in releases}
    return Sampling(
        sources=[TraefikMetrics(get, traefik_namespace), KubeletSummary(get, namespaces), Workloads(get, namespaces)],
        labels=labels, workloads=workloads, notes=notes,
    )
