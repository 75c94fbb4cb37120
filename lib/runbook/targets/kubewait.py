"""Waits on cluster state through the Kubernetes API, each with a deadline."""

from __future__ import annotations

from typing import Any

from runbook.core.errors import GiveUp
from runbook.core.waiting import NETWORK_ERRORS, wait_for

POLL_S = 2.0  # between API reads


def _api_errors() -> tuple[type[BaseException], ...]:
    """What reading the API can meet while the cluster settles: error statuses (404 before creation), connection trouble."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    return (ApiException, HTTPError, *NETWORK_ERRORS)


def _condition(obj: Any, kind: str) -> str | None:
    for condition in (obj.status.conditions or []) if obj.status else []:
        if condition.type == kind:
            return condition.status
    return None


def wait_nodes_ready(api_client: Any, expected: int, timeout: float, interval: float | None = None) -> list[str]:
    """Until at least `expected` nodes exist and every node is Ready; returns their names."""
    from kubernetes.client import CoreV1Api

    core = CoreV1Api(api_client)

    def probe() -> tuple[bool, str, list[str]]:
        nodes = core.list_node(_request_timeout=10).items
        states = {node.metadata.name: _condition(node, "Ready") for node in nodes}
        seen = ", ".join(f"{name} Ready={state}" for name, state in sorted(states.items())) or "no nodes"
        done = len(nodes) >= expected and all(state == "True" for state in states.values())
        return done, f"{len(nodes)}/{expected} nodes: {seen}", sorted(states)

    return wait_for(f"{expected} nodes to be Ready", probe, timeout=timeout, interval=interval or POLL_S, retry_on=_api_errors())


def wait_rollout(api_client: Any, namespace: str, name: str, timeout: float, interval: float | None = None) -> int:
    """Until deployment name has rolled out (as `kubectl rollout status` judges); returns its ready replicas."""
    from kubernetes.client import AppsV1Api

    apps = AppsV1Api(api_client)

    def probe() -> tuple[bool, str, int]:
        deployment = apps.read_namespaced_deployment_status(name, namespace, _request_timeout=10)
        spec = deployment.spec.replicas if deployment.spec.replicas is not None else 1
        status = deployment.status
        observed = (status.observed_generation or 0) >= (deployment.metadata.generation or 0)
        updated = status.updated_replicas or 0
        total = status.replicas or 0
        available = status.available_replicas or 0
        seen = f"generation observed={observed}, {updated}/{spec} updated, {total} total, {available} available"
        progressing = next((c for c in status.conditions or [] if c.type == "Progressing"), None)
        if observed and progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
            # The Deployment's own progressDeadlineSeconds has passed: it will not roll out by waiting longer.
            raise GiveUp(f"deployment {namespace}/{name} exceeded its progress deadline: {progressing.message or seen}")
        # Old replicas still terminating count in total: done only once they are gone.
        done = observed and updated >= spec and total == updated and available >= updated and available >= 1
        return done, seen, available

    return wait_for(f"deployment {namespace}/{name} to roll out", probe, timeout=timeout, interval=interval or POLL_S,
                    retry_on=_api_errors())
