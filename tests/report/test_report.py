"""Results, charts and summary from a load test whose numbers are known exactly."""

import csv
import json

import numpy as np
import pytest
from matplotlib.image import imread

from runbook.report.build import build_report
from runbook.report.summary import render_summary
from runbook.analysis.results import load_results
from support.run_data import write_compared, write_load_test, write_server_samples


@pytest.fixture
def mixed(tmp_path):
    """foo: 100 successes at 1..100 ms; bar: 50 successes at 10 ms plus 5 timeouts at 5000 ms."""
    rows = [(1000 + i * 0.1, "foo", i + 1, 1, "") for i in range(100)]
    rows += [(1000 + i * 0.2, "bar", 10, 1, "") for i in range(50)]
    rows += [(1000 + 9 + i * 0.1, "bar", 5000, 0, "ReadTimeout: read timed out") for i in range(5)]
    write_load_test(tmp_path / "load_test", rows)
    return tmp_path


def test_latency_comes_from_successes_only(mixed):
    results = load_results(mixed / "load_test")
    foo, bar = results.services["foo"], results.services["bar"]
    assert (foo.requests, foo.failures) == (100, 0)
    assert foo.percentile(50) == pytest.approx(50.5) and foo.min_ms == 1 and foo.max_ms == 100
    assert (bar.requests, bar.failures) == (55, 5)
    assert bar.max_ms == 10 and bar.percentile(99) == 10  # the 5000 ms timeouts are not latency
    assert bar.errors == {"ReadTimeout: read timed out": 5}
    assert results.passed_requests  # every service got requests; the failures are the SLO checks' to judge


def test_series_count_successes_and_failures_apart(mixed):
    series = load_results(mixed / "load_test").services["bar"].series
    assert series.ok_rps.sum() == 50 and series.fail_rps.sum() == 5
    assert np.nanmax(series.p99) == 10
    assert series.fail_rps[-1] == 5  # the timeouts happened in the last second


def test_report_files(mixed):
    report = build_report(mixed / "load_test", mixed / "report", "local", "local: a stand-in", "abc123")
    result = json.loads((mixed / "report" / "result.json").read_text())
    assert result["status"] == "failed" and result["target"] == "local" and result["commit"] == "abc123"
    assert result["config"] == {**result["config"], "users": 10, "spawn_rate": 2.0, "run_time_s": 10}
    assert result["services"]["foo"]["p95_ms"] == pytest.approx(95.05)
    assert result["services"]["bar"]["failures"] == 5
    for key in ("requests", "failures", "rps", "p50_ms", "p95_ms", "p99_ms", "max_ms"):
        assert key in result["services"]["foo"]
    summary = (mixed / "report" / "summary.md").read_text()
    assert summary == report.summary_md
    assert "failed ❌" in summary and "local: a stand-in" in summary
    assert "| `foo` | 100 | 0 |" in summary and "| `bar` | 55 | 5 |" in summary
    assert "| `bar` | 5 | ` ReadTimeout: read timed out ` |" in summary
    assert "![Requests per second](throughput.png)" in summary
    for path in report.charts.values():
        pixels = imread(path)
        assert pixels.shape[0] > 300 and pixels.shape[1] > 600
        assert pixels[..., :3].std() > 0.05, f"{path.name} looks blank"


def test_a_clean_run_passes(tmp_path):
    rows = [(1000 + i * 0.1, name, 5, 1, "") for i in range(50) for name in ("foo", "bar")]
    write_load_test(tmp_path / "load_test", rows, run_time=5)
    report = build_report(tmp_path / "load_test", tmp_path / "report", "local", "local", "c")
    assert report.result["status"] == "passed"
    assert "passed ✅" in report.summary_md and "Failures" not in report.summary_md


def test_a_service_without_requests_fails(tmp_path):
    write_load_test(tmp_path / "load_test", [(1000 + i * 0.1, "foo", 5, 1, "") for i in range(50)])
    report = build_report(tmp_path / "load_test", tmp_path / "report", "local", "local", "c")
    assert report.result["status"] == "failed"
    assert report.result["services"]["bar"]["requests"] == 0 and report.result["services"]["bar"]["p50_ms"] is None


def test_summary_uses_the_given_image_addresses(mixed):
    report = build_report(mixed / "load_test", mixed / "report", "local", "local", "c")
    text = render_summary(report.result, lambda key: f"https://example.invalid/{key}.png")
    assert "(https://example.invalid/latency.png)" in text


