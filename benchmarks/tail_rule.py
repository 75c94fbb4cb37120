"""How often the comparison calls identical sides different, on synthetic request logs, with and without the tail rule.

The comparison judges a percentile only when each side has at least compare.MIN_BEYOND
successes above it over the measured window (benchmarks/ab_calibration.py measures the whole
runbook on real traffic; this measures the statistics alone, over more trials than real runs
allow). Every trial draws one service's two sides, interleaved over 20 s, from the same
distribution, and counts a percentile as a false alarm when its 95% interval leaves out zero
(one metric alone, before the run's correction for many metrics). Models:

- sampling: log-normal latencies (sigma 0.5), nothing else varies;
- drift: the same, each second scaled by a log-normal factor (sigma 0.3) for both sides alike,
  as a busy runner does;
- pauses: drift, and 2% of requests 10 times slower (a garbage collection, a retransmit).

"Without" sets compare.MIN_BEYOND to 0: every percentile judged, however few requests lie
beyond it. Nominal rate: 5%.

    python benchmarks/tail_rule.py --trials 200
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from runbook.analysis import compare  # noqa: E402
from runbook.analysis.results import Requests  # noqa: E402
from runbook.analysis.slo import SLO, Objectives  # noqa: E402

NO_LIMITS = SLO("none", Objectives(), {})

MODELS = {"sampling": (0.0, 0.0), "drift": (0.3, 0.0), "pauses": (0.3, 0.02)}
SIZES = (40, 100, 500, 2000)
PERCENTILES = ("p50", "p95", "p99")
SECONDS = 20


def sides(rng: np.random.Generator, n: int, drift: float, pauses: float) -> dict:
    """n requests a side over SECONDS, the sides interleaved; each second's factor shared by both."""
    factor = rng.lognormal(0.0, drift, SECONDS) if drift else np.ones(SECONDS)
    drawn = {}
    for side in ("candidate", "baseline"):
        t = np.sort(rng.uniform(0, SECONDS, n))
        latency = rng.lognormal(0.0, 0.5, n) * factor[t.astype(int)] * np.where(rng.random(n) < pauses, 10.0, 1.0)
        drawn[("foo", side)] = Requests(1000 + t, latency, np.ones(n, dtype=bool), np.ones(n, dtype=bool))
    return drawn


def false_alarms(trials: int, n: int, drift: float, pauses: float, seed: int, resamples: int) -> dict[str, dict[str, list[int]]]:
    """Per percentile, [false alarms, judged trials] with the rule and without it, on the same draws."""
    rng = np.random.default_rng(seed)
    counts = {rule: {m: [0, 0] for m in PERCENTILES} for rule in ("with", "without")}
    kept = compare.MIN_BEYOND
    for _ in range(trials):
        drawn = sides(rng, n, drift, pauses)
        for rule, min_beyond in (("with", kept), ("without", 0)):
            compare.MIN_BEYOND = min_beyond
            try:
                changes = compare.compare(drawn, ["foo"], NO_LIMITS, resamples=resamples)["foo"]
            finally:
                compare.MIN_BEYOND = kept
            for metric in PERCENTILES:
                counts[rule][metric][0] += changes[metric].interval_excludes_zero
                counts[rule][metric][1] += changes[metric].verdict != compare.TOO_FEW
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200, help="trials per model and size (default: %(default)s)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples a trial (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "outputs" / "tail_rule.json"))
    args = parser.parse_args()
    found = {}
    for model, (drift, pauses) in MODELS.items():
        for n in SIZES:
            counts = false_alarms(args.trials, n, drift, pauses, args.seed, args.resamples)
            found[f"{model} n={n}"] = counts
            cells = [f"{m} {counts[rule][m][0]}/{counts[rule][m][1]}" for rule in ("with", "without") for m in PERCENTILES]
            print(f"{model:8} {n:5} a side | with the rule: {', '.join(cells[:3])} | without: {', '.join(cells[3:])}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"trials": args.trials, "seed": args.seed, "results": found}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
