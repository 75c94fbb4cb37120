"""Traefik's per-service Prometheus metrics: parsed, summed over its pods, and read as differences.

Traefik (and the local stand-in, in the same shape) exposes per service
`traefik_service_requests_total{code,method,protocol,service}` and the histogram
`traefik_service_request_duration_seconds{code,method,protocol,service,le}`. Both are
counters since the process started, so what happened during a load test is the difference
between two scrapes; a counter that went down means the process restarted in between,
and the later value is what was counted since (Prometheus's rule for resets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

REQUESTS = "traefik_service_requests_total"
DURATION = "traefik_service_request_duration_seconds"
#: Latency buckets in seconds, from a tenth of a millisecond to ten seconds: Traefik's defaults
#: (0.1, 0.3, 1.2, 5) cannot tell 1 ms from 90 ms. k8s/traefik/values.yaml sets the same list
#: (a test holds them equal) and the local stand-in uses it too.
BUCKETS_S: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05,
    0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)


@dataclass
class ServiceCounters:
    """One Traefik service's counters at one scrape, summed over codes, methods and pods."""

    by_code: dict[str, float] = field(default_factory=dict)
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound (s, inf included) -> cumulative count
    seconds: float = 0.0  # the histogram's _sum
    observed: float = 0.0  # the histogram's _count

    @property
    def requests(self) -> float:
        return sum(self.by_code.values())

    def add(self, other: "ServiceCounters") -> None:
        """Count other's requests and observations in too (another label of the same service)."""
        for code, n in other.by_code.items():
            self.by_code[code] = self.by_code.get(code, 0.0) + n
        for le, n in other.buckets.items():
            self.buckets[le] = self.buckets.get(le, 0.0) + n
        self.seconds += other.seconds
        self.observed += other.observed

    def as_dict(self) -> dict[str, object]:
        return {"by_code": self.by_code, "buckets": [[_bound(le), n] for le, n in sorted(self.buckets.items())],
                "seconds": self.seconds, "observed": self.observed}

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> "ServiceCounters":
        buckets = {float(le): float(n) for le, n in raw.get("buckets", [])}  # type: ignore[union-attr]  # float("+Inf") is inf
        return cls({str(k): float(v) for k, v in dict(raw.get("by_code", {})).items()},  # type: ignore[call-overload]
                   buckets, float(raw.get("seconds", 0.0)), float(raw.get("observed", 0.0)))  # type: ignore[arg-type]


def _bound(le: float) -> float | str:
    return "+Inf" if math.isinf(le) else le


def parse(texts: list[str]) -> dict[str, ServiceCounters]:
    """{service label: counters} from the metrics text of every Traefik pod (summed: each pod counts its own)."""
    services: dict[str, ServiceCounters] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                service = sample.labels.get("service")
                if service is None:
                    continue
                counters = services.setdefault(service, ServiceCounters())
                if sample.name == REQUESTS:
                    code = sample.labels.get("code", "")
                    counters.by_code[code] = counters.by_code.get(code, 0.0) + sample.value
                elif sample.name == DURATION + "_bucket":
                    le = float(sample.labels["le"])
                    counters.buckets[le] = counters.buckets.get(le, 0.0) + sample.value
                elif sample.name == DURATION + "_sum":
                    counters.seconds += sample.value
                elif sample.name == DURATION + "_count":
                    counters.observed += sample.value
    return services


def difference(later: ServiceCounters, earlier: ServiceCounters | None) -> ServiceCounters:
    """What was counted between two scrapes (earlier None: everything since the start).

    Fewer requests or observations than before means Traefik restarted in between (the sums over
    its pods went down): then what it counted since is all there is.
    """
    if earlier is None:
        return later
    if later.observed < earlier.observed or later.requests < earlier.requests:
        return later
    codes = {code: n - earlier.by_code.get(code, 0.0) for code, n in later.by_code.items()}
    buckets = {le: n - earlier.buckets.get(le, 0.0) for le, n in later.buckets.items()}
    return ServiceCounters(codes, buckets, later.seconds - earlier.seconds, later.observed - earlier.observed)


@dataclass(frozen=True)
class Quantile:
    """A quantile from a histogram: interpolated within its bucket, whose bounds are its uncertainty."""

    value_s: float
    low_s: float
    high_s: float


def quantile(q: float, counters: ServiceCounters) -> Quantile | None:
    """The q-quantile (0 < q < 1) of the observations, as Prometheus's histogram_quantile estimates it.

    None without observations. Linear within the bucket that holds it; in the +Inf bucket the
    estimate is the highest finite bound (all that is known is "above it").
    """
    ordered = sorted(counters.buckets.items())
    total = ordered[-1][1] if ordered else 0.0
    if total <= 0:
        return None
    rank = q * total
    low, below = 0.0, 0.0
    for le, cumulative in ordered:
        if cumulative >= rank:  # the first bucket that reaches the rank (it holds observations, as rank > below)
            break
        low, below = le, cumulative
    if math.isinf(le):
        return Quantile(low, low, math.inf)
    return Quantile(low + (le - low) * (rank - below) / (cumulative - below), low, le)
