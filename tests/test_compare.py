"""The comparison's statistics and the SLO file, on numbers known exactly."""

import math

import numpy as np
import pytest
from scipy import stats

from conftest import ROOT
from runbook import compare
from runbook.errors import ConfigError
from runbook.slo import Check, check_service, load_slo

ORDER = ["baseline", "candidate", "candidate", "baseline", "baseline", "candidate"]


def rounds_for(cand_ms, base_ms, n=200, fail=None):
    """Each round of foo: n successes at a fixed latency (so every percentile is that latency)."""
    rounds = {}
    cand, base = iter(cand_ms), iter(base_ms)
    for number, side in enumerate(ORDER, 1):
        latency = next(cand) if side == "candidate" else next(base)
        ok = np.ones(n, dtype=bool)
        if fail and (side, number) in fail:
            ok[: fail[(side, number)]] = False
        rounds[("foo", side, number)] = (np.full(n, float(latency)), ok)
    return rounds


def test_pairs_follow_the_balanced_order_and_the_interval_is_students_t():
    # Pairs: (B1, C2), (C3, B4), (B5, C6). Candidate rounds 2, 3, 6; baseline 1, 4, 5.
    changes = compare.compare_service("foo", rounds_for([2.2, 2.4, 2.0], [2.0, 2.0, 2.0]), ORDER, 10.0, {"p95": 0.05})
    p95 = changes["p95"]
    assert p95.candidate == [2.2, 2.4, 2.0] and p95.baseline == [2.0, 2.0, 2.0]
    logs = np.log([1.1, 1.2, 1.0])
    half = stats.t.ppf(0.975, 2) * logs.std(ddof=1) / math.sqrt(3)
    assert p95.change == pytest.approx(math.expm1(logs.mean()))
    assert (p95.low, p95.high) == (pytest.approx(math.expm1(logs.mean() - half)), pytest.approx(math.expm1(logs.mean() + half)))
    assert p95.low < 0 < p95.high and p95.verdict == compare.SAME and not p95.beyond_limit


def test_a_consistent_regression_is_slower_and_fails_only_beyond_its_limit():
    slower = compare.compare_service("foo", rounds_for([3.0, 3.1, 2.9], [2.0, 2.0, 2.0]), ORDER, 10.0, {"p95": 0.10})
    assert slower["p95"].verdict == compare.SLOWER and slower["p95"].beyond_limit  # +50% against a 10% limit
    within = compare.compare_service("foo", rounds_for([3.0, 3.1, 2.9], [2.0, 2.0, 2.0]), ORDER, 10.0, {"p95": 0.60})
    assert within["p95"].verdict == compare.SLOWER and not within["p95"].beyond_limit
    faster = compare.compare_service("foo", rounds_for([1.0, 1.1, 0.9], [2.0, 2.0, 2.0]), ORDER, 10.0, {"p95": 0.10})
    assert faster["p95"].verdict == compare.FASTER and not faster["p95"].beyond_limit
    assert "foo p95 +50% (" in compare.headline({"foo": slower}) and "over the 10% limit" in compare.headline({"foo": slower})
    assert "foo p95 +50% (+38%..+63%), within the 60% limit" in compare.headline({"foo": within})


def test_less_throughput_is_slower_and_failures_are_compared_as_differences():
    rounds = rounds_for([2, 2, 2], [2, 2, 2], n=2000)
    for number, side in enumerate(ORDER, 1):  # the candidate's rounds carry 20% fewer requests
        if side == "candidate":
            latency, ok = rounds[("foo", side, number)]
            rounds[("foo", side, number)] = (latency[:1600], ok[:1600])
    changes = compare.compare_service("foo", rounds, ORDER, 10.0, {"throughput": 0.15})
    assert changes["throughput"].change == pytest.approx(-0.2) and changes["throughput"].verdict == compare.SLOWER
    assert changes["throughput"].beyond_limit
    failing = rounds_for([2, 2, 2], [2, 2, 2], n=2000, fail={("candidate", 2): 30, ("candidate", 3): 40, ("candidate", 6): 50})
    ratio = compare.compare_service("foo", failing, ORDER, 10.0, {})["failure_ratio"]
    assert ratio.change == pytest.approx(0.02) and ratio.verdict == compare.SLOWER and ratio.limit is None
    assert ratio.text().startswith("+2.00 pp")