def test_missing_load_test_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the load_test stage first"):
        load_results(tmp_path)


def test_every_percentile_is_the_one_it_names(mixed):
    report = build_report(mixed / "load_test", mixed / "report", "local", "local", "c")
    foo, bar = report.result["services"]["foo"], report.result["services"]["bar"]
    # foo: successes at 1..100 ms (linear interpolation between order statistics)
    assert (foo["p50_ms"], foo["p90_ms"], foo["p95_ms"], foo["p99_ms"]) == (50.5, 90.1, 95.05, 99.01)
    assert (bar["p90_ms"], bar["p99_ms"]) == (10.0, 10.0)


def test_one_failure_among_many_fails_the_verdict(tmp_path):
    rows = [(1000 + i * 0.01, name, 5, 1, "") for i in range(999) for name in ("foo", "bar")]
    rows.append((1009.99, "bar", 5000, 0, "ReadTimeout: read timed out"))
    write_load_test(tmp_path / "load_test", rows)
    report = build_report(tmp_path / "load_test", tmp_path / "report", "local", "local", "c")
    assert report.result["status"] == "failed"
    (failed,) = [c for c in report.result["slo"]["checks"] if not c["held"]]
    assert (failed["service"], failed["check"], failed["measured"]) == ("bar", "failure ratio", 0.001)


def test_what_the_report_writes_parses_back_to_itself(mixed):
    from runbook.analysis.result_document import parse
    from runbook.targets import describe

    report = build_report(mixed / "load_test", mixed / "report", "local", describe("local"), "a" * 40)
    written = json.loads((mixed / "report" / "result.json").read_text())
    assert parse(written) == written == json.loads(json.dumps(report.result))


def test_the_server_side_in_the_report_and_what_publish_reads_back(mixed):
    from runbook.analysis.result_document import parse
    from runbook.targets import describe

    write_server_samples(mixed / "load_test")
    report = build_report(mixed / "load_test", mixed / "report", "local", describe("local"), "a" * 40)
    server = report.result["server"]
    foo, bar = server["services"]["foo"], server["services"]["bar"]
    assert (foo["traefik_requests"], foo["locust_requests"], foo["reconciled"]) == (100, 100, True)
    assert (bar["traefik_requests"], bar["locust_requests"], bar["reconciled"]) == (0, 55, False)  # its counter never moved
    assert foo["p50"] == {"ms": 1.0, "bucket_ms": [0.0, 1.0]} and foo["p95"] == {"ms": 1.9, "bucket_ms": [1.0, 2.0]}
    assert foo["client_p50_ms"] == 50.5 and foo["peak_cpu_cores"] == 0.375 and foo["peak_memory_bytes"] == 30 * 2**20
    assert server["processes"]["locust"] == {"peak_cpu_percent": 96.0, "mean_cpu_percent": 77.0, "peak_rss_bytes": 60 * 2**20,
                                             "saturated_share": 0.667, "samples": 3, "processes": 1}
    assert server["generator_saturated"] is True
    written = json.loads((mixed / "report" / "result.json").read_text())
    assert parse(written) == written
    summary = (mixed / "report" / "summary.md").read_text()
    # On the local target the table names what measured: the stand-in, not Traefik; and shows no replicas.
    assert "| service | stand-in counted / Locust sent (gap) | p50: stand-in / Locust | p95: stand-in / Locust |" in summary
    assert "| `foo` | 100 / 100 (+0.0% agree ✅) | 1.00 ms (0–1) / 50.5 ms | 1.90 ms (1–2) / " in summary
    assert "| `bar` | 0 / 55 (-100.0% differ ⚠️) |" in summary
    assert "| service | peak CPU | peak memory |\n" in summary and "Traefik" not in summary.split("#### Server side")[1]
    assert "pod" not in summary.split("#### Server side")[1].replace("no pods", "")
    assert "**The load generator was saturated**: Locust used at least 90% of a CPU core in 67% of the samples" in summary
    for chart in ("server-latency.png", "resources.png"):
        assert imread(mixed / "report" / chart)[..., :3].std() > 0.05
    assert not (mixed / "report" / "replicas.png").exists()  # no replicas on the stand-in
    # Data from an artifact can make the server side look worse, never better: flags are recomputed.
    tampered = json.loads(json.dumps(written))
    tampered["server"]["services"]["bar"]["reconciled"] = True
    tampered["server"]["generator_saturated"] = False
    again = parse(tampered)
    assert again["server"]["services"]["bar"]["reconciled"] is False and again["server"]["generator_saturated"] is True


