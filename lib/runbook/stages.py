"""One function per stage: what the stage notebooks call.

Each takes the run's RunConfig, does its work through the target and the run
folder, and returns something the notebook displays. Stages talk only through
files in the run folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runbook.targets import baseline

from runbook.core import commands

from runbook.core import progress
from runbook.core.config import RunConfig, project_root
from runbook.core.errors import CommandError, WaitTimeout
from runbook.core.rundir import RunFolder, utc_now, write_json
from runbook.load.sampler import Sampling
from runbook.core.services import Reply, Service, answers, get
from runbook.targets import Outcome, Target, make_target, resolve_target
from runbook.core.waiting import wait_for

if TYPE_CHECKING:  # the heavy modules load only in the stages that use them
    from runbook.load.runner import LoadTestRun
    from runbook.report.build import Report

log = logging.getLogger(__name__)

VERIFY_TIMEOUT_S = 60.0
VERIFY_FILE = "verify.json"


def target_for(config: RunConfig) -> Target:
    """The run's target, with 'auto' resolved the same way the CLI does."""
    if config.target == "auto":
        name, why = resolve_target(config)
        log.info("target auto -> %s: %s", name, why)
        config = config.replace(target=name)
    return make_target(config, RunFolder(config.run_path).create())


@contextlib.contextmanager
def _diagnosed(target: Target) -> Iterator[None]:
    """On any failure, collect diagnostics before the error goes on to the pipeline."""
    try:
        yield
    except BaseException:
        try:
            files = target.collect_diagnostics()
            if files:
                log.error("diagnostics written: %s", ", ".join(files))
        except Exception as exc:  # diagnostics must not hide the error that caused them
            log.error("collecting diagnostics failed too: %s", exc)
        raise


def told(config: RunConfig, outcome: Outcome) -> Outcome:
    """A stage's one-line outcome goes to the console too (through progress.log), not only into its notebook."""
    progress.say(RunFolder(config.run_path).create().path, f"{outcome.stage}: {outcome.summary}")
    return outcome


def provision(config: RunConfig) -> Outcome:
    target = target_for(config)
    with _diagnosed(target):
        prepared = baseline.prepare(config, target.folder)
        outcome = target.provision()
    if prepared is not None:
        outcome.details.append(
            f"baseline {prepared.ref} ({prepared.sha[:12]}): k8s/ taken from git into {target.folder.path / 'baseline'}"
            if prepared.available else f"baseline {prepared.ref}: no comparison: {prepared.why}")
    return told(config, outcome)


def ingress(config: RunConfig) -> Outcome:
    target = target_for(config)
    with _diagnosed(target):
        return told(config, target.install_ingress())


def deploy(config: RunConfig) -> Outcome:
    target = target_for(config)
    with _diagnosed(target):
        return told(config, target.deploy())


@dataclass
class Verification:
    endpoint: str
    rows: list[dict[str, object]]

    def _repr_markdown_(self) -> str:
        lines = [f"Routing verified through `{self.endpoint}`:", "", "| host | service | side | status | body |", "|---|---|---|---|---|"]
        lines += [f"| {r['host']} | {r['service']} | {r['side']} | {r['status']} | `{r['body']}` |" for r in self.rows]
        return "\n".join(lines)


def verify(config: RunConfig) -> Verification:
    """One request per service through the ingress endpoint, retried until it answers right."""
    target = target_for(config)
    with _diagnosed(target), target.endpoint() as (host, port):
        rows = [_verify_route(host, port, service, config) for service in target.services]
        try:
            rows += [_verify_route(host, port, service, config, side="baseline") for service in target.baseline_services]
        except WaitTimeout as exc:
            baseline.mark_unavailable(target.folder, f"the baseline's route does not answer: {exc}", config.require_baseline)
        result = Verification(f"http://{host}:{port}", rows)
        write_json(target.folder.path / VERIFY_FILE, {"endpoint": result.endpoint, "checked": utc_now(), "services": rows})
        return result


def _verify_route(host: str, port: int, service: Service, config: RunConfig, side: str = "candidate") -> dict[str, object]:
    def probe() -> tuple[bool, str, Reply]:
        reply = get(host, port, service, timeout=min(config.request_timeout, 5.0))
        seen = f"HTTP {reply.status} {reply.body.strip()[:80]!r}"
        return answers(reply, service), seen, reply

    reply = wait_for(
        f"http://{host}:{port}{service.path} with Host {service.host} to answer 200 with {service.expect!r}",
        probe, timeout=VERIFY_TIMEOUT_S, interval=1.0,
    )
    return {"service": service.name, "side": side, "host": service.host, "status": reply.status, "body": reply.body.strip()[:80]}


def load_test(config: RunConfig) -> LoadTestRun:
    from runbook.load.runner import run_load_test

    target = target_for(config)
    with _diagnosed(target), target.endpoint() as (host, port):
        return run_load_test(config, target.services, target.folder.load_test, host, port, baseline=target.baseline_services,
                             say=lambda line: progress.say(target.folder.path, line), sampling=_sampling(target),
                             preflight_budget=config.preflight_timeout,
                             cluster=target.cluster_load() if config.load_generator == "cluster" else None)


def _sampling(target: Target) -> Sampling:
    """The target's server-side sources; when it cannot offer them, the run goes on and the report says why."""
    try:
        return target.sampling()
    except Exception as exc:
        log.warning("no server-side samples: %s", exc)
        return Sampling(notes=[f"no server-side samples: {exc}"])


def report(config: RunConfig) -> Report:
    from runbook.report.build import build_report
    from runbook.analysis.slo import load_slo

    target = target_for(config)
    prepared = baseline.load(target.folder) if config.baseline else None
    built = build_report(
        target.folder.load_test, target.folder.report, target.name, target.description, commit_of_run(target.folder),
        slo=load_slo(config.slo_path), baseline=baseline.describe(prepared),
    )
    from runbook.report.summary import verdict_lines

    for line in verdict_lines(built.result):
        progress.say(target.folder.path, f"report: {line}")
    return built


def publish(config: RunConfig) -> Outcome:
    """The summary as a sticky comment on the pull request; says why when there is none."""
    from runbook.github.publish import publish_run

    return told(config, publish_run(config, RunFolder(config.run_path)))


def teardown(config: RunConfig) -> Outcome:
    target = target_for(config)
    return told(config, target.teardown())


def commit_of_run(folder: RunFolder) -> str:
    """The commit the run tested: what run.json recorded, else the checkout's HEAD."""
    recorded = folder.read_run().get("commit")
    if recorded:
        return str(recorded)
    return current_commit()


def current_commit() -> str:
    """RUNBOOK_COMMIT, else a pull request's head (not the merge commit in GITHUB_SHA), else HEAD."""
    if os.environ.get("RUNBOOK_COMMIT"):
        return os.environ["RUNBOOK_COMMIT"]
    from runbook.github.rest_api import github_record

    record = github_record()
    if record and record.get("head_sha"):
        return str(record["head_sha"])
    if os.environ.get("GITHUB_SHA"):
        return os.environ["GITHUB_SHA"]
    try:
        return commands.run(["git", "rev-parse", "HEAD"], timeout=10, cwd=project_root()).stdout.strip()
    except CommandError:
        return "unknown"