def test_pairs_that_agree_by_chance_are_no_more_certain_than_one_rounds_noise():
    # 120 requests a round: the three pairs agree exactly (+2% each), but one round's p95 of 120
    # requests is uncertain by several percent; the interval must say so.
    base = np.linspace(1.0, 3.0, 120)
    rounds = {}
    for number, side in enumerate(ORDER, 1):
        latency = base * 1.02 if side == "candidate" else base
        rounds[("foo", side, number)] = (latency, np.ones(120, dtype=bool))
    p95 = compare.compare_service("foo", rounds, ORDER, 10.0, {})["p95"]
    assert p95.change == pytest.approx(0.02)
    assert p95.low < 0 < p95.high and p95.verdict == compare.SAME
    # Without the floor the spread between the pairs is zero, and +2% would be called slower.
    bare = compare.paired_change("p95", p95.candidate, p95.baseline)
    assert bare[1] == pytest.approx(bare[2]) and compare.verdict("p95", bare[1], bare[2]) == compare.SLOWER


def test_too_few_pairs_or_an_empty_side_give_no_verdict():
    rounds = rounds_for([2, 2, 2], [2, 2, 2])
    for number in (4, 5):  # a zero latency cannot be compared by ratio: one usable pair is left
        rounds[("foo", "baseline", number)][0][:] = 0.0
    p95 = compare.compare_service("foo", rounds, ORDER, 10.0, {})["p95"]
    assert p95.change is None and p95.verdict == compare.SAME and p95.text() == "–"
    # A side with no rounds at all has no successes to judge a percentile by.
    alone = {key: value for key, value in rounds_for([2, 2, 2], [2, 2, 2]).items() if key[1] == "candidate"}
    assert compare.compare_service("foo", alone, ORDER, 10.0, {})["p95"].verdict == compare.TOO_FEW


def test_the_shipped_slo_file_is_valid_and_services_inherit_the_default(tmp_path):
    slo = load_slo(ROOT / "load_test" / "slo.yaml")
    assert slo.default.max_failure_ratio == 0 and slo.default.regression["p95"] > 0
    path = tmp_path / "slo.yaml"
    path.write_text("default: {max_p95_ms: 100, regression: {p95: 0.2}}\nservices: {foo: {max_p95_ms: 5, regression: {p50: 0.1}}}\n")
    custom = load_slo(path)
    assert custom.for_service("foo").max_p95_ms == 5 and custom.for_service("foo").regression == {"p95": 0.2, "p50": 0.1}
    assert custom.for_service("bar").max_p95_ms == 100


@pytest.mark.parametrize(("text", "name", "reason"), [
    ("default: {max_p95: 10}", "default.max_p95", "unknown key"),
    ("default: {max_p95_ms: fast}", "default.max_p95_ms", "expected a number"),
    ("default: {max_p95_ms: -1}", "default.max_p95_ms", "may not be negative"),
    ("default: {max_p95_ms: .nan}", "default.max_p95_ms", "expected a number"),
    ("default: {min_throughput_ratio: 1.5}", "default.min_throughput_ratio", "at most 1"),
    ("default: {regression: {p90: 0.1}}", "default.regression.p90", "unknown metric"),
    ("services: {foo: {regression: {p95: -0.1}}}", "services.foo.regression.p95", "may not be negative"),
    ("defaults: {}", "slo.defaults", "unknown key"),
])
def test_a_bad_slo_file_names_the_key(tmp_path, text, name, reason):
    path = tmp_path / "slo.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=reason) as caught:
        load_slo(path)
    assert caught.value.name == name


