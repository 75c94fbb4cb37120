"""result.json read back: every field checked, every refusal naming what and why, verdicts only ever worse."""

import copy
import json

import pytest

from runbook.core.errors import InvalidResult
from runbook.report.build import build_report
from runbook.analysis.result_document import parse
from runbook.targets import describe
from support.run_data import write_load_test, write_server_samples

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("doc")
    rows = [(1000 + i * 0.1, name, 3 + i % 5, 1, "") for i in range(80) for name in ("foo", "bar")]
    write_load_test(folder / "load_test", rows)
    write_server_samples(folder / "load_test", foo_counted=80, bar_counted=80)
    build_report(folder / "load_test", folder / "report", "kubeconfig", describe("kubeconfig"), SHA)
    return json.loads((folder / "report" / "result.json").read_text())


def changed(doc, path, value):
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


def test_a_written_document_parses_back_to_itself(written):
    assert written["target"] == "kubeconfig" and written["commit"] == SHA and written["status"] == "passed"
    assert parse(written) == written


@pytest.mark.parametrize(("path", "value", "message"), [
    (("status",), "maybe", "result.json: status must be passed or failed, not 'maybe'"),
    (("target",), "mars", "result.json: unknown target 'mars'"),
    (("services",), {}, "result.json lists no services"),
    (("config", "users"), "ten", "result.json: config.users is not a number: 'ten'"),
    (("config", "spawn_rate"), None, "result.json: config.spawn_rate is not a number: None"),
    (("config", "run_time_s"), True, "result.json: config.run_time_s is not a number: True"),
    (("config", "wait_min_s"), float("nan"), "result.json: config.wait_min_s is not a number: nan"),
    (("config", "wait_max_s"), float("inf"), "result.json: config.wait_max_s is not a number: inf"),
    (("config", "request_timeout_s"), float("-inf"), "result.json: config.request_timeout_s is not a number: -inf"),
    (("services", "foo", "rps"), "fast", "result.json: services.foo.rps is not a number: 'fast'"),
    (("services", "foo", "p50_ms"), "1 ms", "result.json: services.foo.p50_ms is not a number: '1 ms'"),
    (("services", "foo", "errors"), {"boom": "many"}, "result.json: services.foo.errors is not a number: 'many'"),
    (("services", "foo", "throughput_ratio"), "high", "result.json: services.foo.throughput_ratio is not a number: 'high'"),
])
def test_each_bad_field_is_refused_by_name(written, path, value, message):
    with pytest.raises(InvalidResult) as caught:
        parse(changed(written, path, value))
    assert str(caught.value) == message


def test_not_an_object_and_bad_service_names():
    with pytest.raises(InvalidResult, match="^result.json: not an object$"):
        parse([1, 2])
    with pytest.raises(InvalidResult, match=r"^result.json: bad service entry 'Foo\$'$"):
        parse({"status": "passed", "target": "local", "services": {"Foo$": {}}})


def test_what_is_not_trusted_is_rebuilt(written):
    assert parse(changed(written, ("commit",), "not-a-sha"))["commit"] == "unknown"
    assert parse(changed(written, ("commit",), KeyError))["commit"] == "unknown"
    assert parse(changed(written, ("target_description",), "<b>trust me</b>"))["target_description"] == describe("kubeconfig")
    assert parse(changed(written, ("config", "users"), 0))["config"]["users"] == 0
    assert parse(changed(written, ("config", "endpoint"), "x" * 500))["config"]["endpoint"] == "x" * 200
    long_error = changed(written, ("services", "foo", "errors"), {f"e{i}": 1 for i in range(15)})
    assert len(parse(long_error)["services"]["foo"]["errors"]) == 10


@pytest.mark.parametrize(("path", "value"), [
    (("status",), "failed"),  # said failed: stays failed, whatever the checks say
    (("interrupted",), True),  # an interrupted run is never a pass
])
def test_a_verdict_can_only_get_worse(written, path, value):
    again = parse(changed(written, path, value))
    assert again["status"] == "failed"
    assert again["interrupted"] is (value is True)


def test_a_held_check_that_does_not_hold_fails_the_document(written):
    checks = copy.deepcopy(written["slo"]["checks"])
    p95 = next(c for c in checks if c["check"] == "p95")
    p95["measured"] = p95["limit"] * 2
    again = parse(changed(written, ("slo", "checks"), checks))
    assert again["slo"]["held"] is False and again["status"] == "failed"
    with pytest.raises(InvalidResult, match=r"slo.checks\[0\] is not a check of a known kind"):
        parse(changed(written, ("slo", "checks"), [{**checks[0], "kind": "about"}]))


