"""The publish stage with real PyGithub over real HTTP to a local server that speaks the GitHub REST API."""

import io
import json
import logging
import re
import shutil

import numpy as np
import pytest
from matplotlib.image import imread

from conftest import run_cli
from runbook import stages
from runbook.core.config import RunConfig
from runbook.core.errors import RunbookError
from runbook.core.errors import PublishError, Required
from runbook.github.publish import MARKER, BODY_LIMIT, comment_body, publish_run
from runbook.report.build import build_report
from runbook.core.rundir import RunFolder
from runbook.targets.base import Outcome
from support.fake_github import FakeGitHub
from support.run_data import write_load_test

HEAD = "a" * 40
TOKEN = "ghs_PublishTestToken0123456789abcdefXYZ"
IMAGE = re.compile(r"\((https?://[^)]+/blob/([0-9a-f]{40})/([^)?]+)\?raw=true)\)")


@pytest.fixture
def run(tmp_path):
    folder = RunFolder(tmp_path / "run").create()
    rows = [(1000 + i * 0.1, name, 3 + i % 5, 1, "") for i in range(80) for name in ("foo", "bar")]
    write_load_test(folder.load_test, rows)
    build_report(folder.load_test, folder.report, "kind", "kind", HEAD)
    return folder


@pytest.fixture
def github():
    with FakeGitHub() as fake:
        fake.add_pull(7, HEAD)
        yield fake


def event_file(tmp_path, event):
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return str(path)


def env_for(github, tmp_path, event=None, **extra):
    env = {"GITHUB_API_URL": github.url, "GITHUB_SERVER_URL": "https://github.invalid", "GITHUB_REPOSITORY": "octo/app",
           "GITHUB_TOKEN": TOKEN, "GITHUB_RUN_ID": "555", "GITHUB_EVENT_NAME": "pull_request",
           "GITHUB_EVENT_PATH": event_file(tmp_path, event or {"pull_request": {"number": 7, "head": {"sha": HEAD}}})}
    env.update(extra)
    return env


def config(run, **params):
    return RunConfig.from_parameters(target="local", run_dir=str(run.path), **params)


def test_first_publish_creates_one_comment_whose_images_exist_at_that_commit(run, github, tmp_path):
    outcome = publish_run(config(run), run, env_for(github, tmp_path))
    assert "created the summary comment on pull request #7" in outcome.summary
    (comment,) = github.comments
    body = comment["body"]
    assert body.startswith(MARKER) and comment["login"] == "github-actions[bot]"
    assert "Load test passed" in body and "| `foo` |" in body and "| `bar` |" in body
    assert "kind: an ephemeral 2-node KinD cluster" in body and HEAD in body
    assert "100 users" not in body and "10 users, spawn rate 2/s" in body  # the run's own profile
    assert "xychart-beta" in body and "[workflow run](https://github.invalid/octo/app/actions/runs/555)" in body
    images = IMAGE.findall(body)
    assert len(images) == 3
    for url, sha, path in images:
        assert url.startswith("https://github.invalid/octo/app/blob/")
        # The picture written anew (only its pixels): the same image as the chart the report drew.
        committed = github.file_at(sha, path)
        assert committed.startswith(b"\x89PNG") and np.array_equal(
            imread(io.BytesIO(committed)), imread(run.report / path.rsplit("/", 1)[1]))
        assert path.startswith("runbook/pr-7/555/")
    assert github.refs["heads/runbook-assets"] == images[0][1]


def test_a_second_run_updates_the_same_comment_and_old_images_stay(run, github, tmp_path):
    publish_run(config(run), run, env_for(github, tmp_path))
    first_images = IMAGE.findall(github.comments[0]["body"])
    outcome = publish_run(config(run), run, env_for(github, tmp_path, GITHUB_RUN_ID="556"))
    assert "updated the summary comment" in outcome.summary
    (comment,) = github.comments
    assert comment["edits"] == 1
    second_images = IMAGE.findall(comment["body"])
    assert {sha for _, sha, _ in second_images} != {sha for _, sha, _ in first_images}
    for _, sha, path in first_images:  # the first comment's pictures are still there at their commit
        assert github.file_at(sha, path) is not None
    new_commit = github.refs["heads/runbook-assets"]
    assert github.commits[new_commit]["parents"] == [first_images[0][1]]


def test_other_comments_are_never_touched(run, github, tmp_path):
    human = github.add_comment(7, "LGTM", "a-reviewer")
    impostor = github.add_comment(7, f"{MARKER}\nI copied the marker", "someone")
    other_bot = github.add_comment(7, "coverage 93%", "codecov[bot]", "Bot")
    publish_run(config(run), run, env_for(github, tmp_path))
    publish_run(config(run), run, env_for(github, tmp_path))
    assert [c["body"] for c in (human, impostor, other_bot)] == ["LGTM", f"{MARKER}\nI copied the marker", "coverage 93%"]
    assert all(c["edits"] == 0 for c in (human, impostor, other_bot))
    ours = [c for c in github.comments if c["login"] == "github-actions[bot]"]
    assert len(ours) == 1 and ours[0]["edits"] == 1
    assert not [r for r in github.requests if r[0] == "PATCH" and r[1].endswith(f"/comments/{impostor['id']}")]