@pytest.mark.parametrize(("text", "name", "value", "message"), [
    ("default: {max_p95_ms: fast}", "default.max_p95_ms", "fast", "default.max_p95_ms='fast': expected a number"),
    ("default: {max_p95_ms: -1}", "default.max_p95_ms", -1, "default.max_p95_ms=-1: a limit may not be negative"),
    ("default: {max_failure_ratio: 1.5}", "default.max_failure_ratio", 1.5,
     "default.max_failure_ratio=1.5: a ratio is at most 1"),
    ("default: [1, 2]", "default", [1, 2], "default=[1, 2]: expected a mapping of limits"),
    ("default: {p95: 3}", "default.p95", 3,
     "default.p95=3: unknown key; known: max_failure_ratio, max_p50_ms, max_p95_ms, max_p99_ms, "
     "min_throughput_ratio, regression"),
])
def test_a_bad_slo_file_says_exactly_what_and_why(tmp_path, text, name, value, message):
    path = tmp_path / "slo.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_slo(path)
    assert (caught.value.name, caught.value.value, str(caught.value)) == (name, value, message)


def test_limits_at_their_bounds_are_accepted_and_overrides_keep_the_rest(tmp_path):
    path = tmp_path / "slo.yaml"
    path.write_text("default: {max_failure_ratio: 1, min_throughput_ratio: 1, max_p99_ms: 400, max_p50_ms: 7}\n"
                    "services: {foo: {max_p50_ms: 5}}\n")
    slo = load_slo(path)
    foo = slo.for_service("foo")
    assert (foo.max_p50_ms, foo.max_p99_ms, foo.max_failure_ratio, foo.min_throughput_ratio) == (5, 400, 1, 1)
    assert slo.for_service("bar").max_p50_ms == 7


def test_checks_compare_measured_with_limits():
    slo = load_slo(ROOT / "load_test" / "slo.yaml")
    entry = {"requests": 1000, "failures": 1, "rps": 40.0, "p50_ms": 2.0, "p95_ms": 300.0, "p99_ms": 400.0}
    checks = {c.name: c for c in check_service("foo", slo.default, entry, expected_rps=100.0)}
    assert not checks["failure ratio"].held  # one failure among a thousand fails a limit of 0
    assert checks["p50"].held and not checks["p95"].held and checks["p99"].held
    assert checks["throughput ratio"].measured == 0.4 and not checks["throughput ratio"].held
    assert Check("foo", "p95", None, 10.0, "max").held is False  # nothing measured is not a pass
    assert checks["p95"].unit == "ms" and checks["failure ratio"].unit == ""
    # The throughput ratio to three places; without an expected rate there is nothing to measure it against.
    exact = {c.name: c for c in check_service("foo", slo.default, {**entry, "rps": 1.0}, expected_rps=3.0)}
    assert exact["throughput ratio"].measured == 0.333
    unknown = {c.name: c for c in check_service("foo", slo.default, entry, expected_rps=None)}
    assert unknown["throughput ratio"].measured is None and not unknown["throughput ratio"].held


def test_one_rounds_metric_and_its_sampling_noise_by_value():
    latency, ok = np.arange(1.0, 101.0), np.ones(100, dtype=bool)
    assert compare.round_metric("throughput", latency, ok, 10.0) == 10.0
    assert compare.round_metric("p99", latency, ok, 10.0) == pytest.approx(99.01)
    assert compare.round_metric("failure_ratio", np.array([]), np.array([], dtype=bool), 10.0) is None
    assert compare.round_metric("p50", latency, np.zeros(100, dtype=bool), 10.0) is None
    # Order statistics one binomial standard deviation around the rank: p50 of 1..100 spans 46..56.
    assert compare.sampling_variance("p50", latency, ok) == pytest.approx((5 / 50.5) ** 2)
    assert compare.sampling_variance("p95", latency, ok) == pytest.approx((3 / 95.05) ** 2)
    assert compare.sampling_variance("p50", np.array([1.0, 3.0]), np.ones(2, dtype=bool)) == pytest.approx(0.25)
    assert compare.sampling_variance("p50", np.array([2.0]), np.ones(1, dtype=bool)) == 0.0
    assert compare.sampling_variance("p50", np.zeros(10), np.ones(10, dtype=bool)) == 0.0
    assert compare.sampling_variance("throughput", latency[:40], ok[:40]) == pytest.approx(1 / 40)
    assert compare.sampling_variance("throughput", np.array([]), np.array([], dtype=bool)) == 0.0
    failed = np.ones(100, dtype=bool)
    failed[:10] = False
    assert compare.sampling_variance("failure_ratio", latency, failed) == pytest.approx(0.1 * 0.9 / 100)
    assert compare.sampling_variance("failure_ratio", np.array([]), np.array([], dtype=bool)) == 0.0


