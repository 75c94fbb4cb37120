"""The report stage: charts, summary.md and result.json from the load test."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runbook.report import charts

from runbook.analysis import compare

from runbook.report import server_charts

from runbook.analysis import server_side
from runbook.core.config import project_root
from runbook.analysis.slo import DEFAULT_FILE, SLO, check_service, load_slo
from runbook.analysis.result_document import ComparisonSection, Profile, ResultDocument, run_warnings
from runbook.analysis.results import LoadTestResults, load_results
from runbook.report.summary import render_summary
from runbook.core.rundir import utc_now, write_json

SUMMARY = "summary.md"
JOB_SUMMARY = "job-summary.md"
RESULT = "result.json"


@dataclass
class Report:
    result: ResultDocument
    summary_md: str
    charts: dict[str, Path]
    results: LoadTestResults

    def _ipython_display_(self) -> None:
        """In a notebook: the summary, then each chart as an image of its own (relative image links would not load).

        Images rather than data URIs inside the Markdown: rendering the executed notebook to HTML
        (report.html) would otherwise parse a few hundred kB of base64 as Markdown, about 0.3 s.
        """
        from IPython.display import Image, Markdown, display

        alt = {name: text for text, name in re.findall(r"!\[([^\]]*)\]\(([^)\s]+)\)", self.summary_md)}
        display(Markdown(self.summary_md.split("![")[0].rstrip()))
        for key, path in self.charts.items():
            display(Image(filename=str(path), alt=alt.get(path.name, f"{key} chart")))


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
    server = server_side.analyse(load_test_dir / "server", results)
    if server is not None:
        paths.update(server_charts.draw_all(server, results, out, subtitle, local=target == "local"))
    result = result_document(results, target, target_description, commit, slo, baseline, server)
    summary = render_summary(result, lambda key: paths[key].name, server_charts=[k for k in server_charts.CHARTS if k in paths])
    write_json(out / RESULT, result)
    (out / SUMMARY).write_text(summary)
    # For a CI job summary, where images by relative path do not render: the charts as Mermaid.
    (out / JOB_SUMMARY).write_text(render_summary(result, None, mermaid=mermaid_charts(results)))
    return Report(result, summary, paths, results)


def expected_requests(profile: dict[str, Any], mean_latency_s: float, services: int) -> float:
    """What the closed-loop profile should send one service: user-seconds over (wait + latency), shared out.

    Each user waits wait_min..wait_max (mean in the middle) after a response, so it sends one
    request per (mean wait + mean latency). Users start at spawn_rate per second. With a
    baseline, each user's first requests are a warm-up left out, and half the rest go to the
    candidate.
    """
    users, rate = float(profile["users"]), float(profile["spawn_rate"])
    cycle = (float(profile["wait_min_s"]) + float(profile["wait_max_s"])) / 2 + mean_latency_s
    schedule = profile.get("schedule")
    sent = _user_seconds(users, rate, float(profile["run_time_s"])) / max(cycle, 1e-6)
    if schedule:
        sent = max(sent - users * float(schedule["warmup_requests"]), 0.0) / 2
    return sent / max(services, 1)


def _user_seconds(users: float, rate: float, until: float) -> float:
    """How many user-seconds the run has had after `until` seconds: users start at `rate` per second up to `users`."""
    ramp = users / rate
    return users * (until - ramp / 2) if until >= ramp else rate * until * until / 2


def result_document(
    results: LoadTestResults, target: str, target_description: str, commit: str, slo: SLO,
    baseline: dict[str, Any] | None = None, server: server_side.ServerSide | None = None,
) -> ResultDocument:
    """result.json, in the shape analysis.result_document defines (and parses back)."""
    profile = results.profile
    services = {name: stats.as_dict() for name, stats in results.services.items()}
    all_latency = [s.latencies_ms for s in results.services.values() if s.latencies_ms.size]
    mean_latency_s = float(np.concatenate(all_latency).mean()) / 1000 if all_latency else 0.0
    checks = []
    for name, entry in services.items():
        expected = expected_requests(profile, mean_latency_s, len(services))
        entry["throughput_ratio"] = round(entry["requests"] / expected, 3) if expected else None
        checks += check_service(name, slo.for_service(name), entry)
    comparison = comparison_document(results, slo, baseline)
    held = all(c.held for c in checks)
    interrupted = bool(profile.get("interrupted"))
    passed = results.passed_requests and held and not (comparison or {}).get("failed") and not interrupted
    config: Profile = {key: profile[key] for key in Profile.__annotations__}  # type: ignore[misc]
    return {
        "status": "passed" if passed else "failed",
        "interrupted": interrupted,
        "target": target,
        "target_description": target_description,
        "commit": commit,
        "generated": utc_now(),
        "config": config,
        "load_test": {"started": profile["started"], "finished": profile["finished"]},
        "services": services,
        "warnings": run_warnings(config, services),
        "slo": {"file": slo.path, "held": held, "checks": [c.as_dict() for c in checks]},
        "comparison": comparison,
        "server": server.as_dict() if server is not None else None,
    }


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
    changes = compare.compare(results.requests, compared, slo)
    return {
        "baseline": baseline, "available": True, "why": baseline.get("why") or "",
        "design": "interleaved", "warmup_requests": schedule["warmup_requests"], "measured_s": schedule["measured_s"],
        "block_s": compare.BLOCK_S, "resamples": compare.RESAMPLES, "confidence": compare.CONFIDENCE,
        "family_alpha": compare.FAMILY_ALPHA,
        "injected_delay_ms": dict(results.profile.get("injected_delays") or {}),
        **comparison_verdict(changes),
        "baseline_services": {name: results.baseline[name].as_dict() for name in compared},
    }


def recompare(run_path: Path, slo_path: Path | None = None) -> ComparisonSection:
    """A run folder's comparison computed again from its request log (`python -m runbook compare RUN_DIR`).

    The limits come from slo_path, else from the SLO file the run was made with, else the shipped one.
    """
    from runbook.targets import baseline
    from runbook.core.errors import ConfigError
    from runbook.core.rundir import RunFolder

    folder = RunFolder(run_path)
    if not (folder.load_test / "profile.json").is_file():
        raise ConfigError("run_dir", str(run_path), "no load test in this folder (load_test/profile.json is missing)")
    results = load_results(folder.load_test)
    if not results.compared:
        raise ConfigError("run_dir", str(run_path), "this run has no comparison: it ran without --baseline")
    if slo_path is None:
        recorded = (folder.read_run().get("config") or {}).get("slo") if folder.run_json.is_file() else None
        candidate = Path(recorded) if recorded else Path(DEFAULT_FILE)
        slo_path = candidate if candidate.is_absolute() else project_root() / candidate
    described = baseline.describe(baseline.load(folder)) or {"ref": "", "sha": "", "available": True, "why": ""}
    section = comparison_document(results, load_slo(slo_path), described)
    assert section is not None
    return section


def comparison_verdict(changes: dict[str, dict[str, compare.Change]]) -> dict[str, Any]:
    """The verdict, headline, failure and per-metric entries of a comparison (also what `runbook compare` prints)."""
    worse = any(c.worse for m in changes.values() for c in m.values())
    faster = any(c.verdict == compare.FASTER for m in changes.values() for c in m.values())
    return {
        "verdict": compare.SLOWER if worse else compare.FASTER if faster else compare.SAME,
        "headline": compare.headline(changes),
        "failed": any(c.beyond_limit for m in changes.values() for c in m.values()),
        "services": {name: {metric: c.as_dict() for metric, c in metrics.items()} for name, metrics in changes.items()},
    }


def mermaid_charts(results: LoadTestResults) -> list[str]:
    from runbook.report.mermaid import latency_chart, throughput_chart

    return [throughput_chart(results), latency_chart(results)]
