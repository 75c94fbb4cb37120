"""Service-level objectives: load_test/slo.yaml, validated, and the checks against a run's numbers.

The file declares per service (with a default for all) the highest failure ratio,
the highest p50/p95/p99 in ms, the lowest achieved throughput as a share of what
the profile should produce, and, for a comparison with a baseline, how much worse
than the baseline each metric may get. A bad file is a ConfigError naming the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runbook.core.errors import ConfigError

LIMITS = ("max_failure_ratio", "max_p50_ms", "max_p95_ms", "max_p99_ms", "min_throughput_ratio")
REGRESSION_METRICS = ("p50", "p95", "p99", "failure_ratio")
DEFAULT_FILE = Path("load_test") / "slo.yaml"


@dataclass(frozen=True)
class Objectives:
    """The limits for one service; None: not checked."""

    max_failure_ratio: float | None = None
    max_p50_ms: float | None = None
    max_p95_ms: float | None = None
    max_p99_ms: float | None = None
    min_throughput_ratio: float | None = None
    regression: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SLO:
    path: str
    default: Objectives
    services: dict[str, Objectives]

    def for_service(self, name: str) -> Objectives:
        return self.services.get(name, self.default)


def _limit(key: str, value: Any, *, ratio: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or math.isinf(value):
        raise ConfigError(key, value, "expected a number")
    if value < 0:
        raise ConfigError(key, value, "a limit may not be negative")
    if ratio and value > 1:
        raise ConfigError(key, value, "a ratio is at most 1")
    return float(value)


def _objectives(where: str, raw: Any, base: Objectives | None) -> Objectives:
    if not isinstance(raw, dict):
        raise ConfigError(where, raw, "expected a mapping of limits")
    known = (*LIMITS, "regression")
    for key in raw:
        if key not in known:
            raise ConfigError(f"{where}.{key}", raw[key], f"unknown key; known: {', '.join(known)}")
    values: dict[str, Any] = {} if base is None else {k: getattr(base, k) for k in LIMITS}
    for key in LIMITS:
        if key in raw and raw[key] is not None:
            values[key] = _limit(f"{where}.{key}", raw[key], ratio=key in ("max_failure_ratio", "min_throughput_ratio"))
    regression = dict(base.regression) if base is not None else {}
    if "regression" in raw:
        if not isinstance(raw["regression"], dict):
            raise ConfigError(f"{where}.regression", raw["regression"], "expected a mapping such as {p95: 0.1}")
        for metric, limit in raw["regression"].items():
            if metric == "throughput":
                raise ConfigError(f"{where}.regression.throughput", limit,
                                  "the comparison no longer judges throughput: the sides take turns, so "
                                  "both sides get the same share of requests whatever their speed (a slower side shows "
                                  "in its latency); remove the key, or use min_throughput_ratio for the candidate")
            if metric not in REGRESSION_METRICS:
                raise ConfigError(f"{where}.regression.{metric}", limit, f"unknown metric; known: {', '.join(REGRESSION_METRICS)}")
            regression[metric] = _limit(f"{where}.regression.{metric}", limit)
    return Objectives(**values, regression=regression)


def load_slo(path: Path) -> SLO:
    """Read and validate an SLO file; ConfigError names the bad key."""
    if not path.is_file():
        raise ConfigError("slo", str(path), "no such file")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError("slo", str(path), f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError("slo", str(path), "expected a mapping with 'default' and 'services'")
    for key in raw:
        if key not in ("default", "services"):
            raise ConfigError(f"slo.{key}", raw[key], "unknown key; known: default, services")
    default = _objectives("default", raw.get("default") or {}, None)
    services_raw = raw.get("services") or {}
    if not isinstance(services_raw, dict):
        raise ConfigError("services", services_raw, "expected a mapping of service name to limits")
    services = {str(name): _objectives(f"services.{name}", limits or {}, default) for name, limits in services_raw.items()}
    return SLO(str(path), default, services)


@dataclass(frozen=True)
class Check:
    service: str
    name: str  # failure ratio, p95, throughput ratio...
    measured: float | None
    limit: float
    kind: str  # "max" or "min"
    unit: str = ""

    @property
    def held(self) -> bool:
        if self.measured is None:
            return False
        return bool(self.measured <= self.limit if self.kind == "max" else self.measured >= self.limit)

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "check": self.name, "measured": self.measured, "limit": self.limit,
                "kind": self.kind, "unit": self.unit, "held": bool(self.held)}


def check_service(name: str, objectives: Objectives, stats: dict[str, Any]) -> list[Check]:
    """The checks of one service's numbers (a result.json service entry) against its objectives.

    The throughput check reads the entry's own throughput_ratio, so that a figure has one value wherever it is shown.
    """
    checks = []
    requests = stats["requests"]
    if objectives.max_failure_ratio is not None:
        ratio = stats["failures"] / requests if requests else None
        checks.append(Check(name, "failure ratio", ratio, objectives.max_failure_ratio, "max"))
    for q in (50, 95, 99):
        limit = getattr(objectives, f"max_p{q}_ms")
        if limit is not None:
            checks.append(Check(name, f"p{q}", stats.get(f"p{q}_ms"), limit, "max", "ms"))
    if objectives.min_throughput_ratio is not None:
        checks.append(Check(name, "throughput ratio", stats.get("throughput_ratio"), objectives.min_throughput_ratio, "min"))
    return checks
