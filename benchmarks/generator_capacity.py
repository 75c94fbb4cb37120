"""How many requests per second the load generator sends, the runbook's load test against bare Locust.

The target is a small asyncio HTTP server in its own process (keep-alive, the service's name in
every answer), so that it is not the bottleneck and shares nothing with the runbook's own threads; users wait 0 s between requests, so each one
sends as fast as its answers come. For 1 and 2 Locust processes, pairs alternate:

- the runbook: run_load_test (its locustfile, every request recorded, the sampler running);
- bare: `locust -f load_test/locustfile.py --processes N` with the same profile and no request log.

    python benchmarks/generator_capacity.py                 # 3 pairs of 15 s for 1 and 2 processes
    python benchmarks/generator_capacity.py --pairs 5 --run-time 20s --users 50

Goal: the runbook at most 10% below bare Locust with the same number of processes (median of the pairs).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from runbook.core.config import RunConfig, format_duration  # noqa: E402
from runbook.load.runner import locust_environment, locustfile_path, run_load_test  # noqa: E402
from runbook.core.services import load_services  # noqa: E402

GOAL = 0.90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer 200 with the first label of the Host header, for as long as the connection stays open."""
    try:
        while head := await reader.readuntil(b"\r\n\r\n"):
            host = next((line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                         if line.lower().startswith(b"host:")), b"")
            body = host.split(b".", 1)[0] or b"none"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(port: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


class Target:
    """The server above in a process of its own, on 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self.port = port

    def __enter__(self) -> Target:
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", str(self.port)])
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise SystemExit("the target did not start")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def profile(users: int, run_time: str, processes: int, folder: Path, port: int) -> RunConfig:
    return RunConfig.from_parameters(target="local", users=users, spawn_rate=users, run_time=run_time, wait_min=0,
                                     wait_max=0, processes=processes, run_dir=str(folder), ingress_port=port)


def runbook_rate(config: RunConfig, folder: Path, port: int) -> float:
    """Requests per second of the runbook's load test, from its own request log."""
    run = run_load_test(config, load_services(config.services), folder, "127.0.0.1", port, say=lambda _line: None)
    return run.requests / config.run_time


def bare_rate(config: RunConfig, folder: Path, port: int) -> float:
    """Requests per second of plain Locust with the same locustfile and profile, from its own stats."""
    folder.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "locust", "-f", str(locustfile_path()), "--headless", "--users", str(config.users),
            "--spawn-rate", f"{config.spawn_rate:g}", "--run-time", format_duration(config.run_time),
            "--host", f"http://127.0.0.1:{port}", "--csv", str(folder / "bare"), "--only-summary"]
    if config.processes != 1:
        argv += ["--processes", str(config.processes)]
    env = {**os.environ, **locust_environment(config, load_services(config.services), None)}
    subprocess.run(argv, env=env, cwd=folder, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    with (folder / "bare_stats.csv").open() as handle:
        total = next(row for row in csv.DictReader(handle) if row["Name"] == "Aggregated")
    return int(total["Request Count"]) / config.run_time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--run-time", default="15s")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--processes", default="1,2", help="comma-separated process counts (default: %(default)s)")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the target's own process
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return 0
    port = free_port()
    lines = []
    with Target(port), tempfile.TemporaryDirectory(prefix="capacity-") as scratch:
        for processes in (int(p) for p in args.processes.split(",")):
            config = profile(args.users, args.run_time, processes, Path(scratch), port)
            ours, bare = [], []
            for pair in range(args.pairs):
                ours.append(runbook_rate(config, Path(scratch) / f"runbook-{processes}-{pair}", port))
                bare.append(bare_rate(config, Path(scratch) / f"bare-{processes}-{pair}", port))
                print(f"processes {processes}, pair {pair + 1}: runbook {ours[-1]:,.0f} req/s, bare {bare[-1]:,.0f} req/s",
                      flush=True)
            ratio = statistics.median(o / b for o, b in zip(ours, bare))
            lines.append(f"processes {processes}: runbook {statistics.median(ours):,.0f} req/s, bare Locust "
                         f"{statistics.median(bare):,.0f} req/s, ratio {ratio:.2f} (goal at least {GOAL:.2f}: "
                         f"{'met' if ratio >= GOAL else 'NOT met'})")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
