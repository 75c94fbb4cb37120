"""The summary in Markdown: what summary.md, the job summary and the pull request comment show.

Every value rendered comes from result.json as analysis.result_document defines it (publish renders a document read back from
an artifact): numbers and fixed words as they are, any text from the run's data inert.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runbook.analysis import compare
from runbook.report.markdown import inert
from runbook.analysis.results import PERCENTILES


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
                     f"{sign} {_measured(c['limit'], c['unit'])} | {'held ✅' if c['held'] else 'failed ❌'} |")
    if any(c["check"] == "throughput ratio" for c in slo["checks"]):
        lines += ["", "Throughput ratio: the requests a service got over what the profile should send it (each user "
                  "sends one request per mean wait plus mean latency, ramp-up included); below its limit the target or "
                  "the load generator could not keep up."]
    return "\n".join(lines)


def render_comparison(comparison: dict[str, Any]) -> str:
    """Per service and metric: the change against the baseline with its 95% interval, and the verdict."""
    from runbook.analysis.compare import LABELS, Change

    lines = ["#### Change against the baseline", "",
             f"Both sides under the same load at every moment: for {comparison['measured_s']:g} s each service's "
             f"requests went to the two sides in pairs in random order (each user's first request, which opens its "
             f"connection, left out). Candidate against baseline over that window, with a "
             f"{comparison['confidence']:.0%} interval from resampling blocks of {comparison['block_s']:g} s (both "
             f"sides of a block together).", "",
             "| service | metric | baseline | candidate | change (interval) | verdict | limit |", "|---|---|---|---|---|---|---|"]
    corrected = False
    for name, metrics in comparison["services"].items():
        for metric, c in metrics.items():  # every value here is a number or a fixed word (publish re-reads them)
            change = Change(metric, c["change"], c["low"], c["high"], c["verdict"], c["candidate"], c["baseline"], c["limit"])
            before, after = (_metric_value(c[side], metric) for side in ("baseline", "candidate"))
            flag = {"slower": "slower (over the limit)" if c["beyond_limit"] else "slower (within the limit)",
                    "faster": "faster"}.get(c["verdict"], c["verdict"])
            if c["verdict"] == compare.SAME and change.interval_excludes_zero:
                flag += " *"
                corrected = True
            limit = "–" if c["limit"] is None else f"{c['limit']:.0%}"
            lines.append(f"| `{name}` | {LABELS[metric]} | {before} | {after} | {change.text()} | {flag} | {limit} |")
    lines += ["", f"A change is called slower or faster only when it holds for the run as a whole: Holm's correction over "
              f"every metric judged keeps the chance of any false alarm in a run at {comparison['family_alpha']:.0%}."]
    if corrected:
        lines.append("\\* Its interval alone leaves out zero, but with this many metrics judged at once a change that "
                     "size is expected by chance somewhere in the run.")
    if any(c["verdict"] == compare.TOO_FEW for metrics in comparison["services"].values() for c in metrics.values()):
        needed = ", ".join(f"{m}: {compare.needed_successes(m):,}" for m in compare.PERCENTILES)
        lines += ["", f"A percentile is judged only when each side has at least {compare.MIN_BEYOND} successful "
                  f"requests above it ({needed} a side): a longer `--run-time` or more users gives it more."]
    if any(c["verdict"] == compare.TOO_SHORT for metrics in comparison["services"].values() for c in metrics.values()):
        lines += ["", f"Nothing is judged with fewer than {compare.MIN_BLOCKS} blocks of {comparison['block_s']:g} s "
                  "with requests: a longer `--run-time` gives more."]
    return "\n".join(lines)


def _metric_value(value: float | None, metric: str) -> str:
    """A side's value over the window, in the metric's unit, rounded as the main table rounds."""
    if value is None:
        return "–"
    return f"{value:.2%}" if metric == "failure_ratio" else f"{value:,.1f} ms"


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
    lines += [f"> **Warning**: {warning}" for warning in result.get("warnings") or []] + ([""] if result.get("warnings") else [])
    if comparison:
        lines += [f"**Against the base**: {inert(comparison['headline'], 600) if not comparison['available'] else comparison['headline']}", ""]
        lines += [f"{note}" for note in replica_notes(result)] + ([""] if replica_notes(result) else [])
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
                     f"own hosts; requests sent to both sides in random pairs, {comparison['measured_s']:g} s measured")  # type: ignore[index]
        for name, ms in (comparison.get("injected_delay_ms") or {}).items():  # type: ignore[union-attr]
            lines.append(f"- **Injected delay**: `{name}`'s candidate side answers {ms:g} ms later (`--inject-delay`, "
                         "a calibration of the comparison, not a change of the service)")
    lines += [
        "",
        render_table(result),
        "",
        "Times in ms, from successful requests only; RPS counts every request."
        + (" The candidate's requests (half of all, users' first requests left out; the baseline's are in the comparison below)."
           if compared else ""),
    ]
    if compared:
        lines += ["", render_comparison(comparison)]  # type: ignore[arg-type]
    if result.get("slo", {}).get("checks"):
        lines += ["", render_checks(result["slo"])]
    if result["target"] != "local":
        lines += ["", "Locust runs on the same machine as the cluster and shares its CPUs: compare these numbers "
                  "between runs of this runbook, not with production."]
    if result.get("server"):
        lines += ["", render_server(result["server"], local=result["target"] == "local")]
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
            lines.append(f"![Change against the baseline over time]({image('change')})")
        titles = {"server_latency": "Client-side against server-side p95",
                  "resources": "CPU and memory of the stand-in and Locust" if result["target"] == "local"
                  else "CPU and memory per pod and process", "replicas": "Replicas over time"}
        lines += [f"![{titles[key]}]({image(key)})" for key in server_charts or []]
    lines.append("")
    return "\n".join(lines)


def replica_notes(result: dict[str, Any]) -> list[str]:
    """When a service's two sides ran with different replica counts, the reviewer must know before reading the verdict."""
    server = result.get("server") or {}
    notes = []
    for name, candidate in (server.get("services") or {}).items():
        baseline = (server.get("baseline_services") or {}).get(name)
        mine, theirs = candidate.get("replicas") or {}, (baseline or {}).get("replicas") or {}
        if mine and theirs and mine != theirs:
            def shape(r: dict[str, Any]) -> str:
                return f"{r['start']} → {r['peak']} → {r['end']}"

            notes.append(f"Replicas differed between the sides of `{name}` (ready at start → peak → end): candidate "
                         f"{shape(mine)}, baseline {shape(theirs)}. The change may be the cause (an autoscaler target, "
                         "a replica count), but part of the difference in latency may come from it.")
    return notes