def test_paired_changes_at_their_edges():
    # A zero latency cannot be compared by ratio: that pair is left out; two usable pairs are enough.
    assert compare.paired_change("p95", [0.0, 2.0, 2.0], [1.0, 1.0, 1.0])[0] == pytest.approx(1.0)
    assert compare.paired_change("p95", [1.0, 1.0], [0.5, 0.5])[0] == pytest.approx(1.0)
    assert compare.paired_change("p95", [1.0, None, 1.0], [0.5, 0.5, None]) is None
    mean, low, high = compare.paired_change("failure_ratio", [0.02, 0.03], [0.01, 0.01])
    assert mean == pytest.approx(0.015) and low < mean < high


def test_compare_takes_each_services_limits_from_the_slo_and_the_schedules_order():
    slo = load_slo(ROOT / "load_test" / "slo.yaml")
    rounds = rounds_for([3.0, 3.1, 2.9], [2.0, 2.0, 2.0])
    found = compare.compare(rounds, ["foo"], {"order": ORDER, "round_s": 10}, slo)
    assert list(found) == ["foo"]
    assert found["foo"]["p95"] == compare.compare_service("foo", rounds, ORDER, 10.0, slo.for_service("foo").regression)["p95"]
    assert found["foo"]["p95"].limit == slo.for_service("foo").regression["p95"] == 0.25
    assert found["foo"]["throughput"].change == pytest.approx(0.0)


def test_a_side_without_rounds_keeps_what_the_other_side_measured():
    rounds = {key: value for key, value in rounds_for([2, 2, 2], [2, 2, 2]).items() if key[1] == "candidate"}
    changes = compare.compare_service("foo", rounds, ORDER, 10.0, {"p95": 0.25})
    p95, ratio = changes["p95"], changes["failure_ratio"]
    assert (p95.metric, p95.verdict, p95.candidate, p95.baseline, p95.limit) == ("p95", compare.TOO_FEW, [2.0, 2.0, 2.0], [None] * 3, 0.25)
    assert ratio.baseline == [None] * 3 and ratio.candidate == [0.0] * 3
    assert changes["throughput"].baseline == [0.0] * 3


def test_the_headline_word_for_word():
    change = {"foo": {"p95": compare.Change("p95", -0.2, -0.3, -0.1, compare.FASTER, [], [])}}
    assert compare.headline(change) == "faster: foo p95 -20% (-30%..-10%)"
    same = {"foo": {"p95": compare.Change("p95", 0.01, -0.1, 0.1, compare.SAME, [], [])}}
    assert compare.headline(same) == compare.SAME
    worse = {"foo": {"p95": compare.Change("p95", 0.2, 0.1, 0.3, compare.SLOWER, [], []),
                     "p50": compare.Change("p50", 0.4, 0.2, 0.6, compare.SLOWER, [], [], 0.25)}}
    assert compare.headline(worse) == "foo p95 +20% (+10%..+30%); foo p50 +40% (+20%..+60%), over the 25% limit"


def test_numbers_are_rounded_to_four_places_and_non_finite_ones_dropped():
    change = compare.Change("p95", 0.123456, float("-inf"), float("nan"), compare.SAME, [None, 1.000049], [])
    assert change.as_dict() == {"change": 0.1235, "low": None, "high": None, "verdict": compare.SAME, "limit": None,
                                 "beyond_limit": False, "candidate_rounds": [None, 1.0], "baseline_rounds": []}


