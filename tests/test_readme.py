"""The README's commands, run as a newcomer would paste them (on a free port and a shorter run)."""

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT


def section_commands(heading: str) -> list[str]:
    """The lines of the first bash block after a README heading."""
    text = (ROOT / "README.md").read_text()
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
