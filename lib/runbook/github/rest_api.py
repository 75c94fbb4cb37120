"""GitHub plumbing for the publish stage: the Actions context, the pull request, the API calls.

Everything comes from the standard GitHub Actions environment: GITHUB_API_URL
(GitHub Enterprise, or a test server), GITHUB_SERVER_URL, GITHUB_REPOSITORY,
GITHUB_TOKEN, the event from GITHUB_EVENT_PATH. The token is read from the
environment only and never written anywhere.

What publishing writes (the comment's body) lives in publish.py; this module only
knows where to write it and how.
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

from runbook.core.config import RunConfig
from runbook.core.errors import PublishError

log = logging.getLogger(__name__)

ARTIFACT_NAME = "runbook-results"
REPORT_ARTIFACT = "report.html"  # uploaded unzipped, so named after the file
DEFAULT_AUTHORS = ("github-actions[bot]",)
SHA = re.compile(r"^[0-9a-f]{40}$")


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
    def workflow_run(self) -> Mapping[str, Any]:
        return self.event.get("workflow_run") or {}

    @property
    def run_url(self) -> str:
        if self.workflow_run.get("html_url"):
            return str(self.workflow_run["html_url"])
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}" if self.run_id else ""

    @property
    def head_repository(self) -> str:
        """The repository the tested branch lives in (a fork's own name for a fork)."""
        return str((self.workflow_run.get("head_repository") or {}).get("full_name") or "")

    @property
    def head_branch(self) -> str:
        return str(self.workflow_run.get("head_branch") or "")


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


def positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def nowhere_to_publish(ctx: GitHubContext, config: RunConfig) -> str:
    """Why there is nothing to publish to (no token, no repository, no pull request); empty when there is."""
    if not ctx.token:
        return "no GITHUB_TOKEN in the environment (a local run, or the token was not passed)"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", ctx.repository):
        return f"GITHUB_REPOSITORY is not set to OWNER/REPO (it is {ctx.repository!r})"
    if config.pr or (ctx.event.get("pull_request") or {}).get("number"):
        return ""
    if not ctx.workflow_run:
        return "no pull request: this is not a pull_request or workflow_run event and --pr was not given"
    if ctx.workflow_run.get("event") not in (None, "pull_request", "pull_request_target"):
        return f"the runbook run was triggered by {ctx.workflow_run.get('event')!r}, not a pull request"
    return ""


def resolve_pull_request(ctx: GitHubContext, config: RunConfig, run_record: Mapping[str, Any], repo: Any) -> PullRequestRef:
    """The pull request to comment on, and the commit it must be at (nowhere_to_publish() said there is one).

    For a workflow_run event the event itself is trusted: its list of pull requests (a branch of
    this repository) or, for a fork (an empty list), the head repository and branch it names.
    The number recorded in the run's artifact is untrusted data, used only to choose among the
    event's candidates, or as a last resort when it is checked against the tested commit.
    """
    workflow_run = ctx.workflow_run
    head = str(workflow_run.get("head_sha") or "")
    if config.pr:
        return PullRequestRef(config.pr, head, "--pr")
    pull = ctx.event.get("pull_request") or {}
    if pull.get("number"):
        number = positive_int(pull.get("number"))
        if number is None:
            raise PublishError(f"the event's pull_request.number is not a positive integer: {pull.get('number')!r}")
        return PullRequestRef(number, str((pull.get("head") or {}).get("sha") or ""), "the pull_request event")
    if nowhere_to_publish(ctx, config):
        raise PublishError(f"nothing to publish to: {nowhere_to_publish(ctx, config)}")
    recorded = positive_int((run_record.get("github") or {}).get("pr"))
    listed = [n for n in (positive_int((p or {}).get("number")) for p in workflow_run.get("pull_requests") or []) if n]
    if listed:
        # Two pull requests from one branch are both listed: each run records its own.
        number = recorded if recorded in listed else listed[0]
        return PullRequestRef(number, head, "the workflow_run event")
    found = pulls_from_head(repo, ctx.head_repository, ctx.head_branch)
    if found:
        number = recorded if recorded in found else found[0]
        return PullRequestRef(number, head, f"the workflow_run event's head {ctx.head_repository}:{ctx.head_branch}")
    if recorded is None:
        raise PublishError(
            f"no open pull request from {ctx.head_repository or '?'}:{ctx.head_branch or '?'}, and the run's data names "
            f"no valid pull request number (github.pr={(run_record.get('github') or {}).get('pr')!r}); not publishing"
        )
    if not SHA.match(head):
        raise PublishError("the workflow_run event has no head_sha to check the pull request against; not publishing")
    return PullRequestRef(recorded, head, "the run's artifact, checked against the pull request's head", trusted=False)


def pulls_from_head(repo: Any, head_repository: str, head_branch: str) -> list[int]:
    """Open pull requests whose head is head_repository:head_branch (how a fork's is found)."""
    if "/" not in head_repository or not head_branch:
        return []
    owner = head_repository.split("/", 1)[0]
    return [p.number for p in repo.get_pulls(state="open", head=f"{owner}:{head_branch}")
            if p.head.repo is not None and p.head.repo.full_name == head_repository and p.head.ref == head_branch]


def same_head_branch(pull: Any, ctx: GitHubContext) -> bool:
    """True when the pull request's head is the branch the run tested (it may have moved on since)."""
    head_repo = pull.head.repo.full_name if pull.head.repo is not None else ""
    return bool(ctx.head_repository) and head_repo == ctx.head_repository and pull.head.ref == ctx.head_branch


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
    elif status == 422 and ruleset_refusal(exc):
        hint = ("a repository rule (a ruleset or branch protection) refuses the push to the assets branch: let the "
                "Actions bot push to it, or choose another branch with --assets-branch")
    elif status == 422:
        hint = "GitHub found the request invalid: check the assets branch name and the comment size"
    else:
        hint = "see GitHub's message"
    return PublishError(f"GitHub answered {status} {message!r} while {action}: {hint}")


RETRIES = 3


def client(ctx: GitHubContext) -> Any:
    """A PyGithub client for the context's API and token."""
    from urllib.parse import urlparse

    from github import Auth, Github, GithubRetry

    # PyGithub spaces writes a second apart, as GitHub asks to avoid secondary rate limits;
    # an API server on this machine's loopback (a test double) needs no such care.
    local = urlparse(ctx.api_url).hostname in ("127.0.0.1", "localhost", "::1")
    pacing = {"seconds_between_requests": 0.0, "seconds_between_writes": 0.0} if local else {}
    # PyGithub's own retry: a 5xx or a secondary rate limit is tried again (up to 3 times, backing off),
    # so that one 502 does not cost the comment; after the last try GitHub's own answer is what is reported.
    retry = GithubRetry(total=RETRIES, backoff_factor=0.0 if local else 1.0, raise_on_status=False)
    return Github(auth=Auth.Token(ctx.token), base_url=ctx.api_url, timeout=30, retry=retry, **pacing)


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
            # A repository rule's refusal is final: trying again cannot help.
            if exc.status != 422 or ruleset_refusal(exc) or attempt == attempts - 1:
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


def upsert_comment(pull: Any, marker: str, body: str, authors: set[str]) -> tuple[str, Any]:
    """Update the runbook's own comment (marker and author both match) or create it; touch no other.

    Through the pull request's own issue-comment calls: a GET of the issue itself may need an
    `issues` permission that the publishing job does not have on a private repository. A token
    with write access may edit anyone's comment, so the author check is what protects them.
    """
    for comment in pull.get_issue_comments():
        if marker in (comment.body or "") and comment.user is not None and comment.user.login in authors:
            comment.edit(body)
            return "updated", comment
    return "created", pull.create_issue_comment(body)


def artifact_url(repo: Any, ctx: GitHubContext, name: str = ARTIFACT_NAME) -> str:
    """The address of the run's artifact of that name; the run's artifacts list when it cannot be found."""
    if not ctx.run_id.isdigit():
        return ""
    try:
        for artifact in repo.get_workflow_run(int(ctx.run_id)).get_artifacts():
            if artifact.name == name:
                return f"{ctx.server_url}/{ctx.repository}/actions/runs/{ctx.run_id}/artifacts/{artifact.id}"
    except Exception as exc:  # a link is a convenience: never fail the publish for it
        log.warning("could not look up the artifact: %s%s", exc, _actions_read_hint(exc))
    return f"{ctx.run_url}#artifacts" if ctx.run_url else ""


def failed_steps(repo: Any, ctx: GitHubContext) -> list[tuple[str, str]]:
    """(job, step) for each step of the triggering run that failed; empty when unknown."""
    if not ctx.run_id.isdigit():
        return []
    try:
        failed = []
        for job in repo.get_workflow_run(int(ctx.run_id)).jobs():
            steps = [s.name for s in job.steps or [] if s.conclusion == "failure"]
            if job.conclusion == "failure":
                failed += [(job.name, step) for step in steps] or [(job.name, "")]
        return failed
    except Exception as exc:  # the comment still says that the run failed, and links to it
        log.warning("could not list the run's jobs: %s%s", exc, _actions_read_hint(exc))
        return []


#: Where the pull request's own code decides how it is measured: the runbook, the load profile, the stages'
#: notebooks, the installed packages, the workflows.
MEASURING_PATHS = ("lib/", "load_test/", "notebooks/", "requirements", ".github/")


def measuring_files(pull: Any, limit: int = 3000) -> list[str] | None:
    """The pull request's files that change how it is measured; None when its file list cannot be read."""
    try:
        names = [f.filename for _, f in zip(range(limit), pull.get_files())]
    except Exception as exc:  # the warning then says that it could not check
        log.warning("could not list the pull request's files: %s", exc)
        return None
    return [name for name in names if name.startswith(MEASURING_PATHS)]


def _actions_read_hint(exc: Exception) -> str:
    """A 403 on a workflow run's jobs or artifacts: the token lacks `actions: read`."""
    if getattr(exc, "status", None) == 403:
        return " (the publishing job needs `permissions: actions: read` to read the run's jobs and artifacts)"
    return ""


def ruleset_refusal(exc: Exception) -> bool:
    """A 422 from a repository rule (a ruleset on the assets branch), not from a race with another publish."""
    data = getattr(exc, "data", None)
    message = str(data.get("message", "")) if isinstance(data, dict) else str(data or "")
    return getattr(exc, "status", None) == 422 and "rule" in message.lower()