@pytest.mark.parametrize(("text", "message"), [
    (None, "slo='{path}': no such file"),
    ("default: [\n", "slo='{path}': not valid YAML: "),
    ("- p95\n", "slo='{path}': expected a mapping with 'default' and 'services'"),
    ("defaults: {}\n", "slo.defaults={{}}: unknown key; known: default, services"),
    ("services: [foo]\n", "services=['foo']: expected a mapping of service name to limits"),
    ("default: {regression: 0.1}\n", "default.regression=0.1: expected a mapping such as {{p95: 0.1}}"),
    ("default: {regression: {p97: 0.1}}\n", "default.regression.p97=0.1: unknown metric; known: p50, p95, p99, throughput"),
])
def test_every_refusal_of_an_slo_file_word_for_word(tmp_path, text, message):
    path = tmp_path / "slo.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_slo(path)
    assert str(caught.value).startswith(message.format(path=path))


def test_a_loaded_slo_knows_its_file(tmp_path):
    path = tmp_path / "slo.yaml"
    path.write_text("default: {max_p95_ms: 100}\n")
    assert load_slo(path).path == str(path)


def test_the_failure_ratio_reads_in_percentage_points_and_verdicts_at_zero():
    ratio = compare.Change("failure_ratio", 0.1, 0.05, 0.15, compare.SLOWER, [], [])
    assert ratio.text() == "+10.00 pp (+5.00..+15.00)"
    assert compare.verdict("p95", 0.0, 0.1) == compare.SAME and compare.verdict("p95", -0.1, 0.0) == compare.SAME
    assert compare.verdict("throughput", 0.01, 0.1) == compare.FASTER and compare.verdict("throughput", -0.1, -0.01) == compare.SLOWER
    assert compare.headline({"foo": {"p95": compare.Change("p95", -0.2, -0.3, -0.1, compare.FASTER, [], []),
                                     "p50": compare.Change("p50", -0.2, -0.3, -0.1, compare.FASTER, [], [])}}) == \
        "faster: foo p95 -20% (-30%..-10%); foo p50 -20% (-30%..-10%)"


def test_a_percentile_is_judged_only_with_five_successes_beyond_it_in_every_round():
    assert [compare.needed_successes(m) for m in compare.METRICS] == [10, 100, 500, 0, 0]
    # 499 successes a round: p99 has fewer than 5 above it, p95 has plenty. A tenfold p99 is not judged.
    rounds = rounds_for([2, 2, 2], [2, 2, 2], n=499)
    for number, side in enumerate(ORDER, 1):
        if side == "candidate":
            rounds[("foo", side, number)][0][-6:] = 20.0
    changes = compare.compare_service("foo", rounds, ORDER, 10.0, {"p99": 0.5})
    p99 = changes["p99"]
    assert (p99.change, p99.low, p99.high, p99.verdict, p99.limit) == (None, None, None, compare.TOO_FEW, 0.5)
    assert p99.candidate[0] > 2 and p99.baseline == [2.0] * 3 and p99.text() == "–" and not p99.worse
    assert changes["p95"].verdict == compare.SAME and changes["p95"].change == pytest.approx(0.0)
    # One round short of 500 is enough to withhold the verdict; with 500 in every round it is judged.
    assert compare.compare_service("foo", rounds_for([4, 4, 4], [2, 2, 2], n=500), ORDER, 10.0, {})["p99"].verdict == compare.SLOWER
    short = rounds_for([4, 4, 4], [2, 2, 2], n=500)
    short[("foo", "baseline", 4)][1][0] = False  # 499 successes in one baseline round
    assert compare.compare_service("foo", short, ORDER, 10.0, {})["p99"].verdict == compare.TOO_FEW
    assert compare.compare_service("foo", short, ORDER, 10.0, {})["p95"].verdict == compare.SLOWER
    # Failures do not count towards it; the failure ratio and throughput are always judged.
    failing = rounds_for([2, 2, 2], [2, 2, 2], n=100, fail={("candidate", 2): 1})
    changes = compare.compare_service("foo", failing, ORDER, 10.0, {})
    assert changes["p95"].verdict == compare.TOO_FEW and changes["p50"].verdict == compare.SAME
    assert changes["failure_ratio"].verdict != compare.TOO_FEW and changes["throughput"].verdict != compare.TOO_FEW


