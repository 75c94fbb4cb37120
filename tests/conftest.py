"""Shared fixtures: free ports, a running local ingress, the project root."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook.core.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]
# The package beside these tests comes first: the checkout's own lib/ (what the editable install
# points at anyway), or under mutation testing (benchmarks/mutation.py) the mutated copy in src/.
PACKAGE_DIR = ROOT / "lib" if (ROOT / "lib").is_dir() else ROOT / "src"
if str(PACKAGE_DIR) not in sys.path[:1]:
    sys.path.insert(0, str(PACKAGE_DIR))


def free_port() -> int:
    """A free port below the kernel's ephemeral range (32768 and up on Linux), so that no outgoing connection
    of another test (Locust's, a kernel's) takes it between this choice and the server's bind."""
    import random

    for _ in range(200):
        candidate = random.randint(20000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return candidate
    with socket.socket() as sock:  # everything there taken: any free port
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def port() -> int:
    return free_port()


def wait_listening(port: int, timeout: float = 10.0) -> None:
    def probe() -> tuple[bool, str, None]:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True, "listening", None

    wait_for(f"something to listen on 127.0.0.1:{port}", probe, timeout=timeout, interval=0.05)


@pytest.fixture
def ingress(port: int) -> Iterator[int]:
    """The local ingress with foo and bar routes, on a free port; yields the port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "runbook.targets.standin", f"--listen=127.0.0.1:{port}",
         "--route=foo.localhost=foo", "--route=bar.localhost=bar"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        wait_listening(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runbook", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