def _mib(value: float | None) -> str:
    return "–" if value is None else f"{value / 2**20:,.1f} MiB"


def _share(peak: float | None, limit: float | None, unit: Callable[[float], str]) -> str:
    if peak is None:
        return "–"
    return f"{unit(peak)} of {unit(limit)} ({peak / limit:.0%})" if limit else f"{unit(peak)} (no limit)"


def _generator_lines(server: dict[str, Any], local: bool) -> list[str]:
    """Locust's own CPU; when one of its processes was at a full core, that the generator bounded the numbers and what fixes it."""
    locust = server["processes"].get("locust")
    if not locust or locust["peak_cpu_percent"] is None:
        return []
    count = int(locust.get("processes") or 1)
    cores = f"peak {locust['peak_cpu_percent'] / 100:.1f} CPU cores, mean {locust['mean_cpu_percent'] / 100:.1f}"
    if server["generator_saturated"]:
        who = "Locust" if count == 1 else f"one of Locust's {count} processes (a master and its workers)"
        more = ("`--processes N` (or `-1`, one worker per core)" if local else
                "`--load-generator cluster --workers N` (Locust's workers as pods, off this machine), or `--processes N` here")
        return ["", f"⚠️ **The load generator was saturated**: {who} used at least 90% of a CPU core in "
                f"{locust['saturated_share']:.0%} of the samples, so these numbers are bounded by the generator, not the "
                f"services ({cores}). More load generators: {more}."]
    if count == 1:
        return ["", f"Load generator (Locust): peak {locust['peak_cpu_percent']:.0f}% of a CPU core, mean {locust['mean_cpu_percent']:.0f}%."]
    return ["", f"Load generator (Locust, {count} processes: a master and its workers): {cores}."]


