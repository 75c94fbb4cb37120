"""The Mermaid blocks of the job summary and the comment, parsed by the real mermaid package (npm, tests/mermaid)."""

import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT
from runbook.report.build import build_report
from support.run_data import write_load_test

CHECKER = ROOT / "tests" / "mermaid"


def parse_blocks(markdown):
    if shutil.which("node") is None or not (CHECKER / "node_modules" / "mermaid").is_dir():
        if os.environ.get("CI"):
            pytest.fail("tests/mermaid is not installed: .ci/run runs npm ci --prefix tests/mermaid")
        pytest.skip("mermaid (npm) is not installed here: npm ci --prefix tests/mermaid")
    done = subprocess.run(["node", str(CHECKER / "check.mjs")], input=markdown, capture_output=True, text=True, timeout=120)
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_the_job_summarys_charts_parse_and_read_well(tmp_path):
    # 60 s of two services, as a default run produces: 60 one-second buckets.
    rows = [(1000 + i * 0.05, name, 2 + (i % 7), 1, "") for i in range(1200) for name in ("foo", "bar")]
    write_load_test(tmp_path / "load_test", rows, run_time=60)
    build_report(tmp_path / "load_test", tmp_path / "report", "local", "local", "c")
    summary = (tmp_path / "report" / "job-summary.md").read_text()
    code, blocks = parse_blocks(summary)
    assert code == 0 and len(blocks) == 2 and all(b["ok"] and b["type"] == "xychart" for b in blocks), blocks
    # Which line is which: the palette reaches mermaid, and the title names each service's colour.
    assert blocks[0]["config"]["themeVariables"]["xyChart"]["plotColorPalette"] == "#1f77b4, #ff7f0e"
    assert 'title "Successful requests per second: foo blue, bar orange"' in summary
    for axis in re.findall(r"x-axis (.*)", summary):
        labels = re.findall(r"\[(.*)\]", axis)
        assert (not labels and re.fullmatch(r'"[^"]*" 0 --> \d+', axis)) or len(labels[0].split(",")) <= 12, axis


def test_a_broken_block_is_caught():
    code, blocks = parse_blocks("```mermaid\nxychart-beta\n    x-axis [a, b\n```\n")
    assert code == 1 and not blocks[0]["ok"]
