"""Wall time of a whole local runbook run against a bare locust run of the same profile.

Both load the same local target (the local ingress with foo and bar) with the
same locust command line; the runbook adds its eight stage notebooks, the
target's start and stop, the charts and the summary around it. Runs alternate
(runbook, bare, runbook, bare, ...) so that drift on the machine hits both.

    python benchmarks/wall_time.py                 # 3 pairs at the default 30 s
    python benchmarks/wall_time.py --pairs 5 --run-time 30s
    python benchmarks/wall_time.py --baseline      # the runbook with --baseline HEAD against without

Target: the runbook at most 1.15x the bare run (median of the pairs); with --baseline, a run compared
with the base at most 1.15x the same run without a baseline.
"""

from __future__ import annotations

import argparse
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

from runbook.core.config import RunConfig  # noqa: E402
from runbook.load.runner import locust_command, locust_environment, locustfile_path  # noqa: E402
from runbook.core.services import load_services  # noqa: E402

TARGET_RATIO = 1.15


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def runbook_run(run_time: str, out: Path, *extra: str) -> float:
    port = free_port()
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "runbook", "run", "--target", "local", "--run-time", run_time,
         "--ingress-port", str(port), "--output-dir", str(out), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"runbook run failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def bare_run(run_time: str, out: Path) -> float:
    port = free_port()
    config = RunConfig.from_parameters(target="local", run_time=run_time, ingress_port=port)
    services = load_services(config.services)
    ingress = subprocess.Popen(
        [sys.executable, "-m", "runbook.targets.standin", f"--listen=127.0.0.1:{port}",
         *[f"--route={s.host}={s.expect}" for s in services]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the local ingress did not start") from None
                time.sleep(0.05)
        out.mkdir(parents=True, exist_ok=True)
        argv = locust_command(config, out, f"http://127.0.0.1:{port}", locustfile_path())
        env = {**os.environ, **locust_environment(config, services, request_log=None)}
        started = time.monotonic()
        done = subprocess.run(argv, cwd=out, capture_output=True, text=True, timeout=900, env=env)
        elapsed = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"bare locust failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return elapsed
    finally:
        ingress.terminate()
        ingress.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--run-time", default="30s")
    parser.add_argument("--baseline", action="store_true",
                        help="compare a run with --baseline HEAD against the same run without a baseline")
    args = parser.parse_args()
    runbook_times, bare_times = [], []
    names = ("with --baseline", "without") if args.baseline else ("runbook", "bare locust")
    with tempfile.TemporaryDirectory(prefix="runbook-bench-") as scratch:
        for i in range(args.pairs):
            if args.baseline:
                runbook_times.append(runbook_run(args.run_time, Path(scratch) / f"compared-{i}", "--baseline", "HEAD"))
                bare_times.append(runbook_run(args.run_time, Path(scratch) / f"runbook-{i}"))
            else:
                runbook_times.append(runbook_run(args.run_time, Path(scratch) / f"runbook-{i}"))
                bare_times.append(bare_run(args.run_time, Path(scratch) / f"bare-{i}"))
            print(f"pair {i + 1}: {names[0]} {runbook_times[-1]:.2f}s, {names[1]} {bare_times[-1]:.2f}s, "
                  f"ratio {runbook_times[-1] / bare_times[-1]:.3f}", flush=True)
    ratio = statistics.median(runbook_times) / statistics.median(bare_times)
    verdict = "within" if ratio <= TARGET_RATIO else "OVER"
    print(f"median: {names[0]} {statistics.median(runbook_times):.2f}s, {names[1]} {statistics.median(bare_times):.2f}s, "
          f"ratio {ratio:.3f} ({verdict} the {TARGET_RATIO}x target)")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
