"""The publish stage: the summary and charts as one sticky comment on the pull request.

The GitHub API cannot attach images to a comment, so the PNG charts are committed
to an assets branch under a path of the pull request and run, and linked by commit
SHA so that old comments keep their pictures. The main charts are also embedded as
Mermaid blocks, which GitHub renders with no hosting at all.

Run data may come from another workflow's artifact (a fork's pull request), so it
is treated as untrusted: result.json is validated, every number re-read, every
text shown inert (markdown.inert), every image checked to be a PNG, and the pull
request must be the one the run tested. Where to publish and the API calls are in
rest_api.py.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from runbook.github import rest_api
from runbook.core.config import RunConfig
from runbook.core.errors import InvalidResult, PublishError, Required
from runbook.github.rest_api import GitHubContext
from runbook.report.markdown import inert
from runbook.analysis.result_document import ResultDocument, parse
from runbook.core.rundir import RunFolder, utc_now
from runbook.targets.base import Outcome

log = logging.getLogger(__name__)

MARKER = "<!-- runbook:load-test-summary -->"
BODY_LIMIT = 65_536
CHART_FILES = {"throughput": "throughput.png", "latency": "latency.png", "percentiles": "percentiles.png"}
#: The charts are under 200 KiB at 990 x 528 pixels: anything far beyond is not one of them.
MAX_PNG_BYTES = 1024 * 1024
MAX_PNG_SIDE = 4000


def load_result(folder: RunFolder) -> ResultDocument:
    """result.json, read back through its one definition (result_document.parse): every field checked and re-built."""
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
    for key, name in {**CHART_FILES, **({"change": "change.png"} if compared else {})}.items():
        path = folder.report / name
        data = path.read_bytes() if path.is_file() else b""
        picture = reencoded_png(data) if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) <= MAX_PNG_BYTES else None
        if picture is None:
            raise PublishError(f"{path} is missing or not a PNG of at most {MAX_PNG_BYTES} bytes and "
                               f"{MAX_PNG_SIDE} pixels a side")
        charts[key] = picture
    return charts


def reencoded_png(data: bytes) -> bytes | None:
    """The picture decoded and written anew as a PNG (what gets committed under the bot's name); None if it is not one.

    Only pixels survive: whatever else the file carried (text chunks, trailing bytes) is left behind.
    """
    import io
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
                if max(image.size) > MAX_PNG_SIDE:
                    return None
                image.load()
                out = io.BytesIO()
                image.save(out, format="PNG", optimize=True)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        return None
    return out.getvalue() if len(out.getvalue()) <= MAX_PNG_BYTES else None


def measured_by_its_own_code(files: list[str] | None) -> str:
    """The line above the verdict when the pull request changes how it is measured (or that it could not be checked)."""
    if files is None:
        return ("**Could not check whether this pull request changes how it is measured** (its file list could not "
                "be read): the numbers below come from its own code.")
    if not files:
        return ""
    shown = ", ".join(inert(name, 120) for name in files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
    return (f"**Measured by this pull request's own code.** It changes how the load test runs or is judged ({shown}): "
            "the numbers and the verdict below come from that code, not from the base's. Review those changes "
            "before you trust them.")


def comment_body(result: dict[str, Any], images: Mapping[str, str], mermaid: list[str], links: Mapping[str, str],
                 warning: str = "") -> str:
    from runbook.report.summary import render_summary

    def render(with_mermaid: bool, with_failures: bool) -> str:
        shown = result if with_failures else {**result, "services": {
            name: {**stats, "errors": {}} for name, stats in result["services"].items()}}
        summary = render_summary(shown, images.__getitem__, mermaid=mermaid if with_mermaid else None, heading="##")
        parts = [MARKER, *([warning] if warning else []), summary]
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
    nowhere = rest_api.nowhere_to_publish(ctx, config)
    if nowhere:
        if config.require_publish:
            raise Required(f"--require-publish: nothing was published: {nowhere}")
        return Outcome("publish", False, f"not published: {nowhere}")
    record = folder.read_run()
    reported = (folder.report / "result.json").is_file()
    # No report, and no stage but publish ever ran here: the runbook run failed before its upload.
    has_run = reported or any(stage != "publish" for stage in record.get("stages") or {})
    result, charts, unreadable = None, {}, ""
    if reported:
        # The default branch's publisher reads a pull request's results: a pull request that changes their
        # format (or its charts) gets a comment that says so, not silence.
        try:
            result = load_result(folder)
            charts = load_charts(folder, bool((result["comparison"] or {}).get("available")))
        except PublishError as exc:
            result, unreadable = None, str(exc)
    gh = rest_api.client(ctx)
    number: int | None = None
    action = "reading the repository"
    try:
        repo = gh.get_repo(ctx.repository)
        action = "finding the pull request"
        pull_ref = rest_api.resolve_pull_request(ctx, config, record if has_run else {}, repo)
        number = pull_ref.number
        action = f"reading pull request #{number}"
        pull = repo.get_pull(number)
        if pull_ref.expected_head and pull.head.sha != pull_ref.expected_head:
            if pull_ref.trusted or rest_api.same_head_branch(pull, ctx):
                # A newer push: its own run will publish; these older numbers must not overwrite them.
                return Outcome("publish", False, f"not published: pull request #{number} has moved on to "
                               f"{pull.head.sha}; this run tested {pull_ref.expected_head}")
            raise PublishError(
                f"pull request #{number} is at {pull.head.sha}, but the run tested {pull_ref.expected_head} "
                f"(number from {pull_ref.source}): not publishing to it"
            )
        links = {"workflow run": ctx.run_url}
        if has_run:
            links["the whole report (report.html)"] = rest_api.artifact_url(repo, ctx, rest_api.REPORT_ARTIFACT)
            links["run folder: notebooks, CSVs, diagnostics (artifact)"] = rest_api.artifact_url(repo, ctx)
        sha = ""
        if not has_run:
            body = no_results_body(ctx, rest_api.failed_steps(repo, ctx), links)
        elif unreadable:
            body = unreadable_body(unreadable, links)
        elif result is None:
            body = failure_body(record, links)
        else:
            run_key = re.sub(r"[^A-Za-z0-9_.-]", "-", ctx.run_id or folder.path.name)
            folder_path = f"runbook/pr-{number}/{run_key}"
            action = f"committing the charts to branch {config.assets_branch}"
            sha = rest_api.upload_charts(
                repo, config.assets_branch,
                {f"{folder_path}/{key}.png": data for key, data in charts.items()},
                f"Load-test charts for pull request #{number} (run {run_key})",
            )
            images = {key: f"{ctx.server_url}/{ctx.repository}/blob/{sha}/{folder_path}/{key}.png?raw=true" for key in charts}
            warning = measured_by_its_own_code(rest_api.measuring_files(pull))
            body = comment_body(result, images, _mermaid(folder, set(result["services"])), links, warning)
        action = f"commenting on pull request #{number}"
        how, comment = rest_api.upsert_comment(pull, MARKER, body, rest_api.comment_authors(gh))
    except GithubException as exc:
        raise rest_api.explain(exc, action, ctx, number) from None
    url = getattr(comment, "html_url", "")
    details = [f"comment: {url}"]
    if sha:
        details.append(f"charts: commit {sha} on branch {config.assets_branch}")
    elif has_run:
        details.append("no charts: the run stopped before its report")
    else:
        details.append("no results: the runbook workflow stopped before it uploaded any")
    details.append(f"pull request from {pull_ref.source}")
    if unreadable:
        raise PublishError(f"{unreadable} (the comment on pull request #{number} says the results could not be read: {url})")
    return Outcome("publish", True, f"{how} the summary comment on pull request #{number}", details)


def _footer(links: Mapping[str, str]) -> list[str]:
    link_line = " · ".join(f"[{label}]({url})" for label, url in links.items() if url)
    return ([link_line] if link_line else []) + [f"<sub>Updated {utc_now()} by the runbook's publish stage.</sub>"]


def unreadable_body(why: str, links: Mapping[str, str]) -> str:
    """The comment for results this publisher (the default branch's code) cannot read."""
    lines = [MARKER, "## Runbook results could not be read ⚠️", "",
             f"The run produced results, but the publisher (the default branch's code) could not read them: "
             f"{inert(why, 400)}. A pull request that changes the result format or the charts is published once "
             "that change is on the default branch; until then, its numbers are in the artifact.", ""]
    return "\n".join(lines + _footer(links))


def failure_body(run_record: Mapping[str, Any], links: Mapping[str, str]) -> str:
    """The comment for a run that stopped before its report: which stage failed and why."""
    from runbook.core.config import STAGES

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
    from runbook.report.build import mermaid_charts
    from runbook.analysis.results import load_results

    try:
        results = load_results(folder.load_test)
        if set(results.services) != names:
            return []
        return mermaid_charts(results)
    except Exception as exc:  # the PNGs are enough; Mermaid is a bonus
        log.info("no Mermaid charts: %s", exc)
        return []
