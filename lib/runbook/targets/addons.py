"""What the ingress stage installs beside the services: pinned Helm releases of Traefik and metrics-server.

Each lives in k8s/<name>/: release.yaml (name, namespace, repo, chart, pinned version) and
values.yaml. metrics-server goes on kind only (kind ships none, so the echo chart's
HorizontalPodAutoscaler could never act); on an existing cluster the runbook installs nothing
cluster-wide and says whether a metrics API is there.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from runbook.core.config import project_root
from runbook.core.errors import CommandError, ConfigError
from runbook.targets.kube import Kube

METRICS_SERVER_TIMEOUT_S = 180
METRICS_API = "v1beta1.metrics.k8s.io"  # the APIService metrics-server registers


def pinned_release(name: str, root: Path | None = None) -> dict[str, str]:
    """k8s/<name>/release.yaml, every key present."""
    path = (root or project_root()) / "k8s" / name / "release.yaml"
    release = yaml.safe_load(path.read_text())
    for key in ("name", "namespace", "repo", "chart", "version"):
        if not release.get(key):
            raise ConfigError(key, release.get(key), f"{path} must set it")
    return {key: str(value) for key, value in release.items()}


def traefik_release(root: Path | None = None) -> dict[str, str]:
    return pinned_release("traefik", root)


def install_metrics_server(kube: Kube, root: Path) -> str:
    """metrics-server from its pinned chart, waited for; a failure is said, not raised: only the autoscaler needs it."""
    release = pinned_release("metrics-server", root)
    try:
        kube.helm_upgrade(release["name"], release["chart"], release["namespace"],
                          [root / "k8s" / "metrics-server" / "values.yaml"], timeout_s=METRICS_SERVER_TIMEOUT_S,
                          extra=["--repo", release["repo"], "--version", release["version"]])
    except CommandError as exc:
        why = (exc.stderr_tail.strip().splitlines() or str(exc).strip().splitlines() or [""])[-1]
        return f"metrics-server chart {release['version']} did not become ready, so the autoscaler cannot act: {why}"
    return f"metrics-server chart {release['version']} installed in {release['namespace']} (the autoscaler can act)"


def metrics_api_note(kube: Kube) -> str:
    """On an existing cluster: whether it serves the resource metrics API the autoscaler needs (nothing is installed)."""
    try:
        found = kube.kubectl("get", "apiservice", METRICS_API, "--ignore-not-found", "-o", "name", timeout=30).stdout.strip()
    except CommandError as exc:
        return f"could not tell whether the cluster has a metrics API ({METRICS_API}): {str(exc).splitlines()[0]}"
    if found:
        return f"the cluster serves the metrics API ({METRICS_API}): the autoscaler can act"
    return (f"the cluster has no metrics API ({METRICS_API}, e.g. metrics-server): the autoscaler cannot act; "
            "the kubeconfig target installs nothing cluster-wide")
