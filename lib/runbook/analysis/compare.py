"""The comparison of the candidate (the change) with the baseline (the pull request's base).

The design (the locustfile): from the first second, a service's requests go to the candidate
and the baseline in pairs in random order, so both sides share every second of the machine,
of Traefik and of the cluster, in equal numbers; each user's first request (it opens the
connection) is a warm-up left out. Per service and metric the change is the candidate's value over the
measured window against the baseline's: the ratio for the percentiles of successes (shown
as +18%), the difference for the failure ratio.

The uncertainty: requests within a second are not independent (a slow second slows every
request in it), so the measured window is cut into blocks of BLOCK_S seconds and the blocks
are resampled with replacement, each block carrying both sides' requests (a block bootstrap,
scipy.stats.bootstrap over the blocks, RESAMPLES resamples from a fixed SEED: the same
request log always gives the same verdicts). A slow second then moves both sides of every
resample together, and the interval measures how the sides differ, not how the machine
drifts. The 95% interval is the change plus or minus Student's t (blocks - 1 degrees of
freedom) times the resampled changes' standard error (see _t_interval for why not their
percentiles).

Many metrics at once: with two services and four metrics a run has eight chances of a false
alarm. A change is called slower (or faster) only when it holds after Holm's correction over
every metric judged in the run, so that a run with no real change calls anything at most 5%
of the time. A metric whose resamples never differ from zero (no failure on either side) cannot be
significant and is not counted. The 95% interval is shown as it is; when it leaves out zero
and the correction still says "no significant change", the table says why.

Not judged: a percentile unless each side has at least MIN_BEYOND successes above it over
the window (the p99 of 40 requests is their maximum), and nothing in a window of fewer than
MIN_BLOCKS blocks (too few to resample). Throughput is not compared: the sides take turns, so both get
the same share of requests whatever their speed; a slower side shows in its latency.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from runbook.analysis.results import Requests
from runbook.analysis.slo import SLO

CONFIDENCE = 0.95
#: The false-alarm rate of a whole run (Holm's correction over every metric judged).
FAMILY_ALPHA = 0.05
METRICS = ("p50", "p95", "p99", "failure_ratio")
PERCENTILES = ("p50", "p95", "p99")
#: For which metrics a higher number is worse.
HIGHER_IS_WORSE = {"p50": True, "p95": True, "p99": True, "failure_ratio": True}
SLOWER, FASTER, SAME = "slower", "faster", "no significant change"
TOO_FEW = "too few requests"
TOO_SHORT = "too short to judge"
VERDICTS = (SLOWER, FASTER, SAME, TOO_FEW, TOO_SHORT)
#: Successful requests each side must have above a percentile over the window for it to be judged.
MIN_BEYOND = 5
#: Seconds per block of the bootstrap; the calibration (benchmarks/ab_calibration.py) chose it.
BLOCK_S = 1.0
#: Fewer blocks than this give no verdict at all.
MIN_BLOCKS = 8
RESAMPLES = 2000
SEED = 17
#: Relative width of the latency bins the resamples are computed on (the reported values are exact).
RESOLUTION = 0.002
_BATCH = 200


@dataclass(frozen=True)
class Change:
    metric: str
    change: float | None  # relative (0.18 = +18%), or absolute for the failure ratio
    low: float | None
    high: float | None
    verdict: str
    candidate: float | None  # the metric over the measured window: the same number as the main table's
    baseline: float | None
    limit: float | None = None  # the regression limit from slo.yaml
    p_value: float | None = None  # the bootstrap's two-sided p-value, before Holm's correction

    @property
    def relative(self) -> bool:
        return self.metric != "failure_ratio"

    @property
    def worse(self) -> bool:
        return self.verdict == SLOWER

    @property
    def interval_excludes_zero(self) -> bool:
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    @property
    def beyond_limit(self) -> bool:
        """Significantly worse and by more than the limit (the point estimate)."""
        if not self.worse or self.limit is None or self.change is None:
            return False
        return (self.change if HIGHER_IS_WORSE[self.metric] else -self.change) > self.limit

    def as_dict(self) -> dict[str, Any]:
        return {"change": _round(self.change), "low": _round(self.low), "high": _round(self.high),
                "verdict": self.verdict, "limit": self.limit, "beyond_limit": bool(self.beyond_limit),
                "candidate": _round(self.candidate), "baseline": _round(self.baseline),
                "p_value": _round(self.p_value)}

    def text(self) -> str:
        """'+18% (+9%..+27%)', or for the failure ratio '+0.20 pp (+0.10..+0.30)'."""
        if self.change is None or self.low is None or self.high is None:
            return "–"
        if self.relative:
            return f"{self.change:+.0%} ({self.low:+.0%}..{self.high:+.0%})"
        return f"{self.change * 100:+.2f} pp ({self.low * 100:+.2f}..{self.high * 100:+.2f})"


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 4)


def needed_successes(metric: str) -> int:
    """How many successes a side needs for the metric to be judged: 10 for p50, 100 for p95, 500 for p99."""
    if metric not in PERCENTILES:
        return 0
    return math.ceil(MIN_BEYOND / (1 - int(metric[1:]) / 100) - 1e-9)


def window_value(metric: str, requests: Requests) -> float | None:
    """One side's metric over its measured requests: a percentile of successes, or the failure ratio."""
    if metric == "failure_ratio":
        return float((~requests.ok).sum() / requests.ok.size) if requests.ok.size else None
    good = requests.latency_ms[requests.ok]
    return float(np.percentile(good, int(metric[1:]))) if good.size else None


