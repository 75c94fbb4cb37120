"""Locust in the cluster: its own master and workers as pods in the run's namespace (--load-generator cluster).

The load then no longer shares the CI runner's cores with the kind nodes, and on a real
cluster it spreads over its nodes. Everything is Locust's own distributed mode, from the
official image at the version in requirements.txt; the locustfile comes from a ConfigMap.
Each pod writes what a local Locust writes into its /out folder, then waits there until
the runbook has copied the folder back into the run folder (kubectl cp) and says so; the
run folder then holds the same files as with Locust on this machine.

The pods are deleted when the load test ends, whatever happened; diagnostics collect their
logs on a failure like every other pod of the run's namespace.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from runbook.core.config import RunConfig, format_duration, project_root
from runbook.core.errors import CommandError, LoadTestError

NAME = "runbook-locust"
MASTER_PORT = 5557  # Locust's master listens here for its workers
OUT, LOCUSTFILE_DIR = "/out", "/locust"
COLLECT_WAIT_S = 900  # how long a finished pod waits to be collected before it exits anyway
POLL_S = 2.0
PART_OF = {"app.kubernetes.io/part-of": "runbook", "app.kubernetes.io/name": NAME}


class Kubectl(Protocol):
    def __call__(self, *args: str, timeout: float = 60, check: bool = True) -> Any: ...


@dataclass(frozen=True)
class ClusterLoad:
    """Where the load generator runs: the namespace, Traefik's address inside the cluster, kubectl bound to it."""

    namespace: str
    endpoint: str  # e.g. http://traefik.traefik.svc.cluster.local:80
    kubectl: Kubectl


def locust_version(root: Path | None = None) -> str:
    """The Locust pinned in requirements.txt: the pods run the official image of the same version."""
    text = ((root or project_root()) / "requirements.txt").read_text()
    found = re.search(r"^locust==([\w.]+)\s*$", text, re.M)
    if not found:
        raise LoadTestError("requirements.txt pins no locust==VERSION: the cluster's Locust image could not be chosen")
    return found[1]


def image(root: Path | None = None) -> str:
    return f"locustio/locust:{locust_version(root)}"


def _labels(component: str) -> dict[str, str]:
    return {**PART_OF, "app.kubernetes.io/component": component}


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in labels.items())


def _waiting_script(locust: list[str]) -> str:
    """The container's shell: run Locust, keep its exit code, then wait for the runbook to collect /out."""
    return (f"{shlex.join(locust)}; echo $? > {OUT}/exit-code; "
            f"i=0; while [ ! -e {OUT}/collected ] && [ $i -lt {COLLECT_WAIT_S} ]; do sleep 1; i=$((i+1)); done")


