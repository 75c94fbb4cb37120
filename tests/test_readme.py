"""The README and docs: their commands run as a newcomer would paste them, their links resolve, their flags exist."""

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT


def section_commands(heading: str, page: str = "docs/jupyter.md") -> list[str]:
    """The lines of the first bash block after a heading of a page."""
    text = (ROOT / page).read_text()
    after = text[text.index(heading):]
    block = re.search(r"```bash\n(.*?)```", after, re.S)
    assert block, f"no bash block after {heading!r}"
    return [line for line in block[1].splitlines() if line.strip()]


@pytest.mark.notebooks
def test_the_load_test_alone_runs_as_written_and_leaves_nothing_listening(tmp_path, port):
    lines = section_commands("## The load test alone")
    assert len(lines) == 3 and "--keep-cluster" in lines[0] and "locust -f load_test/locustfile.py" in lines[1]
    assert "--stages teardown" in lines[2]
    bin_dir = Path(sys.executable).parent
    run_dir = tmp_path / "alone"
    for line in lines:
        # The same commands on this test's own port, folder and a 3 s run; the venv is the one running the tests.
        line = line.replace(".venv/bin/python", sys.executable).replace(".venv/bin/locust", str(bin_dir / "locust"))
        line = line.replace("outputs/alone", str(run_dir)).replace("-t 30s", "-t 3s").replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        if "--stages provision" in line:
            line += f" --ingress-port {port}"
        done = subprocess.run(line, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        if "--stages teardown" in line:
            assert "teardown: " in done.stdout  # what teardown did, on the console
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_relative_link_in_the_readme_and_docs_resolves():
    checked = 0
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # an address on the web: not checked here (CI has no internet)
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            assert resolved.exists(), f"{page.relative_to(ROOT)}: {target} does not exist"
            if anchor:
                headings = re.findall(r"^#+ (.+)$", resolved.read_text(), re.M)
                assert anchor in {_slug(h) for h in headings}, f"{page.relative_to(ROOT)}: no heading #{anchor} in {path}"
            checked += 1
    assert checked >= 10


#: Flags of other tools that the docs name; every other flag must be one of `python -m runbook run`.
OTHER_TOOLS = {
    # locust, and the locustfile's own options
    "--headless", "--host", "--csv", "--html", "--run-time", "--users", "--spawn-rate", "--processes", "--stop-timeout",
    "--services-json", "--baseline-json", "--request-log", "--warmup-requests",
    # the stand-in, the benchmarks, `runbook tools` and `runbook compare`
    "--delay", "--pairs", "--source", "--rows", "--checkout", "--trials", "--workers", "--delays", "--block-s", "--aa", "--per-delay",
    "--rejudge", "--tests", "--only", "--dest", "--mirror", "--check", "--help",
    # pytest, pip, npm, helm, kubectl, kind, papermill
    "--durations", "--timeout", "--prefix", "--no-deps", "--require-hashes", "--wait", "--namespace", "--kubeconfig",
    "--context", "--name", "--config", "--image", "--repo", "--version", "--values", "--skip-crds", "--set",
    "--rollback-on-failure", "--create-namespace", "--atomic", "--install", "--ignore-not-found", "--dry-run",
    "--kubelet-insecure-tls", "--parameters_file", "--kernel", "--log-output", "--fetch-depth",
}


def test_every_flag_the_docs_name_exists():
    import subprocess

    help_text = subprocess.run([sys.executable, "-m", "runbook", "run", "--help"], cwd=ROOT, capture_output=True,
                               text=True, timeout=60).stdout
    ours = set(re.findall(r"(--[a-z][a-z-]+)", help_text))
    assert {"--processes", "--load-generator", "--workers", "--baseline", "--target"} <= ours
    unknown = {}
    for page in PAGES:
        for flag in set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*[a-z])", page.read_text())):
            if flag not in ours and flag not in OTHER_TOOLS:
                unknown.setdefault(flag, page.name)
    assert unknown == {}, f"flags the docs name that `python -m runbook run --help` does not know: {unknown}"


def test_the_readme_is_short_and_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150
    block = lines[lines.index("```bash") + 1:lines.index("```bash") + 3]
    assert "python -m runbook run" in block[0] and "python -m pytest" in block[1]
