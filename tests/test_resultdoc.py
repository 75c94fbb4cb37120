"""result.json read back: every field checked, every refusal naming what and why, verdicts only ever worse."""

import copy
import json

import pytest

from runbook.errors import InvalidResult
from runbook.report import build_report
from runbook.resultdoc import parse
from runbook.targets import describe
from test_report import write_load_test, write_server_samples

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
    (("services", "foo", "throughput_ratio"), "high", "services.foo.throughput_ratio is not a number: 'high'"),
])
def test_each_bad_field_is_refused_by_name(written, path, value, message):
    with pytest.raises(InvalidResult) as caught:
        parse(changed(written, path, value))
    assert message in str(caught.value)


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
