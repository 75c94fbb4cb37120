"""The services under test, read from their Helm values files.

Each service is deployed from k8s/deployment/<name>/values.yaml; the same file
tells the runbook the host it is routed by and the text it answers with, so a
fork that swaps foo and bar for its own services edits one place.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from runbook.core.config import project_root
from runbook.core.errors import ConfigError


@dataclass(frozen=True)
class Service:
    name: str
    host: str  # the Host header the ingress routes by
    expect: str  # text the response body must contain
    path: str = "/"
    values_file: str = ""


def values_path(name: str, root: Path | None = None) -> Path:
    return (root or project_root()) / "k8s" / "deployment" / name / "values.yaml"


def load_service(name: str, root: Path | None = None) -> Service:
    path = values_path(name, root)
    if not path.is_file():
        raise ConfigError("services", name, f"no values file at {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError("services", name, f"{path} is not valid YAML: {exc}") from None
    host = _lookup(values, path, "ingressRoute", "host")
    expect = _lookup(values, path, "echo", "text")
    verify = values.get("verify")
    probe_path = verify.get("path", "/") if isinstance(verify, dict) else "/"
    return Service(name=name, host=host, expect=expect, path=str(probe_path), values_file=str(path))


def load_services(names: tuple[str, ...], root: Path | None = None) -> list[Service]:
    services = [load_service(name, root) for name in names]
    hosts = [service.host for service in services]
    for service in services:
        if hosts.count(service.host) > 1:
            raise ConfigError("services", service.name, f"host {service.host} is routed to more than one service")
    return services


def _lookup(values: dict[str, Any], path: Path, *keys: str) -> str:
    node: Any = values
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, str) or not node.strip():
        raise ConfigError(".".join(keys), node, f"{path} must set it to a non-empty string")
    return node


@dataclass(frozen=True)
class Reply:
    status: int
    body: str


def get(host: str, port: int, service: Service, timeout: float) -> Reply:
    """One GET through the ingress endpoint with the service's Host header."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", service.path, headers={"Host": service.host})
        response = conn.getresponse()
        return Reply(response.status, response.read(64 * 1024).decode(errors="replace"))
    finally:
        conn.close()


def answers(reply: Reply, service: Service) -> bool:
    return reply.status == 200 and service.expect in reply.body
