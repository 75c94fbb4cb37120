"""Targets: what "the cluster" is for a run."""

from __future__ import annotations

import shutil

from runbook.core import commands
from runbook.core.config import RunConfig
from runbook.core.errors import CommandError, ConfigError
from runbook.core.rundir import RunFolder
from runbook.core.services import load_services
from runbook.targets.base import Outcome, Target
from runbook.targets.tools import find

__all__ = ["Outcome", "Target", "describe", "detect_target", "make_target", "resolve_target"]

# The local target's module is imported only when asked for: `python -m runbook.targets.standin` (the stand-in it
# starts) imports this package first, and must not import itself through it.
DESCRIPTIONS = {
    "kind": "kind: an ephemeral 2-node KinD cluster (control plane + worker) with Traefik",
    "kubeconfig": "kubeconfig: an existing cluster from the kubeconfig context",
}


def describe(target: str) -> str:
    if target == "local":
        from runbook.targets.local import LocalTarget

        return LocalTarget.description
    return DESCRIPTIONS.get(target, target)


def detect_target(requested: str) -> tuple[str, str]:
    """'auto' on this machine: kind where Docker answers and kind is found, else local; returns (target, why)."""
    if requested != "auto":
        return requested, f"--target {requested} was asked for"
    if not find("kind"):
        return "local", "kind is not on PATH, so the runbook stands the services up locally"
    if not shutil.which("docker"):
        return "local", "docker is not on PATH, so the runbook stands the services up locally"
    try:
        commands.run(["docker", "version", "--format", "{{.Server.Version}}"], timeout=15)
    except CommandError as exc:
        last = (exc.stderr_tail.splitlines() or ["no output"])[-1]
        return "local", f"Docker does not answer ({last}), so the runbook stands the services up locally"
    return "kind", "Docker answers and kind is on PATH"


def resolve_target(config: RunConfig) -> tuple[str, str]:
    """The one place 'auto' is resolved, for the CLI and every stage notebook alike; returns (target, why).

    A concrete target is itself. 'auto' on an existing run folder (a later teardown, say) is the
    target that run used, so that a later stage meets what the run started; otherwise detect_target().
    """
    if config.target == "auto" and (config.run_path / "run.json").is_file():
        recorded = (RunFolder(config.run_path).read_run().get("target") or {}).get("name")
        if recorded in ("local", "kind", "kubeconfig"):
            return recorded, f"the run in {config.run_path} used target {recorded}"
    return detect_target(config.target)


def make_target(config: RunConfig, folder: RunFolder) -> Target:
    """The target object for a run; a cluster target checks its tools first (ToolError)."""
    services = load_services(config.services)
    if config.target == "local":
        from runbook.targets.local import LocalTarget

        return LocalTarget(config, folder, services)
    from runbook.targets.cluster import KindTarget
    from runbook.targets.kubeconfig import KubeconfigTarget

    if config.target == "kind":
        return KindTarget(config, folder, services)
    if config.target == "kubeconfig":
        return KubeconfigTarget(config, folder, services)
    raise ConfigError("target", config.target, "resolve 'auto' with resolve_target() first")
