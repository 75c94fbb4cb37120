"""The report stage: charts, summary.md and result.json from the load test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook import charts
from runbook.markdown import inert
from runbook.results import PERCENTILES, LoadTestResults, load_results
from runbook.rundir import utc_now, write_json

SUMMARY = "summary.md"
JOB_SUMMARY = "job-summary.md"
RESULT = "result.json"


@dataclass
class Report:
    result: dict[str, Any]
    summary_md: str
    charts: dict[str, Path]
    results: LoadTestResults


def build_report(load_test_dir: Path, out: Path, target: str, target_description: str, commit: str) -> Report:
    results = load_results(load_test_dir)
    profile = results.profile
    subtitle = (
        f"{target}: {profile['users']} users, spawn {profile['spawn_rate']:g}/s, "
        f"{profile['run_time_s']}s, wait {profile['wait_min_s']:g}-{profile['wait_max_s']:g}s"
    )
    paths = charts.draw_all(results, out, subtitle)
    result = result_document(results, target, target_description, commit)
    summary = render_summary(result, lambda key: paths[key].name)
    write_json(out / RESULT, result)
    (out / SUMMARY).write_text(summary)
    # For a CI job summary, where images by relative path do not render: the charts as Mermaid.
    (out / JOB_SUMMARY).write_text(render_summary(result, None, mermaid=mermaid_charts(results)))
    return Report(result, summary, paths, results)


def result_document(results: LoadTestResults, target: str, target_description: str, commit: str) -> dict[str, Any]:
    profile = results.profile
    return {
        "status": "passed" if results.passed else "failed",
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
        "services": {name: stats.as_dict() for name, stats in results.services.items()},
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


def mermaid_charts(results: LoadTestResults) -> list[str]:
    from runbook.mermaid import latency_chart, throughput_chart

    return [throughput_chart(results), latency_chart(results)]


def render_summary(
    result: dict[str, Any],
    image: Callable[[str], str] | None,
    *,
    mermaid: list[str] | None = None,
    heading: str = "###",
) -> str:
    """The summary in Markdown; image(chart key) gives each chart's address (None: no images)."""
    c = result["config"]
    passed = result["status"] == "passed"
    lines = [
        f"{heading} Load test {'passed ✅' if passed else 'failed ❌'}",
        "",
        f"- **Target**: {result['target_description']}",
        f"- **Profile**: {c['users']} users, spawn rate {c['spawn_rate']:g}/s, {c['run_time_s']} s, "
        f"wait {c['wait_min_s']:g}-{c['wait_max_s']:g} s between a user's requests, "
        f"request timeout {c['request_timeout_s']:g} s, through {inert(c['endpoint'], 100)}",
        f"- **Commit**: `{result['commit']}`",
        "",
        render_table(result),
        "",
        "Times in ms, from successful requests only; RPS counts every request.",
    ]
    if result["target"] != "local":
        lines += ["", "Locust runs on the same machine as the cluster and shares its CPUs: compare these numbers "
                  "between runs of this runbook, not with production."]
    failed = {name: s for name, s in result["services"].items() if s["failures"]}
    if failed:
        lines += ["", "#### Failures", "", "| service | count | error |", "|---|---|---|"]
        for name, s in failed.items():
            for error, count in s["errors"].items():
                lines.append(f"| `{name}` | {count:,} | {inert(error, 200, in_table=True)} |")
    if not passed and not failed:
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
    lines.append("")
    return "\n".join(lines)