def _container(name: str, script: str, env: dict[str, str], cpu: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "image": image(),
        "command": ["sh", "-c", script],
        "env": [{"name": key, "value": value} for key, value in sorted(env.items())],
        "ports": ports,
        # A CPU request places the pods; no CPU limit: a throttled generator would measure itself.
        "resources": {"requests": {"cpu": cpu, "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "locustfile", "mountPath": LOCUSTFILE_DIR, "readOnly": True},
                         {"name": "out", "mountPath": OUT}, {"name": "tmp", "mountPath": "/tmp"}],
    }


def _job(name: str, component: str, container: dict[str, Any], deadline_s: int, pods: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "labels": _labels(component)},
        "spec": {
            "parallelism": pods, "completions": pods, "backoffLimit": 0, "activeDeadlineSeconds": deadline_s,
            "template": {
                "metadata": {"labels": _labels(component)},
                "spec": {
                    "restartPolicy": "Never",
                    "enableServiceLinks": False,
                    # The image's user is `locust`, created first in its Debian base: uid 1000.
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [{"name": "locustfile", "configMap": {"name": NAME}},
                                {"name": "out", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def manifests(config: RunConfig, load: ClusterLoad, env: dict[str, str], locustfile: Path) -> list[dict[str, Any]]:
    """The ConfigMap, the master's Service, the master's Job and the workers' Job, for one load test."""
    master_host = f"{NAME}-master"
    deadline = config.run_time + math.ceil(config.request_timeout) + COLLECT_WAIT_S + 300
    master = ["locust", "-f", f"{LOCUSTFILE_DIR}/locustfile.py", "--master", "--master-bind-port", str(MASTER_PORT),
              "--expect-workers", str(config.workers), "--expect-workers-max-wait", "300", "--headless",
              "--users", str(config.users), "--spawn-rate", f"{config.spawn_rate:g}",
              "--run-time", format_duration(config.run_time), "--stop-timeout", str(math.ceil(config.request_timeout)),
              "--host", load.endpoint, "--csv", f"{OUT}/locust", "--csv-full-history", "--html", f"{OUT}/report.html",
              "--only-summary", "--loglevel", "INFO", "--logfile", f"{OUT}/locust.log"]
    worker = ["locust", "-f", f"{LOCUSTFILE_DIR}/locustfile.py", "--worker", "--master-host", master_host,
              "--master-port", str(MASTER_PORT), "--loglevel", "INFO", "--logfile", f"{OUT}/locust.log"]
    # Workers take the locustfile's options from their master (Locust sends them with the first spawn), so both
    # carry the same environment; the master records nothing, each worker writes its own part beside this path.
    env = {**env, "LOAD_TEST_REQUEST_LOG": f"{OUT}/requests.csv"}
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": NAME, "labels": _labels("locustfile")},
         "data": {"locustfile.py": locustfile.read_text()}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": master_host, "labels": _labels("master")},
         "spec": {"selector": _labels("master"), "ports": [{"name": "master", "port": MASTER_PORT, "targetPort": MASTER_PORT}]}},
        _job(f"{NAME}-master", "master", _container(
            "master", _waiting_script(master), env, "200m", [{"name": "master", "containerPort": MASTER_PORT}]), deadline),
        _job(f"{NAME}-workers", "worker", _container("worker", _waiting_script(worker), env, "500m", []),
             deadline, pods=config.workers),
    ]


#: What the runbook does in the namespace to run Locust there, as `kubectl auth can-i` asks it.
PERMISSIONS = (("create", "configmaps"), ("create", "services"), ("create", "jobs.batch"), ("list", "pods"),
               ("create", "pods/exec"), ("delete", "jobs.batch"))


def _check_permissions(load: ClusterLoad) -> None:
    """Before anything is created: every permission the run needs, or one error naming those it lacks."""
    lacking = []
    for verb, resource in PERMISSIONS:
        answer = load.kubectl("auth", "can-i", verb, resource, "--namespace", load.namespace, timeout=30, check=False)
        if (answer.stdout or "").strip() != "yes":
            lacking.append(f"{verb} {resource}")
    if lacking:
        raise LoadTestError(f"--load-generator cluster needs, in namespace {load.namespace}: {', '.join(lacking)} "
                            "(kubectl auth can-i says no); nothing was started. Grant them, or run Locust on this "
                            "machine (--load-generator local, --processes N)")


def _pods(load: ClusterLoad, component: str) -> list[str]:
    done = load.kubectl("get", "pods", "--namespace", load.namespace, "-l", _selector(_labels(component)), "-o", "json",
                        timeout=30)
    items = json.loads(done.stdout or "{}").get("items", [])
    return sorted(item["metadata"]["name"] for item in items)


def _exit_code(load: ClusterLoad, pod: str) -> int | None:
    """The pod's Locust exit code once it has one; None while it runs (or the pod is not up yet)."""
    done = load.kubectl("exec", "--namespace", load.namespace, pod, "--", "cat", f"{OUT}/exit-code", timeout=30, check=False)
    text = (done.stdout or "").strip()
    return int(text) if done.returncode == 0 and text.lstrip("-").isdigit() else None


def run(config: RunConfig, load: ClusterLoad, env: dict[str, str], locustfile: Path, out: Path,
        phase: Callable[[float], str], say: Callable[[str], None]) -> int:
    """Apply the pods, follow the run, copy every pod's /out into out; returns the master's exit code.

    Whatever happens, the objects are deleted before this returns.
    """
    _check_permissions(load)
    objects = manifests(config, load, env, locustfile)
    applied = out / "cluster-load.json"
    applied.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=1))
    selector = _selector(PART_OF)
    load.kubectl("apply", "--namespace", load.namespace, "-f", str(applied), timeout=60)
    say(f"load_test: Locust's master and {config.workers} workers start as pods in namespace {load.namespace} "
        f"({image()}), against {load.endpoint}")
    try:
        started = time.monotonic()
        deadline = started + config.run_time + math.ceil(config.request_timeout) + 600
        master: int | None = None
        while master is None:
            if time.monotonic() > deadline:
                raise LoadTestError(f"Locust's master in namespace {load.namespace} did not finish in time; "
                                    f"see its pod's log (diagnostics) and {applied.name}")
            time.sleep(POLL_S)
            elapsed = time.monotonic() - started
            say(f"load_test: {min(elapsed, config.run_time):.0f}/{config.run_time} s, {phase(elapsed)} "
                f"(Locust in the cluster; requests are counted when its files come back)")
            pods = _pods(load, "master")
            master = _exit_code(load, pods[0]) if pods else None
        workers = _pods(load, "worker")
        for pod in workers:  # the workers stop when the master quits; their last rows are written then
            end = time.monotonic() + 60
            while _exit_code(load, pod) is None and time.monotonic() < end:
                time.sleep(1)
        for pod in [*_pods(load, "master"), *workers]:
            _collect(load, pod, out)
        return master
    except BaseException:
        # The pods go below: keep what they said first, for diagnostics.
        logs = load.kubectl("logs", "--namespace", load.namespace, "-l", selector, "--all-containers", "--prefix",
                            "--tail", "200", timeout=60, check=False)
        (out / "locust-pods.log").write_text(logs.stdout or logs.stderr or "")
        raise
    finally:
        try:
            load.kubectl("delete", "--namespace", load.namespace, "job,service,configmap", "-l", selector,
                         "--ignore-not-found", "--wait=false", timeout=60)
        except CommandError as exc:
            say(f"load_test: could not delete Locust's pods ({exc}); teardown removes the namespace")


def _collect(load: ClusterLoad, pod: str, out: Path) -> None:
    """The pod's /out into out (kubectl cp), then tell the pod it may exit."""
    import shutil

    landing = out / "pods" / pod
    shutil.rmtree(landing, ignore_errors=True)
    landing.parent.mkdir(parents=True, exist_ok=True)
    load.kubectl("cp", f"{load.namespace}/{pod}:{OUT}", str(landing), timeout=300)
    if (landing / "out").is_dir():  # a kubectl that copies the folder itself rather than its contents
        landing = landing / "out"
    for path in landing.iterdir():
        if path.name in ("exit-code", "collected"):
            continue
        target = out / path.name
        if path.name == "locust.log" and target.exists():  # every pod has one: keep each under its pod's name
            target = out / f"locust-{pod}.log"
        path.replace(target)
    shutil.rmtree(out / "pods", ignore_errors=True)
    load.kubectl("exec", "--namespace", load.namespace, pod, "--", "touch", f"{OUT}/collected", timeout=30, check=False)
