"""A small HTTP server on 127.0.0.1 that answers the Kubernetes API paths the runbook uses.

It serves scripted objects (nodes, deployments) and records every request, so the
kubernetes-client waits and anything that asks for /version can be tested without a
cluster. It is a test double: it claims nothing about a real cluster.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def node(name: str, ready: str = "True") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady" if ready == "True" else "KubeletNotReady"}]},
    }


def deployment(name: str, namespace: str, *, generation: int = 1, observed: int = 1, replicas: int | None = 2,
               updated: int = 2, total: int = 2, available: int = 2,
               progressing: tuple[str, str] | None = None) -> dict[str, Any]:
    """A Deployment as the API server returns it.

    replicas=None is one whose manifest has no spec.replicas (the HPA owns it): the API server
    defaults it to 1 until the HPA scales it. total > updated models old replicas still terminating;
    progressing=(status, reason) sets the Progressing condition (False, ProgressDeadlineExceeded).
    """
    labels = {"app.kubernetes.io/instance": name}
    conditions = []
    if progressing is not None:
        conditions.append({"type": "Progressing", "status": progressing[0], "reason": progressing[1],
                           "message": f'ReplicaSet "{name}-abc" has timed out progressing.'})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "generation": generation},
        "spec": {
            "replicas": 1 if replicas is None else replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "echo", "image": "x"}]}},
        },
        "status": {"observedGeneration": observed, "replicas": total, "updatedReplicas": updated,
                   "availableReplicas": available, "readyReplicas": available, "conditions": conditions},
    }


def _query(query: str) -> dict[str, str]:
    from urllib.parse import parse_qs

    return {key: values[0] for key, values in parse_qs(query).items()}


def pod(name: str, namespace: str, labels: dict[str, str] | None = None, phase: str = "Running",
        limits: dict[str, str] | None = None, node: str = "runbook-worker") -> dict[str, Any]:
    """A Pod as the API server lists it, scheduled on node, with one container and its limits."""
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"nodeName": node, "containers": [{"name": "main", "resources": {"limits": limits or {}}}]},
            "status": {"phase": phase}}


def ingress_route(name: str, namespace: str, host: str, release: str | None = None) -> dict[str, Any]:
    """An IngressRoute as the echo chart renders it: one route, one Kubernetes service."""
    return {"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/instance": release or name}},
            "spec": {"entryPoints": ["web"], "routes": [{"kind": "Rule", "match": f"Host(`{host}`)",
                                                          "services": [{"name": name, "port": 80}]}]}}


def kubelet_summary(node_name: str, pods: dict[tuple[str, str], tuple[int, int]]) -> dict[str, Any]:
    """The kubelet's /stats/summary: per pod (namespace, name) -> (usageNanoCores, workingSetBytes)."""
    return {"node": {"nodeName": node_name},
            "pods": [{"podRef": {"name": name, "namespace": ns, "uid": f"uid-{name}"},
                      "cpu": {"time": "2026-11-28T00:00:00Z", "usageNanoCores": cpu, "usageCoreNanoSeconds": cpu * 10},
                      "memory": {"time": "2026-11-28T00:00:00Z", "workingSetBytes": memory, "usageBytes": memory + 4096}}
                     for (ns, name), (cpu, memory) in pods.items()]}


def autoscaler(name: str, namespace: str, current: int, desired: int, cpu_percent: int | None) -> dict[str, Any]:
    """An autoscaling/v2 HPA for the Deployment of the same name."""
    metrics = [] if cpu_percent is None else [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu_percent, "averageValue": "41m"}}}]
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": 2, "maxReplicas": 5},
            "status": {"currentReplicas": current, "desiredReplicas": desired, "currentMetrics": metrics,
                       "conditions": [{"type": "ScalingActive", "status": "True" if metrics else "False",
                                       "reason": "ValidMetricFound" if metrics else "FailedGetResourceMetric"}]}}


