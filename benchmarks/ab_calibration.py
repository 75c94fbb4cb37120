"""How often the comparison cries wolf, and what it catches, on this machine's local target: a power curve.

Each trial starts the local stand-in with both sides' routes (the baseline under its own
hosts, as --baseline gives), runs the load test exactly as the runbook does with a baseline
(100 users, spawn 10/s, 0-1 s wait, --run-time with each service's requests sent to the two sides
in random pairs, each user's first request left out), keeps its request log, and judges it with
the runbook's own statistics:

- A/A trials (both sides identical): how often any metric of any service is called "slower",
  how often the run would fail under load_test/slo.yaml, and how wide the intervals are.
- Trials with foo's candidate side delayed (the stand-in's --delay, what --inject-delay uses):
  each delay's true effect on foo's p50 and p95 is the mean change over its trials; the
  table gives, per delay, that effect and the share of trials that called it "slower".
  A sleep of a fraction of a millisecond sleeps longer than asked, so the delay in ms is only
  a knob: read the effect measured.

    python benchmarks/ab_calibration.py --aa 20 --delays 0.05,0.1,0.2 --per-delay 5
    python benchmarks/ab_calibration.py --aa 0 --delays 0.05,0.1 --per-delay 5 --run-time 60
    python benchmarks/ab_calibration.py --rejudge outputs/ab_calibration --block-s 1   # no new load

Every trial's load_test/ folder is kept under --keep (default outputs/ab_calibration/), so the
trials can be judged again with other settings (--rejudge) without sending a request. Trials run
one at a time by default (--workers 1): two at once share the two cores and widen everything.
Traffic goes to 127.0.0.1 only. The summary is printed and written as JSON (--out).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from runbook.core import commands  # noqa: E402

from runbook.analysis import compare
from runbook.targets.baseline import baseline_host  # noqa: E402
from runbook.core.config import RunConfig  # noqa: E402
from runbook.load.runner import run_load_test  # noqa: E402
from runbook.analysis.results import load_results  # noqa: E402
from runbook.core.services import Service, load_services  # noqa: E402
from runbook.analysis.slo import load_slo  # noqa: E402
from runbook.targets.local import stop_process  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def trial(folder: Path, delay_ms: float, run_time: int, users: int) -> Path:
    """One load test with a baseline against a fresh stand-in; its load_test/ folder is kept in folder."""
    port = free_port()
    services = load_services(("foo", "bar"))
    baseline = [Service(s.name, baseline_host(s.host), s.expect, s.path) for s in services]
    routes = [f"--route={s.host}={s.expect}" for s in [*services, *baseline]]
    delay = [f"--delay=foo.localhost={delay_ms:g}"] if delay_ms else []
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    stand_in = commands.start([sys.executable, "-m", "runbook.targets.standin", f"--listen=127.0.0.1:{port}", *routes, *delay],
                              log_path=folder / "ingress.log")
    try:
        time.sleep(1.0)
        config = RunConfig.from_parameters(target="local", users=users, run_time=f"{run_time}s", ingress_port=port,
                                           run_dir=str(folder))
        run_load_test(config, services, folder / "load_test", "127.0.0.1", port, baseline=baseline)
    finally:
        stop_process(stand_in.pid) if stand_in.poll() is None else None
    (folder / "trial.json").write_text(json.dumps({"delay_ms": delay_ms, "run_time_s": run_time, "users": users}))
    return folder


def judge(folder: Path, block_s: float) -> dict[str, object]:
    """The runbook's verdicts on one kept trial."""
    meta = json.loads((folder / "trial.json").read_text())
    results = load_results(folder / "load_test")
    slo = load_slo(ROOT / "load_test" / "slo.yaml")
    changes = compare.compare(results.requests, ["foo", "bar"], slo, block_s=block_s)
    return {
        **meta,
        "metrics": {f"{name}.{m}": {"change": c.change, "low": c.low, "high": c.high, "verdict": c.verdict}
                    for name, metrics in changes.items() for m, c in metrics.items()},
        "slower": [f"{name}.{m}" for name, metrics in changes.items() for m, c in metrics.items() if c.verdict == compare.SLOWER],
        "failed": any(c.beyond_limit for metrics in changes.values() for c in metrics.values()),
        "beyond_limit": [f"{name}.{m}" for name, metrics in changes.items() for m, c in metrics.items() if c.beyond_limit],
        "excludes_zero": [f"{name}.{m}" for name, metrics in changes.items() for m, c in metrics.items()
                          if c.interval_excludes_zero],
        "baseline_ms": {f"foo.{m}": compare.window_value(m, results.requests[("foo", "baseline")].window())
                        for m in ("p50", "p95")},
    }