def test_the_server_side_keeps_only_known_words_where_it_is_rendered_as_is(written):
    hostile = changed(written, ("server", "services", "foo", "cpu_of"), "[click](https://evil.example) @everyone")
    assert parse(hostile)["server"]["services"]["foo"]["cpu_of"] == "pods"
    assert parse(written)["server"]["services"]["foo"]["cpu_of"] == "the stand-in process (shared by every service)"


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """A document with a comparison (foo's two sides interleaved) and the server side."""
    from support.run_data import write_compared

    folder = tmp_path_factory.mktemp("compared")
    write_compared(folder / "load_test")
    write_server_samples(folder / "load_test", foo_counted=106, bar_counted=0)
    baseline = {"ref": "HEAD^1", "sha": SHA, "available": True, "why": "",
                "services": [{"name": "foo", "host": "foo.baseline.localhost"}]}
    build_report(folder / "load_test", folder / "report", "kind", describe("kind"), SHA, baseline=baseline)
    return json.loads((folder / "report" / "result.json").read_text())


def test_a_compared_document_parses_back_to_itself(compared):
    assert compared["comparison"]["available"] and set(compared["comparison"]["services"]) == {"foo"}
    assert compared["server"]["services"]["foo"]["traefik_requests"] is not None
    assert parse(compared) == compared


