"""The publish stage: the summary and charts as one sticky comment on the pull request.

Everything comes from the standard GitHub Actions environment: GITHUB_API_URL
(GitHub Enterprise, or a test server), GITHUB_SERVER_URL, GITHUB_REPOSITORY,
GITHUB_TOKEN, the pull request from GITHUB_EVENT_PATH or --pr. The token is read
from the environment only and never written anywhere.

The GitHub API cannot attach images to a comment, so the PNG charts are committed
to an assets branch under a path of the pull request and run, and linked by commit
SHA so that old comments keep their pictures. The main charts are also embedded as
Mermaid blocks, which GitHub renders with no hosting at all.

Run data may come from another workflow's artifact (a fork's pull request), so it
is treated as untrusted: result.json is validated, every number re-read, every
text escaped, every image checked to be a PNG, and the pull request number must
belong to the commit the run tested.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.config import RunConfig
from runbook.errors import RunbookError
from runbook.rundir import RunFolder, utc_now
from runbook.targets.base import Outcome

log = logging.getLogger(__name__)

MARKER = "<!-- runbook:load-test-summary -->"
BODY_LIMIT = 65_536
ARTIFACT_NAME = "runbook-results"
CHART_FILES = {"throughput": "throughput.png", "latency": "latency.png", "percentiles": "percentiles.png"}
MAX_PNG_BYTES = 5 * 1024 * 1024
DEFAULT_AUTHORS = ("github-actions[bot]",)
_SERVICE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SHA = re.compile(r"^[0-9a-f]{40}$")


class PublishError(RunbookError):
    """Publishing failed; the message says what to change."""


class NotPublished(RunbookError):
    """There was nothing to publish to (no token, no pull request): not an error unless required."""


@dataclass(frozen=True)
class GitHubContext:
    api_url: str
    server_url: str
    repository: str
    token: str = field(repr=False)
    event_name: str
    event: Mapping[str, Any] = field(repr=False)
    run_id: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> GitHubContext:
        event: dict[str, Any] = {}
        event_path = env.get("GITHUB_EVENT_PATH", "")
        if event_path:
            try:
                event = json.loads(Path(event_path).read_text())
            except (OSError, ValueError) as exc:
                raise PublishError(f"GITHUB_EVENT_PATH={event_path!r} is not a readable JSON event: {exc}") from None
        workflow_run = event.get("workflow_run") or {}
        return cls(
            api_url=env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"),
            server_url=env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/"),
            repository=env.get("GITHUB_REPOSITORY", ""),
            token=env.get("GITHUB_TOKEN", ""),
            event_name=env.get("GITHUB_EVENT_NAME", ""),
            event=event,
            # In the publish workflow the run that tested the code is the triggering workflow run.
            run_id=str(workflow_run.get("id") or env.get("GITHUB_RUN_ID", "")),
        )

    @property
    def run_url(self) -> str:
        workflow_run = self.event.get("workflow_run") or {}
        if workflow_run.get("html_url"):
            return str(workflow_run["html_url"])
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}" if self.run_id else ""


@dataclass(frozen=True)
class PullRequestRef:
    number: int
    expected_head: str  # the commit the run tested; empty when unknown
    source: str
    trusted: bool = True  # False: the number came from the run's (untrusted) data


def github_record(env: Mapping[str, str] = os.environ) -> dict[str, Any] | None:
    """What the runbook workflow stores in run.json for the publisher: the pull request and commit."""
    if not env.get("GITHUB_EVENT_PATH"):
        return None
    try:
        event = json.loads(Path(env["GITHUB_EVENT_PATH"]).read_text())
    except (OSError, ValueError):
        return None
    pull = event.get("pull_request") or {}
    return {
        "event_name": env.get("GITHUB_EVENT_NAME", ""),
        "repository": env.get("GITHUB_REPOSITORY", ""),
        "run_id": env.get("GITHUB_RUN_ID", ""),
        "pr": pull.get("number"),
        "head_sha": (pull.get("head") or {}).get("sha") or env.get("GITHUB_SHA", ""),
    }


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def resolve_pull_request(ctx: GitHubContext, config: RunConfig, run_record: Mapping[str, Any]) -> PullRequestRef:
    """The pull request to comment on, and the commit it must be at; NotPublished when there is none."""
    workflow_run = ctx.event.get("workflow_run") or {}
    head = str(workflow_run.get("head_sha") or "")
    if config.pr:
        return PullRequestRef(config.pr, head, "--pr")
    pull = ctx.event.get("pull_request") or {}
    if pull.get("number"):
        number = _positive_int(pull.get("number"))
        if number is None:
            raise PublishError(f"the event's pull_request.number is not a positive integer: {pull.get('number')!r}")
        return PullRequestRef(number, str((pull.get("head") or {}).get("sha") or ""), "the pull_request event")
    if workflow_run:
        if workflow_run.get("event") not in (None, "pull_request", "pull_request_target"):
            raise NotPublished(f"the runbook run was triggered by {workflow_run.get('event')!r}, not a pull request")
        listed = workflow_run.get("pull_requests") or []
        if listed and _positive_int(listed[0].get("number")):
            return PullRequestRef(int(listed[0]["number"]), head, "the workflow_run event")
        # A fork's pull request is not listed in the event: take the number from the run's data,
        # which is untrusted, and check below that the pull request's head is the tested commit.
        recorded = (run_record.get("github") or {}).get("pr")
        number = _positive_int(recorded)
        if number is None:
            raise PublishError(f"the run's data names no valid pull request number (github.pr={recorded!r}); not publishing")
        if not _SHA.match(head):
            raise PublishError("the workflow_run event has no head_sha to check the pull request against; not publishing")
        return PullRequestRef(number, head, "the run's artifact, checked against the pull request's head", trusted=False)
    raise NotPublished("no pull request: this is not a pull_request or workflow_run event and --pr was not given")


# -- the run's data, validated ---------------------------------------------------------

def _number(value: Any, name: str, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
        raise PublishError(f"result.json: {name} is not a number: {value!r}")
    return value


def safe_text(text: Any, limit: int = 200) -> str:
    """Run data as inert Markdown: no HTML, no @mentions, no table breaks."""
    cleaned = str(text)[:limit]
    for old, new in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "/"), ("@", "@\u200b"), ("\n", " "), ("`", "'")):
        cleaned = cleaned.replace(old, new)
    return cleaned


def load_result(folder: RunFolder) -> dict[str, Any]:
    """result.json, with every field this stage uses checked and re-built."""
    path = folder.report / "result.json"
    if not path.is_file():
        raise PublishError(f"{path} is missing: run the report stage first")
    try:
        raw = json.loads(path.read_text())
    except ValueError as exc:
        raise PublishError(f"{path} is not JSON: {exc}") from None
    from runbook.targets import describe

    if raw.get("status") not in ("passed", "failed"):
        raise PublishError(f"result.json: status must be passed or failed, not {raw.get('status')!r}")
    if raw.get("target") not in ("local", "kind", "kubeconfig"):
        raise PublishError(f"result.json: unknown target {raw.get('target')!r}")
    commit = str(raw.get("commit", ""))
    config = raw.get("config") or {}
    services: dict[str, Any] = {}
    for name, stats in (raw.get("services") or {}).items():
        if not isinstance(name, str) or not _SERVICE.match(name) or not isinstance(stats, dict):
            raise PublishError(f"result.json: bad service entry {name!r}")
        services[name] = {
            key: _number(stats.get(key), f"services.{name}.{key}", allow_none=key.endswith("_ms"))
            for key in ("requests", "failures", "rps", "min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")
        }
        services[name]["errors"] = {
            safe_text(error): int(_number(count, f"services.{name}.errors") or 0)
            for error, count in list((stats.get("errors") or {}).items())[:10]
        }
    if not services:
        raise PublishError("result.json lists no services")
    return {
        "status": raw["status"],
        "target": raw["target"],
        "target_description": describe(raw["target"]),
        "commit": commit if _SHA.match(commit) else "unknown",
        "config": {
            "users": int(_number(config.get("users"), "config.users") or 0),
            "spawn_rate": _number(config.get("spawn_rate"), "config.spawn_rate"),
            "run_time_s": int(_number(config.get("run_time_s"), "config.run_time_s") or 0),
            "wait_min_s": _number(config.get("wait_min_s"), "config.wait_min_s"),
            "wait_max_s": _number(config.get("wait_max_s"), "config.wait_max_s"),
            "request_timeout_s": _number(config.get("request_timeout_s"), "config.request_timeout_s"),
            "endpoint": safe_text(config.get("endpoint", ""), 100),
        },
        "services": services,
    }


def load_charts(folder: RunFolder) -> dict[str, bytes]:
    charts = {}
    for key, name in CHART_FILES.items():
        path = folder.report / name
        data = path.read_bytes() if path.is_file() else b""
        if not data.startswith(b"\x89PNG\r\n\x1a\n") or len(data) > MAX_PNG_BYTES:
            raise PublishError(f"{path} is missing or not a PNG of at most {MAX_PNG_BYTES} bytes")
        charts[key] = data
    return charts


# -- GitHub ------------------------------------------------------------------------------

def explain(exc: Exception, action: str, ctx: GitHubContext, number: int | None = None) -> PublishError:
    """A GitHub API error as a message that says what to change."""
    status = getattr(exc, "status", None)
    data = getattr(exc, "data", None)
    message = str(data.get("message", "")) if isinstance(data, dict) else str(data or exc)
    if status == 401:
        hint = "the token is invalid or expired: pass the workflow's GITHUB_TOKEN (or a valid token) in the environment"
    elif status == 403 and "Resource not accessible by integration" in message:
        hint = ("the token may not do this: give the publishing job `permissions: pull-requests: write` and "
                "`contents: write`; a fork's pull_request token is always read-only, which is why the publish "
                "workflow runs on workflow_run")
    elif status == 403:
        hint = "GitHub refused the token (rate limit, or a repository rule on the assets branch?)"
    elif status == 404:
        target = f"{ctx.repository}" + (f" pull request #{number}" if number else "")
        hint = (f"{target} was not found, or the token cannot see it: check GITHUB_REPOSITORY, the pull request "
                "number, and that the token has access to the repository")
    elif status == 422:
        hint = "GitHub found the request invalid: check the assets branch name and the comment size"
    else:
        hint = "see GitHub's message"
    return PublishError(f"GitHub answered {status} {message!r} while {action}: {hint}")


def _github(ctx: GitHubContext) -> Any:
    from urllib.parse import urlparse

    from github import Auth, Github

    # PyGithub spaces writes a second apart, as GitHub asks to avoid secondary rate limits;
    # an API server on this machine's loopback (a test double) needs no such care.
    local = urlparse(ctx.api_url).hostname in ("127.0.0.1", "localhost", "::1")
    pacing = {"seconds_between_requests": 0.0, "seconds_between_writes": 0.0} if local else {}
    return Github(auth=Auth.Token(ctx.token), base_url=ctx.api_url, timeout=30, retry=None, **pacing)


def upload_charts(repo: Any, branch: str, files: Mapping[str, bytes], message: str, attempts: int = 3) -> str:
    """Commit files to branch (created when missing) with the git data API; returns the commit SHA."""
    from github import GithubException, InputGitTreeElement, UnknownObjectException

    blobs = {path: repo.create_git_blob(base64.b64encode(data).decode(), "base64").sha for path, data in files.items()}
    elements = [InputGitTreeElement(path, "100644", "blob", sha=sha) for path, sha in blobs.items()]
    for attempt in range(attempts):
        try:
            ref = repo.get_git_ref(f"heads/{branch}")
            parent = repo.get_git_commit(ref.object.sha)
        except UnknownObjectException:
            ref = parent = None
        tree = repo.create_git_tree(elements, parent.tree) if parent else repo.create_git_tree(elements)
        commit = repo.create_git_commit(message, tree, [parent] if parent else [])
        try:
            if ref is None:
                repo.create_git_ref(f"refs/heads/{branch}", commit.sha)
            else:
                ref.edit(commit.sha, force=False)
            return str(commit.sha)
        except GithubException as exc:
            # Another publish moved the branch in between: build on its commit and try again.
            if exc.status != 422 or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def comment_authors(gh: Any) -> set[str]:
    """Whose comments the runbook may update: the token's own user, or the Actions bot."""
    from github import GithubException

    authors = set(DEFAULT_AUTHORS)
    if os.environ.get("RUNBOOK_COMMENT_AUTHOR"):
        authors.add(os.environ["RUNBOOK_COMMENT_AUTHOR"])
    try:
        authors.add(gh.get_user().login)
    except GithubException:
        pass  # an Actions token may not read /user; its comments are github-actions[bot]'s
    return authors


