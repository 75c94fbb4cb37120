"""kubectl, helm and the Kubernetes API for the cluster targets.

Every kubectl and helm call goes through the command wrapper with a timeout,
against an explicit kubeconfig and context. Waits on cluster state use the
kubernetes client with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook.core import commands
from runbook.core.errors import CommandError, PortForwardDied
from runbook.targets.tools import Toolbox
from runbook.core.waiting import wait_for

log = logging.getLogger(__name__)

Runner = Callable[..., commands.Result]
#: Events written through events.k8s.io (the scheduler's FailedScheduling, for one) have no
#: lastTimestamp, so sorting by it puts them first; every event has a creation time.
EVENTS_ORDER = "--sort-by=.metadata.creationTimestamp"
Starter = Callable[..., commands.Background]


@dataclass
class Kube:
    """kubectl and helm bound to one kubeconfig and context."""

    tools: Toolbox
    kubeconfig: str = ""  # empty: kubectl's own default ($KUBECONFIG or ~/.kube/config)
    context: str = ""  # empty: the kubeconfig's current context
    runner: Runner = commands.run
    starter: Starter = commands.start

    def _kubectl_argv(self, args: Sequence[str]) -> list[str]:
        argv = [self.tools.path("kubectl")]
        if self.kubeconfig:
            argv += ["--kubeconfig", self.kubeconfig]
        if self.context:
            argv += ["--context", self.context]
        return argv + list(args)

    def kubectl(self, *args: str, timeout: float = 60, check: bool = True) -> commands.Result:
        return self.runner(self._kubectl_argv(args), timeout=timeout, check=check)

    def helm(self, *args: str, timeout: float = 60, check: bool = True) -> commands.Result:
        argv = [self.tools.path("helm"), *args]
        if self.kubeconfig:
            argv += ["--kubeconfig", self.kubeconfig]
        if self.context:
            argv += ["--kube-context", self.context]
        return self.runner(argv, timeout=timeout, check=check)

    def wait_flag(self) -> str:
        """Helm's wait for the release's resources, with the same meaning in Helm 3 and 4.

        A bare --wait is a boolean in Helm 3 but the kstatus "watcher" in Helm 4, which can
        report a ready Deployment as InProgress until the timeout (helm/helm#31824). Helm 4's
        legacy waiter is Helm 3's wait; Helm 3 rejects --wait=legacy.
        """
        return "--wait=legacy" if self.tools.helm_major() >= 4 else "--wait"

    def helm_upgrade(
        self,
        release: str,
        chart: str,
        namespace: str,
        values: Sequence[Path],
        *,
        timeout_s: int = 300,
        extra: Sequence[str] = (),
    ) -> commands.Result:
        """helm upgrade --install, waiting for the release's resources within timeout_s.

        No --atomic or --rollback-on-failure: on a failed first install they uninstall the
        release before Helm exits, taking the pods, events and logs that explain the failure
        with it. The run's cluster or namespace is its own, so there is nothing to roll back
        to; diagnostics read the failed release, and teardown removes it.
        """
        args = ["upgrade", "--install", release, chart, "--namespace", namespace, "--create-namespace"]
        for path in values:
            args += ["--values", str(path)]
        args += [*extra, self.wait_flag(), "--timeout", f"{timeout_s}s"]
        return self.helm(*args, timeout=timeout_s + 60)

    def api_client(self) -> Any:
        """A kubernetes ApiClient for the same kubeconfig and context."""
        from kubernetes import config as kube_config

        # The client merges a KUBECONFIG list (a:b) itself, as kubectl does.
        return kube_config.new_client_from_config(
            config_file=self.kubeconfig or os.environ.get("KUBECONFIG") or None, context=self.context or None, persist_config=False
        )

    @contextlib.contextmanager
    def port_forward(
        self, namespace: str, service: str, local_port: int, remote_port: int, log_path: Path, ready_timeout: float = 30.0
    ) -> Iterator[tuple[str, int]]:
        """kubectl port-forward for the duration of the block; fails the block if the forward dies.

        A port-forward carries one pod and exits when that pod goes away; it does not reconnect.
        """
        argv = self._kubectl_argv(
            ["port-forward", "--address", "127.0.0.1", "--namespace", namespace, f"svc/{service}", f"{local_port}:{remote_port}"]
        )
        forward = self.starter(argv, log_path=log_path)
        what = f"kubectl port-forward svc/{service} (namespace {namespace}) to 127.0.0.1:{local_port}"
        try:
            def listening() -> tuple[bool, str, int | None]:
                code = forward.poll()
                if code is not None:
                    return True, f"exited with code {code}", code  # done waiting: it will not come back
                with socket.create_connection(("127.0.0.1", local_port), timeout=1):
                    return True, "listening", None

            wait_for(f"{what} to listen", listening, timeout=ready_timeout, interval=0.2)
            if forward.poll() is not None:
                raise PortForwardDied(f"{what} exited with code {forward.poll()}: {forward.output().strip()[-500:]}")
            try:
                yield "127.0.0.1", local_port
            except BaseException as exc:
                if forward.poll() is not None:
                    raise PortForwardDied(f"{what} died during the stage (exit code {forward.poll()}): "
                                          f"{forward.output().strip()[-500:]}") from exc
                raise
            code = forward.poll()
            if code is not None:
                raise PortForwardDied(
                    f"{what} died during the stage (exit code {code}), so its results are not trustworthy: "
                    f"{forward.output().strip()[-500:]}"
                )
        finally:
            forward.stop()

    def crd_exists(self, name: str) -> bool:
        return self.kubectl("get", "crd", name, "--ignore-not-found", "-o", "name", timeout=30).stdout.strip() != ""

    def diagnostics(self, dest: Path, namespaces: Sequence[str]) -> list[str]:
        """Cluster state for a failed run: nodes, pods, events, releases, failing pods' descriptions and logs."""
        dest.mkdir(parents=True, exist_ok=True)
        written = []

        def save(name: str, call: Callable[[], commands.Result]) -> str:
            path = dest / name
            try:
                result = call()
                path.write_text(result.stdout + (f"\n--- stderr ---\n{result.stderr}" if result.stderr.strip() else ""))
            except CommandError as exc:
                path.write_text(f"could not collect: {exc}\n")
            written.append(str(path))
            return path.read_text()

        save("nodes.txt", lambda: self.kubectl("get", "nodes", "-o", "wide", timeout=30, check=False))
        save("nodes-describe.txt", lambda: self.kubectl("describe", "nodes", timeout=60, check=False))
        save("pods.txt", lambda: self.kubectl("get", "pods", "--all-namespaces", "-o", "wide", timeout=30, check=False))
        save("events.txt", lambda: self.kubectl("get", "events", "--all-namespaces", EVENTS_ORDER, timeout=30, check=False))
        save("helm-releases.txt", lambda: self.helm("list", "--all-namespaces", timeout=30, check=False))
        for namespace in namespaces:
            save(f"all-{namespace}.txt", lambda ns=namespace: self.kubectl("get", "all,ingressroutes,hpa,pdb", "--namespace", ns, "-o", "wide", timeout=30, check=False))
        pods_json = save("pods.json", lambda: self.kubectl("get", "pods", "--all-namespaces", "-o", "json", timeout=30, check=False))
        for namespace, pod, restarted in failing_pods(pods_json):
            save(f"describe-{namespace}-{pod}.txt", lambda ns=namespace, p=pod: self.kubectl("describe", "pod", p, "--namespace", ns, timeout=30, check=False))
            save(f"logs-{namespace}-{pod}.txt", lambda ns=namespace, p=pod: self.kubectl("logs", p, "--namespace", ns, "--all-containers", "--tail=500", timeout=30, check=False))
            if restarted:
                save(f"logs-previous-{namespace}-{pod}.txt", lambda ns=namespace, p=pod: self.kubectl("logs", p, "--namespace", ns, "--all-containers", "--previous", "--tail=500", timeout=30, check=False))
        return written


def failing_pods(pods_json: str) -> list[tuple[str, str, bool]]:
    """(namespace, pod, restarted) for every pod that is not Running-and-ready or Succeeded."""
    try:
        items = json.loads(pods_json).get("items", [])
    except ValueError:
        return []
    failing = []
    for pod in items:
        meta, status = pod.get("metadata", {}), pod.get("status", {})
        containers = status.get("containerStatuses") or []
        ready = bool(containers) and all(c.get("ready") for c in containers)
        phase = status.get("phase")
        if phase == "Succeeded" or (phase == "Running" and ready):
            continue
        restarted = any(c.get("restartCount", 0) > 0 for c in containers)
        failing.append((meta.get("namespace", ""), meta.get("name", ""), restarted))
    return failing