@pytest.mark.parametrize(("path", "value", "message"), [
    (("comparison",), "yes", "result.json: comparison is not an object"),
    (("comparison", "services"), {"Foo": {}}, "result.json: bad comparison entry 'Foo'"),
    (("comparison", "services", "foo"), [], "result.json: bad comparison entry 'foo'"),
    (("comparison", "services", "foo", "p95"), KeyError, "result.json: comparison.services.foo.p95 is missing or has no known verdict"),
    (("comparison", "services", "foo", "p99"), "slower", "result.json: comparison.services.foo.p99 is missing or has no known verdict"),
    (("comparison", "services", "foo", "p95", "change"), "big", "result.json: comparison.services.foo.p95.change is not a number: 'big'"),
    (("comparison", "services", "foo", "p95", "low"), "-", "result.json: comparison.services.foo.p95.low is not a number: '-'"),
    (("comparison", "services", "foo", "p95", "high"), "+", "result.json: comparison.services.foo.p95.high is not a number: '+'"),
    (("comparison", "services", "foo", "p95", "limit"), "25%", "result.json: comparison.services.foo.p95.limit is not a number: '25%'"),
    (("comparison", "services", "foo", "p50", "candidate"), ["x"],
     "result.json: comparison.services.foo.p50.candidate is not a number: ['x']"),
    (("comparison", "services", "foo", "p50", "baseline"), True,
     "result.json: comparison.services.foo.p50.baseline is not a number: True"),
    (("comparison", "services", "foo", "p50", "p_value"), "0.01",
     "result.json: comparison.services.foo.p50.p_value is not a number: '0.01'"),
    (("comparison", "measured_s"), "thirty", "result.json: comparison.measured_s is not a number: 'thirty'"),
    (("comparison", "block_s"), None, "result.json: comparison.block_s is not a number: None"),
    (("comparison", "resamples"), [], "result.json: comparison.resamples is not a number: []"),
    (("comparison", "family_alpha"), "5%", "result.json: comparison.family_alpha is not a number: '5%'"),
    (("comparison", "warmup_requests"), "one", "result.json: comparison.warmup_requests is not a number: 'one'"),
    (("comparison", "confidence"), "95%", "result.json: comparison.confidence is not a number: '95%'"),
    (("comparison", "baseline_services", "foo", "rps"), "x", "result.json: comparison.baseline_services.foo.rps is not a number: 'x'"),
    (("server",), [], "result.json: server is not an object"),
    (("server", "services", "Foo"), {}, "result.json: bad server.services entry 'Foo'"),
    (("server", "services", "foo"), "busy", "result.json: bad server.services entry 'foo'"),
    (("server", "baseline_services"), {"foo": 1}, "result.json: bad server.baseline_services entry 'foo'"),
    (("server", "services", "foo", "gap"), "1%", "result.json: server.services.foo.gap is not a number: '1%'"),
    (("server", "services", "foo", "peak_memory_bytes"), "1 MiB", "result.json: server.services.foo.peak_memory_bytes is not a number: '1 MiB'"),
    (("server", "services", "foo", "p50"), {"ms": "1"}, "result.json: server.services.foo.p50 is not a number: '1'"),
    (("server", "services", "foo", "p95"), {"ms": 1.0, "bucket_ms": [0, "2"]}, "result.json: server.services.foo.p95.bucket_ms is not a number: '2'"),
    (("server", "services", "foo", "replicas"), {"start": "one"}, "result.json: server.services.foo.replicas is not a number: 'one'"),
    (("server", "services", "foo", "autoscaler"), {"desired_peak": "3"}, "result.json: server.services.foo.autoscaler is not a number: '3'"),
    (("server", "services", "foo", "autoscaler"), {"cpu_percent_peak": "90%"}, "result.json: server.services.foo.autoscaler is not a number: '90%'"),
    (("server", "processes", "miner"), {}, "result.json: unknown process 'miner'"),
    (("server", "processes", "locust"), 5, "result.json: unknown process 'locust'"),
    (("server", "processes", "locust", "peak_cpu_percent"), "hot", "result.json: server.processes.locust.peak_cpu_percent is not a number: 'hot'"),
    (("server", "samples", "logs"), {}, "result.json: unknown sample source 'logs'"),
    (("server", "samples", "traefik"), 3, "result.json: unknown sample source 'traefik'"),
    (("server", "samples", "traefik", "taken"), "4", "result.json: server.samples.traefik.taken is not a number: '4'"),
    (("server", "samples", "traefik", "missing"), None, "result.json: server.samples.traefik.missing is not a number: None"),
    (("slo", "checks", 0, "measured"), "1", "result.json: slo.checks[0].measured is not a number: '1'"),
    (("slo", "checks", 0, "limit"), None, "result.json: slo.checks[0].limit is not a number: None"),
    (("slo", "checks", 1, "service"), "Foo", "result.json: slo.checks[1] is not a check of a known kind"),
    (("slo", "checks", 1, "check"), "p42", "result.json: slo.checks[1] is not a check of a known kind"),
    (("slo", "checks", 1, "unit"), "s", "result.json: slo.checks[1] is not a check of a known kind"),
    (("slo", "checks", 1), "p95 <= 250", "result.json: slo.checks[1] is not a check of a known kind"),
    (("services", "foo", "requests"), None, "result.json: services.foo.requests is not a number: None"),
    (("services", "foo"), [], "result.json: bad service entry 'foo'"),
])
def test_every_refusal_of_a_compared_document_word_for_word(compared, path, value, message):
    with pytest.raises(InvalidResult) as caught:
        parse(changed(compared, path, value))
    assert str(caught.value) == message


def test_the_comparison_is_rebuilt_from_its_numbers(compared):
    again = parse(changed(compared, ("comparison", "headline"), "all fine"))
    assert again["comparison"]["headline"] == compared["comparison"]["headline"] != "all fine"
    assert compared["comparison"]["services"]["foo"]["p50"]["verdict"] == "slower"  # 2 ms -> 3 ms in every pair
    # The document said it did not fail: its numbers say +50% beyond a 25% limit.
    assert compared["comparison"]["failed"] is True and compared["status"] == "failed"
    lenient = changed(compared, ("comparison", "failed"), False)
    lenient["status"], lenient["slo"]["checks"] = "passed", []  # nothing else to fail it but the comparison
    assert parse(lenient)["comparison"]["failed"] is True and parse(lenient)["status"] == "failed"
    within = changed(compared, ("comparison", "services", "foo", "p50", "limit"), 0.9)
    within = changed(within, ("comparison", "services", "foo", "p95", "limit"), 0.9)
    within = changed(within, ("comparison", "services", "foo", "p99", "limit"), 0.9)
    within["comparison"]["failed"] = True
    assert parse(within)["comparison"]["failed"] is False  # rebuilt both ways: the limits are the document's own
    assert parse(changed(compared, ("comparison", "verdict"), "hacked"))["comparison"]["verdict"] is None
    for verdict in ("slower", "faster", "no significant change"):
        assert parse(changed(compared, ("comparison", "verdict"), verdict))["comparison"]["verdict"] == verdict
    assert parse(changed(compared, ("comparison", "design"), "rounds"))["comparison"]["design"] == "interleaved"
    assert parse(changed(compared, ("comparison", "why"), "w" * 400))["comparison"]["why"] == "w" * 300