class _Blocks:
    """One service's two sides cut into blocks of time: per block, a latency histogram of successes and the counts."""

    def __init__(self, candidate: Requests, baseline: Requests, start: float, blocks: int, block_s: float) -> None:
        good = np.concatenate([candidate.latency_ms[candidate.ok], baseline.latency_ms[baseline.ok]])
        positive = good[good > 0]
        self.low = float(positive.min()) if positive.size else 1e-3
        self.step = math.log1p(RESOLUTION)
        top = float(good.max()) if good.size else self.low
        self.bins = int(math.log(max(top, self.low) / self.low) / self.step) + 1
        self.sides = [self._side(r, start, blocks, block_s) for r in (candidate, baseline)]

    def _side(self, requests: Requests, start: float, blocks: int, block_s: float) -> tuple[np.ndarray, ...]:
        block = np.clip(((requests.t - start) // block_s).astype(int), 0, blocks - 1)
        latency = np.maximum(requests.latency_ms, self.low)
        bin_index = np.minimum((np.log(latency / self.low) / self.step).astype(int), self.bins - 1)
        cell = block[requests.ok] * self.bins + bin_index[requests.ok]  # each success's (block, bin), flattened
        hist = np.bincount(cell, minlength=blocks * self.bins).reshape(blocks, self.bins).astype(float)
        sent = np.bincount(block, minlength=blocks).astype(float)
        failed = np.bincount(block[~requests.ok], minlength=blocks).astype(float)
        return hist, sent, failed

    def statistics(self, weights: np.ndarray) -> np.ndarray:
        """For each row of block weights: log(candidate/baseline) of p50, p95, p99 and the failure ratios' difference."""
        values = []
        for metric in METRICS:
            if metric == "failure_ratio":
                ratios = []
                for _, sent, failed in self.sides:
                    n = weights @ sent
                    ratios.append(np.divide(weights @ failed, n, out=np.full(n.shape, np.nan), where=n > 0))
                values.append(ratios[0] - ratios[1])
            else:
                q = int(metric[1:]) / 100
                logs = [self._log_percentile(weights @ hist, q) for hist, _, _ in self.sides]
                values.append(logs[0] - logs[1])
        return np.stack(values)

    def _log_percentile(self, hist: np.ndarray, q: float) -> np.ndarray:
        cumulative = np.cumsum(hist, axis=1)
        n = cumulative[:, -1]
        rank = np.floor(q * (n - 1))
        index = (cumulative > rank[:, None]).argmax(axis=1)
        return np.where(n > 0, math.log(self.low) + (index + 0.5) * self.step, np.nan)


def _bootstrap(blocks: _Blocks, count: int, resamples: int, seed: int) -> scipy_stats._resampling.BootstrapResult:
    def statistic(ids: np.ndarray, axis: int = -1) -> np.ndarray:
        ids = np.moveaxis(np.asarray(ids), axis, -1)
        flat = ids.reshape(-1, ids.shape[-1])
        weights = np.zeros((flat.shape[0], count))
        np.add.at(weights, (np.arange(flat.shape[0])[:, None], flat), 1)
        found = blocks.statistics(weights)
        return found.reshape(len(METRICS), *ids.shape[:-1])

    with warnings.catch_warnings():
        # A metric whose resamples never vary (no failures on either side) is expected, not a problem.
        warnings.simplefilter("ignore", scipy_stats.DegenerateDataWarning)
        return scipy_stats.bootstrap(
            (np.arange(count),), statistic, n_resamples=resamples, batch=_BATCH, vectorized=True, method="percentile",
            confidence_level=CONFIDENCE, rng=np.random.default_rng(seed))


def _t_interval(point: float, standard_error: float, blocks: int) -> tuple[float, float, float]:
    """The interval and two-sided p-value of a change: its resamples' standard error, Student's t on blocks - 1.

    The resamples' own percentiles were tried first: with the 18 blocks the first design measured, 11 of 120 A/A
    intervals left out zero where 6 should; the standard error widened by sqrt(n / (n - 1)) and t's quantile
    for n - 1 degrees of freedom left out 4 of 120 (benchmarks/ab_calibration.py).
    """
    se = standard_error * math.sqrt(blocks / (blocks - 1)) if math.isfinite(standard_error) else 0.0
    if se <= 0:
        return point, point, 1.0 if point == 0 else 0.0
    half = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, blocks - 1)) * se
    return point - half, point + half, float(2 * scipy_stats.t.sf(abs(point) / se, blocks - 1))