def upsert_comment(issue: Any, body: str, authors: set[str]) -> tuple[str, Any]:
    """Update the runbook's own comment (marker and author both match) or create it; touch no other."""
    for comment in issue.get_comments():
        if MARKER in (comment.body or "") and comment.user is not None and comment.user.login in authors:
            comment.edit(body)
            return "updated", comment
    return "created", issue.create_comment(body)


def artifact_url(repo: Any, ctx: GitHubContext) -> str:
    if not ctx.run_id.isdigit():
        return ""
    try:
        for artifact in repo.get_workflow_run(int(ctx.run_id)).get_artifacts():
            if artifact.name == ARTIFACT_NAME:
                return f"{ctx.server_url}/{ctx.repository}/actions/runs/{ctx.run_id}/artifacts/{artifact.id}"
    except Exception as exc:  # a link is a convenience: never fail the publish for it
        log.info("could not look up the artifact: %s", exc)
    return f"{ctx.run_url}#artifacts" if ctx.run_url else ""


def comment_body(result: dict[str, Any], images: Mapping[str, str], mermaid: list[str], links: Mapping[str, str]) -> str:
    from runbook.report import render_summary

    def render(with_mermaid: bool, with_failures: bool) -> str:
        shown = result if with_failures else {**result, "services": {
            name: {**stats, "errors": {}} for name, stats in result["services"].items()}}
        parts = [MARKER, render_summary(shown, images.__getitem__, mermaid=mermaid if with_mermaid else None, heading="##")]
        link_line = " · ".join(f"[{label}]({url})" for label, url in links.items() if url)
        if link_line:
            parts.append(link_line)
        parts.append(f"<sub>Updated {utc_now()} by the runbook's publish stage.</sub>")
        return "\n\n".join(parts)

    for with_mermaid, with_failures in ((True, True), (False, True), (False, False)):
        body = render(with_mermaid, with_failures)
        if len(body) <= BODY_LIMIT:
            return body
    return body[: BODY_LIMIT - 40] + "\n\n… (cut to GitHub's comment limit)"