def test_the_headline_names_what_it_could_not_judge():
    too_few = compare.Change("p99", None, None, None, compare.TOO_FEW, [], [])
    same = compare.Change("p95", 0.01, -0.1, 0.1, compare.SAME, [], [])
    worse = compare.Change("p50", 0.4, 0.2, 0.6, compare.SLOWER, [], [], 0.25)
    assert compare.headline({"foo": {"p95": same, "p99": too_few}, "bar": {"p99": too_few}}) == (
        "no significant change (not judged, too few requests a round: foo p99, bar p99)")
    assert compare.headline({"foo": {"p50": worse, "p99": too_few}}) == (
        "foo p50 +40% (+20%..+60%), over the 25% limit (not judged, too few requests a round: foo p99)")


def test_each_services_own_limits_and_a_missing_side_of_rounds(tmp_path):
    path = tmp_path / "slo.yaml"
    path.write_text("default: {regression: {p95: 0.25}}\nservices: {foo: {regression: {p95: 0.1}}}\n")
    rounds = rounds_for([3.0, 3.1, 2.9], [2.0, 2.0, 2.0])
    assert compare.compare(rounds, ["foo"], {"order": ORDER, "round_s": 10}, load_slo(path))["foo"]["p95"].limit == 0.1
    # No candidate rounds at all: every metric is there, with its limit, none judged worse.
    alone = {key: value for key, value in rounds.items() if key[1] == "baseline"}
    changes = compare.compare_service("foo", alone, ORDER, 10.0, {"throughput": 0.15})
    assert [c.metric for c in changes.values()] == list(compare.METRICS)
    assert changes["throughput"].limit == 0.15 and changes["throughput"].candidate == [0.0] * 3
    # Fewer than two usable pairs: no verdict, but the metric and its limit are kept.
    flat = rounds_for([2, 2, 2], [2, 2, 2])
    for number in (4, 5):
        flat[("foo", "baseline", number)][0][:] = 0.0
    p95 = compare.compare_service("foo", flat, ORDER, 10.0, {"p95": 0.25})["p95"]
    assert (p95.metric, p95.limit, p95.verdict) == ("p95", 0.25, compare.SAME)


def test_noise_of_latencies_under_a_millisecond_and_changes_as_read_back():
    latency, ok = np.arange(1.0, 101.0) / 1000, np.ones(100, dtype=bool)
    assert compare.sampling_variance("p50", latency, ok) == pytest.approx((5 / 50.5) ** 2)
    beyond = compare.Change("p95", 0.5, 0.3, 0.7, compare.SLOWER, [3.0], [2.00004], 0.25)
    assert beyond.as_dict()["beyond_limit"] is True and beyond.as_dict()["baseline_rounds"] == [2.0]
    ratio = compare.Change("failure_ratio", 0.1, 0.05, 0.15, compare.SLOWER, [], [])
    assert ratio.text() == "+10.00 pp (+5.00..+15.00)"


def test_slo_regression_limits_may_exceed_one_and_checks_read_their_numbers(tmp_path):
    path = tmp_path / "slo.yaml"
    path.write_text("default: {max_failure_ratio: 0.01, regression: {p99: 2.5}}\n")
    slo = load_slo(path)
    assert slo.default.regression == {"p99": 2.5}
    (check,) = check_service("foo", slo.default, {"requests": 200, "failures": 2, "rps": 1.0}, None)
    assert (check.measured, check.held) == (0.01, True) and check.as_dict()["held"] is True
    (empty,) = check_service("foo", slo.default, {"requests": 0, "failures": 0, "rps": 0.0}, None)
    assert empty.measured is None and empty.held is False