class FakeKube:
    """Scripted answers: each route maps to a list of responses served in turn (the last one repeats)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.node_states: list[list[dict[str, Any]]] = [[]]
        self.deployments: dict[tuple[str, str], list[dict[str, Any]]] = {}
        # What the sampler reads (no scripted answer: 404, as for a path the API server does not know):
        self.pods: dict[str, list[dict[str, Any]]] = {}  # namespace -> pods
        self.pod_metrics: dict[tuple[str, str], str | Callable[[], str]] = {}  # (namespace, pod) -> metrics text
        self.node_summaries: dict[str, dict[str, Any]] = {}  # node -> the kubelet's /stats/summary
        self.autoscalers: dict[str, list[dict[str, Any]]] = {}  # namespace -> HPAs
        self.ingress_routes: dict[str, list[dict[str, Any]]] = {}  # namespace -> IngressRoutes
        self.slow: dict[str, float] = {}  # path regex -> seconds to wait before answering
        self.failing: dict[str, int] = {}  # path regex -> how many more times to answer 500 (an API server hiccup)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "FakeKube":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_kubeconfig(self, path: Path, context: str = "kind-runbook") -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": context, "context": {"cluster": "fake", "user": "fake"}}],
        }))
        return path

    def _next(self, queue: list[Any]) -> Any:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def answer(self, path: str) -> tuple[int, Any]:
        self.requests.append(path)
        path, _, query = path.partition("?")
        for pattern, seconds in self.slow.items():
            if re.fullmatch(pattern, path):
                time.sleep(seconds)
        for pattern, left in self.failing.items():
            if left and re.fullmatch(pattern, path):
                self.failing[pattern] = left - 1
                return 500, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "InternalError",
                             "code": 500, "message": "etcdserver: request timed out"}
        if path == "/version":
            return 200, {"major": "1", "minor": "35", "gitVersion": "v1.35.8", "platform": "linux/amd64"}
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/apis":
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}
        if path == "/api/v1/nodes":
            return 200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": self._next(self.node_states)}
        match = re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)(/status)?", path)
        if match and (match[1], match[2]) in self.deployments:
            return 200, self._next(self.deployments[(match[1], match[2])])
        match = re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/deployments", path)
        if match:
            items = [states[-1] for (ns, _), states in self.deployments.items() if ns == match[1]]
            return 200, {"kind": "DeploymentList", "apiVersion": "apps/v1", "items": items}
        match = re.fullmatch(r"/apis/autoscaling/v2/namespaces/([^/]+)/horizontalpodautoscalers", path)
        if match:
            return 200, {"kind": "HorizontalPodAutoscalerList", "items": self.autoscalers.get(match[1], [])}
        match = re.fullmatch(r"/apis/traefik.io/v1alpha1/namespaces/([^/]+)/ingressroutes", path)
        if match and match[1] in self.ingress_routes:
            key, _, value = _query(query).get("labelSelector", "").partition("=")
            items = [r for r in self.ingress_routes[match[1]] if not key or r["metadata"].get("labels", {}).get(key) == value]
            return 200, {"kind": "IngressRouteList", "apiVersion": "traefik.io/v1alpha1", "items": items}
        match = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods", path)
        if match:
            selector = dict(part.split("=", 1) for part in _query(query).get("labelSelector", "").split(",") if "=" in part)
            items = [pod for pod in self.pods.get(match[1], [])
                     if all(pod["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]
            return 200, {"kind": "PodList", "apiVersion": "v1", "items": items}
        match = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/:]+):9100/proxy/metrics", path)
        if match and (match[1], match[2]) in self.pod_metrics:
            text = self.pod_metrics[(match[1], match[2])]
            return 200, text() if callable(text) else text
        match = re.fullmatch(r"/api/v1/nodes/([^/]+)/proxy/stats/summary", path)
        if match and match[1] in self.node_summaries:
            return 200, self.node_summaries[match[1]]
        return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                     "message": f"{path} not found"}

    def _handler(self) -> Callable[..., BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK wait between them

            def do_GET(self) -> None:  # noqa: N802
                status, body = fake.answer(self.path)
                text = isinstance(body, str)  # a proxied metrics page, as the pod wrote it
                data = body.encode() if text else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain; version=0.0.4" if text else "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # a client that gave up on a slow answer, as the sampler's reads do at their timeout

            def log_message(self, *args: object) -> None:
                pass

        return Handler
