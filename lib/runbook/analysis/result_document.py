"""result.json: its one definition, written by the report stage and read back, validated, by publish.

The TypedDicts below are the shape; the report builds a ResultDocument, and parse() is
how anything reads one back (publish, from a fork's artifact, reads untrusted data). A
test checks that what the report writes parses back to itself, so the two cannot drift.
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

from runbook.core.errors import InvalidResult

SHA = re.compile(r"^[0-9a-f]{40}$")
_SERVICE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class Profile(TypedDict):
    users: int
    spawn_rate: float
    run_time_s: int
    wait_min_s: float
    wait_max_s: float
    request_timeout_s: float
    endpoint: str


class ServiceNumbers(TypedDict, total=False):
    requests: int
    failures: int
    rps: float
    min_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    errors: dict[str, int]
    throughput_ratio: float | None


class CheckEntry(TypedDict):
    service: str
    check: str
    measured: float | None
    limit: float
    kind: str
    unit: str
    held: bool


class SloSection(TypedDict):
    file: str
    held: bool
    checks: list[CheckEntry]


class ComparisonSection(TypedDict, total=False):
    baseline: dict[str, Any]
    available: bool
    why: str
    design: str
    warmup_requests: int  # each user's first requests, left out
    measured_s: float
    block_s: float
    resamples: int
    confidence: float
    family_alpha: float
    injected_delay_ms: dict[str, float]
    verdict: str | None
    headline: str
    failed: bool
    services: dict[str, dict[str, dict[str, Any]]]
    baseline_services: dict[str, ServiceNumbers]


class ServerSection(TypedDict):
    """What Traefik, the pods and the processes saw (server_side.ServerSide.as_dict)."""

    services: dict[str, dict[str, Any]]
    baseline_services: dict[str, dict[str, Any]]
    processes: dict[str, dict[str, Any]]
    generator_saturated: bool
    samples: dict[str, dict[str, Any]]
    notes: list[str]


class ResultDocument(TypedDict, total=False):
    status: str
    interrupted: bool
    target: str
    target_description: str
    commit: str
    generated: str
    config: Profile
    load_test: dict[str, str]
    services: dict[str, ServiceNumbers]
    slo: SloSection
    comparison: ComparisonSection | None
    server: ServerSection | None
    warnings: list[str]



def run_warnings(config: Profile, services: dict[str, ServiceNumbers]) -> list[str]:
    """What makes a run's figures mean less than they seem, from its own numbers (rebuilt, never read back)."""
    from runbook.analysis.compare import MIN_BEYOND

    warnings = []
    users, rate, run = config["users"], float(config["spawn_rate"] or 1), config["run_time_s"]
    if users and run < users / rate:
        warnings.append(f"The run ({run} s) is shorter than its ramp-up ({users / rate:g} s for {users} users at {rate:g}/s): "
                        f"at most {min(users, int(rate * run))} users ever ran, so these figures describe a lighter "
                        "load than the profile's.")
    for name, s in services.items():
        successes = int(s.get("requests") or 0) - int(s.get("failures") or 0)
        thin = [f"p{q}" for q in (50, 95, 99) if successes < MIN_BEYOND / (1 - q / 100) - 1e-9]
        if thin and successes:
            warnings.append(f"{name}: {' and '.join(thin)} {'rest' if len(thin) > 1 else 'rests'} on {successes} successful requests, fewer than "
                            f"{MIN_BEYOND} beyond {'them' if len(thin) > 1 else 'it'}: read "
                            f"{'them' if len(thin) > 1 else 'it'} as the slowest few requests, not as a percentile.")
    return warnings