@pytest.mark.parametrize(("path", "value", "message"), [
    (("services", "foo", "traefik_requests"), "many", "server.services.foo.traefik_requests is not a number"),
    (("processes", "miner"), {}, "unknown process 'miner'"),
    (("samples", "elsewhere"), {"taken": 1, "missing": 0}, "unknown sample source 'elsewhere'"),
    (("services", "Foo Bar"), {}, "bad server.services entry 'Foo Bar'"),
])
def test_a_server_section_with_bad_values_is_refused(mixed, path, value, message):
    from runbook.core.errors import InvalidResult
    from runbook.analysis.result_document import parse
    from runbook.targets import describe

    write_server_samples(mixed / "load_test")
    written = build_report(mixed / "load_test", mixed / "report", "local", describe("local"), "a" * 40).result
    doc = json.loads(json.dumps(written))
    node = doc["server"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(InvalidResult, match=message):
        parse(doc)


def test_a_services_numbers_are_rounded_and_its_errors_cut_to_ten(tmp_path):
    rows = [(1000 + i * 0.3, "foo", 1.23456 + i, 1, "") for i in range(10)]
    rows += [(1003 + i * 0.1, "foo", 5000, 0, f"Error{i}") for i in range(12)]
    rows += [(1000 + i * 0.3, "bar", 2, 1, "") for i in range(10)]
    write_load_test(tmp_path / "load_test", rows)
    foo = load_results(tmp_path / "load_test").services["foo"].as_dict()
    assert (foo["min_ms"], foo["max_ms"], foo["p50_ms"]) == (1.23, 10.23, 5.73)
    assert foo["rps"] == 5.37 and len(foo["errors"]) == 10  # 22 requests over 4.1 s: 5.3658...


def test_the_series_counts_each_second_where_it_happened(mixed):
    foo = load_results(mixed / "load_test").services["foo"]  # 100 successes, 10 a second from t=0
    assert foo.series.ok_rps[:9].tolist() == [10.0] * 9 and foo.series.t[0] == 0.5


def test_the_series_and_the_user_counts_by_value(mixed):
    results = load_results(mixed / "load_test")
    foo, bar = results.services["foo"], results.services["bar"]
    assert results.t0 == 1000.0 and results.bucket_s == 1.0
    assert foo.series.t.tolist()[:3] == [0.5, 1.5, 2.5] and foo.series.p50[0] == 5.5  # median of 1..10 ms
    assert bar.series.fail_rps[9] == 5.0 and bar.series.fail_rps[:9].sum() == 0 and bar.series.ok_rps[0] == 5.0
    assert results.users_t.tolist() == [0.0, 5.0, 10.0] and results.users.tolist() == [0, 10, 10]
    assert foo.rps == pytest.approx(100 / 9.9)


def test_user_counts_come_from_aggregated_rows_only_and_may_be_missing(tmp_path):
    rows = [(1000.0, "foo", 2, 1, ""), (1000.5, "foo", 2, 1, ""), (1002.0, "bar", 2, 1, "")]
    write_load_test(tmp_path / "load_test", rows, users=((0, 0), (1, 5)))
    with (tmp_path / "load_test" / "locust_stats_history.csv").open("a", newline="") as handle:
        csv.writer(handle).writerow([1001.5, 99, "GET", "foo"])  # a per-name row: not the user count
    results = load_results(tmp_path / "load_test")
    assert results.users.tolist() == [0, 5] and results.users_t.tolist() == [0.0, 1.0]
    assert results.services["foo"].rps == 4.0 and results.services["bar"].rps == 1.0  # one request: one per second
    (tmp_path / "load_test" / "locust_stats_history.csv").unlink()
    alone = load_results(tmp_path / "load_test")
    assert alone.users.size == alone.users_t.size == 0 and alone.t0 == 1000.0
    assert alone.services["bar"].series.ok_rps.tolist() == [0.0, 1.0]  # the last edge falls into the last second
    assert np.isnan(alone.services["bar"].series.p50[0]) and alone.services["bar"].series.p50[1] == 2.0  # no request: no latency


def test_a_comparison_splits_the_sides_and_leaves_out_the_warm_up(tmp_path):
    write_compared(tmp_path / "load_test")
    results = load_results(tmp_path / "load_test")
    candidate, base = results.services["foo"], results.baseline["foo"]
    assert (candidate.requests, candidate.failures, candidate.percentile(50)) == (41, 1, 3.0)  # no 50 ms warm-up in it
    assert (base.requests, base.percentile(50)) == (40, 2.0)
    assert candidate.rps == 41 / 39 and base.rps == 40 / 39  # each over its own first to last request
    assert candidate.errors == {"ConnectionError: line one\r\nline two": 1}
    assert results.bucket_s == 1.0 and results.t0 == 1000.0 and results.compared
    assert sorted(results.requests) == [("foo", "baseline"), ("foo", "candidate")]
    everything = results.requests[("foo", "candidate")]
    assert everything.t.size == 46 and everything.ok.dtype == bool and int((~everything.ok).sum()) == 1
    assert everything.latency_ms[~everything.measured].tolist() == [50.0] * 5  # kept for the record, not the numbers
    assert everything.window().t.size == 41 and everything.window().measured.all()


def test_an_old_request_log_without_sides_is_all_candidate_in_round_one(mixed):
    results = load_results(mixed / "load_test")
    assert sorted(results.requests) == [("bar", "candidate"), ("foo", "candidate")] and results.baseline == {}
    assert results.requests[("foo", "candidate")].measured.all() and not results.compared


def test_a_long_run_gets_wider_buckets(tmp_path):
    write_load_test(tmp_path / "load_test", [(1000.0, "foo", 2, 1, ""), (1100.0, "bar", 2, 1, "")], run_time=121)
    assert load_results(tmp_path / "load_test").bucket_s == 2.0


def test_series_rates_spans_and_services_by_name(tmp_path):
    # foo from the first second; bar starts 4 s later; one of bar's requests fails early. A 121 s run: 2 s buckets.
    rows = [(1000.0 + i, "foo", 2, 1, "") for i in range(11)]
    rows += [(1004.0, "bar", 2, 0, "boom"), (1006.0, "bar", 2, 1, ""), (1010.0, "bar", 2, 1, "")]
    write_load_test(tmp_path / "load_test", rows, run_time=121, users=((-1, 0), (5, 10)))
    results = load_results(tmp_path / "load_test")
    assert results.t0 == 999.0  # the user count started a second before the first request
    foo, bar = results.services["foo"], results.services["bar"]
    assert (foo.name, bar.name) == ("foo", "bar") and results.bucket_s == 2.0
    assert bar.rps == 3 / 6  # over its own first to last request, not from the run's start
    assert foo.series.t.tolist() == [1.0, 3.0, 5.0, 7.0, 9.0, 11.0]
    assert foo.series.ok_rps.tolist() == [0.5, 1.0, 1.0, 1.0, 1.0, 1.0]  # per second, in 2 s buckets
    assert bar.series.fail_rps.tolist() == [0.0, 0.0, 0.5, 0.0, 0.0, 0.0] and bar.series.ok_rps.size == 6


def test_a_run_of_one_moment_has_one_bucket_and_a_service_without_requests_none(tmp_path):
    write_load_test(tmp_path / "load_test", [(1000.0, "foo", 2, 1, "")], users=())
    results = load_results(tmp_path / "load_test")
    foo, bar = results.services["foo"], results.services["bar"]
    assert foo.series.t.tolist() == [0.5] and foo.series.ok_rps.tolist() == [1.0] and foo.rps == 1.0
    assert bar.requests == 0 and bar.series.ok_rps.tolist() == [0.0]
    write_load_test(tmp_path / "two", [(1000.0, "foo", 2, 1, ""), (1001.5, "foo", 2, 1, "")], users=())
    assert load_results(tmp_path / "two").services["foo"].series.ok_rps.tolist() == [1.0, 1.0]
    write_load_test(tmp_path / "none", [], users=())
    empty = load_results(tmp_path / "none")
    assert empty.t0 == 0.0 and empty.services["foo"].requests == 0 and empty.services["foo"].series.t.tolist() == [0.5]


def test_a_baseline_without_requests_and_a_service_the_profile_does_not_name(tmp_path):
    write_compared(tmp_path / "load_test")
    profile = json.loads((tmp_path / "load_test" / "profile.json").read_text())
    profile["baseline_services"].append({"name": "bar", "host": "bar.baseline.localhost", "expect": "bar"})
    (tmp_path / "load_test" / "profile.json").write_text(json.dumps(profile))
    with (tmp_path / "load_test" / "requests.csv").open("a", newline="") as handle:
        csv.writer(handle).writerow([1010, "qux", "candidate", 1, 4, 1, ""])  # in no list: kept all the same
        csv.writer(handle).writerow([1011, "foo", "canary", 1, 4, 1, ""])  # a side the runbook does not know: on neither
    results = load_results(tmp_path / "load_test")
    assert results.baseline["bar"].requests == 0 and results.baseline["foo"].requests == 40
    assert results.baseline["foo"].name == "foo"
    assert results.services["foo"].requests == 41 and results.services["qux"].requests == 1
    assert results.requests[("qux", "candidate")].latency_ms.tolist() == [4.0]


def test_a_compared_run_reports_both_sides_one_number_per_figure_and_the_change_over_time(tmp_path):
    from runbook.analysis.result_document import parse
    from runbook.targets import describe

    write_compared(tmp_path / "load_test")
    baseline = {"ref": "HEAD^1", "sha": "b" * 40, "available": True, "why": "", "services": []}
    report = build_report(tmp_path / "load_test", tmp_path / "report", "local", describe("local"), "a" * 40, baseline=baseline)
    comparison = report.result["comparison"]
    assert (comparison["design"], comparison["warmup_requests"], comparison["measured_s"]) == ("interleaved", 1, 40)
    p50 = comparison["services"]["foo"]["p50"]
    # 40 s of 3 ms against 2 ms: +50%, far beyond the shipped 10% limit; p95 and p99 lack the requests.
    assert (p50["change"], p50["verdict"], p50["beyond_limit"]) == (0.5, "slower", True)
    assert comparison["services"]["foo"]["p95"]["verdict"] == "too few requests" and comparison["failed"]
    assert report.result["status"] == "failed" and comparison["headline"].startswith("foo p50 +50% (")
    # One number per figure: the comparison's sides are the main table's and the baseline table's.
    assert p50["candidate"] == report.result["services"]["foo"]["p50_ms"] == 3.0
    assert p50["baseline"] == comparison["baseline_services"]["foo"]["p50_ms"] == 2.0
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "| `foo` | p50 | 2.0 ms | 3.0 ms | +50% (" in summary and "slower (over the limit)" in summary
    assert "for 40 s each service's requests went to the two sides in pairs in random order" in summary
    assert "![Change against the baseline over time](change.png)" in summary
    assert imread(tmp_path / "report" / "change.png").std() > 0  # drawn, not blank
    written = json.loads((tmp_path / "report" / "result.json").read_text())
    assert parse(written) == written


def test_a_change_its_interval_calls_but_holm_does_not_is_marked_and_explained():
    from runbook.report.summary import render_comparison

    entry = {"change": 0.04, "low": 0.01, "high": 0.07, "verdict": "no significant change", "limit": 0.1,
             "beyond_limit": False, "candidate": 2.08, "baseline": 2.0, "p_value": 0.02}
    comparison = {"measured_s": 30, "warmup_requests": 1, "block_s": 2.0, "confidence": 0.95, "family_alpha": 0.05,
                  "services": {"foo": {"p50": entry}}}
    text = render_comparison(comparison)
    assert "| `foo` | p50 | 2.0 ms | 2.1 ms | +4% (+1%..+7%) | no significant change * | 10% |" in text
    assert "\\* Its interval alone leaves out zero" in text
    assert "* Its interval" not in render_comparison({**comparison, "services": {"foo": {"p50": {**entry, "low": -0.01}}}})


def test_replicas_that_differ_between_the_sides_are_said_next_to_the_verdict():
    from runbook.report.summary import replica_notes

    server = {"services": {"foo": {"replicas": {"start": 2, "peak": 4, "end": 4}}, "bar": {"replicas": {"start": 2, "peak": 2, "end": 2}}},
              "baseline_services": {"foo": {"replicas": {"start": 2, "peak": 2, "end": 2}}, "bar": {"replicas": {"start": 2, "peak": 2, "end": 2}}}}
    (note,) = replica_notes({"server": server})
    assert note.startswith("Replicas differed between the sides of `foo`") and "candidate 2 → 4 → 4, baseline 2 → 2 → 2" in note
    assert replica_notes({"server": {"services": {"foo": {"replicas": {}}}, "baseline_services": {"foo": {"replicas": {}}}}}) == []
    assert replica_notes({"server": None}) == []


def test_a_run_shorter_than_its_ramp_up_or_too_thin_for_its_percentiles_says_so():
    from runbook.analysis.result_document import run_warnings

    config = {"users": 100, "spawn_rate": 10.0, "run_time_s": 1, "wait_min_s": 0.0, "wait_max_s": 1.0,
              "request_timeout_s": 5.0, "endpoint": "http://127.0.0.1:8080"}
    services = {"foo": {"requests": 11, "failures": 1}, "bar": {"requests": 5000, "failures": 0}}
    ramp, foo = run_warnings(config, services)
    assert ramp == ("The run (1 s) is shorter than its ramp-up (10 s for 100 users at 10/s): at most 10 users ever ran, "
                    "so these figures describe a lighter load than the profile's.")
    assert foo.startswith("foo: p95 and p99 rest on 10 successful requests, fewer than 5 beyond them")
    # The default profile's 30 s with thousands of requests: nothing to say.
    assert run_warnings({**config, "run_time_s": 30}, {"bar": services["bar"]}) == []
    assert run_warnings({**config, "run_time_s": 30}, {"foo": {"requests": 499, "failures": 0}})[0].startswith(
        "foo: p99 rests on 499 successful requests, fewer than 5 beyond it")


def test_the_warnings_head_the_summary(mixed):
    from runbook.targets import describe

    profile = json.loads((mixed / "load_test" / "profile.json").read_text())
    (mixed / "load_test" / "profile.json").write_text(json.dumps({**profile, "run_time_s": 1}))
    report = build_report(mixed / "load_test", mixed / "report", "local", describe("local"), "a" * 40)
    summary = (mixed / "report" / "summary.md").read_text()
    first = report.result["warnings"][0]
    assert first.startswith("The run (1 s) is shorter than its ramp-up")
    assert summary.index(f"> **Warning**: {first}") < summary.index("- **Target**")


def test_every_figure_shown_twice_has_one_value(tmp_path):
    """Wherever result.json (and so the summary) gives a figure twice, the two are the same number."""
    from runbook.targets import describe

    write_compared(tmp_path / "load_test", run_time=60)
    baseline = {"ref": "HEAD^1", "sha": "b" * 40, "available": True, "why": "", "services": []}
    result = build_report(tmp_path / "load_test", tmp_path / "report", "local", describe("local"), "a" * 40,
                          baseline=baseline).result
    comparison = result["comparison"]
    for name, metrics in comparison["services"].items():
        for metric in ("p50", "p95", "p99"):
            assert metrics[metric]["candidate"] == pytest.approx(result["services"][name][f"{metric}_ms"], abs=0.005)
            assert metrics[metric]["baseline"] == pytest.approx(comparison["baseline_services"][name][f"{metric}_ms"], abs=0.005)
        ratio = result["services"][name]["failures"] / result["services"][name]["requests"]
        assert metrics["failure_ratio"]["candidate"] == pytest.approx(ratio, abs=1e-4)
    checks = {(c["service"], c["check"]): c["measured"] for c in result["slo"]["checks"]}
    for name, entry in result["services"].items():
        assert checks[(name, "throughput ratio")] == entry["throughput_ratio"]
        for q in (50, 95, 99):
            assert checks[(name, f"p{q}")] == entry[f"p{q}_ms"]
        assert checks[(name, "failure ratio")] == pytest.approx(entry["failures"] / entry["requests"])


def test_the_expected_requests_leave_out_the_warm_up_and_share_the_rest_between_the_sides():
    from runbook.report.build import expected_requests

    # 10 users started over 1 s, 11 s in all: 105 user-seconds; one request per 0.5 s of wait: 210, two services.
    profile = {"users": 10, "spawn_rate": 10.0, "run_time_s": 11, "wait_min_s": 0.0, "wait_max_s": 1.0}
    assert expected_requests(profile, 0.0, 2) == pytest.approx(105)
    # With a baseline: each user's first request is left out, and half of the rest is the candidate's.
    compared = {**profile, "schedule": {"design": "interleaved", "warmup_requests": 1, "measured_s": 11}}
    assert expected_requests(compared, 0.0, 2) == pytest.approx((210 - 10) / 2 / 2)
