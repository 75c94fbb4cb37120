"""The GitHub Actions workflows, checked offline: schema, zizmor, and the rules they must keep."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from runbook.targets import tools

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def load(name):
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def steps(doc):
    return [step for job in doc["jobs"].values() for step in job["steps"]]


def test_the_workflows_are_there():
    assert [p.name for p in WORKFLOWS] == ["publish.yml", "runbook.yml"]


def test_github_workflow_schema():
    done = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_is_clean_except_explained_findings():
    done = subprocess.run([str(BIN / "zizmor"), "--offline", "--no-progress", str(ROOT / ".github" / "workflows")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    ignores = [line for p in WORKFLOWS for line in p.read_text().splitlines() if "zizmor: ignore" in line]
    assert len(ignores) == 1 and "dangerous-triggers" in ignores[0] and "validated data" in ignores[0]


@pytest.mark.parametrize("name", ["runbook.yml", "publish.yml"])
def test_least_privilege_pins_and_limits(name):
    doc = load(name)
    assert doc["permissions"] == {}
    assert doc["concurrency"]["group"]
    for job in doc["jobs"].values():
        assert isinstance(job["timeout-minutes"], int) and job["timeout-minutes"] <= 40
        assert "permissions" in job
    for step in steps(doc):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False
        # Untrusted values reach scripts through env only, never spliced into the script.
        assert "${{" not in step.get("run", ""), step.get("name")
    text = (ROOT / ".github" / "workflows" / name).read_text()
    for line in text.splitlines():
        if "uses:" in line:
            assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


def test_the_runbook_workflow_has_no_write_access_and_always_keeps_its_results():
    doc = load("runbook.yml")
    assert set(doc["on"]) == {"pull_request", "push", "workflow_dispatch"}
    assert doc["concurrency"]["cancel-in-progress"] is True and "pull_request.number" in doc["concurrency"]["group"]
    (job,) = doc["jobs"].values()
    assert job["permissions"] == {"contents": "read"}
    by_name = {step["name"]: step for step in job["steps"]}
    assert by_name["Set up Python"]["with"]["cache"] == "pip"
    run = by_name["Run the runbook"]["run"]
    assert "--target kind" in run and "--output-dir" in run
    # A pull request is compared with its base: the merge commit's first parent, which fetch-depth 2 brings.
    assert by_name["Check out"]["with"]["fetch-depth"] == 2
    assert '--baseline "$BASELINE"' in run
    baseline = by_name["Run the runbook"]["env"]["BASELINE"]
    assert "github.event_name == 'pull_request'" in baseline and "'HEAD^1'" in baseline
    upload = by_name["Upload the run folder"]
    assert upload["if"] == "${{ !cancelled() }}" and upload["with"]["name"] == "runbook-results"
    assert "!outputs/ci/target/kubeconfig" in upload["with"]["path"]
    uploads = [s for s in steps(doc) if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert uploads and all(s["with"]["overwrite"] is True for s in uploads)  # a re-run meets its own artifact
    # report.html on its own, unzipped, so that a reviewer opens it from the run page; the job summary links it.
    report = by_name["Upload the report"]
    assert report["with"]["archive"] is False and report["with"]["path"].endswith("report/report.html")
    # Unzipped, the artifact is named after its file, and overwrite deletes the one its name input names: the two
    # must be the same, or a re-run attempt's upload collides with the first (409).
    assert report["with"]["name"] == report["with"]["path"].rsplit("/", 1)[1]
    # A hung run is stopped by its own step's limit, below the job's: the uploads, the job summary and, through the
    # failed conclusion, the comment still happen (a job at its limit is cancelled, and skips them).
    assert by_name["Run the runbook"]["timeout-minutes"] + 10 <= job["timeout-minutes"]
    # A run that failed before writing anything has failed its own step: no second failure on its upload.
    assert upload["with"]["if-no-files-found"] == "warn"
    assert report["id"] == "report" and "REPORT_URL" in by_name["Job summary"]["run"]
    assert by_name["Job summary"]["env"]["REPORT_URL"] == "${{ steps.report.outputs.artifact-url }}"
    assert by_name["Job summary"]["if"] == "${{ !cancelled() }}" and "GITHUB_STEP_SUMMARY" in by_name["Job summary"]["run"]
    assert by_name["Diagnostics"]["if"] == "failure()" and "diagnostics" in by_name["Diagnostics"]["run"]
    assert "GITHUB_TOKEN" not in (ROOT / ".github" / "workflows" / "runbook.yml").read_text()


def test_tool_versions_match_the_runbooks_pins():
    job = next(iter(load("runbook.yml")["jobs"].values()))
    kind = next(s for s in job["steps"] if s.get("uses", "").startswith("helm/kind-action@"))
    helm = next(s for s in job["steps"] if s.get("uses", "").startswith("Azure/setup-helm@"))
    assert kind["with"]["version"] == tools.RELEASES["kind"].version and kind["with"]["install_only"] is True
    assert kind["with"]["kubectl_version"] == tools.RELEASES["kubectl"].version
    assert helm["with"]["version"] == tools.RELEASES["helm"].version


def test_the_publish_workflow_runs_default_branch_code_on_data():
    doc = load("publish.yml")
    runbook = load("runbook.yml")
    assert doc["on"]["workflow_run"]["workflows"] == [runbook["name"]]
    (job,) = doc["jobs"].values()
    assert job["permissions"] == {"actions": "read", "contents": "write", "pull-requests": "write"}
    assert "workflow_run.event == 'pull_request'" in job["if"]
    by_name = {step["name"]: step for step in job["steps"]}
    checkout = by_name["Check out the default branch"]["with"]
    assert "ref" not in checkout and "repository" not in checkout  # never the pull request's code
    download = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/download-artifact@"))
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    assert download["with"]["github-token"] == "${{ github.token }}"
    assert download["with"]["path"].startswith("${{ runner.temp }}")
    publish = by_name["Publish"]
    assert publish["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
    assert "--stages publish" in publish["run"] and "--require-publish" in publish["run"]


def evaluate(expression, **event):
    """A GitHub Actions `if:` of ==, !=, &&, || and parentheses over github.event.workflow_run.*, in Python."""
    text = expression.strip().removeprefix("${{").removesuffix("}}")
    text = text.replace("&&", " and ").replace("||", " or ")
    text = re.sub(r"github\.event\.workflow_run\.(\w+)", lambda m: repr(event.get(m[1], "")), text)
    assert re.fullmatch(r"[\s()'\w=!-]*(and|or|[\s()'\w=!-])*", text), text
    return eval(text, {"__builtins__": {}})  # noqa: S307 (only the literals built above)


@pytest.mark.parametrize(("conclusion", "runs"), [
    ("success", True), ("failure", True), ("timed_out", True),
    ("action_required", False), ("skipped", False), ("cancelled", False), ("neutral", False), ("stale", False),
])
def test_publish_runs_only_when_the_run_can_have_something_to_say(conclusion, runs):
    (job,) = load("publish.yml")["jobs"].values()
    assert evaluate(job["if"], event="pull_request", conclusion=conclusion) is runs
    assert evaluate(job["if"], event="push", conclusion=conclusion) is False
    download = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/download-artifact@"))
    # No artifact is expected from a failed run (it may have stopped before its upload); a passed run has one.
    assert evaluate(download["continue-on-error"], conclusion=conclusion) is (conclusion != "success")