@dataclass(frozen=True)
class _Estimate:
    change: float | None
    low: float | None
    high: float | None
    p_value: float | None
    testable: bool  # False: every resample gave no change at all (no failures on either side, say)


def measured_start(requests: dict[tuple[str, str], Requests]) -> float:
    """When the measured window starts: the first measured request of any service or side."""
    starts = [float(r.window().t.min()) for r in requests.values() if r.window().t.size]
    return min(starts, default=0.0)


def _windows(requests: dict[tuple[str, str], Requests], services: list[str]
             ) -> tuple[dict[tuple[str, str], Requests], float, float]:
    """The services' measured requests on both sides, and when the window starts and ends."""
    windows = {key: r.window() for key, r in requests.items() if key[0] in services and key[1] in ("candidate", "baseline")}
    start = measured_start(windows)
    return windows, start, max([float(w.t.max()) for w in windows.values() if w.t.size], default=start)


def estimate_service(
    candidate: Requests, baseline: Requests, start: float, end: float, block_s: float = BLOCK_S,
    resamples: int = RESAMPLES, seed: int = SEED,
) -> dict[str, _Estimate] | None:
    """Every metric's change with its interval over [start, end); None when there are too few blocks."""
    count = max(int(math.ceil((end - start) / block_s)), 1)
    blocks = _Blocks(candidate, baseline, start, count, block_s)
    used = np.flatnonzero(sum(side[1] for side in blocks.sides) > 0)
    if used.size < MIN_BLOCKS:
        return None
    # Blocks without any request carry nothing to resample: leave them out.
    blocks.sides = [(hist[used], sent[used], failed[used]) for hist, sent, failed in blocks.sides]
    result = _bootstrap(blocks, used.size, resamples, seed)
    found = {}
    for i, metric in enumerate(METRICS):
        distribution = result.bootstrap_distribution[i]
        c, b = window_value(metric, candidate), window_value(metric, baseline)
        if c is None or b is None or (metric != "failure_ratio" and (c <= 0 or b <= 0)):
            found[metric] = _Estimate(None, None, None, None, False)
            continue
        finite = distribution[np.isfinite(distribution)]
        testable = bool(finite.size) and bool(np.any(finite != 0))
        point = c - b if metric == "failure_ratio" else math.log(c / b)
        low, high, p_value = _t_interval(point, float(np.std(finite, ddof=1)) if finite.size > 1 else 0.0, used.size)
        if metric == "failure_ratio":
            found[metric] = _Estimate(point, low, high, p_value, testable)
        else:
            found[metric] = _Estimate(math.expm1(point), math.expm1(low), math.expm1(high), p_value, testable)
    return found


def holm(p_values: dict[Any, float], alpha: float | None = None) -> set[Any]:
    """Which hypotheses Holm's step-down procedure rejects, at family-wise level alpha (FAMILY_ALPHA)."""
    alpha = FAMILY_ALPHA if alpha is None else alpha
    ordered = sorted(p_values.items(), key=lambda item: item[1])
    rejected = set()
    for i, (key, p) in enumerate(ordered):
        if p > alpha / (len(ordered) - i):
            break
        rejected.add(key)
    return rejected


def verdict(metric: str, change: float) -> str:
    if change > 0:
        return SLOWER if HIGHER_IS_WORSE[metric] else FASTER
    return FASTER if HIGHER_IS_WORSE[metric] else SLOWER


