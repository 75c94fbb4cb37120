"""How often the comparison cries wolf, and what it catches, on this machine's local target.

Each trial starts the local stand-in with both sides' routes (the baseline under its
own hosts, as --baseline gives), runs the load test in rounds exactly as the runbook
does (3 pairs of 10 s rounds after the warm-up, 100 users, 0-1 s wait), and compares
the sides with the runbook's own statistics:

- A/A trials (both sides identical): how often any service's p95 (and any metric at
  all) is called "slower". Goal: at most 1 in 20.
- Trials with --inject-delay foo=MS: how often foo's p95 is called "slower", per MS.
  Goal: detected in at least 4 of 5 at 1 ms (about +50% over a p95 of ~2 ms).

    python benchmarks/ab_calibration.py --aa 20 --delays 0.5,1 --per-delay 5 --workers 2

Each trial is also judged as if every percentile were judged however few requests lie
beyond it (compare.MIN_BEYOND = 0), to show what the tail rule prevents: with short rounds
and few users the p99 of a round is its maximum, e.g.

    python benchmarks/ab_calibration.py --aa 20 --delays "" --round-s 2 --users 20 --workers 2

Traffic goes to 127.0.0.1 only. Results are printed and written as JSON (--out).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from runbook import commands  # noqa: E402
from runbook.baseline import baseline_host  # noqa: E402
from runbook import compare  # noqa: E402
from runbook.compare import SLOWER  # noqa: E402
from runbook.config import RunConfig  # noqa: E402
from runbook.loadtest import run_load_test  # noqa: E402
from runbook.results import load_results  # noqa: E402
from runbook.services import Service, load_services  # noqa: E402
from runbook.slo import SLO, load_slo  # noqa: E402
from runbook.targets.local import stop_process  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def trial(delay_ms: float, rounds: int, round_s: int, users: int) -> dict[str, object]:
    port = free_port()
    services = load_services(("foo", "bar"))
    baseline = [Service(s.name, baseline_host(s.host), s.expect, s.path) for s in services]
    routes = [f"--route={s.host}={s.expect}" for s in [*services, *baseline]]
    delay = [f"--delay=foo.localhost={delay_ms:g}"] if delay_ms else []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        stand_in = commands.start([sys.executable, "-m", "runbook.local_ingress", f"--listen=127.0.0.1:{port}", *routes, *delay],
                                  log_path=out / "ingress.log")
        try:
            time.sleep(1.0)
            config = RunConfig.from_parameters(target="local", users=users, run_time=f"{round_s}s", rounds=rounds,
                                               ingress_port=port, run_dir=str(out))
            run_load_test(config, services, out / "load_test", "127.0.0.1", port, baseline=baseline)
        finally:
            stop_process(stand_in.pid) if stand_in.poll() is None else None
        results = load_results(out / "load_test")
    return {
        "delay_ms": delay_ms,
        "rounds": results.rounds,
        "schedule": results.profile["schedule"],
        "baseline_p95_ms": {name: results.baseline[name].percentile(95) for name in results.baseline},
    }


def judge(measured: dict[str, object], slo: SLO) -> dict[str, object]:
    """The runbook's verdicts on one trial, and which metrics it would call slower without the tail rule."""
    changes = compare.compare(measured["rounds"], ["foo", "bar"], measured["schedule"], slo)
    kept = compare.MIN_BEYOND
    compare.MIN_BEYOND = 0  # as before the rule: every percentile judged, however few requests lie beyond it
    try:
        unguarded = compare.compare(measured["rounds"], ["foo", "bar"], measured["schedule"], slo)
    finally:
        compare.MIN_BEYOND = kept
    return {
        "delay_ms": measured["delay_ms"],
        "p95": {name: {"change": c["p95"].change, "low": c["p95"].low, "high": c["p95"].high, "verdict": c["p95"].verdict}
                for name, c in changes.items()},
        "slower_metrics": _slower(changes),
        "slower_metrics_without_tail_rule": _slower(unguarded),
        "not_judged": [f"{name}.{m}" for name, metrics in changes.items() for m, c in metrics.items() if c.verdict == compare.TOO_FEW],
        "baseline_p95_ms": measured["baseline_p95_ms"],
    }


def _slower(changes: dict[str, dict[str, compare.Change]]) -> list[str]:
    return [f"{name}.{m}" for name, metrics in changes.items() for m, c in metrics.items() if c.verdict == compare.SLOWER]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--aa", type=int, default=20, help="A/A trials (default: %(default)s)")
    parser.add_argument("--delays", default="0.5,1", help="injected delays in ms for foo (default: %(default)s)")
    parser.add_argument("--per-delay", type=int, default=5, help="trials per delay (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of rounds (default: %(default)s)")
    parser.add_argument("--round-s", type=int, default=10, help="seconds per round (default: %(default)s)")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1, help="trials at once (each on its own port)")
    parser.add_argument("--out", default=str(ROOT / "outputs" / "ab_calibration.json"))
    args = parser.parse_args()
    plan = [0.0] * args.aa + [float(d) for d in args.delays.split(",") if d for _ in range(args.per_delay)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        measured = list(pool.map(lambda d: trial(d, args.rounds, args.round_s, args.users), plan))
    slo = load_slo(ROOT / "load_test" / "slo.yaml")
    trials = [judge(m, slo) for m in measured]
    aa = [t for t in trials if t["delay_ms"] == 0]
    summary = {
        "aa_trials": len(aa),
        "aa_p95_slower": sum(any(v["verdict"] == SLOWER for v in t["p95"].values()) for t in aa),
        "aa_any_metric_slower": sum(bool(t["slower_metrics"]) for t in aa),
        "aa_any_metric_slower_without_tail_rule": sum(bool(t["slower_metrics_without_tail_rule"]) for t in aa),
        "aa_slower_without_tail_rule": sorted({m for t in aa for m in t["slower_metrics_without_tail_rule"]}),
        "not_judged": sorted({m for t in trials for m in t["not_judged"]}),
        "detected_foo_p95_slower": {
            str(d): [sum(t["p95"]["foo"]["verdict"] == SLOWER for t in trials if t["delay_ms"] == float(d)),
                     sum(t["delay_ms"] == float(d) for t in trials)]
            for d in args.delays.split(",") if d},
        "bar_p95_slower_with_delay": sum(t["p95"]["bar"]["verdict"] == SLOWER for t in trials if t["delay_ms"]),
        "median_baseline_p95_ms": sorted(t["baseline_p95_ms"]["foo"] for t in trials)[len(trials) // 2],
        "workers": args.workers,
        "wall_s": round(time.monotonic() - started, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"summary": summary, "trials": trials}, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
