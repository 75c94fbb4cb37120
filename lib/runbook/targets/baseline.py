"""The baseline: the pull request's base, deployed beside the change under its own hosts.

With --baseline REF, the deployable part of that commit (k8s/: the chart and the
values files) is taken from git, never from the working tree, into the run folder's
baseline/. Each service of the base is served under its own host (foo.localhost ->
foo.baseline.localhost), in its own namespace and release, through the same ingress.
A base without k8s/ (the first pull request) or without a service gives a run without
that comparison and says why; it fails the run only with --require-baseline.
"""

from __future__ import annotations

import logging
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runbook.core import commands
from runbook.core.config import RunConfig, project_root
from runbook.core.errors import CommandError, ConfigError, Required
from runbook.core.rundir import RunFolder, read_json, utc_now, write_json
from runbook.core.services import Service, load_service

log = logging.getLogger(__name__)

STATE_FILE = "baseline.json"
NAMESPACE_SUFFIX = "-baseline"
RELEASE_SUFFIX = "-baseline"


def resolve_ref(ref: str, root: Path | None = None) -> str:
    """The commit SHA of ref in the checkout; ConfigError when there is none."""
    try:
        done = commands.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                            timeout=30, cwd=root or project_root(), check=False)
    except CommandError as exc:
        raise ConfigError("baseline", ref, f"git could not be asked: {exc}") from None
    sha = done.stdout.strip()
    if done.returncode != 0 or not sha:
        raise ConfigError("baseline", ref, "not a commit of this repository (in CI, fetch it: fetch-depth: 2)")
    return sha


def baseline_host(host: str) -> str:
    """foo.localhost -> foo.baseline.localhost: the base's service under a host of its own."""
    first, _, rest = host.partition(".")
    return f"{first}.baseline.{rest}" if rest else f"{first}.baseline"


@dataclass
class Baseline:
    ref: str
    sha: str
    available: bool
    why: str = ""
    services: list[dict[str, str]] = field(default_factory=list)  # name, host, expect, path, values_file
    prepared: str = ""

    def service_list(self) -> list[Service]:
        return [Service(**s) for s in self.services] if self.available else []

    @property
    def chart(self) -> Path:
        return Path(self.services[0]["values_file"]).parents[3] / "k8s" / "charts" / "echo"

    def unavailable(self, why: str) -> Baseline:
        return Baseline(self.ref, self.sha, False, why, [], self.prepared)


def folder_of(run: RunFolder) -> Path:
    return run.path / "baseline"


def load(run: RunFolder) -> Baseline | None:
    """The baseline a run prepared, or None when it has none."""
    path = folder_of(run) / STATE_FILE
    return Baseline(**read_json(path)) if path.is_file() else None


def save(run: RunFolder, baseline: Baseline) -> None:
    write_json(folder_of(run) / STATE_FILE, asdict(baseline))


def mark_unavailable(run: RunFolder, why: str, required: bool) -> Baseline | None:
    """Record that the comparison cannot happen; an error with --require-baseline."""
    current = load(run)
    if current is None:
        return None
    if required:
        raise Required(f"--require-baseline: {why}")
    log.warning("no comparison with the baseline: %s", why)
    changed = current.unavailable(why)
    save(run, changed)
    return changed


def prepare(config: RunConfig, run: RunFolder, root: Path | None = None) -> Baseline | None:
    """Take k8s/ of the baseline commit from git into the run folder; None without --baseline."""
    if not config.baseline:
        return None
    existing = load(run)
    if existing is not None and existing.ref == config.baseline:
        return existing
    root = root or project_root()
    sha = resolve_ref(config.baseline, root)
    baseline = Baseline(config.baseline, sha, True, prepared=utc_now())
    dest = folder_of(run)
    dest.mkdir(parents=True, exist_ok=True)
    listed = commands.run(["git", "ls-tree", "--name-only", sha, "k8s"], timeout=30, cwd=root).stdout.strip()
    if not listed:
        why = f"the base commit {sha[:12]} has no k8s/ (the first pull request?)"
        if config.require_baseline:
            raise Required(f"--require-baseline: {why}")
        save(run, baseline.unavailable(why))
        return load(run)
    archive = dest / "k8s.tar"
    commands.run(["git", "archive", "--format=tar", "-o", str(archive), sha, "k8s"], timeout=60, cwd=root)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    archive.unlink()
    services, missing = [], []
    for name in config.services:
        try:
            service = load_service(name, dest)
        except ConfigError as exc:
            missing.append(f"{name} ({exc.reason})")
            continue
        services.append({"name": name, "host": baseline_host(service.host), "expect": service.expect,
                         "path": service.path, "values_file": service.values_file})
    baseline.services = services
    if not services:
        why = f"the base commit {sha[:12]} has none of the services: {', '.join(missing)}"
        if config.require_baseline:
            raise Required(f"--require-baseline: {why}")
        baseline = baseline.unavailable(why)
    elif missing:
        baseline.why = f"not in the base, so not compared: {', '.join(missing)}"
    save(run, baseline)
    return baseline


def describe(baseline: Baseline | None) -> dict[str, Any] | None:
    """What result.json says about the baseline."""
    if baseline is None:
        return None
    return {"ref": baseline.ref, "sha": baseline.sha, "available": baseline.available, "why": baseline.why,
            "services": [{"name": s["name"], "host": s["host"]} for s in baseline.services]}