def test_the_baseline_description_is_cut_and_checked(compared):
    base = {"ref": "r" * 150, "sha": "not-a-sha", "available": 1, "why": "y" * 400,
            "services": [{"name": "n" * 50, "host": "h" * 150}, {"name": "Bad Name", "host": "x"}, "not a service"]
            + [{"name": f"s{i}", "host": "x"} for i in range(30)]}
    again = parse(changed(compared, ("comparison", "baseline"), base))["comparison"]["baseline"]
    assert (again["ref"], again["sha"], again["available"], again["why"]) == ("r" * 100, "unknown", True, "y" * 300)
    assert again["services"][0] == {"name": "n" * 40, "host": "h" * 100}
    assert [s["name"] for s in again["services"]] == ["n" * 40] + [f"s{i}" for i in range(17)]  # of the first 20
    assert parse(changed(compared, ("comparison", "baseline"), "HEAD^1"))["comparison"]["baseline"] == {
        "ref": "", "sha": "unknown", "available": False, "why": "", "services": []}
    assert parse(compared)["comparison"]["baseline"]["sha"] == SHA


def test_a_comparison_that_did_not_happen_says_why_and_nothing_else(compared):
    again = parse(changed(compared, ("comparison",), {"available": False, "why": "z" * 400, "failed": True,
                                                        "services": {"foo": "anything"}, "baseline": {}}))
    assert again["comparison"] == {
        "baseline": {"ref": "", "sha": "unknown", "available": False, "why": "", "services": []}, "available": False,
        "why": "z" * 300, "verdict": None, "headline": f"no comparison: {'z' * 300}", "failed": False, "services": {}}
    assert parse(changed(compared, ("comparison",), None))["comparison"] is None


def test_the_server_side_is_rebuilt_from_its_numbers(compared):
    foo = ("server", "services", "foo")
    assert parse(changed(compared, (*foo, "gap"), 0.0101))["server"]["services"]["foo"]["reconciled"] is False
    assert parse(changed(compared, (*foo, "gap"), -0.01))["server"]["services"]["foo"]["reconciled"] is True
    assert parse(changed(compared, (*foo, "gap"), None))["server"]["services"]["foo"]["reconciled"] is None
    assert parse(changed(compared, (*foo, "complete"), "yes"))["server"]["services"]["foo"]["complete"] is False
    assert parse(changed(compared, (*foo, "complete"), "yes"))["server"]["services"]["foo"]["reconciled"] is None
    assert parse(changed(compared, (*foo, "p95"), {"ms": 1.5, "bucket_ms": [1, 2, 3]}))["server"]["services"]["foo"]["p95"] == {
        "ms": 1.5, "bucket_ms": None}
    assert parse(changed(compared, (*foo, "p95"), {"ms": 1.5, "bucket_ms": [1, None]}))["server"]["services"]["foo"]["p95"] == {
        "ms": 1.5, "bucket_ms": [1, None]}
    assert parse(changed(compared, (*foo, "p50"), "fast"))["server"]["services"]["foo"]["p50"] == {"ms": None, "bucket_ms": None}
    assert parse(changed(compared, (*foo, "replicas"), {"start": 1, "peak": 3.0, "end": 0}))["server"]["services"]["foo"][
        "replicas"] == {"start": 1, "peak": 3, "end": 0}
    assert parse(changed(compared, (*foo, "replicas"), "many"))["server"]["services"]["foo"]["replicas"] == {}
    scaled = parse(changed(compared, (*foo, "autoscaler"), {"desired_peak": 4, "scaling": "s" * 150}))
    assert scaled["server"]["services"]["foo"]["autoscaler"] == {"desired_peak": 4, "cpu_percent_peak": None, "scaling": "s" * 100}
    assert parse(changed(compared, (*foo, "autoscaler"), {"desired_peak": 2}))["server"]["services"]["foo"]["autoscaler"]["scaling"] is None
    assert parse(changed(compared, (*foo, "autoscaler"), []))["server"]["services"]["foo"]["autoscaler"] == {}
    samples = parse(changed(compared, ("server", "samples", "traefik", "first_error"), "e" * 400))["server"]["samples"]["traefik"]
    assert samples["first_error"] == "e" * 300 and samples["taken"] == compared["server"]["samples"]["traefik"]["taken"]
    assert parse(changed(compared, ("server", "notes"), ["n" * 400] * 12))["server"]["notes"] == ["n" * 300] * 10