def fork_event(head=HEAD):
    return {"workflow_run": {"id": 9001, "event": "pull_request", "head_sha": head, "pull_requests": [],
                             "html_url": "https://github.invalid/octo/app/actions/runs/9001",
                             "head_repository": {"full_name": "someone-else/app"}}}


def test_a_fork_style_workflow_run_event_takes_the_number_from_the_run_and_checks_it(run, github, tmp_path):
    github.pulls.clear()
    github.add_pull(7, HEAD, fork=True)
    run.write_run({**run.read_run(), "github": {"pr": 7, "head_sha": HEAD}})
    github.artifacts[9001] = [{"id": 42, "name": "runbook-results"}, {"id": 43, "name": "report.html"}]
    outcome = publish_run(config(run), run, env_for(github, tmp_path, fork_event(), GITHUB_EVENT_NAME="workflow_run", GITHUB_RUN_ID="1"))
    assert "pull request #7" in outcome.summary and "checked against the pull request's head" in outcome.details[-1]
    body = github.comments[0]["body"]
    assert "/runbook/pr-7/9001/" in body or "runbook/pr-7/9001/" in body
    assert "(https://github.invalid/octo/app/actions/runs/9001/artifacts/42)" in body
    assert "[the whole report (report.html)](https://github.invalid/octo/app/actions/runs/9001/artifacts/43)" in body
    assert "(https://github.invalid/octo/app/actions/runs/9001)" in body


def test_a_number_that_does_not_match_the_tested_commit_is_refused(run, github, tmp_path):
    run.write_run({**run.read_run(), "github": {"pr": 7}})
    with pytest.raises(PublishError, match=f"pull request #7 is at {HEAD}, but the run tested {'b' * 40}"):
        publish_run(config(run), run, env_for(github, tmp_path, fork_event("b" * 40), GITHUB_EVENT_NAME="workflow_run"))
    assert github.comments == [] and github.refs == {}


@pytest.mark.parametrize("recorded", ["7", 7.0, True, -3, None])
def test_a_pull_request_number_must_be_a_positive_integer(run, github, tmp_path, recorded):
    run.write_run({**run.read_run(), "github": {"pr": recorded}})
    with pytest.raises(PublishError, match="no valid pull request number"):
        publish_run(config(run), run, env_for(github, tmp_path, fork_event(), GITHUB_EVENT_NAME="workflow_run"))


@pytest.mark.parametrize(
    ("method", "path", "status", "message", "expected"),
    [
        ("GET", r"/repos/octo/app/pulls/7", 401, "Bad credentials", "token is invalid or expired"),
        ("POST", r"/repos/octo/app/git/blobs", 403, "Resource not accessible by integration",
         "`permissions: pull-requests: write` and `contents: write`"),
        ("GET", r"/repos/octo/app/pulls/7", 404, "Not Found", "octo/app pull request #7 was not found"),
        ("POST", r"/repos/octo/app/git/refs", 422, "Reference name is invalid", "check the assets branch name"),
        ("POST", r"/repos/octo/app/issues/7/comments", 403, "Resource not accessible by integration", "read-only"),
    ],
)
def test_api_errors_say_what_to_change(run, github, tmp_path, method, path, status, message, expected):
    github.fail(method, path, status, message)
    with pytest.raises(PublishError) as caught:
        publish_run(config(run), run, env_for(github, tmp_path))
    text = str(caught.value)
    assert f"GitHub answered {status} {message!r}" in text and expected in text
    assert TOKEN not in text


def test_no_token_or_no_pull_request_is_not_published(run, github, tmp_path):
    env = env_for(github, tmp_path)
    env.pop("GITHUB_TOKEN")
    # Nothing to publish to is a result ("not published" and why), not an error, unless publishing is required.
    for make_env, why in [  # each env writes the event file: made one at a time
        (lambda: env, "no GITHUB_TOKEN"),
        (lambda: env_for(github, tmp_path, {"ref": "refs/heads/main"}, GITHUB_EVENT_NAME="push"), "no pull request"),
        (lambda: env_for(github, tmp_path, {"workflow_run": {"event": "push", "head_sha": HEAD}}), "triggered by 'push'"),
    ]:
        env_ = make_env()
        outcome = publish_run(config(run), run, env_)
        assert not outcome.applies and outcome.summary.startswith("not published: ") and why in outcome.summary
        with pytest.raises(Required, match=f"--require-publish: nothing was published: .*{why}"):
            publish_run(config(run, require_publish=True), run, env_)
    assert github.requests == [] and github.comments == []


def test_the_stage_passes_without_a_token_unless_publishing_is_required(run, monkeypatch):
    for name in ("GITHUB_TOKEN", "GITHUB_EVENT_PATH", "GITHUB_REPOSITORY"):
        monkeypatch.delenv(name, raising=False)
    outcome = stages.publish(config(run))
    assert not outcome.applies and "not published: no GITHUB_TOKEN" in outcome.summary
    with pytest.raises(RunbookError, match="--require-publish: nothing was published: no GITHUB_TOKEN"):
        stages.publish(config(run, require_publish=True))


#: Texts that would render in a bot's comment: HTML, a mention, a link, an image, a bare URL, a cross-reference.
HOSTILE = "<img src=x> @everyone [click](https://evil.example/a) ![i](https://evil.example/i.png) " \
          "https://evil.example/bare other/repo#123 `tick` | pipe"
