"""A local server on 127.0.0.1 that speaks the GitHub REST endpoints the publish stage calls.

Real PyGithub talks to it over real HTTP through GITHUB_API_URL. It keeps the
state the tests inspect: issue comments with their authors and edit counts, and
a tiny git object store (blobs, trees, commits, refs) behind the git data API.
Errors can be injected per method and path.

Where the publish stage depends on it, it behaves like the real API: comments are
paginated (30 a page, with a Link header), and a token with write access may edit
anyone's comment, so only the runbook's own author check protects people's comments.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from urllib.parse import parse_qsl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeGitHub:
    def __init__(self, repository: str = "octo/app", bot: str = "github-actions[bot]", user_status: int = 403) -> None:
        self.repository = repository
        self.bot = bot
        self.user_status = user_status  # GET /user: 403 for an Actions token
        self.pulls: dict[int, dict[str, Any]] = {}
        self.pull_files: dict[int, list[str]] = {}  # number -> the files the pull request changes
        self.comments: list[dict[str, Any]] = []
        self.blobs: dict[str, bytes] = {}
        self.trees: dict[str, dict[str, str]] = {}  # tree sha -> {path: blob sha}
        self.commits: dict[str, dict[str, Any]] = {}
        self.refs: dict[str, str] = {}
        self.errors: list[tuple[str, str, int, str]] = []  # (method, path regex, status, message)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.artifacts: dict[int, list[dict[str, Any]]] = {}
        self.jobs: dict[int, list[dict[str, Any]]] = {}
        self.error_budget: dict[int, int] = {}  # run id -> [{name, conclusion, steps: [{name, conclusion}]}]
        self.per_page = 30
        self.lock = threading.RLock()
        self.query: dict[str, str] = {}
        self.link = ""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "FakeGitHub":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- set-up helpers -----------------------------------------------------------------
    def add_pull(self, number: int, head_sha: str, fork: bool = False, branch: str = "feature") -> None:
        owner = "someone-else" if fork else self.repository.split("/")[0]
        self.pulls[number] = {"number": number, "head_sha": head_sha, "head_repo": f"{owner}/app", "branch": branch}

    def add_comment(self, number: int, body: str, login: str, kind: str = "User") -> dict[str, Any]:
        comment = {"id": 1000 + len(self.comments), "issue": number, "body": body, "login": login, "type": kind, "edits": 0}
        self.comments.append(comment)
        return comment

    def fail(self, method: str, path_regex: str, status: int, message: str, times: int = 0) -> None:
        """Answer method and path with an error: every time, or the first `times` times."""
        self.errors.append((method, path_regex, status, message))
        self.error_budget[len(self.errors) - 1] = times

    def file_at(self, commit_sha: str, path: str) -> bytes | None:
        commit = self.commits.get(commit_sha)
        if commit is None:
            return None
        blob = self.trees[commit["tree"]].get(path)
        return self.blobs.get(blob) if blob else None

    # -- JSON shapes -----------------------------------------------------------------------
    def _repo_url(self) -> str:
        return f"{self.url}/repos/{self.repository}"

    def _user(self, login: str, kind: str = "User") -> dict[str, Any]:
        return {"login": login, "id": abs(hash(login)) % 10**6, "type": kind, "url": f"{self.url}/users/{login}"}

    def _repo(self) -> dict[str, Any]:
        owner, name = self.repository.split("/")
        return {"id": 1, "name": name, "full_name": self.repository, "url": self._repo_url(),
                "html_url": f"https://github.invalid/{self.repository}", "default_branch": "main",
                "owner": self._user(owner, "Organization"), "private": False}

    def _pull(self, pull: dict[str, Any]) -> dict[str, Any]:
        n = pull["number"]
        owner = pull["head_repo"].split("/")[0]
        return {"id": n, "number": n, "state": "open", "title": f"PR {n}", "url": f"{self._repo_url()}/pulls/{n}",
                "html_url": f"https://github.invalid/{self.repository}/pull/{n}",
                "issue_url": f"{self._repo_url()}/issues/{n}",
                "head": {"sha": pull["head_sha"], "ref": pull["branch"], "label": f"{owner}:{pull['branch']}",
                         "repo": {"full_name": pull["head_repo"], "url": f"{self.url}/repos/{pull['head_repo']}", "name": "app"}},
                "base": {"sha": "0" * 40, "ref": "main", "label": "octo:main", "repo": self._repo()}}

    def _issue(self, n: int) -> dict[str, Any]:
        return {"id": n, "number": n, "title": f"PR {n}", "state": "open", "url": f"{self._repo_url()}/issues/{n}",
                "html_url": f"https://github.invalid/{self.repository}/pull/{n}",
                "comments_url": f"{self._repo_url()}/issues/{n}/comments", "pull_request": {"url": f"{self._repo_url()}/pulls/{n}"}}

    def _comment(self, c: dict[str, Any]) -> dict[str, Any]:
        return {"id": c["id"], "body": c["body"], "user": self._user(c["login"], c["type"]),
                "url": f"{self._repo_url()}/issues/comments/{c['id']}",
                "html_url": f"https://github.invalid/{self.repository}/pull/{c['issue']}#issuecomment-{c['id']}",
                "issue_url": f"{self._repo_url()}/issues/{c['issue']}",
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}

    def _commit(self, sha: str) -> dict[str, Any]:
        commit = self.commits[sha]
        return {"sha": sha, "url": f"{self._repo_url()}/git/commits/{sha}", "message": commit["message"],
                "tree": {"sha": commit["tree"], "url": f"{self._repo_url()}/git/trees/{commit['tree']}"},
                "parents": [{"sha": p, "url": f"{self._repo_url()}/git/commits/{p}"} for p in commit["parents"]]}

    def _ref(self, name: str) -> dict[str, Any]:
        sha = self.refs[name]
        return {"ref": f"refs/{name}", "url": f"{self._repo_url()}/git/refs/{name}",
                "object": {"sha": sha, "type": "commit", "url": f"{self._repo_url()}/git/commits/{sha}"}}

    # -- routing -----------------------------------------------------------------------------
    def handle(self, method: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path, headers))
            bare, _, query = path.partition("?")
            self.query = dict(parse_qsl(query))
            for i, (m, pattern, status, message) in enumerate(self.errors):
                if m == method and re.fullmatch(pattern, bare) and self.error_budget.get(i, 0) >= 0:
                    if self.error_budget.get(i):
                        self.error_budget[i] -= 1
                        if self.error_budget[i] == 0:
                            self.error_budget[i] = -1  # used up
                    return status, {"message": message, "documentation_url": "https://docs.github.invalid"}
            if headers.get("authorization", "") in ("", "token ", "Bearer "):
                return 401, {"message": "Requires authentication"}
            return self._route(method, bare, body)

    def _route(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        repo = f"/repos/{self.repository}"
        not_found = 404, {"message": "Not Found"}
        if method == "GET" and path == "/user":
            return (200, self._user("a-person")) if self.user_status == 200 else (self.user_status, {"message": "Resource not accessible by integration"})
        if not path.startswith(repo):
            return not_found
        rest = path[len(repo):]
        if method == "GET" and rest == "":
            return 200, self._repo()
        if method == "GET" and (m := re.fullmatch(r"/pulls/(\d+)", rest)):
            pull = self.pulls.get(int(m[1]))
            return (200, self._pull(pull)) if pull else not_found
        if method == "GET" and (m := re.fullmatch(r"/pulls/(\d+)/files", rest)):
            if int(m[1]) not in self.pulls:
                return not_found
            return 200, [{"sha": "0" * 40, "filename": name, "status": "modified", "additions": 1, "deletions": 0,
                          "changes": 1} for name in self.pull_files.get(int(m[1]), [])]
        if method == "GET" and (m := re.fullmatch(r"/issues/(\d+)", rest)):
            return (200, self._issue(int(m[1]))) if int(m[1]) in self.pulls else not_found
        if method == "GET" and rest == "/pulls":
            owner, _, branch = self.query.get("head", ":").partition(":")
            return 200, [self._pull(p) for p in self.pulls.values()
                         if not self.query.get("head") or (p["head_repo"].split("/")[0] == owner and p["branch"] == branch)]
        if method == "GET" and (m := re.fullmatch(r"/issues/(\d+)/comments", rest)):
            if int(m[1]) not in self.pulls:
                return not_found
            return self._page([self._comment(c) for c in self.comments if c["issue"] == int(m[1])], rest)
        if method == "POST" and (m := re.fullmatch(r"/issues/(\d+)/comments", rest)):
            comment = self.add_comment(int(m[1]), body["body"], self.bot, "Bot")
            return 201, self._comment(comment)
        if method == "PATCH" and (m := re.fullmatch(r"/issues/comments/(\d+)", rest)):
            for comment in self.comments:
                if comment["id"] == int(m[1]):
                    comment["body"] = body["body"]
                    comment["edits"] += 1
                    return 200, self._comment(comment)
            return not_found
        if method == "POST" and rest == "/git/blobs":
            data = base64.b64decode(body["content"]) if body.get("encoding") == "base64" else body["content"].encode()
            sha = hashlib.sha1(b"blob " + data).hexdigest()
            self.blobs[sha] = data
            return 201, {"sha": sha, "url": f"{self._repo_url()}/git/blobs/{sha}"}
        if method == "POST" and rest == "/git/trees":
            entries = dict(self.trees.get(body.get("base_tree", ""), {}))
            for item in body["tree"]:
                if item["sha"] not in self.blobs:
                    return 422, {"message": f"tree.sha {item['sha']} is not a valid blob"}
                entries[item["path"]] = item["sha"]
            sha = hashlib.sha1(json.dumps(sorted(entries.items())).encode()).hexdigest()
            self.trees[sha] = entries
            return 201, {"sha": sha, "url": f"{self._repo_url()}/git/trees/{sha}", "tree": []}
        if method == "POST" and rest == "/git/commits":
            if body["tree"] not in self.trees:
                return 422, {"message": "Tree SHA does not exist"}
            sha = hashlib.sha1(json.dumps([body["tree"], body.get("parents", []), body["message"], len(self.commits)]).encode()).hexdigest()
            self.commits[sha] = {"tree": body["tree"], "parents": body.get("parents", []), "message": body["message"]}
            return 201, self._commit(sha)
        if method == "GET" and (m := re.fullmatch(r"/git/commits/([0-9a-f]{40})", rest)):
            return (200, self._commit(m[1])) if m[1] in self.commits else not_found
        if method == "GET" and (m := re.fullmatch(r"/git/refs?/(heads/.+)", rest)):
            return (200, self._ref(m[1])) if m[1] in self.refs else not_found
        if method == "POST" and rest == "/git/refs":
            name = body["ref"].removeprefix("refs/")
            if name in self.refs:
                return 422, {"message": "Reference already exists"}
            if not re.fullmatch(r"heads/[A-Za-z0-9._/-]+", name):
                return 422, {"message": f"{body['ref']} is not a valid ref name."}
            self.refs[name] = body["sha"]
            return 201, self._ref(name)
        if method == "PATCH" and (m := re.fullmatch(r"/git/refs/(heads/.+)", rest)):
            name = m[1]
            if name not in self.refs:
                return 422, {"message": "Reference does not exist"}
            if not body.get("force") and self.refs[name] not in self.commits[body["sha"]]["parents"]:
                return 422, {"message": "Update is not a fast forward"}
            self.refs[name] = body["sha"]
            return 200, self._ref(name)
        if method == "GET" and (m := re.fullmatch(r"/actions/runs/(\d+)", rest)):
            return 200, {"id": int(m[1]), "url": f"{self._repo_url()}/actions/runs/{m[1]}",
                         "artifacts_url": f"{self._repo_url()}/actions/runs/{m[1]}/artifacts",
                         "jobs_url": f"{self._repo_url()}/actions/runs/{m[1]}/jobs"}
        if method == "GET" and (m := re.fullmatch(r"/actions/runs/(\d+)/jobs", rest)):
            jobs = [{"id": 70 + i, "run_id": int(m[1]), "name": job["name"], "status": "completed",
                     "conclusion": job["conclusion"], "url": f"{self._repo_url()}/actions/jobs/{70 + i}",
                     "steps": [{"name": step["name"], "status": "completed", "conclusion": step["conclusion"],
                                "number": n + 1} for n, step in enumerate(job["steps"])]}
                    for i, job in enumerate(self.jobs.get(int(m[1]), []))]
            return 200, {"total_count": len(jobs), "jobs": jobs}
        if method == "GET" and (m := re.fullmatch(r"/actions/runs/(\d+)/artifacts", rest)):
            items = self.artifacts.get(int(m[1]), [])
            return 200, {"total_count": len(items), "artifacts": items}
        return not_found

    def _page(self, items: list[Any], rest: str) -> tuple[int, Any]:
        """One page of a list, as GitHub serves it: per_page items, and a Link header to the next."""
        per_page = int(self.query.get("per_page") or self.per_page)
        page = int(self.query.get("page") or 1)
        chunk = items[(page - 1) * per_page: page * per_page]
        if page * per_page < len(items):
            self.link = f'<{self._repo_url()}{rest}?per_page={per_page}&page={page + 1}>; rel="next"'
        return 200, chunk

    def _handler(self) -> Any:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes on a kept-alive connection: without this the body
            # waits for the client's delayed acknowledgement of the headers, 40 ms a request.
            disable_nagle_algorithm = True

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else {}
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake.lock:
                    fake.link = ""
                    status, answer = fake.handle(method, self.path, body, headers)
                    link = fake.link
                data = json.dumps(answer).encode()
                self.send_response(status)
                if link:
                    self.send_header("Link", link)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

            def do_PATCH(self) -> None:  # noqa: N802
                self._serve("PATCH")

            def log_message(self, *args: object) -> None:
                pass

        return Handler
