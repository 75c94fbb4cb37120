"""The publish stage: the summary and charts as one sticky comment on the pull request.

The GitHub API cannot attach images to a comment, so the PNG charts are committed
to an assets branch under a path of the pull request and run, and linked by commit
SHA so that old comments keep their pictures. The main charts are also embedded as
Mermaid blocks, which GitHub renders with no hosting at all.

Run data may come from another workflow's artifact (a fork's pull request), so it
is treated as untrusted: result.json is validated, every number re-read, every
text shown inert (markdown.inert), every image checked to be a PNG, and the pull
request must be the one the run tested. Where to publish and the API calls are in
githubapi.py.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from runbook import githubapi
from runbook.config import RunConfig
from runbook.errors import InvalidResult, PublishError, Required
from runbook.githubapi import GitHubContext
from runbook.markdown import inert
from runbook.resultdoc import ResultDocument, parse
from runbook.rundir import RunFolder, utc_now
from runbook.targets.base import Outcome

log = logging.getLogger(__name__)

MARKER = "<!-- runbook:load-test-summary -->"
BODY_LIMIT = 65_536
CHART_FILES = {"throughput": "throughput.png", "latency": "latency.png", "percentiles": "percentiles.png"}
MAX_PNG_BYTES = 5 * 1024 * 1024


def load_result(folder: RunFolder) -> ResultDocument:
    """result.json, read back through its one definition (resultdoc.parse): every field checked and re-built."""
    path = folder.report / "result.json"
    if not path.is_file():
        raise PublishError(f"{path} is missing: run the report stage first")
    try:
        return parse(json.loads(path.read_text()))
    except ValueError as exc:
        raise PublishError(f"{path} is not JSON: {exc}") from None
    except InvalidResult as exc:
        raise PublishError(str(exc)) from None


def load_charts(folder: RunFolder, compared: bool = False) -> dict[str, bytes]:
    charts = {}
    for key, name in {**CHART_FILES, **({"rounds": "rounds.png"} if compared else {})}.items():
        path = folder.report / name
        data = path.read_bytes() if path.is_file() else b""
        if not data.startswith(b"\x89PNG\r\n\x1a\n") or len(data) > MAX_PNG_BYTES:
            raise PublishError(f"{path} is missing or not a PNG of at most {MAX_PNG_BYTES} bytes")
        charts[key] = data
    return charts


def comment_body(result: dict[str, Any], images: Mapping[str, str], mermaid: list[str], links: Mapping[str, str]) -> str:
    from runbook.report import render_summary

    def render(with_mermaid: bool, with_failures: bool) -> str:
        shown = result if with_failures else {**result, "services": {
            name: {**stats, "errors": {}} for name, stats in result["services"].items()}}
        parts = [MARKER, render_summary(shown, images.__getitem__, mermaid=mermaid if with_mermaid else None, heading="##")]
        return "\n\n".join(parts + _footer(links))

    for with_mermaid, with_failures in ((True, True), (False, True), (False, False)):
        body = render(with_mermaid, with_failures)
        if len(body) <= BODY_LIMIT:
            return body
    return body[: BODY_LIMIT - 40] + "\n\n… (cut to GitHub's comment limit)"


def publish_run(config: RunConfig, folder: RunFolder, env: Mapping[str, str] = os.environ) -> Outcome:
    """Publish the run's summary to its pull request; a "not published" outcome when there is nowhere to."""
    from github import GithubException

    ctx = GitHubContext.from_env(env)
    nowhere = githubapi.nowhere_to_publish(ctx, config)
    if nowhere:
        if config.require_publish:
            raise Required(f"--require-publish: nothing was published: {nowhere}")
        return Outcome("publish", False, f"not published: {nowhere}")
    record = folder.read_run()
    reported = (folder.report / "result.json").is_file()
    # No report, and no stage but publish ever ran here: the runbook run failed before its upload.
    has_run = reported or any(stage != "publish" for stage in record.get("stages") or {})
    result = load_result(folder) if reported else None
    charts = load_charts(folder, bool(result and (result["comparison"] or {}).get("available"))) if reported else {}
    gh = githubapi.client(ctx)
    number: int | None = None
    action = "reading the repository"
    try:
        repo = gh.get_repo(ctx.repository)
        action = "finding the pull request"
        pull_ref = githubapi.resolve_pull_request(ctx, config, record if has_run else {}, repo)
        number = pull_ref.number
        action = f"reading pull request #{number}"
        pull = repo.get_pull(number)
        if pull_ref.expected_head and pull.head.sha != pull_ref.expected_head:
            if pull_ref.trusted or githubapi.same_head_branch(pull, ctx):
                # A newer push: its own run will publish; these older numbers must not overwrite them.
                return Outcome("publish", False, f"not published: pull request #{number} has moved on to "
                               f"{pull.head.sha}; this run tested {pull_ref.expected_head}")
            raise PublishError(
                f"pull request #{number} is at {pull.head.sha}, but the run tested {pull_ref.expected_head} "
                f"(number from {pull_ref.source}): not publishing to it"
            )
        links = {"workflow run": ctx.run_url}
        if has_run:
            links["the whole report (report.html)"] = githubapi.artifact_url(repo, ctx, githubapi.REPORT_ARTIFACT)
            links["run folder: notebooks, CSVs, diagnostics (artifact)"] = githubapi.artifact_url(repo, ctx)
        sha = ""
        if not has_run:
            body = no_results_body(ctx, githubapi.failed_steps(repo, ctx), links)
        elif result is None:
            body = failure_body(record, links)
        else:
            run_key = re.sub(r"[^A-Za-z0-9_.-]", "-", ctx.run_id or folder.path.name)
            folder_path = f"runbook/pr-{number}/{run_key}"
            action = f"committing the charts to branch {config.assets_branch}"
            sha = githubapi.upload_charts(
                repo, config.assets_branch,
                {f"{folder_path}/{key}.png": data for key, data in charts.items()},
                f"Load-test charts for pull request #{number} (run {run_key})",
            )
            images = {key: f"{ctx.server_url}/{ctx.repository}/blob/{sha}/{folder_path}/{key}.png?raw=true" for key in charts}
            body = comment_body(result, images, _mermaid(folder, set(result["services"])), links)
        action = f"commenting on pull request #{number}"
        how, comment = githubapi.upsert_comment(pull, MARKER, body, githubapi.comment_authors(gh))
    except GithubException as exc:
        raise githubapi.explain(exc, action, ctx, number) from None
    url = getattr(comment, "html_url", "")
    details = [f"comment: {url}"]
    if sha:
        details.append(f"charts: commit {sha} on branch {config.assets_branch}")
    elif has_run:
        details.append("no charts: the run stopped before its report")
    else:
        details.append("no results: the runbook workflow stopped before it uploaded any")
    details.append(f"pull request from {pull_ref.source}")
    return Outcome("publish", True, f"{how} the summary comment on pull request #{number}", details)