def compare(
    requests: dict[tuple[str, str], Requests], services: list[str], slo: SLO, block_s: float = BLOCK_S,
    resamples: int = RESAMPLES, seed: int = SEED,
) -> dict[str, dict[str, Change]]:
    """Every metric of every service, candidate against baseline, with Holm's correction over the run."""
    empty = Requests(np.array([]), np.array([]), np.array([], dtype=bool), np.array([], dtype=bool))
    windows, start, end = _windows(requests, services)
    end += 1e-9
    estimates: dict[str, dict[str, _Estimate] | None] = {}
    sides: dict[str, tuple[Requests, Requests]] = {}
    for name in services:
        sides[name] = (windows.get((name, "candidate"), empty), windows.get((name, "baseline"), empty))
        estimates[name] = estimate_service(*sides[name], start, end, block_s, resamples, seed)
    judged = {}
    for name, found in estimates.items():
        for metric in METRICS:
            if found is None or _too_few(metric, *sides[name]):
                continue
            e = found[metric]
            if e.change is not None and e.testable:
                judged[(name, metric)] = e.p_value
    significant = holm(judged)
    changes: dict[str, dict[str, Change]] = {}
    for name in services:
        limits = slo.for_service(name).regression
        candidate, baseline = sides[name]
        changes[name] = {}
        for metric in METRICS:
            values = (window_value(metric, candidate), window_value(metric, baseline))
            found = estimates[name]
            if _too_few(metric, candidate, baseline):
                changes[name][metric] = Change(metric, None, None, None, TOO_FEW, *values, limits.get(metric))
            elif found is None:
                changes[name][metric] = Change(metric, None, None, None, TOO_SHORT, *values, limits.get(metric))
            else:
                e = found[metric]
                word = verdict(metric, e.change) if (name, metric) in significant and e.change else SAME
                changes[name][metric] = Change(metric, e.change, e.low, e.high, word, *values, limits.get(metric), e.p_value)
    return changes


def _too_few(metric: str, candidate: Requests, baseline: Requests) -> bool:
    needed = needed_successes(metric)
    return needed > 0 and min(int(candidate.ok.sum()), int(baseline.ok.sum())) < needed


def over_time(
    requests: dict[tuple[str, str], Requests], services: list[str], metrics: tuple[str, ...] = ("p50", "p95"),
    block_s: float = BLOCK_S, resamples: int = 400, seed: int = SEED,
) -> dict[str, dict[str, list[tuple[float, float, float, float]]]]:
    """The change and its 95% interval over the first k blocks, for growing k: does the estimate settle?

    Per service and metric, a list of (seconds measured, change, low, high), from MIN_BLOCKS blocks on.
    """
    windows, start, end = _windows(requests, services)
    total = int(math.ceil((end - start) / block_s))
    steps = sorted({*range(MIN_BLOCKS, total + 1, max(1, (total - MIN_BLOCKS) // 12 or 1)), total})
    empty = Requests(np.array([]), np.array([]), np.array([], dtype=bool), np.array([], dtype=bool))
    found: dict[str, dict[str, list[tuple[float, float, float, float]]]] = {name: {m: [] for m in metrics} for name in services}
    for k in steps:
        cut = start + k * block_s
        for name in services:
            sides = [_before(windows.get((name, side), empty), cut) for side in ("candidate", "baseline")]
            estimates = estimate_service(*sides, start, cut, block_s, resamples, seed)
            for metric in metrics:
                e = (estimates or {}).get(metric)
                if e is not None and e.change is not None and not _too_few(metric, *sides):
                    found[name][metric].append((k * block_s, e.change, e.low, e.high))  # type: ignore[arg-type]
    return found


def _before(requests: Requests, cut: float) -> Requests:
    keep = requests.t < cut
    return Requests(requests.t[keep], requests.latency_ms[keep], requests.ok[keep], requests.measured[keep])


LABELS = {"p50": "p50", "p95": "p95", "p99": "p99", "failure_ratio": "failure ratio"}


def headline(changes: dict[str, dict[str, Change]]) -> str:
    """The one-line answer: 'no significant change', or what got worse (and whether beyond its limit).

    Percentiles that had too few requests to be judged are named after it.
    """
    worse = [(name, c) for name, metrics in changes.items() for c in metrics.values() if c.worse]
    better = [(name, c) for name, metrics in changes.items() for c in metrics.values() if c.verdict == FASTER]
    unjudged = [f"{name} {LABELS[c.metric]}" for name, metrics in changes.items() for c in metrics.values()
                if c.verdict == TOO_FEW]
    short = any(c.verdict == TOO_SHORT for metrics in changes.values() for c in metrics.values())
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
    elif short:
        answer = f"not judged: the run is too short (fewer than {MIN_BLOCKS} blocks of {BLOCK_S:g} s)"
    else:
        answer = SAME
    if unjudged:
        answer += f" (not judged, too few requests: {', '.join(unjudged)})"
    return answer