def publish_run(config: RunConfig, folder: RunFolder, env: Mapping[str, str] = os.environ) -> Outcome:
    """Publish the run's summary to its pull request; NotPublished when there is nowhere to publish."""
    from github import GithubException

    ctx = GitHubContext.from_env(env)
    if not ctx.token:
        raise NotPublished("no GITHUB_TOKEN in the environment (a local run, or the token was not passed)")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", ctx.repository):
        raise NotPublished(f"GITHUB_REPOSITORY is not set to OWNER/REPO (it is {ctx.repository!r})")
    reported = (folder.report / "result.json").is_file()
    result = load_result(folder) if reported else None
    charts = load_charts(folder) if reported else {}
    pull_ref = resolve_pull_request(ctx, config, folder.read_run())
    gh = _github(ctx)
    number = pull_ref.number
    action = "reading the repository"
    try:
        repo = gh.get_repo(ctx.repository)
        action = f"reading pull request #{number}"
        pull = repo.get_pull(number)
        if pull_ref.expected_head and pull.head.sha != pull_ref.expected_head:
            if pull_ref.trusted:
                # A newer push: its own run will publish; these older numbers must not overwrite them.
                return Outcome("publish", False, f"not published: pull request #{number} has moved on to "
                               f"{pull.head.sha}; this run tested {pull_ref.expected_head}")
            raise PublishError(
                f"pull request #{number} is at {pull.head.sha}, but the run tested {pull_ref.expected_head} "
                f"(number from {pull_ref.source}): not publishing to it"
            )
        links = {"workflow run": ctx.run_url, "executed notebooks, CSVs and HTML report (artifact)": artifact_url(repo, ctx)}
        sha = ""
        if result is None:
            body = failure_body(folder.read_run(), links)
        else:
            run_key = re.sub(r"[^A-Za-z0-9_.-]", "-", ctx.run_id or folder.path.name)
            folder_path = f"runbook/pr-{number}/{run_key}"
            action = f"committing the charts to branch {config.assets_branch}"
            sha = upload_charts(
                repo, config.assets_branch,
                {f"{folder_path}/{name}": charts[key] for key, name in CHART_FILES.items()},
                f"Load-test charts for pull request #{number} (run {run_key})",
            )
            images = {key: f"{ctx.server_url}/{ctx.repository}/blob/{sha}/{folder_path}/{name}?raw=true"
                      for key, name in CHART_FILES.items()}
            body = comment_body(result, images, _mermaid(folder, set(result["services"])), links)
        action = f"commenting on pull request #{number}"
        how, comment = upsert_comment(repo.get_issue(number), body, comment_authors(gh))
    except GithubException as exc:
        raise explain(exc, action, ctx, number) from None
    url = getattr(comment, "html_url", "")
    details = [f"comment: {url}"]
    details.append(f"charts: commit {sha} on branch {config.assets_branch}" if sha else "no charts: the run stopped before its report")
    details.append(f"pull request from {pull_ref.source}")
    return Outcome("publish", True, f"{how} the summary comment on pull request #{number}", details)


def failure_body(run_record: Mapping[str, Any], links: Mapping[str, str]) -> str:
    """The comment for a run that stopped before its report: which stage failed and why."""
    from runbook.config import STAGES

    stages = run_record.get("stages") if isinstance(run_record.get("stages"), dict) else {}
    failed = [(name, info) for name, info in stages.items() if name in STAGES and isinstance(info, dict) and info.get("status") == "failed"]
    lines = [MARKER, "## Runbook failed ❌", ""]
    if failed:
        name, info = failed[0]
        lines += [f"The **{name}** stage failed:", "", f"> {safe_text(info.get('error', ''), 600)}", ""]
    else:
        lines += ["The run stopped before its report, and its record names no failed stage.", ""]
    lines.append("The executed notebooks and diagnostics are in the artifact.")
    link_line = " · ".join(f"[{label}]({url})" for label, url in links.items() if url)
    if link_line:
        lines += ["", link_line]
    lines += ["", f"<sub>Updated {utc_now()} by the runbook's publish stage.</sub>"]
    return "\n".join(lines)


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
