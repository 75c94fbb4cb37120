"""The report stage on millions of requests: its wall time and its kernel's peak memory.

A real local run with --baseline (both sides, both services) is made once, or given with
--source; its request log is then repeated in place until it holds --rows rows (the same
30 s at hundreds of times the rate), and the report stage runs on that copy through the CLI,
comparison included, exactly as a run would:

    python benchmarks/big_report.py                       # 3,000,000 rows from a fresh 30 s run
    python benchmarks/big_report.py --source outputs/RUN --rows 300000
    python benchmarks/big_report.py --checkout /tmp/older  # the same, with another checkout's runbook

Peak memory is the largest resident set of any process the stage started (the kernel),
from the operating system's accounting of finished children.
Goal: at most 10 s and 500 MiB for 3 million rows on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S, GOAL_MIB = 10.0, 500.0


def environment(checkout: Path) -> dict[str, str]:
    """The checkout's own runbook first on the path (the installed one may be another checkout's)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(checkout / "lib"), os.environ.get("PYTHONPATH")]))}


def make_source(checkout: Path, folder: Path) -> Path:
    """A real 30 s local run with a baseline, its load test only (the report runs on the copy)."""
    run = folder / "source"
    subprocess.run([sys.executable, "-m", "runbook", "run", "--target", "local", "--baseline", "HEAD",
                    "--stages", "provision,ingress,deploy,verify,load_test,teardown", "--output-dir", str(run)],
                   cwd=checkout, env=environment(checkout), check=True, stdout=subprocess.DEVNULL)
    return run


def repeat_log(log: Path, rows: int) -> int:
    """Rewrite log with its rows repeated until it holds at least rows of them; returns the rows written."""
    lines = log.read_bytes().splitlines(keepends=True)
    header, body = lines[0], b"".join(lines[1:])
    copies = -(-rows // (len(lines) - 1))
    with log.open("wb") as out:
        out.write(header)
        for _ in range(copies):
            out.write(body)
    return copies * (len(lines) - 1)


def report_stage(checkout: Path, run: Path) -> tuple[float, float, float]:
    """The report stage through the CLI: (its wall time in run.json, the command's wall time, peak MiB of a child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "runbook", "run", "--target", "local", "--baseline", "HEAD",
                           "--stages", "report", "--output-dir", str(run)], cwd=checkout, env=environment(checkout),
                          capture_output=True, text=True)
    wall = time.monotonic() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode not in (0, 1):  # 1: the comparison may judge the repeated log; that is a verdict, not a failure
        raise SystemExit(f"the report stage failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    stage = json.loads((run / "run.json").read_text())["stages"]["report"]
    if stage["status"] not in ("passed", "failed"):
        raise SystemExit(f"the report stage did not run: {stage}")
    if peak_kib <= before:
        print("note: a larger process ran before this one; the peak shown is an upper bound", file=sys.stderr)
    return float(stage["wall_time_s"]), wall, peak_kib / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, help="a run folder made with --baseline (default: make one, 30 s)")
    parser.add_argument("--rows", type=int, default=3_000_000, help="rows in the repeated log (default: %(default)s)")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the runbook checkout to run (default: this one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="big-report-") as scratch:
        source = args.source or make_source(args.checkout, Path(scratch))
        run = Path(scratch) / "run"
        shutil.copytree(source, run, ignore=shutil.ignore_patterns("report", "notebooks"))
        rows = repeat_log(run / "load_test" / "requests.csv", args.rows)
        size = (run / "load_test" / "requests.csv").stat().st_size / 2**20
        stage_s, command_s, peak_mib = report_stage(args.checkout, run)
    print(f"rows: {rows:,} ({size:.0f} MiB of CSV)")
    print(f"report stage: {stage_s:.1f} s (the whole command {command_s:.1f} s), peak memory {peak_mib:.0f} MiB")
    print(f"goal: at most {GOAL_S:g} s and {GOAL_MIB:g} MiB: "
          f"{'met' if stage_s <= GOAL_S and peak_mib <= GOAL_MIB else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