def _footer(links: Mapping[str, str]) -> list[str]:
    link_line = " · ".join(f"[{label}]({url})" for label, url in links.items() if url)
    return ([link_line] if link_line else []) + [f"<sub>Updated {utc_now()} by the runbook's publish stage.</sub>"]


def failure_body(run_record: Mapping[str, Any], links: Mapping[str, str]) -> str:
    """The comment for a run that stopped before its report: which stage failed and why."""
    from runbook.config import STAGES

    stages = run_record.get("stages") if isinstance(run_record.get("stages"), dict) else {}
    failed = [(name, info) for name, info in stages.items() if name in STAGES and isinstance(info, dict) and info.get("status") == "failed"]
    lines = [MARKER, "## Runbook failed ❌", ""]
    if failed:
        name, info = failed[0]
        lines += [f"The **{name}** stage failed: {inert(info.get('error', ''), 600)}", ""]
    else:
        lines += ["The run stopped before its report, and its record names no failed stage.", ""]
    lines += ["The executed notebooks and diagnostics are in the artifact.", ""]
    return "\n".join(lines + _footer(links))


def no_results_body(ctx: GitHubContext, failed: list[tuple[str, str]], links: Mapping[str, str]) -> str:
    """The comment for a runbook workflow run that failed before it uploaded any results."""
    conclusion = str(ctx.workflow_run.get("conclusion") or "failure")
    lines = [MARKER, "## Runbook failed ❌", "",
             f"The runbook workflow ended with {inert(conclusion, 40)} before it produced any results, so there "
             "are no numbers for this commit.", ""]
    for job, step in failed[:5]:
        lines.append(f"- job {inert(job, 100)}" + (f", step {inert(step, 100)}" if step else "") + " failed")
    if failed:
        lines.append("")
    lines += ["Its log says why.", ""]
    return "\n".join(lines + _footer(links))


def _mermaid(folder: RunFolder, names: set[str]) -> list[str]:
    from runbook.report import mermaid_charts
    from runbook.results import load_results

    try:
        results = load_results(folder.load_test)
        if set(results.services) != names:
            return []
        return mermaid_charts(results)
    except Exception as exc:  # the PNGs are enough; Mermaid is a bonus
        log.info("no Mermaid charts: %s", exc)
        return []
