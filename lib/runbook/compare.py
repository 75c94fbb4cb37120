"""The comparison of the candidate (the change) with the baseline (the pull request's base).

Both sides are loaded in alternating rounds of the same length under the same profile,
in pairs (B A, A B, B A, ...). For each pair the metric is computed on each side's round
alone, and the pair gives one number: the log of candidate over baseline (latency,
throughput) or their difference (failure ratio). The change is the mean of the pairs,
and its 95% confidence interval is Student's t over the pairs, so the uncertainty comes
from how much the rounds vary, not from the thousands of requests inside a round (which
are not independent: a slow second slows all of them). With so few pairs, their spread can
by chance come out far smaller than the noise of one round's percentile, so the spread used
is never less than that sampling noise (the order statistics around the percentile; Poisson
for a count; binomial for a ratio). A percentile is judged only when every round has at
least MIN_BEYOND successful requests above it: the p99 of 40 requests is their maximum, and
no estimate of its noise from 40 requests can be trusted. A change is significant when its
interval is entirely on one side of zero; the run fails only when a change is significant,
for the worse, and beyond the regression limit in slo.yaml.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from runbook.slo import SLO

CONFIDENCE = 0.95
METRICS = ("p50", "p95", "p99", "throughput", "failure_ratio")
PERCENTILES = ("p50", "p95", "p99")
#: For which metrics a higher number is worse.
HIGHER_IS_WORSE = {"p50": True, "p95": True, "p99": True, "throughput": False, "failure_ratio": True}
SLOWER, FASTER, SAME = "slower", "faster", "no significant change"
TOO_FEW = "too few requests"
VERDICTS = (SLOWER, FASTER, SAME, TOO_FEW)
#: Successful requests every round must have above a percentile for it to be judged.
MIN_BEYOND = 5


@dataclass(frozen=True)
class Change:
    metric: str
    change: float | None  # relative (0.18 = +18%), or absolute for the failure ratio
    low: float | None
    high: float | None
    verdict: str
    candidate: list[float | None]  # per pair, the candidate's round
    baseline: list[float | None]
    limit: float | None = None  # the regression limit from slo.yaml

    @property
    def relative(self) -> bool:
        return self.metric != "failure_ratio"

    @property
    def worse(self) -> bool:
        return self.verdict == SLOWER

    @property
    def beyond_limit(self) -> bool:
        """Significantly worse and by more than the limit (the point estimate)."""
        if not self.worse or self.limit is None or self.change is None:
            return False
        return (self.change if HIGHER_IS_WORSE[self.metric] else -self.change) > self.limit

    def as_dict(self) -> dict[str, Any]:
        return {"change": _round(self.change), "low": _round(self.low), "high": _round(self.high),
                "verdict": self.verdict, "limit": self.limit, "beyond_limit": bool(self.beyond_limit),
                "candidate_rounds": [_round(v) for v in self.candidate],
                "baseline_rounds": [_round(v) for v in self.baseline]}

    def text(self) -> str:
        """'+18% (+9%..+27%)', or for the failure ratio '+0.20 pp (+0.10..+0.30)'."""
        if self.change is None:
            return "–"
        if self.relative:
            return f"{self.change:+.0%} ({self.low:+.0%}..{self.high:+.0%})"
        return f"{self.change * 100:+.2f} pp ({self.low * 100:+.2f}..{self.high * 100:+.2f})"


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 4)


def round_metric(metric: str, latency: np.ndarray, ok: np.ndarray, round_s: float) -> float | None:
    """One side's metric over one round: percentiles of successes, requests/s, failure ratio."""
    if metric == "throughput":
        return latency.size / round_s
    if metric == "failure_ratio":
        return float((~ok).sum() / ok.size) if ok.size else None
    good = latency[ok]
    return float(np.percentile(good, int(metric[1:]))) if good.size else None


def needed_successes(metric: str) -> int:
    """How many successes a round needs for the metric to be judged: 10 for p50, 100 for p95, 500 for p99."""
    if metric not in PERCENTILES:
        return 0
    return math.ceil(MIN_BEYOND / (1 - int(metric[1:]) / 100) - 1e-9)


def sampling_variance(metric: str, latency: np.ndarray, ok: np.ndarray) -> float:
    """How much one round's metric varies from sampling alone: of its log, or of the ratio itself.

    A percentile's standard error from the order statistics one binomial standard deviation
    around its rank (distribution-free); a count's from Poisson; a ratio's from the binomial.
    """
    if metric == "throughput":
        return 1.0 / latency.size if latency.size else 0.0
    if metric == "failure_ratio":
        p = float((~ok).sum() / ok.size) if ok.size else 0.0
        return p * (1 - p) / ok.size if ok.size else 0.0
    good = np.sort(latency[ok])
    n = good.size
    if n < 2:
        return 0.0
    q = int(metric[1:]) / 100
    spread = math.sqrt(n * q * (1 - q))
    low, high = good[max(int(n * q - spread), 0)], good[min(int(math.ceil(n * q + spread)), n - 1)]
    value = float(np.percentile(good, q * 100))
    return ((high - low) / 2 / value) ** 2 if value > 0 else 0.0