@pytest.mark.parametrize(("share", "saturated"), [(0.2, True), (0.19, False), (None, False), (0.9, True)])
def test_the_generator_is_saturated_from_a_fifth_of_the_samples(compared, share, saturated):
    again = parse(changed(compared, ("server", "processes", "locust", "saturated_share"), share))
    assert again["server"]["generator_saturated"] is saturated
    assert parse(changed(compared, ("server", "processes"), {}))["server"]["generator_saturated"] is False


def test_texts_and_lists_of_the_top_level_are_cut(written):
    doc = changed(written, ("generated",), "g" * 50)
    doc["load_test"] = {"started": "s" * 50, "finished": 7, "other": "x"}
    doc["slo"]["file"] = "f" * 250
    doc["services"]["foo"]["errors"] = {"e" * 600: 2}
    again = parse(doc)
    assert again["generated"] == "g" * 40 and again["load_test"] == {"started": "s" * 40, "finished": "7"}
    assert again["slo"]["file"] == "f" * 200 and again["services"]["foo"]["errors"] == {"e" * 500: 2}
    checks = written["slo"]["checks"]
    many = parse(changed(written, ("slo", "checks"), (checks * 200)[:250]))
    assert len(many["slo"]["checks"]) == 200
    assert parse(changed(written, ("slo",), "held"))["slo"] == {"file": "", "held": True, "checks": []}
    assert parse(changed(written, ("services", "foo", "p99_ms"), None))["services"]["foo"]["p99_ms"] is None
    assert parse(changed(written, ("services", "foo", "throughput_ratio"), None))["services"]["foo"]["throughput_ratio"] is None
    assert "throughput_ratio" not in parse(changed(written, ("services", "foo", "throughput_ratio"), KeyError))["services"]["foo"]
    assert parse(changed(written, ("server",), None))["server"] is None


def test_what_a_document_leaves_out_reads_as_empty_or_zero(written, compared):
    sparse = copy.deepcopy(written)
    for key in ("generated", "load_test", "commit"):
        del sparse[key]
    del sparse["config"]["endpoint"]
    sparse["config"]["run_time_s"] = 0
    sparse["services"]["foo"]["errors"] = {"timed out": 0}
    again = parse(sparse)
    assert (again["generated"], again["load_test"], again["commit"]) == ("", {"started": "", "finished": ""}, "unknown")
    assert again["config"]["endpoint"] == "" and again["config"]["run_time_s"] == 0
    assert again["services"]["foo"]["errors"] == {"timed out": 0}
    checks = [{**written["slo"]["checks"][0], "measured": None}]
    unmeasured = parse(changed(written, ("slo", "checks"), checks))["slo"]
    assert unmeasured["checks"][0]["measured"] is None and unmeasured["held"] is False
    comparison = copy.deepcopy(compared["comparison"])
    del comparison["why"]
    comparison["baseline"]["services"] = [{"name": "foo"}]
    comparison["services"]["foo"]["p50"]["candidate"] = None
    again = parse(changed(compared, ("comparison",), comparison))["comparison"]
    assert again["why"] == "" and again["baseline"]["services"] == [{"name": "foo", "host": ""}]
    assert again["services"]["foo"]["p50"]["candidate"] is None
    assert parse(changed(compared, ("comparison",), {"available": False}))["comparison"]["why"] == ""


def test_the_server_sides_counts_and_baseline_entries_are_read_as_given(compared):
    server = copy.deepcopy(compared["server"])
    server["samples"]["traefik"].update(taken=0, missing=3)
    server["baseline_services"] = {"foo": copy.deepcopy(server["services"]["foo"])}
    server["services"]["foo"]["autoscaler"] = "scaling"
    again = parse(changed(compared, ("server",), server))["server"]
    assert (again["samples"]["traefik"]["taken"], again["samples"]["traefik"]["missing"]) == (0, 3)
    assert again["baseline_services"]["foo"] == {**compared["server"]["services"]["foo"]}
    assert again["services"]["foo"]["autoscaler"] == {}
