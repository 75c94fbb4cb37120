"""The token reaches the publish stage's kernel and nothing else the runbook starts."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from runbook.core import commands
from runbook.core.config import SECRET_VARIABLES
from runbook.kernels import StageKernel

SECRETS = {"GITHUB_TOKEN": "ghs_SecretTestToken0123456789", "GH_TOKEN": "gho_OtherSecretToken0123456789"}
SHOW = "import os; print(sorted(k for k in os.environ if k in ('GITHUB_TOKEN', 'GH_TOKEN')))"


def test_both_token_variables_are_secret():
    assert set(SECRET_VARIABLES) == {"GITHUB_TOKEN", "GH_TOKEN"}


def test_the_command_wrapper_strips_secrets_even_from_an_explicit_environment(monkeypatch, tmp_path):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    done = commands.run([sys.executable, "-c", SHOW], timeout=30, env={"GH_TOKEN": "passed-on-purpose", "RB_X": "1"})
    assert done.stdout.strip() == "[]"
    started = commands.start([sys.executable, "-c", SHOW], log_path=tmp_path / "out.log", base_env=dict(os.environ),
                             env=dict(SECRETS))
    started.process.wait(timeout=30)
    assert started.output().strip() == "[]"


@pytest.mark.notebooks
@pytest.mark.parametrize(("stage", "sees"), [("load_test", "[]"), ("provision", "[]"), ("publish", "['GH_TOKEN', 'GITHUB_TOKEN']")])
def test_only_the_publish_kernel_sees_the_token(monkeypatch, stage, sees):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    kernel = StageKernel(stage, str(ROOT))
    try:
        lines = []
        kernel.client().execute_interactive(SHOW, timeout=60, output_hook=lambda msg: lines.append(msg["content"].get("text", "")))
        assert "".join(lines).strip() == sees
    finally:
        kernel.stop()


def environ_of(pid):
    try:
        return dict(item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text(errors="replace").split("\0") if "=" in item)
    except OSError:
        return None


@pytest.mark.notebooks
def test_during_a_local_run_neither_locust_nor_the_stand_in_has_the_token(tmp_path, port):
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "runbook", "run", "--target", "local", "--stages", "provision,verify,load_test,teardown",
         "--run-time", "4s", "--users", "10", "--spawn-rate", "10", "--ingress-port", str(port), "--output-dir", str(run)],
        cwd=ROOT, env={**os.environ, **SECRETS}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    seen: dict[str, dict[str, str]] = {}
    deadline = time.monotonic() + 180
    while process.poll() is None and time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(run) in cmdline or f"127.0.0.1:{port}" in cmdline:
                kind = "locust" if "locust" in cmdline else "stand-in" if "targets.standin" in cmdline else None
                env = environ_of(entry.name) if kind else None
                if kind and env is not None:
                    seen.setdefault(kind, env)
        time.sleep(0.2)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert set(seen) == {"locust", "stand-in"}, seen.keys()
    for kind, env in seen.items():
        assert not set(SECRETS) & set(env), kind
        assert not [v for v in env.values() if v in SECRETS.values()], kind