def render_server(server: dict[str, Any], local: bool = False) -> str:
    """Per service: what the server counted and timed beside Locust's view, then resources; then the generator.

    Two narrow tables (a comment is read on a laptop), each naming what measured it: Traefik, or the stand-in.
    """
    inside = "stand-in" if local else "Traefik"
    lines = ["#### Server side", "",
             f"| service | {inside} counted / Locust sent (gap) | p50: {inside} / Locust | p95: {inside} / Locust |",
             "|---|---|---|---|"]
    rows = [(name, s) for name, s in server["services"].items()] + [(f"{name} (baseline)", s) for name, s in server["baseline_services"].items()]
    for name, s in rows:
        gap = "–" if s["gap"] is None else f"{s['gap']:+.1%}"
        flag = {True: " agree ✅", False: " differ ⚠️", None: " (incomplete)" if s["gap"] is not None else ""}[s["reconciled"]]
        lines.append(f"| `{name}` | {_fmt(s['traefik_requests'])} / {_fmt(s['locust_requests'])} ({gap}{flag}) | "
                     f"{_quantile(s['p50'])} / {_measured(s['client_p50_ms'], 'ms')} | "
                     f"{_quantile(s['p95'])} / {_measured(s['client_p95_ms'], 'ms')} |")
    heads = ["service", "peak CPU", "peak memory"] + ([] if local else ["replicas (start → peak → end)"])
    lines += ["", "| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for name, s in rows:
        replicas = s["replicas"]
        cells = [f"`{name}`", _share(s["peak_cpu_cores"], s["cpu_limit_cores"], lambda v: f"{v:.2f} cores"),
                 _share(s["peak_memory_bytes"], s["memory_limit_bytes"], lambda v: _mib(v))]
        if not local:
            cells.append((f"{replicas['start']} → {replicas['peak']} → {replicas['end']}" if replicas else "–")
                         + _autoscaler(s["autoscaler"]))
        lines.append("| " + " | ".join(cells) + " |")
    where = "the stand-in" if local else "Traefik and the pods"
    lines += ["", f"The {inside}'s percentiles come from its latency histogram: the value is interpolated within the bucket "
              f"shown in brackets. Locust's p95 minus the {inside}'s is time spent outside {where}. A gap beyond 1% "
              "between the counts means requests lost or retried on the way."]
    if any(s["cpu_of"] != "pods" for _, s in rows):
        lines.append(f"CPU and memory: {rows[0][1]['cpu_of']}.")
    lines += _generator_lines(server, local)
    missing = [f"{source} {n['missing']} of {n['taken']} ({inert(n['first_error'] or '', 160)})"
               for source, n in server["samples"].items() if n["missing"]]
    if missing:
        lines += ["", "Samples missing (gaps in the charts, never filled in): " + "; ".join(missing) + "."]
    if server["notes"]:
        from runbook.analysis.server_side import PLAIN_NOTES

        lines += ["", *[f"- {note if note in PLAIN_NOTES else inert(note, 300)}" for note in server["notes"]]]
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


def verdict_lines(result: dict[str, Any]) -> list[str]:
    """What the report decided and why, in a few lines for the console (warnings first)."""
    lines = [f"warning: {w}" for w in result.get("warnings") or []]
    failed_checks = [c for c in (result.get("slo") or {}).get("checks", []) if not c["held"]]
    comparison = result.get("comparison") or {}
    lines.append(f"verdict {result['status']}" + (" (interrupted)" if result.get("interrupted") else ""))
    if comparison:
        lines.append(f"against the base: {comparison['headline']}")
    for c in failed_checks[:5]:
        measured = "nothing measured" if c["measured"] is None else f"{c['measured']:.3g}{' ' + c['unit'] if c['unit'] else ''}"
        sign = "<=" if c["kind"] == "max" else ">="
        lines.append(f"SLO check failed: {c['service']} {c['check']} {measured}, limit {sign} {c['limit']:g}{' ' + c['unit'] if c['unit'] else ''}")
    return lines
