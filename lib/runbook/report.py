"""The report stage: charts, summary.md and result.json from the load test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runbook import charts, compare, servercharts, serverside
from runbook.config import project_root
from runbook.slo import DEFAULT_FILE, SLO, check_service, load_slo
from runbook.markdown import inert
from runbook.resultdoc import ComparisonSection, ResultDocument
from runbook.results import PERCENTILES, LoadTestResults, load_results
from runbook.rundir import utc_now, write_json

SUMMARY = "summary.md"
JOB_SUMMARY = "job-summary.md"
RESULT = "result.json"


@dataclass
class Report:
    result: ResultDocument
    summary_md: str
    charts: dict[str, Path]
    results: LoadTestResults

    def _repr_markdown_(self) -> str:
        """In a notebook: the summary with its charts embedded (its relative image links would not load there)."""
        import base64

        images = [f"![{key}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"
                  for key, path in self.charts.items()]
        return "\n".join([self.summary_md.split("![")[0].rstrip(), "", *images, ""])


def build_report(
    load_test_dir: Path, out: Path, target: str, target_description: str, commit: str,
    slo: SLO | None = None, baseline: dict[str, Any] | None = None,
) -> Report:
    """Charts, result.json, summary.md and job-summary.md; slo defaults to load_test/slo.yaml."""
    results = load_results(load_test_dir)
    slo = slo or load_slo(project_root() / DEFAULT_FILE)
    profile = results.profile
    subtitle = (
        f"{target}: {profile['users']} users, spawn {profile['spawn_rate']:g}/s, "
        f"{profile['run_time_s']}s, wait {profile['wait_min_s']:g}-{profile['wait_max_s']:g}s"
    )
    paths = charts.draw_all(results, out, subtitle)
    server = serverside.analyse(load_test_dir / "server", results)
    if server is not None:
        paths.update(servercharts.draw_all(server, results, out, subtitle))
    result = result_document(results, target, target_description, commit, slo, baseline, server)
    summary = render_summary(result, lambda key: paths[key].name, server_charts=[k for k in servercharts.CHARTS if k in paths])
    write_json(out / RESULT, result)
    (out / SUMMARY).write_text(summary)
    # For a CI job summary, where images by relative path do not render: the charts as Mermaid.
    (out / JOB_SUMMARY).write_text(render_summary(result, None, mermaid=mermaid_charts(results)))
    return Report(result, summary, paths, results)


def expected_requests(profile: dict[str, Any], mean_latency_s: float, services: int) -> float:
    """What the closed-loop profile should send one service: user-seconds over (wait + latency), shared out.

    Each user waits wait_min..wait_max (mean in the middle) after a response, so it sends one
    request per (mean wait + mean latency). Users start at spawn_rate per second; with rounds,
    a side's rounds come after the ramp-up, with every user running.
    """
    users, rate = float(profile["users"]), float(profile["spawn_rate"])
    cycle = (float(profile["wait_min_s"]) + float(profile["wait_max_s"])) / 2 + mean_latency_s
    if profile.get("schedule"):
        user_seconds = users * float(profile["run_time_s"]) * len(profile["schedule"]["order"]) / 2
    else:
        run, ramp = float(profile["run_time_s"]), users / rate
        user_seconds = users * (run - ramp / 2) if run >= ramp else rate * run * run / 2
    return user_seconds / max(cycle, 1e-6) / max(services, 1)


def result_document(
    results: LoadTestResults, target: str, target_description: str, commit: str, slo: SLO,
    baseline: dict[str, Any] | None = None, server: serverside.ServerSide | None = None,
) -> ResultDocument:
    """result.json, in the shape resultdoc defines (and parses back)."""
    profile = results.profile
    services = {name: stats.as_dict() for name, stats in results.services.items()}
    all_latency = [s.latencies_ms for s in results.services.values() if s.latencies_ms.size]
    mean_latency_s = float(np.concatenate(all_latency).mean()) / 1000 if all_latency else 0.0
    checks = []
    for name, entry in services.items():
        expected = expected_requests(profile, mean_latency_s, len(services))
        entry["throughput_ratio"] = round(entry["requests"] / expected, 3) if expected else None
        active = _active_seconds(profile)
        checks += check_service(name, slo.for_service(name), entry, expected / active if active else None)
    comparison = comparison_document(results, slo, baseline)
    held = all(c.held for c in checks)
    interrupted = bool(profile.get("interrupted"))
    passed = results.passed_requests and held and not (comparison or {}).get("failed") and not interrupted
    return {
        "status": "passed" if passed else "failed",
        "interrupted": interrupted,
        "target": target,
        "target_description": target_description,
        "commit": commit,
        "generated": utc_now(),
        "config": {
            "users": profile["users"],
            "spawn_rate": profile["spawn_rate"],
            "run_time_s": profile["run_time_s"],
            "wait_min_s": profile["wait_min_s"],
            "wait_max_s": profile["wait_max_s"],
            "request_timeout_s": profile["request_timeout_s"],
            "endpoint": profile["endpoint"],
        },
        "load_test": {"started": profile["started"], "finished": profile["finished"]},
        "services": services,
        "slo": {"file": slo.path, "held": held, "checks": [c.as_dict() for c in checks]},
        "comparison": comparison,
        "server": server.as_dict() if server is not None else None,
    }


def _active_seconds(profile: dict[str, Any]) -> float:
    run = float(profile["run_time_s"])
    return run * len(profile["schedule"]["order"]) / 2 if profile.get("schedule") else run


def comparison_document(results: LoadTestResults, slo: SLO, baseline: dict[str, Any] | None) -> ComparisonSection | None:
    """The comparison section of result.json: None without --baseline."""
    if baseline is None:
        return None
    schedule = results.profile.get("schedule")
    if not baseline.get("available") or not schedule:
        why = baseline.get("why") or "the baseline was not load-tested"
        return {"baseline": baseline, "available": False, "why": why, "verdict": None,
                "headline": f"no comparison: {why}", "failed": False, "services": {}}
    compared = [name for name in results.services if name in results.baseline]
    changes = compare.compare(results.rounds, compared, schedule, slo)
    worse = any(c.worse for m in changes.values() for c in m.values())
    faster = any(c.verdict == compare.FASTER for m in changes.values() for c in m.values())
    return {
        "baseline": baseline, "available": True, "why": baseline.get("why") or "",
        "pairs": len(schedule["order"]) // 2, "round_s": schedule["round_s"], "warmup_s": schedule["warmup_s"],
        "order": schedule["order"], "confidence": compare.CONFIDENCE,
        "verdict": compare.SLOWER if worse else compare.FASTER if faster else compare.SAME,
        "headline": compare.headline(changes),
        "failed": any(c.beyond_limit for m in changes.values() for c in m.values()),
        "services": {name: {metric: c.as_dict() for metric, c in metrics.items()} for name, metrics in changes.items()},
        "baseline_services": {name: results.baseline[name].as_dict() for name in compared},
    }


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def render_table(result: dict[str, Any]) -> str:
    heads = ["service", "requests", "failures", "RPS", "min", *[f"p{q}" for q in PERCENTILES], "max"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for name, s in result["services"].items():
        cells = [f"`{name}`", _fmt(s["requests"]), _fmt(s["failures"]), _fmt(s["rps"]), _fmt(s["min_ms"]),
                 *[_fmt(s[f"p{q}_ms"]) for q in PERCENTILES], _fmt(s["max_ms"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _measured(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    return f"{value:,.1f} {unit}" if unit else f"{value:.3g}"


def render_checks(slo: dict[str, Any]) -> str:
    lines = [f"#### SLO checks ({'all held ✅' if slo['held'] else 'some failed ❌'})", "",
             "| service | check | measured | limit | |", "|---|---|---|---|---|"]
    for c in slo["checks"]:
        sign = "≤" if c["kind"] == "max" else "≥"
        lines.append(f"| `{c['service']}` | {c['check']} | {_measured(c['measured'], c['unit'])} | "
                     f"{sign} {_measured(c['limit'], c['unit'])} | {'✅' if c['held'] else '❌'} |")
    return "\n".join(lines)


def render_comparison(comparison: dict[str, Any]) -> str:
    """Per service and metric: the change against the baseline with its 95% interval, and the verdict."""
    from runbook.compare import LABELS, Change

    lines = ["#### Change against the baseline", "",
             f"Candidate vs baseline, mean over {comparison['pairs']} pairs of rounds, "
             f"{comparison['confidence']:.0%} confidence interval from the variation between pairs.", "",
             "| service | metric | baseline | candidate | change (interval) | verdict | limit |", "|---|---|---|---|---|---|---|"]
    for name, metrics in comparison["services"].items():
        for metric, c in metrics.items():  # every value here is a number or a fixed word (publish re-reads them)
            change = Change(metric, c["change"], c["low"], c["high"], c["verdict"], [], [], c["limit"])
            before, after = (_per_round(c[f"{side}_rounds"], metric) for side in ("baseline", "candidate"))
            flag = {"slower": "slower ❌" if c["beyond_limit"] else "slower ⚠️", "faster": "faster"}.get(c["verdict"], c["verdict"])
            limit = "–" if c["limit"] is None else f"{c['limit']:.0%}"
            lines.append(f"| `{name}` | {LABELS[metric]} | {before} | {after} | {change.text()} | {flag} | {limit} |")
    if any(c["verdict"] == compare.TOO_FEW for metrics in comparison["services"].values() for c in metrics.values()):
        needed = ", ".join(f"{m}: {compare.needed_successes(m):,}" for m in compare.PERCENTILES)
        lines += ["", f"A percentile is judged only when every round has at least {compare.MIN_BEYOND} successful "
                  f"requests above it ({needed} a round): a longer "
                  "`--run-time` or more users gives it more."]
    return "\n".join(lines)


def _per_round(values: list[float | None], metric: str) -> str:
    """The mean of the rounds' values, in the metric's unit."""
    usable = [v for v in values if v is not None]
    if not usable:
        return "–"
    mean = sum(usable) / len(usable)
    return {"throughput": f"{mean:,.1f}/s", "failure_ratio": f"{mean:.2%}"}.get(metric, f"{mean:,.1f} ms")


def mermaid_charts(results: LoadTestResults) -> list[str]:
    from runbook.mermaid import latency_chart, throughput_chart

    return [throughput_chart(results), latency_chart(results)]


def render_summary(
    result: dict[str, Any],
    image: Callable[[str], str] | None,
    *,
    mermaid: list[str] | None = None,
    heading: str = "###",
    server_charts: list[str] | None = None,
) -> str:
    """The summary in Markdown; image(chart key) gives each chart's address (None: no images).

    server_charts: the server side's charts to show too (the comment links the report for them).
    """
    c = result["config"]
    passed = result["status"] == "passed"
    comparison = result.get("comparison")
    lines = [f"{heading} Load test {'passed ✅' if passed else 'failed ❌'}", ""]
    if result.get("interrupted"):
        lines = [f"{heading} Load test interrupted ⚠️", "",
                 f"Interrupted after {c['run_time_s']} s: these numbers cover only the requests sent before the "
                 "interrupt, and the run is not a pass.", ""]
    if comparison:
        lines += [f"**Against the base**: {inert(comparison['headline'], 600) if not comparison['available'] else comparison['headline']}", ""]
    lines += [
        f"- **Target**: {result['target_description']}",
        f"- **Profile**: {c['users']} users, spawn rate {c['spawn_rate']:g}/s, {c['run_time_s']} s, "
        f"wait {c['wait_min_s']:g}-{c['wait_max_s']:g} s between a user's requests, "
        f"request timeout {c['request_timeout_s']:g} s, through {inert(c['endpoint'], 100)}",
        f"- **Commit**: `{result['commit']}`",
    ]
    compared = bool(comparison and comparison.get("available"))
    if compared:
        base = comparison["baseline"]  # type: ignore[index]
        lines.append(f"- **Baseline**: {inert(base['ref'], 100)} at `{base['sha'][:12]}`, deployed beside the change under its "
                     f"own hosts; {comparison['pairs']} pairs of {comparison['round_s']} s rounds after a "  # type: ignore[index]
                     f"{comparison['warmup_s']} s warm-up")  # type: ignore[index]
    lines += [
        "",
        render_table(result),
        "",
        "Times in ms, from successful requests only; RPS counts every request."
        + (" The candidate's rounds only." if compared else ""),
    ]
    if compared:
        lines += ["", render_comparison(comparison)]  # type: ignore[arg-type]
    if result.get("slo", {}).get("checks"):
        lines += ["", render_checks(result["slo"])]
    if result["target"] != "local":
        lines += ["", "Locust runs on the same machine as the cluster and shares its CPUs: compare these numbers "
                  "between runs of this runbook, not with production."]
    if result.get("server"):
        lines += ["", render_server(result["server"])]
    failed = {name: s for name, s in result["services"].items() if s["failures"]}
    if failed:
        lines += ["", "#### Failures", "", "| service | count | error |", "|---|---|---|"]
        for name, s in failed.items():
            for error, count in s["errors"].items():
                lines.append(f"| `{name}` | {count:,} | {inert(error, 200, in_table=True)} |")
    if any(not s["requests"] for s in result["services"].values()):
        lines += ["", "A service received no requests."]
    for block in mermaid or []:
        lines += ["", block]
    if image is not None:
        lines += [
            "",
            f"![Requests per second]({image('throughput')})",
            f"![Latency over time]({image('latency')})",
            f"![Response-time percentiles]({image('percentiles')})",
        ]
        if comparison and comparison.get("available"):
            lines.append(f"![p95 per round]({image('rounds')})")
        titles = {"server_latency": "Client-side against server-side p95", "resources": "CPU and memory per pod and process",
                  "replicas": "Replicas over time"}
        lines += [f"![{titles[key]}]({image(key)})" for key in server_charts or []]
    lines.append("")
    return "\n".join(lines)


def _mib(value: float | None) -> str:
    return "–" if value is None else f"{value / 2**20:,.1f} MiB"


def _share(peak: float | None, limit: float | None, unit: Callable[[float], str]) -> str:
    if peak is None:
        return "–"
    return f"{unit(peak)} of {unit(limit)} ({peak / limit:.0%})" if limit else f"{unit(peak)} (no limit)"


def render_server(server: dict[str, Any]) -> str:
    """Per service: Traefik's count and percentiles beside Locust's, peak resources and replicas; then the generator."""
    lines = ["#### Server side", "",
             "| service | Traefik counted | Locust sent | gap | Traefik p50 | Traefik p95 | Locust p50 | Locust p95 | peak CPU | peak memory | replicas |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = [(name, s) for name, s in server["services"].items()] + [(f"{name} (baseline)", s) for name, s in server["baseline_services"].items()]
    for name, s in rows:
        gap = "–" if s["gap"] is None else f"{s['gap']:+.1%}"
        flag = {True: " ✅", False: " ⚠️", None: " (incomplete)" if s["gap"] is not None else ""}[s["reconciled"]]
        replicas = s["replicas"]
        lines.append(" | ".join([
            f"| `{name}`", _fmt(s["traefik_requests"]), _fmt(s["locust_requests"]), gap + flag,
            _quantile(s["p50"]), _quantile(s["p95"]), _measured(s["client_p50_ms"], "ms"), _measured(s["client_p95_ms"], "ms"),
            _share(s["peak_cpu_cores"], s["cpu_limit_cores"], lambda v: f"{v:.2f} cores"),
            _share(s["peak_memory_bytes"], s["memory_limit_bytes"], lambda v: _mib(v)),
            (f"{replicas['start']} → {replicas['peak']} → {replicas['end']}" if replicas else "–") + _autoscaler(s["autoscaler"]),
        ]) + " |")
    lines += ["", "Traefik's percentiles come from its latency histogram: the value is interpolated within the bucket shown "
              "in brackets. Locust's p95 minus Traefik's is time spent outside Traefik and the pods. Replicas: ready at the "
              "start → peak → end. A gap beyond 1% between the counts means requests lost or retried on the way."]
    if any(s["cpu_of"] != "pods" for _, s in rows):
        lines.append(f"CPU and memory: {rows[0][1]['cpu_of']}.")
    locust = server["processes"].get("locust")
    if server["generator_saturated"]:
        lines += ["", f"⚠️ **The load generator was saturated**: Locust used at least 90% of a CPU core in "
                  f"{locust['saturated_share']:.0%} of the samples, so these numbers are bounded by the generator, not the services."]
    elif locust and locust["peak_cpu_percent"] is not None:
        lines += ["", f"Load generator (Locust): peak {locust['peak_cpu_percent']:.0f}% of a CPU core, mean {locust['mean_cpu_percent']:.0f}%."]
    missing = [f"{source} {n['missing']} of {n['taken']} ({inert(n['first_error'] or '', 160)})"
               for source, n in server["samples"].items() if n["missing"]]
    if missing:
        lines += ["", "Samples missing (gaps in the charts, never filled in): " + "; ".join(missing) + "."]
    if server["notes"]:
        lines += ["", *[f"- {inert(note, 300)}" for note in server["notes"]]]
    return "\n".join(lines)


def _autoscaler(hpa: dict[str, Any]) -> str:
    if not hpa:
        return ""
    if hpa["cpu_percent_peak"] is None:
        return "; autoscaler had no CPU metric"
    return f"; autoscaler wanted up to {hpa['desired_peak']} at {hpa['cpu_percent_peak']:g}% CPU of request"


def _quantile(q: dict[str, Any]) -> str:
    if q["ms"] is None:
        return "–"
    low, high = q["bucket_ms"]
    return f"{q['ms']:,.2f} ms ({low:g}–{'∞' if high is None else f'{high:g}'})"