PAYLOADS = ("evil.example", "@everyone", "other/repo#123", "src=x", "click", "tick")


def rendered_outside_code(body):
    """What GitHub's renderer (cmark-gfm, raw HTML let through) shows outside code spans."""
    import cmarkgfm
    from cmarkgfm.cmark import Options

    html = cmarkgfm.github_flavored_markdown_to_html(body, options=Options.CMARK_OPT_UNSAFE)
    assert "<code>" in html
    return re.sub(r"<code>.*?</code>", "", html, flags=re.S)


def test_run_data_renders_inert_and_is_checked(run, github, tmp_path):
    result = json.loads((run.report / "result.json").read_text())
    result["services"]["foo"]["failures"] = 1
    result["services"]["foo"]["errors"] = {HOSTILE: 1}
    result["config"]["endpoint"] = "http://127.0.0.1:8080 see https://evil.example/bare"
    result["target_description"] = "<script>evil</script>"
    (run.report / "result.json").write_text(json.dumps(result))
    publish_run(config(run), run, env_for(github, tmp_path))
    body = github.comments[0]["body"]
    outside = rendered_outside_code(body)
    assert not [p for p in PAYLOADS if p in outside]
    assert "<script>" not in body and "kind: an ephemeral" in body
    # The text itself is all there, inside one code span per cell, the table intact.
    assert "`` <img src=x> @everyone [click](https://evil.example/a)" in body and "\\| pipe ``" in body
    result["services"]["foo"]["p50_ms"] = "fast"
    (run.report / "result.json").write_text(json.dumps(result))
    with pytest.raises(PublishError, match="services.foo.p50_ms is not a number"):
        publish_run(config(run), run, env_for(github, tmp_path))
    (run.report / "throughput.png").write_bytes(b"<html>not a png</html>")
    result["services"]["foo"]["p50_ms"] = 1.0
    (run.report / "result.json").write_text(json.dumps(result))
    with pytest.raises(PublishError, match="throughput.png is missing or not a PNG"):
        publish_run(config(run), run, env_for(github, tmp_path))


IMAGES = {"throughput": "u1", "latency": "u2", "percentiles": "u3"}


def small_result(names=("foo",), failures=0, errors=0, status="passed"):
    """A result document of one request per service, each with `errors` error texts of about 190 characters."""
    numbers = {"requests": 1, "failures": failures, "rps": 1.0, "min_ms": 1.0, "p50_ms": 1.0, "p90_ms": 1.0,
               "p95_ms": 1.0, "p99_ms": 1.0, "max_ms": 1.0}
    return {"status": status, "target": "local", "target_description": "local", "commit": HEAD,
            "config": {"users": 1, "spawn_rate": 1, "run_time_s": 1, "wait_min_s": 0, "wait_max_s": 1,
                       "request_timeout_s": 5, "endpoint": "x"},
            "services": {name: {**numbers, "errors": {f"error {j} " + "x" * 180: 1 for j in range(errors)}} for name in names}}


def test_the_body_stays_under_githubs_limit():
    result = small_result([f"svc{i}" for i in range(60)], failures=1, errors=10, status="failed")
    images = IMAGES
    body = comment_body(result, images, ["```mermaid\nxychart-beta\n```" * 100], {"run": "u"})
    assert len(body) <= BODY_LIMIT and body.startswith(MARKER)
    assert "| `svc59` |" in body  # the table stays; the failure details and Mermaid go first