def _width(trials: list[dict], key: str) -> float | None:
    widths = [100 * (t["metrics"][key]["high"] - t["metrics"][key]["low"]) for t in trials
              if t["metrics"][key]["high"] is not None]
    return round(statistics.median(widths), 1) if widths else None


def summarise(trials: list[dict], block_s: float) -> dict[str, object]:
    by_setting: dict[tuple[float, int], list[dict]] = {}
    for t in trials:
        by_setting.setdefault((t["delay_ms"], t["run_time_s"]), []).append(t)
    rows = []
    for (delay, run_time), group in sorted(by_setting.items()):
        row: dict[str, object] = {"delay_ms": delay, "run_time_s": run_time, "trials": len(group)}
        if delay == 0:
            row.update({
                "any_metric_slower": sum(bool(t["slower"]) for t in group),
                "runs_failed": sum(t["failed"] for t in group),
                "any_95_interval_excluding_zero": sum(bool(t["excludes_zero"]) for t in group),
                "median_width_points": {k: _width(group, k) for k in ("foo.p50", "foo.p95", "bar.p50", "bar.p95")},
            })
        else:
            for metric in ("p50", "p95"):
                key = f"foo.{metric}"
                changes = [t["metrics"][key]["change"] for t in group if t["metrics"][key]["change"] is not None]
                row[f"foo_{metric}_effect"] = round(statistics.mean(changes), 3) if changes else None
                row[f"foo_{metric}_called_slower"] = sum(t["metrics"][key]["verdict"] == compare.SLOWER for t in group)
                row[f"foo_{metric}_beyond_limit"] = sum(key in t["beyond_limit"] for t in group)
            row["runs_failed"] = sum(t["failed"] for t in group)
            row["bar_called_slower"] = sum(any(m.startswith("bar.") for m in t["slower"]) for t in group)
        rows.append(row)
    return {"block_s": block_s, "settings": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--aa", type=int, default=20, help="A/A trials (default: %(default)s)")
    parser.add_argument("--delays", default="0.05,0.1,0.2", help="delays in ms for foo's candidate side (default: %(default)s)")
    parser.add_argument("--per-delay", type=int, default=5, help="trials per delay (default: %(default)s)")
    parser.add_argument("--run-time", type=int, default=30, help="seconds measured (default: %(default)s)")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1, help="trials at once (each on its own port; default 1)")
    parser.add_argument("--block-s", type=float, default=compare.BLOCK_S, help="block length to judge with")
    parser.add_argument("--keep", default=str(ROOT / "outputs" / "ab_calibration"), help="where trials are kept")
    parser.add_argument("--rejudge", metavar="DIR", help="judge every kept trial under DIR again; run nothing")
    parser.add_argument("--out", default=None, help="the JSON summary (default: KEEP/summary.json)")
    args = parser.parse_args()
    started = time.monotonic()
    if args.rejudge:
        folders = sorted(p.parent for p in Path(args.rejudge).glob("*/trial.json"))
    else:
        plan = [0.0] * args.aa + [float(d) for d in args.delays.split(",") if d for _ in range(args.per_delay)]
        stamp = time.strftime("%Y%m%d-%H%M%S")
        keep = Path(args.keep)
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            folders = list(pool.map(lambda item: trial(keep / f"{stamp}-{item[0]:03d}", item[1], args.run_time, args.users),
                                    enumerate(plan)))
    trials = [judge(folder, args.block_s) for folder in folders]
    summary = {**summarise(trials, args.block_s), "workers": args.workers, "wall_s": round(time.monotonic() - started, 1)}
    out = Path(args.out) if args.out else Path(args.rejudge or args.keep) / "summary.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "trials": trials}, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