def _number(value: Any, name: str, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
        raise InvalidResult(f"result.json: {name} is not a number: {value!r}")
    return value


def parse(raw: Any) -> ResultDocument:
    """A result document read back (from an artifact, say): every field checked and re-built, InvalidResult if not.

    Data from the artifact can make a verdict worse, never better: the status is recomputed from
    the checks and the comparison, texts are cut to size (and shown inert by the renderers), the
    description comes from the target's name, and the comparison's headline from its numbers.
    """
    from runbook.targets import describe

    if not isinstance(raw, dict):
        raise InvalidResult("result.json: not an object")

    if raw.get("status") not in ("passed", "failed"):
        raise InvalidResult(f"result.json: status must be passed or failed, not {raw.get('status')!r}")
    if raw.get("target") not in ("local", "kind", "kubeconfig"):
        raise InvalidResult(f"result.json: unknown target {raw.get('target')!r}")
    commit = str(raw.get("commit", ""))
    config = raw.get("config") or {}
    services = _services(raw.get("services"), "services")
    if not services:
        raise InvalidResult("result.json lists no services")
    profile = {
        "users": int(_number(config.get("users"), "config.users") or 0),
        "spawn_rate": _number(config.get("spawn_rate"), "config.spawn_rate"),
        "run_time_s": int(_number(config.get("run_time_s"), "config.run_time_s") or 0),
        "wait_min_s": _number(config.get("wait_min_s"), "config.wait_min_s"),
        "wait_max_s": _number(config.get("wait_max_s"), "config.wait_max_s"),
        "request_timeout_s": _number(config.get("request_timeout_s"), "config.request_timeout_s"),
        "endpoint": str(config.get("endpoint", ""))[:200],
    }
    slo, comparison = _slo_section(raw.get("slo")), _comparison_section(raw.get("comparison"))
    # Recomputed where the numbers say so: data from the artifact can make a verdict worse, never better.
    interrupted = raw.get("interrupted") is True
    failed = raw["status"] == "failed" or not slo["held"] or bool(comparison and comparison["failed"]) or interrupted
    return {
        "status": "failed" if failed else "passed",
        "interrupted": interrupted,
        "target": raw["target"],
        "target_description": describe(raw["target"]),
        "commit": commit if SHA.match(commit) else "unknown",
        "config": profile,
        "warnings": run_warnings(profile, services),
        "generated": str(raw.get("generated", ""))[:40],
        "load_test": {key: str((raw.get("load_test") or {}).get(key, ""))[:40] for key in ("started", "finished")},
        "services": services,
        "slo": slo,
        "comparison": comparison,
        "server": _server_section(raw.get("server")),
    }


def _services(raw: Any, where: str) -> dict[str, ServiceNumbers]:
    services: dict[str, ServiceNumbers] = {}
    for name, stats in (raw or {}).items():
        if not isinstance(name, str) or not _SERVICE.match(name) or not isinstance(stats, dict):
            raise InvalidResult(f"result.json: bad service entry {name!r}")
        entry: dict[str, Any] = {
            key: _number(stats.get(key), f"{where}.{name}.{key}", allow_none=key.endswith("_ms"))
            for key in ("requests", "failures", "rps", "min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")
        }
        entry["errors"] = {
            str(error)[:500]: int(_number(count, f"{where}.{name}.errors") or 0)
            for error, count in list((stats.get("errors") or {}).items())[:10]
        }
        if "throughput_ratio" in stats:
            entry["throughput_ratio"] = _number(stats["throughput_ratio"], f"{where}.{name}.throughput_ratio", allow_none=True)
        services[name] = entry  # type: ignore[assignment]
    return services


_CHECKS = ("failure ratio", "p50", "p95", "p99", "throughput ratio")


def _slo_section(raw: Any) -> dict[str, Any]:
    """The SLO checks, each re-read; 'held' is recomputed, not trusted."""
    from runbook.analysis.slo import Check

    raw = raw if isinstance(raw, dict) else {}
    checks = []
    for i, c in enumerate((raw.get("checks") or [])[:200]):
        if not isinstance(c, dict) or not _SERVICE.match(str(c.get("service", ""))) or c.get("check") not in _CHECKS \
                or c.get("kind") not in ("max", "min") or c.get("unit") not in ("", "ms"):
            raise InvalidResult(f"result.json: slo.checks[{i}] is not a check of a known kind")
        checks.append(Check(c["service"], c["check"], _number(c.get("measured"), f"slo.checks[{i}].measured", allow_none=True),
                            float(_number(c.get("limit"), f"slo.checks[{i}].limit") or 0), c["kind"], c["unit"]))
    return {"file": str(raw.get("file", ""))[:200], "held": all(c.held for c in checks), "checks": [c.as_dict() for c in checks]}


def _comparison_section(raw: Any) -> dict[str, Any] | None:
    """The comparison with the baseline, every number re-read and the headline rebuilt from them."""
    from runbook.analysis import compare

    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidResult("result.json: comparison is not an object")
    base = raw.get("baseline") if isinstance(raw.get("baseline"), dict) else {}
    baseline = {
        "ref": str(base.get("ref", ""))[:100],
        "sha": str(base.get("sha", "")) if SHA.match(str(base.get("sha", ""))) else "unknown",
        "available": bool(base.get("available")), "why": str(base.get("why", ""))[:300],
        "services": [{"name": str(s.get("name", ""))[:40], "host": str(s.get("host", ""))[:100]}
                     for s in (base.get("services") or [])[:20] if isinstance(s, dict) and _SERVICE.match(str(s.get("name", "")))],
    }
    if not raw.get("available"):
        why = str(raw.get("why", ""))[:300]
        return {"baseline": baseline, "available": False, "why": why, "verdict": None, "headline": f"no comparison: {why}",
                "failed": False, "services": {}}
    changes: dict[str, dict[str, compare.Change]] = {}
    for name, metrics in (raw.get("services") or {}).items():
        if not _SERVICE.match(str(name)) or not isinstance(metrics, dict):
            raise InvalidResult(f"result.json: bad comparison entry {name!r}")
        changes[name] = {}
        for metric in compare.METRICS:
            c = metrics.get(metric)
            where = f"comparison.services.{name}.{metric}"
            if not isinstance(c, dict) or c.get("verdict") not in compare.VERDICTS:
                raise InvalidResult(f"result.json: {where} is missing or has no known verdict")
            changes[name][metric] = compare.Change(
                metric, *(_number(c.get(k), f"{where}.{k}", allow_none=True) for k in ("change", "low", "high")),
                c["verdict"], *(_number(c.get(k), f"{where}.{k}", allow_none=True) for k in ("candidate", "baseline", "limit", "p_value")))
    numbers = {key: _number(raw.get(key), f"comparison.{key}")
               for key in ("warmup_requests", "measured_s", "block_s", "resamples", "confidence", "family_alpha")}
    return {
        "baseline": baseline, "available": True, "why": str(raw.get("why", ""))[:300], "design": "interleaved", **numbers,
        "injected_delay_ms": {str(name): _number(ms, f"comparison.injected_delay_ms.{name}")
                              for name, ms in list((raw.get("injected_delay_ms") if isinstance(raw.get("injected_delay_ms"), dict) else {}).items())[:20]
                              if _SERVICE.match(str(name))},
        "baseline_services": _services(raw.get("baseline_services"), "comparison.baseline_services"),
        "verdict": raw.get("verdict") if raw.get("verdict") in (compare.SLOWER, compare.FASTER, compare.SAME) else None,
        "headline": compare.headline(changes),
        "failed": any(c.beyond_limit for m in changes.values() for c in m.values()),
        "services": {name: {metric: c.as_dict() for metric, c in metrics.items()} for name, metrics in changes.items()},
    }


_SERVER_NUMBERS = ("traefik_requests", "locust_requests", "gap", "client_p50_ms", "client_p95_ms", "peak_cpu_cores",
                   "cpu_limit_cores", "peak_memory_bytes", "memory_limit_bytes")
_PROCESS_NUMBERS = ("peak_cpu_percent", "mean_cpu_percent", "peak_rss_bytes", "saturated_share", "samples", "processes")
_SOURCES = ("processes", "traefik", "pods", "workloads")


def _server_section(raw: Any) -> ServerSection | None:
    """The server side, every number re-read; the reconciliation and the saturation flag recomputed from them."""
    from runbook.analysis.server_side import CPU_OF, GAP_TOLERANCE, SATURATED_SHARE

    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidResult("result.json: server is not an object")

    def service(name: Any, s: Any, where: str) -> dict[str, Any]:
        if not _SERVICE.match(str(name)) or not isinstance(s, dict):
            raise InvalidResult(f"result.json: bad {where} entry {name!r}")
        entry: dict[str, Any] = {k: _number(s.get(k), f"{where}.{name}.{k}", allow_none=True) for k in _SERVER_NUMBERS}
        for q in ("p50", "p95"):
            value = s.get(q) if isinstance(s.get(q), dict) else {}
            bucket = value.get("bucket_ms") if isinstance(value.get("bucket_ms"), list) and len(value["bucket_ms"]) == 2 else None
            entry[q] = {"ms": _number(value.get("ms"), f"{where}.{name}.{q}", allow_none=True),
                        "bucket_ms": [_number(b, f"{where}.{name}.{q}.bucket_ms", allow_none=True) for b in bucket] if bucket else None}
        entry["complete"] = s.get("complete") is True
        entry["reconciled"] = None if entry["gap"] is None or not entry["complete"] else abs(entry["gap"]) <= GAP_TOLERANCE
        entry["cpu_of"] = s["cpu_of"] if s.get("cpu_of") in CPU_OF else "pods"  # rendered as is: known words only
        replicas = s.get("replicas") if isinstance(s.get("replicas"), dict) else {}
        entry["replicas"] = {k: int(_number(replicas.get(k), f"{where}.{name}.replicas") or 0) for k in ("start", "peak", "end")} if replicas else {}
        hpa = s.get("autoscaler") if isinstance(s.get("autoscaler"), dict) else {}
        entry["autoscaler"] = {
            "desired_peak": _number(hpa.get("desired_peak"), f"{where}.{name}.autoscaler", allow_none=True),
            "cpu_percent_peak": _number(hpa.get("cpu_percent_peak"), f"{where}.{name}.autoscaler", allow_none=True),
            "scaling": None if hpa.get("scaling") is None else str(hpa["scaling"])[:100]} if hpa else {}
        return entry

    processes = {}
    for role, p in list((raw.get("processes") or {}).items())[:5]:
        if role not in ("locust", "stand-in") or not isinstance(p, dict):
            raise InvalidResult(f"result.json: unknown process {role!r}")
        processes[role] = {k: _number(p.get(k), f"server.processes.{role}.{k}", allow_none=True) for k in _PROCESS_NUMBERS}
    samples = {}
    for source, n in (raw.get("samples") or {}).items():
        if source not in _SOURCES or not isinstance(n, dict):
            raise InvalidResult(f"result.json: unknown sample source {source!r}")
        samples[source] = {"taken": int(_number(n.get("taken"), f"server.samples.{source}.taken") or 0),
                           "missing": int(_number(n.get("missing"), f"server.samples.{source}.missing") or 0),
                           "first_error": None if n.get("first_error") is None else str(n["first_error"])[:300]}
    share = (processes.get("locust") or {}).get("saturated_share")
    return {
        "services": {name: service(name, s, "server.services") for name, s in (raw.get("services") or {}).items()},
        "baseline_services": {name: service(name, s, "server.baseline_services")
                              for name, s in (raw.get("baseline_services") or {}).items()},
        "processes": processes,
        "generator_saturated": share is not None and share >= SATURATED_SHARE,
        "samples": samples,
        "notes": [str(note)[:300] for note in (raw.get("notes") or [])[:10]],
    }