def paired_change(
    metric: str, candidate: list[float | None], baseline: list[float | None], noise: list[float] | None = None,
) -> tuple[float, float, float] | None:
    """The mean change over the pairs and its confidence interval; None with fewer than 2 usable pairs.

    noise: per pair, the sampling variance of its difference (sampling_variance of both rounds),
    a floor under the spread between pairs.
    """
    usable = [i for i, (c, b) in enumerate(zip(candidate, baseline))
              if c is not None and b is not None and (metric == "failure_ratio" or (c > 0 and b > 0))]
    if len(usable) < 2:
        return None
    if metric == "failure_ratio":
        diffs = [candidate[i] - baseline[i] for i in usable]  # type: ignore[operator]
    else:
        diffs = [math.log(candidate[i] / baseline[i]) for i in usable]  # type: ignore[operator]
    values = np.array(diffs)
    mean = float(values.mean())
    variance = float(values.var(ddof=1))
    if noise:
        variance = max(variance, float(np.mean([noise[i] for i in usable])))
    half = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, values.size - 1) * math.sqrt(variance / values.size))
    low, high = mean - half, mean + half
    if metric == "failure_ratio":
        return mean, low, high
    return math.expm1(mean), math.expm1(low), math.expm1(high)


def verdict(metric: str, low: float, high: float) -> str:
    if low > 0:
        return SLOWER if HIGHER_IS_WORSE[metric] else FASTER
    if high < 0:
        return FASTER if HIGHER_IS_WORSE[metric] else SLOWER
    return SAME


def compare_service(
    name: str, rounds: dict[tuple[str, str, int], tuple[np.ndarray, np.ndarray]], order: list[str], round_s: float,
    limits: dict[str, float],
) -> dict[str, Change]:
    """Every metric of one service, candidate against baseline, pair by pair."""
    empty = (np.array([]), np.array([], dtype=bool))
    pairs = [(i + 1, i + 2) for i in range(0, len(order) - 1, 2)]
    changes = {}
    for metric in METRICS:
        cand, base, noise, fewest = [], [], [], math.inf
        for first, second in pairs:
            by_side = {order[first - 1]: first, order[second - 1]: second}
            c_round = rounds.get((name, "candidate", by_side["candidate"]), empty)
            b_round = rounds.get((name, "baseline", by_side["baseline"]), empty)
            cand.append(round_metric(metric, *c_round, round_s))
            base.append(round_metric(metric, *b_round, round_s))
            noise.append(sampling_variance(metric, *c_round) + sampling_variance(metric, *b_round))
            fewest = min(fewest, int(c_round[1].sum()), int(b_round[1].sum()))
        found = paired_change(metric, cand, base, noise)
        limit = limits.get(metric)
        if fewest < needed_successes(metric):
            changes[metric] = Change(metric, None, None, None, TOO_FEW, cand, base, limit)
        elif found is None:
            changes[metric] = Change(metric, None, None, None, SAME, cand, base, limit)
        else:
            change, low, high = found
            changes[metric] = Change(metric, change, low, high, verdict(metric, low, high), cand, base, limit)
    return changes


def compare(
    rounds: dict[tuple[str, str, int], tuple[np.ndarray, np.ndarray]], services: list[str], schedule: dict[str, Any],
    slo: SLO,
) -> dict[str, dict[str, Change]]:
    return {name: compare_service(name, rounds, schedule["order"], float(schedule["round_s"]),
                                  slo.for_service(name).regression) for name in services}


LABELS = {"p50": "p50", "p95": "p95", "p99": "p99", "throughput": "throughput", "failure_ratio": "failure ratio"}


def headline(changes: dict[str, dict[str, Change]]) -> str:
    """The one-line answer: 'no significant change', or what got worse (and whether beyond its limit).

    Percentiles that had too few requests to be judged are named after it.
    """
    worse = [(name, c) for name, metrics in changes.items() for c in metrics.values() if c.worse]
    better = [(name, c) for name, metrics in changes.items() for c in metrics.values() if c.verdict == FASTER]
    unjudged = [f"{name} {LABELS[c.metric]}" for name, metrics in changes.items() for c in metrics.values()
                if c.verdict == TOO_FEW]
    if worse:
        parts = []
        for name, c in worse:
            limit = ""
            if c.limit is not None:
                limit = f", over the {c.limit:.0%} limit" if c.beyond_limit else f", within the {c.limit:.0%} limit"
            parts.append(f"{name} {LABELS[c.metric]} {c.text()}{limit}")
        answer = "; ".join(parts)
    elif better:
        answer = "faster: " + "; ".join(f"{name} {LABELS[c.metric]} {c.text()}" for name, c in better)
    else:
        answer = SAME
    if unjudged:
        answer += f" (not judged, too few requests a round: {', '.join(unjudged)})"
    return answer