def test_the_publish_notebook_end_to_end_leaves_no_trace_of_the_token(run, github, tmp_path):
    env = env_for(github, tmp_path)
    done = run_cli("run", "--target", "local", "--stages", "publish", "--output-dir", str(run.path), "--require-publish", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[1/1] publish passed" in done.stdout
    assert len(github.comments) == 1
    executed = (run.notebooks / "07_publish.ipynb").read_text()
    assert "created the summary comment on pull request #7" in executed
    assert all(r[2].get("authorization") == f"token {TOKEN}" or r[2].get("authorization") == f"Bearer {TOKEN}"
               for r in github.requests if r[1] != "/user")
    assert TOKEN not in done.stdout + done.stderr
    leaks = [str(p) for p in run.path.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert leaks == []


def test_a_run_that_stopped_before_its_report_gets_a_comment_that_says_where(run, github, tmp_path):
    (run.report / "result.json").unlink()
    run.write_run({"stages": {"provision": {"status": "passed"},
                              "deploy": {"status": "failed", "error": "WaitTimeout: gave up waiting for deployment runbook/foo " + HOSTILE},
                              "verify": {"status": "skipped"}}})
    outcome = publish_run(config(run), run, env_for(github, tmp_path))
    body = github.comments[0]["body"]
    assert body.startswith(MARKER) and "Runbook failed" in body and "The **deploy** stage failed" in body
    assert "gave up waiting for deployment runbook/foo <img src=x>" in body
    assert not [p for p in PAYLOADS if p in rendered_outside_code(body)]
    assert github.refs == {} and "no charts" in outcome.details[1]


def test_results_of_a_superseded_commit_are_not_published(run, github, tmp_path):
    event = {"workflow_run": {"id": 9002, "event": "pull_request", "head_sha": "c" * 40,
                              "pull_requests": [{"number": 7}]}}
    outcome = publish_run(config(run), run, env_for(github, tmp_path, event, GITHUB_EVENT_NAME="workflow_run"))
    assert not outcome.applies and f"has moved on to {HEAD}" in outcome.summary
    assert github.comments == [] and github.refs == {}


def failed_run_event(pull_requests, head_repo="octo/app", head=HEAD, branch="feature"):
    return {"workflow_run": {"id": 9100, "event": "pull_request", "conclusion": "failure", "head_sha": head,
                             "head_branch": branch, "pull_requests": pull_requests,
                             "html_url": "https://github.invalid/octo/app/actions/runs/9100",
                             "head_repository": {"full_name": head_repo}}}


@pytest.mark.parametrize("fork", [False, True])
def test_a_runbook_run_that_failed_before_its_upload_still_gets_a_comment(github, tmp_path, fork):
    github.pulls.clear()
    github.add_pull(7, HEAD, fork=fork)
    github.add_pull(3, "d" * 40, fork=not fork)  # another pull request, from another head: never chosen
    github.jobs[9100] = [{"name": "Runbook on kind", "conclusion": "failure",
                          "steps": [{"name": "Check out", "conclusion": "success"},
                                    {"name": "Install the runbook", "conclusion": "failure"},
                                    {"name": "Run the runbook", "conclusion": "skipped"}]}]
    # A fork's pull request is not listed in the event: it is found from the head repository and branch.
    event = failed_run_event([] if fork else [{"number": 7}], "someone-else/app" if fork else "octo/app")
    empty = tmp_path / "no-artifact"  # what the publish workflow has when the download found nothing
    env = env_for(github, tmp_path, event, GITHUB_EVENT_NAME="workflow_run", GITHUB_RUN_ID="1")
    done = run_cli("run", "--target", "local", "--stages", "publish", "--output-dir", str(empty), "--require-publish", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    (comment,) = github.comments
    body = comment["body"]
    assert comment["issue"] == 7 and body.startswith(MARKER) and "Runbook failed" in body
    assert "before it produced any results" in body and "step ` Install the runbook ` failed" in body
    assert "(https://github.invalid/octo/app/actions/runs/9100)" in body and "artifact" not in body
    assert github.refs == {}


def test_a_forks_newer_push_is_skipped_not_failed(run, github, tmp_path):
    github.pulls.clear()
    github.add_pull(7, HEAD, fork=True)
    run.write_run({**run.read_run(), "github": {"pr": 7}})
    event = failed_run_event([], "someone-else/app", head="b" * 40)
    outcome = publish_run(config(run, require_publish=True), run,
                          env_for(github, tmp_path, event, GITHUB_EVENT_NAME="workflow_run"))
    assert not outcome.applies and f"has moved on to {HEAD}" in outcome.summary
    assert github.comments == [] and github.refs == {}


def test_of_two_pull_requests_from_one_branch_the_run_s_own_is_chosen(run, github, tmp_path):
    github.add_pull(8, HEAD)
    run.write_run({**run.read_run(), "github": {"pr": 7}})
    event = {"workflow_run": {"id": 9003, "event": "pull_request", "head_sha": HEAD,
                              "pull_requests": [{"number": 8}, {"number": 7}]}}
    publish_run(config(run), run, env_for(github, tmp_path, event, GITHUB_EVENT_NAME="workflow_run"))
    assert [c["issue"] for c in github.comments] == [7]
    run.write_run({**run.read_run(), "github": {"pr": 99}})  # not listed: the event's first
    publish_run(config(run), run, env_for(github, tmp_path, event, GITHUB_EVENT_NAME="workflow_run"))
    assert sorted(c["issue"] for c in github.comments) == [7, 8]


def test_the_comment_is_found_past_the_first_page_and_no_issue_is_read(run, github, tmp_path):
    for i in range(40):
        github.add_comment(7, f"review note {i}", "a-reviewer")
    github.add_comment(7, "Deployed to preview", "github-actions[bot]", "Bot")  # same bot, no marker
    publish_run(config(run), run, env_for(github, tmp_path))
    publish_run(config(run), run, env_for(github, tmp_path))
    ours = [c for c in github.comments if MARKER in c["body"]]
    assert len(ours) == 1 and ours[0]["edits"] == 1
    assert [c["body"] for c in github.comments if c["login"] == "github-actions[bot]"][0] == "Deployed to preview"
    assert any("page=2" in path for _, path, _ in github.requests)
    assert not [path for method, path, _ in github.requests if method == "GET" and re.fullmatch(r".*/issues/\d+", path)]


def comparison_section(verdict="slower"):
    metric = {"change": 0.0, "low": -0.1, "high": 0.1, "verdict": "no significant change", "limit": 0.25,
              "beyond_limit": False, "candidate": 2.0, "baseline": 2.0, "p_value": 0.5}
    foo = {m: dict(metric) for m in ("p50", "p95", "p99", "failure_ratio")}
    foo["p95"] = {**metric, "change": 0.5, "low": 0.3, "high": 0.7, "verdict": verdict, "beyond_limit": False,
                  "candidate": 3.0, "p_value": 0.001}
    foo["p99"] = {**metric, "change": None, "low": None, "high": None, "verdict": "too few requests", "p_value": None}
    return {"baseline": {"ref": "HEAD^1", "sha": "b" * 40}, "available": True, "why": "", "design": "interleaved",
            "warmup_requests": 1, "measured_s": 30, "block_s": 2.0, "resamples": 2000, "confidence": 0.95, "family_alpha": 0.05,
            "verdict": "slower", "failed": False,
            "headline": "all fine @everyone [click](https://evil.example)", "services": {"foo": foo}}


def test_the_comparison_reaches_the_comment_rebuilt_from_its_numbers(run, github, tmp_path):
    result = json.loads((run.report / "result.json").read_text())
    result["comparison"] = comparison_section()
    (run.report / "result.json").write_text(json.dumps(result))
    (run.report / "change.png").write_bytes((run.report / "throughput.png").read_bytes())
    publish_run(config(run), run, env_for(github, tmp_path))
    body = github.comments[0]["body"]
    # The headline is rebuilt from the numbers (the artifact's own text is not trusted), and the
    # limit's verdict too: +50% is beyond 25%, whatever beyond_limit said.
    assert ("**Against the base**: foo p95 +50% (+30%..+70%), over the 25% limit (not judged, too few requests: "
            "foo p99)") in body
    assert "| `foo` | p99 | 2.0 ms | 2.0 ms | – | too few requests | 25% |" in body
    assert "at least 5 successful requests above it (p50: 10, p95: 100, p99: 500 a side)" in body
    assert "evil.example" not in body and "all fine" not in body
    assert "| `foo` | p95 | 2.0 ms | 3.0 ms | +50% (+30%..+70%) | slower (over the limit) | 25% |" in body
    assert "Load test failed" in body  # the artifact said passed; its own numbers say otherwise
    assert len(IMAGE.findall(body)) == 4 and "change.png" in body
    result["comparison"] = comparison_section(verdict="much slower")
    (run.report / "result.json").write_text(json.dumps(result))
    with pytest.raises(PublishError, match="comparison.services.foo.p95 is missing or has no known verdict"):
        publish_run(config(run), run, env_for(github, tmp_path))
    # A result this publisher cannot read still gets a comment, saying so (and the stage fails all the same).
    body = github.comments[0]["body"]
    assert body.startswith(MARKER) and "## Runbook results could not be read" in body
    assert "` result.json: comparison.services.foo.p95 is missing or has no known verdict `" in body


def test_the_chart_upload_builds_again_when_the_branch_moved(run, github, tmp_path):
    publish_run(config(run), run, env_for(github, tmp_path))  # the assets branch exists now
    # Another publish moves the branch between our read and our update: GitHub refuses the non-fast-forward once.
    github.fail("PATCH", r"/repos/octo/app/git/refs/heads/runbook-assets", 422, "Update is not a fast forward", times=1)
    outcome = publish_run(config(run), run, env_for(github, tmp_path, GITHUB_RUN_ID="557"))
    assert outcome.applies
    patches = [r for r in github.requests if r[0] == "PATCH" and "/git/refs/" in r[1]]
    assert len(patches) == 2 and "runbook/pr-7/557/throughput.png" in github.comments[0]["body"]


def test_the_server_side_reaches_the_comment_as_lines_not_charts(run, github, tmp_path):
    from support.run_data import write_server_samples

    write_server_samples(run.load_test, foo_counted=80, bar_counted=80)
    build_report(run.load_test, run.report, "kind", "kind", HEAD)
    result = json.loads((run.report / "result.json").read_text())
    result["server"]["notes"] = [HOSTILE]
    (run.report / "result.json").write_text(json.dumps(result))
    publish_run(config(run), run, env_for(github, tmp_path))
    body = github.comments[0]["body"]
    assert "#### Server side" in body and "| `foo` | 80 / 80 (+0.0% agree ✅) |" in body
    assert "**The load generator was saturated**" in body
    assert not [p for p in PAYLOADS if p in rendered_outside_code(body)]
    # The key lines, not every chart: the server side's charts stay in the report.
    assert len(IMAGE.findall(body)) == 3 and "resources.png" not in body and "server-latency.png" not in body


# -- every outcome, message and body by its words -------------------------------------------------------------

def footerless(body):
    """The body without its last line (the time it was updated)."""
    head, _, last = body.rpartition("\n")
    assert re.fullmatch(r"<sub>Updated \d{4}-\d\d-\d\dT[\d:]+(\.\d+)?(\+00:00|Z) by the runbook's publish stage\.</sub>", last), last
    return head.rstrip("\n")


def test_what_a_publish_says_it_did(run, github, tmp_path):
    outcome = publish_run(config(run), run, env_for(github, tmp_path))
    (comment,) = github.comments
    sha = github.refs["heads/runbook-assets"]
    assert outcome == Outcome("publish", True, "created the summary comment on pull request #7", [
        f"comment: https://github.invalid/octo/app/pull/7#issuecomment-{comment['id']}",
        f"charts: commit {sha} on branch runbook-assets",
        "pull request from the pull_request event"])
    # The links under the summary, in their order, between middle dots.
    link_line = footerless(comment["body"]).rsplit("\n\n", 1)[1]
    assert link_line == ("[workflow run](https://github.invalid/octo/app/actions/runs/555) · [the whole report "
                         "(report.html)](https://github.invalid/octo/app/actions/runs/555#artifacts) · [run folder: "
                         "notebooks, CSVs, diagnostics (artifact)](https://github.invalid/octo/app/actions/runs/555#artifacts)")
    # The summary's own heading is one level under the comment's.
    assert comment["body"].startswith(f"{MARKER}\n\n## Load test passed")


def test_nowhere_to_publish_and_a_moved_pull_request_are_outcomes(run, github, tmp_path):
    env = env_for(github, tmp_path)
    env.pop("GITHUB_TOKEN")
    assert publish_run(config(run), run, env) == Outcome(
        "publish", False, "not published: no GITHUB_TOKEN in the environment (a local run, or the token was not passed)")
    event = {"workflow_run": {"id": 9002, "event": "pull_request", "head_sha": "c" * 40, "pull_requests": [{"number": 7}]}}
    outcome = publish_run(config(run), run, env_for(github, tmp_path, event, GITHUB_EVENT_NAME="workflow_run"))
    assert outcome == Outcome("publish", False, f"not published: pull request #7 has moved on to {HEAD}; this run "
                                                f"tested {'c' * 40}")


def test_a_ruleset_on_the_assets_branch_is_said_and_not_retried_as_a_race(run, github, tmp_path):
    github.fail("PATCH", r"/repos/octo/app/git/refs/heads/runbook-assets", 422,
                "Repository rule violations found\n\nCannot update this protected ref.")
    publish_run(config(run), run, env_for(github, tmp_path))  # the branch does not exist yet: created, not updated
    with pytest.raises(PublishError) as caught:
        publish_run(config(run), run, env_for(github, tmp_path))  # now it exists and is updated: refused
    assert "a repository rule (a ruleset or branch protection) refuses the push to the assets branch" in str(caught.value)
    patches = [path for method, path, _ in github.requests if method == "PATCH" and "refs/heads/runbook-assets" in path]
    assert len(patches) == 1  # not tried again as if another publish had moved the branch


def test_a_pull_request_that_changes_how_it_is_measured_is_said_above_the_verdict(run, github, tmp_path):
    github.pull_files[7] = ["k8s/deployment/foo/values.yaml", "lib/runbook/analysis/compare.py", "README.md",
                            "load_test/[x](https://evil.example).py"]
    publish_run(config(run), run, env_for(github, tmp_path))
    body = github.comments[0]["body"]
    warning = body.index("**Measured by this pull request's own code.**")
    assert warning < body.index("Load test passed") and "` lib/runbook/analysis/compare.py `" in body
    assert "values.yaml" not in body[warning:body.index("Load test passed")] and "README.md" not in body
    assert "[x](https://evil.example)" not in body.replace("` load_test/[x](https://evil.example).py `", "")
    # Only the deployment changed: no warning.
    github.pull_files[7] = ["k8s/deployment/foo/values.yaml"]
    publish_run(config(run), run, env_for(github, tmp_path))
    assert "Measured by this pull request's own code" not in github.comments[0]["body"]


def test_a_502_answered_once_is_tried_again_and_the_comment_arrives(run, github, tmp_path):
    github.fail("POST", r"/repos/octo/app/issues/7/comments", 502, "Bad Gateway", times=1)
    github.fail("GET", r"/repos/octo/app/pulls/7$", 502, "Bad Gateway", times=1)
    publish_run(config(run), run, env_for(github, tmp_path))
    assert len([c for c in github.comments if MARKER in c["body"]]) == 1
    posts = [path for method, path, _ in github.requests if method == "POST" and path.endswith("/issues/7/comments")]
    assert len(posts) == 2  # the 502, then the comment


@pytest.mark.parametrize(("method", "path", "event", "action"), [
    ("GET", r"/repos/octo/app$", None, "reading the repository"),
    ("GET", r"/repos/octo/app/pulls$", "fork", "finding the pull request"),
    ("GET", r"/repos/octo/app/pulls/7$", None, "reading pull request #7"),
    ("POST", r"/repos/octo/app/git/blobs", None, "committing the charts to branch runbook-assets"),
    ("POST", r"/repos/octo/app/issues/7/comments", None, "commenting on pull request #7"),
])
def test_each_api_call_says_what_it_was_doing(run, github, tmp_path, method, path, event, action):
    github.fail(method, path, 500, "boom")
    extra = {}
    if event == "fork":
        github.pulls.clear()
        github.add_pull(7, HEAD, fork=True)
        event, extra = failed_run_event([], "someone-else/app"), {"GITHUB_EVENT_NAME": "workflow_run"}
    with pytest.raises(PublishError) as caught:
        publish_run(config(run), run, env_for(github, tmp_path, event, **extra))
    assert str(caught.value) == f"GitHub answered 500 'boom' while {action}: see GitHub's message"


def test_a_repository_that_is_not_found_is_named_without_a_pull_request(run, github, tmp_path):
    github.fail("GET", r"/repos/octo/app$", 404, "Not Found")
    with pytest.raises(PublishError) as caught:
        publish_run(config(run), run, env_for(github, tmp_path))
    assert str(caught.value) == (
        "GitHub answered 404 'Not Found' while reading the repository: octo/app was not found, or the token cannot see "
        "it: check GITHUB_REPOSITORY, the pull request number, and that the token has access to the repository")


def test_a_workflow_run_that_uploaded_nothing_gets_its_failed_steps_in_process(github, tmp_path):
    github.jobs[9100] = [{"name": "Runbook on kind", "conclusion": "failure",
                          "steps": [{"name": "Install the runbook", "conclusion": "failure"}]},
                         {"name": "Lint", "conclusion": "failure", "steps": []}]
    folder = RunFolder(tmp_path / "no-artifact").create()
    # What the publish invocation itself recorded: not a run, and its pull request is not the run's.
    folder.write_run({"github": {"pr": 3}, "stages": {"publish": {"status": "running"}}})
    env = env_for(github, tmp_path, failed_run_event([{"number": 7}]), GITHUB_EVENT_NAME="workflow_run", GITHUB_RUN_ID="1")
    outcome = publish_run(config(folder), folder, env)
    (comment,) = github.comments
    assert comment["issue"] == 7
    assert footerless(comment["body"]) == "\n".join([
        MARKER, "## Runbook failed ❌", "",
        "The runbook workflow ended with ` failure ` before it produced any results, so there are no numbers for this commit.",
        "", "- job ` Runbook on kind `, step ` Install the runbook ` failed", "- job ` Lint ` failed", "",
        "Its log says why.", "", "[workflow run](https://github.invalid/octo/app/actions/runs/9100)"])
    assert outcome.details == [f"comment: https://github.invalid/octo/app/pull/7#issuecomment-{comment['id']}",
                               "no results: the runbook workflow stopped before it uploaded any",
                               outcome.details[-1]] and github.refs == {}


@pytest.mark.parametrize(("stages", "said"), [
    ({"provision": {"status": "passed"}, "deploy": {"status": "failed", "error": "x" * 700}},
     f"The **deploy** stage failed: ` {'x' * 599}… `"),
    ({"provision": {"status": "failed"}}, "The **provision** stage failed: –"),
    ({"provision": {"status": "passed"}, "lunch": {"status": "failed", "error": "not a stage"}},
     "The run stopped before its report, and its record names no failed stage."),
    ("not a mapping", "The run stopped before its report, and its record names no failed stage."),
])
def test_the_comment_of_a_run_without_a_report_word_for_word(run, github, tmp_path, stages, said):
    (run.report / "result.json").unlink()
    run.write_run({"stages": stages})
    outcome = publish_run(config(run), run, env_for(github, tmp_path))
    body = footerless(github.comments[0]["body"])
    assert body == "\n".join([MARKER, "## Runbook failed ❌", "", said, "",
                              "The executed notebooks and diagnostics are in the artifact.", "",
                              body.rsplit("\n", 1)[1]])
    assert body.rsplit("\n", 1)[1].startswith("[workflow run](https://github.invalid/octo/app/actions/runs/555) · ")
    assert outcome.details[1] == "no charts: the run stopped before its report"


def test_a_comment_too_long_for_github_sheds_mermaid_then_failure_details_then_its_end():
    def result(services, errors):
        return small_result([f"svc{i}" for i in range(services)], failures=1, errors=errors, status="failed")

    images = IMAGES
    mermaid = ["```mermaid\nxychart-beta\n" + "m" * 30_000 + "\n```"]
    small = comment_body(result(2, 1), images, mermaid, {"run": "u"})
    assert "xychart-beta" in small and "error 0 " in small
    no_mermaid = comment_body(result(2, 1), images, mermaid * 3, {"run": "u"})
    assert "xychart-beta" not in no_mermaid and "error 0 " in no_mermaid
    no_failures = comment_body(result(30, 12), images, [], {"run": "u"})
    assert "error 0 " not in no_failures and "| `svc29` |" in no_failures and len(no_failures) <= BODY_LIMIT
    cut = comment_body(result(1500, 0), images, [], {"run": "u"})
    assert len(cut) == BODY_LIMIT - 40 + len("\n\n… (cut to GitHub's comment limit)")
    assert cut.endswith("\n\n… (cut to GitHub's comment limit)")


def test_a_body_of_exactly_githubs_limit_is_kept_whole():
    result, images = small_result(), IMAGES
    base = comment_body(result, images, [], {})
    pad = BODY_LIMIT - len(base)
    body = comment_body(result, images, ["p" * (pad - 2)], {})  # joined to the summary by a blank line
    assert len(body) == BODY_LIMIT and "p" * (pad - 2) in body


def test_the_result_and_charts_are_refused_by_name(run):
    from runbook.github.publish import MAX_PNG_BYTES, MAX_PNG_SIDE, load_charts, load_result

    assert sorted(load_charts(run)) == ["latency", "percentiles", "throughput"]  # no change chart without a comparison
    with pytest.raises(PublishError) as caught:
        load_charts(run, compared=True)
    assert str(caught.value) == (f"{run.report / 'change.png'} is missing or not a PNG of at most {MAX_PNG_BYTES} bytes "
                                 f"and {MAX_PNG_SIDE} pixels a side")
    png = (run.report / "latency.png").read_bytes()
    # What is committed is the picture written anew: bytes after it (or any chunk but the pixels) are left behind.
    (run.report / "latency.png").write_bytes(png + b"<script>" + b"\0" * (MAX_PNG_BYTES - len(png) - 8))
    committed = load_charts(run)["latency"]
    assert b"<script>" not in committed and len(committed) < len(png) * 2
    assert np.array_equal(imread(io.BytesIO(committed)), imread(io.BytesIO(png)))
    (run.report / "latency.png").write_bytes(png + b"\0" * (MAX_PNG_BYTES + 1 - len(png)))
    with pytest.raises(PublishError, match="latency.png is missing or not a PNG"):
        load_charts(run)
    # A PNG's signature on something else, and a picture too large to be a chart, are refused.
    (run.report / "latency.png").write_bytes(png[:8] + b"not a picture" * 100)
    with pytest.raises(PublishError, match="latency.png is missing or not a PNG"):
        load_charts(run)
    from PIL import Image

    wide = io.BytesIO()
    Image.new("L", (MAX_PNG_SIDE + 1, 1)).save(wide, format="PNG")
    (run.report / "latency.png").write_bytes(wide.getvalue())
    with pytest.raises(PublishError, match="latency.png is missing or not a PNG"):
        load_charts(run)
    (run.report / "result.json").write_text("{not json")
    with pytest.raises(PublishError) as caught:
        load_result(run)
    assert str(caught.value).startswith(f"{run.report / 'result.json'} is not JSON: Expecting property name")
    (run.report / "result.json").unlink()
    with pytest.raises(PublishError) as caught:
        load_result(run)
    assert str(caught.value) == f"{run.report / 'result.json'} is missing: run the report stage first"


def test_the_charts_path_keeps_the_run_id_safe_for_a_path(run, github, tmp_path):
    publish_run(config(run), run, env_for(github, tmp_path, GITHUB_RUN_ID="Run 12/a.b_c"))
    assert "runbook/pr-7/Run-12-a.b_c/throughput.png" in github.comments[0]["body"]


def test_without_mermaid_data_the_comment_says_so_in_the_log(run, github, tmp_path, caplog):
    shutil.rmtree(run.load_test)  # the report and its charts are there; the requests behind them are not
    with caplog.at_level(logging.INFO, logger="runbook.github.publish"):
        publish_run(config(run), run, env_for(github, tmp_path))
    assert "xychart-beta" not in github.comments[0]["body"]
    (message,) = [r.getMessage() for r in caplog.records if r.name == "runbook.github.publish"]
    assert message.startswith("no Mermaid charts: ") and str(run.load_test) in message  # the error itself, with its path


def test_the_no_results_comment_cuts_what_the_event_names(github, tmp_path):
    from runbook.github.rest_api import GitHubContext
    from runbook.github.publish import no_results_body

    def body(conclusion, failed):
        event = failed_run_event([{"number": 7}])
        event["workflow_run"]["conclusion"] = conclusion
        ctx = GitHubContext.from_env(env_for(github, tmp_path, event, GITHUB_EVENT_NAME="workflow_run"))
        return no_results_body(ctx, failed, {})

    assert "ended with ` failure ` before" in body(None, [])
    assert f"ended with ` {'c' * 39}… ` before" in body("c" * 50, [])
    lines = body("cancelled", [("j" * 150, "s" * 150)] + [(f"job{i}", "") for i in range(7)]).splitlines()
    jobs = [line for line in lines if line.startswith("- job")]
    assert jobs[0] == f"- job ` {'j' * 99}… `, step ` {'s' * 99}… ` failed"
    assert jobs[1:] == [f"- job ` job{i} ` failed" for i in range(4)]  # five jobs at most


def test_a_folder_without_a_runs_data_names_no_pull_request_of_its_own(github, tmp_path):
    github.pulls.clear()
    github.add_pull(7, HEAD, fork=True, branch="elsewhere")  # not the event's branch: the event finds nothing
    folder = RunFolder(tmp_path / "no-artifact").create()
    folder.write_run({"github": {"pr": 7}, "stages": {"publish": {"status": "running"}}})
    env = env_for(github, tmp_path, failed_run_event([], "someone-else/app"), GITHUB_EVENT_NAME="workflow_run")
    with pytest.raises(PublishError, match="no open pull request from someone-else/app:feature, and the run's data names no"):
        publish_run(config(folder), folder, env)
    assert github.comments == []


def test_a_comment_with_mermaid_and_failures_too_long_for_both_sheds_both():
    result = small_result(status="failed")
    result["services"]["foo"].update(failures=1, errors={"e" * 400 + str(i): 1 for i in range(200)})
    result["services"]["bar"] = result["services"]["foo"]  # two services' failures: more than GitHub takes
    images = IMAGES
    body = comment_body(result, images, ["```mermaid\nxychart-beta\n" + "m" * 70_000 + "\n```"], {"run": "u"})
    assert "xychart-beta" not in body and "e" * 400 not in body and not body.endswith("comment limit)")
    # Links without an address are left out; with none left, no empty line stands before the time.
    from runbook.github.publish import _footer

    assert _footer({"a": "u", "b": "", "c": "v"})[0] == "[a](u) · [c](v)" and len(_footer({"a": "u"})) == 2
    (only,) = _footer({"run": ""})
    assert only.startswith("<sub>Updated ")

