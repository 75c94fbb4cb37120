"""The comparison's statistics and the SLO file, on numbers known exactly."""

import numpy as np
import pytest

from conftest import ROOT
from runbook.analysis import compare
from runbook.analysis.results import Requests
from runbook.core.errors import ConfigError
from runbook.analysis.slo import Check, check_service, load_slo


def sides(candidate_ms, baseline_ms, seconds=30.0, fail=None, start=1000.0):
    """foo's two sides, interleaved over `seconds`: the given latencies, spread evenly in time.

    fail: {"candidate": n} marks n requests of that side failed, spread evenly over the window.
    """
    found = {}
    for side, latency in (("candidate", candidate_ms), ("baseline", baseline_ms)):
        latency = np.asarray(latency, dtype=float)
        t = start + np.linspace(0, seconds, latency.size, endpoint=False) + (0.01 if side == "baseline" else 0.0)
        ok = np.ones(latency.size, dtype=bool)
        ok[np.linspace(0, latency.size - 1, (fail or {}).get(side, 0)).astype(int)] = False
        found[("foo", side)] = Requests(t, latency, ok, np.ones(latency.size, dtype=bool))
    return found


def spread(n=1500, median=2.0, seed=1):
    """n latencies around a median, log-normal, in a fixed order."""
    return np.random.default_rng(seed).lognormal(np.log(median), 0.4, n)


LIMITS = load_slo(ROOT / "load_test" / "slo.yaml")


def slo_with(tmp_path, text):
    path = tmp_path / "slo.yaml"
    path.write_text(text)
    return load_slo(path)


def test_the_same_requests_made_slower_by_a_third_are_called_slower_by_exactly_that(tmp_path):
    base = spread()
    changes = compare.compare(sides(base * 1.3, base), ["foo"], slo_with(tmp_path, "default: {regression: {p95: 0.1}}"))
    p95 = changes["foo"]["p95"]
    assert p95.change == pytest.approx(0.3) and p95.low <= 0.3 <= p95.high and p95.low > 0.1
    assert p95.verdict == compare.SLOWER and p95.beyond_limit and p95.limit == 0.1
    # The sides' values are the window's own percentiles: the same numbers as the main table.
    assert p95.candidate == pytest.approx(float(np.percentile(base * 1.3, 95)))
    assert p95.baseline == pytest.approx(float(np.percentile(base, 95)))
    within = compare.compare(sides(base * 1.3, base), ["foo"], slo_with(tmp_path, "default: {regression: {p95: 0.5}}"))
    assert within["foo"]["p95"].verdict == compare.SLOWER and not within["foo"]["p95"].beyond_limit
    faster = compare.compare(sides(base * 0.7, base), ["foo"], LIMITS)["foo"]["p50"]
    assert faster.verdict == compare.FASTER and faster.change == pytest.approx(-0.3) and not faster.beyond_limit
    assert "foo p95 +30% (" in compare.headline(changes) and "over the 10% limit" in compare.headline(changes)


def test_identical_sides_give_no_change_and_the_same_verdicts_every_time():
    base = spread()
    changes = compare.compare(sides(base, base), ["foo"], LIMITS)
    assert {m: c.verdict for m, c in changes["foo"].items()} == {m: compare.SAME for m in compare.METRICS}
    assert changes["foo"]["p95"].change == 0.0 and changes["foo"]["p95"].p_value == 1.0
    # Two draws of one distribution: an interval around zero, and recomputing gives the very same numbers.
    drawn = sides(spread(seed=2), spread(seed=3))
    first, again = (compare.compare(drawn, ["foo"], LIMITS) for _ in range(2))
    assert first == again
    p95 = first["foo"]["p95"]
    assert p95.low < 0 < p95.high and p95.verdict == compare.SAME
    # Another seed resamples differently: the interval moves a little, the point estimate not at all.
    other = compare.compare(drawn, ["foo"], LIMITS, seed=99)["foo"]["p95"]
    assert other.change == p95.change and (other.low, other.high) != (p95.low, p95.high)


def test_the_interval_comes_from_resampling_blocks_of_time_with_both_sides_together():
    # Every 2 s are either fast (1 ms) or slow (10 ms) for both sides alike, half of each; within a block the
    # sides are the same. Resampling blocks moves both sides together, so the change stays at zero in every resample.
    t = 1000 + np.arange(0, 30, 0.02)
    level = np.where(((t - 1000) // 2) % 2 == 0, 10.0, 1.0)
    both = {("foo", side): Requests(t + (0.001 if side == "baseline" else 0), level.copy(), np.ones(t.size, dtype=bool),
                                    np.ones(t.size, dtype=bool)) for side in ("candidate", "baseline")}
    p95 = compare.compare(both, ["foo"], LIMITS)["foo"]["p95"]
    assert (p95.change, p95.low, p95.high) == (0.0, 0.0, 0.0)
    # The same requests with the candidate's slow blocks not matched by the baseline's: now the blocks disagree,
    # and the interval is wide, because whole blocks (not single requests) are what vary.
    shifted = dict(both)
    shifted[("foo", "baseline")] = Requests(t + 0.001, np.where(((t - 1000) // 2) % 2 == 1, 10.0, 1.0),
                                            np.ones(t.size, dtype=bool), np.ones(t.size, dtype=bool))
    wide = compare.compare(shifted, ["foo"], LIMITS)["foo"]["p50"]
    assert wide.high - wide.low > 1.0


def test_holm_rejects_step_by_step_and_stops_at_the_first_that_holds():
    assert compare.holm({"a": 0.001, "b": 0.02, "c": 0.04}) == {"a", "b", "c"}  # 0.0167, 0.025, 0.05
    assert compare.holm({"a": 0.01, "b": 0.03, "c": 0.04}) == {"a"}  # b: 0.03 > 0.025, so c is not reached
    assert compare.holm({"a": 0.03, "b": 0.04}) == set()  # the smallest must hold at 0.05 / 2 first
    assert compare.holm({"a": 0.025, "b": 0.05}) == {"a", "b"}
    assert compare.holm({}) == set()


def test_a_change_significant_alone_is_withheld_when_the_run_judges_many_metrics(monkeypatch):
    # foo +1.5% on the same requests with a little noise of their own: significant alone, a p-value above zero.
    base = spread()
    drawn = sides(base * 1.015 * np.random.default_rng(5).lognormal(0, 0.05, base.size), base)
    changes = compare.compare(drawn, ["foo"], LIMITS)["foo"]
    p = changes["p50"].p_value
    judged = [m for m, c in changes.items() if c.p_value is not None and c.p_value < 1]
    assert 0 < p < 0.01 and len(judged) >= 2 and changes["p50"].verdict == compare.SLOWER
    # At a family level between one and len(judged) times that p-value, one test alone would call it, this run
    # does not: Holm holds the smallest p-value against level / number of metrics judged.
    monkeypatch.setattr(compare, "FAMILY_ALPHA", 1.5 * p)
    withheld = compare.compare(drawn, ["foo"], LIMITS)["foo"]["p50"]
    assert withheld.verdict == compare.SAME and withheld.interval_excludes_zero
    assert compare.holm({"p50": p}) == {"p50"}


def test_failures_are_compared_as_a_difference_and_zero_on_both_sides_is_not_a_test():
    base = np.full(2000, 2.0)
    changes = compare.compare(sides(base, base, fail={"candidate": 100}), ["foo"], LIMITS)["foo"]
    ratio = changes["failure_ratio"]
    assert ratio.change == pytest.approx(0.05) and ratio.verdict == compare.SLOWER and ratio.beyond_limit
    assert ratio.text().startswith("+5.00 pp (") and (ratio.candidate, ratio.baseline) == (0.05, 0.0)
    clean = compare.compare(sides(base, base), ["foo"], LIMITS)["foo"]["failure_ratio"]
    assert (clean.change, clean.low, clean.high, clean.verdict) == (0.0, 0.0, 0.0, compare.SAME)


def test_a_percentile_is_judged_only_with_five_successes_beyond_it_on_each_side():
    assert [compare.needed_successes(m) for m in compare.METRICS] == [10, 100, 500, 0]
    base = spread(499)
    changes = compare.compare(sides(base * 2, base), ["foo"], LIMITS)["foo"]
    p99 = changes["p99"]
    assert (p99.change, p99.low, p99.high, p99.verdict) == (None, None, None, compare.TOO_FEW) and p99.text() == "–"
    assert p99.candidate == pytest.approx(float(np.percentile(base * 2, 99))) and not p99.worse
    assert changes["p95"].verdict == compare.SLOWER
    # Failures do not count towards it: 500 requests of which one failed leave 499 successes.
    failing = compare.compare(sides(spread(500) * 2, spread(500), fail={"baseline": 1}), ["foo"], LIMITS)["foo"]
    assert failing["p99"].verdict == compare.TOO_FEW
    assert compare.compare(sides(spread(500) * 2, spread(500)), ["foo"], LIMITS)["foo"]["p99"].verdict == compare.SLOWER
    # A side with no requests at all has nothing to judge a percentile by.
    alone = {key: value for key, value in sides(base, base).items() if key[1] == "candidate"}
    lone = compare.compare(alone, ["foo"], LIMITS)["foo"]
    assert lone["p95"].verdict == compare.TOO_FEW and lone["p95"].baseline is None


def test_a_window_of_fewer_blocks_than_the_minimum_is_too_short_to_judge():
    base = spread()
    short = sides(base * 2, base, seconds=compare.BLOCK_S * (compare.MIN_BLOCKS - 1) - 0.1)
    changes = compare.compare(short, ["foo"], LIMITS)["foo"]
    assert {c.verdict for c in changes.values()} == {compare.TOO_SHORT} and changes["p50"].change is None
    assert compare.headline({"foo": changes}).startswith("not judged: the run is too short (fewer than 8 blocks")
    enough = sides(base * 2, base, seconds=compare.BLOCK_S * compare.MIN_BLOCKS)
    assert compare.compare(enough, ["foo"], LIMITS)["foo"]["p50"].verdict == compare.SLOWER
    # The shortest --run-time the configuration lets a comparison have is that minimum.
    from runbook.core.config import COMPARISON_MIN_S

    assert COMPARISON_MIN_S == compare.MIN_BLOCKS * compare.BLOCK_S


def test_the_change_over_time_ends_where_the_whole_window_does():
    base = spread()
    requests = sides(base * 1.3, base)
    found = compare.over_time(requests, ["foo"])
    points = found["foo"]["p95"]
    assert points[0][0] == compare.MIN_BLOCKS * compare.BLOCK_S and points[-1][0] == 30.0
    assert points[-1][1] == pytest.approx(compare.compare(requests, ["foo"], LIMITS)["foo"]["p95"].change)
    assert all(low <= change <= high for _, change, low, high in points)


def test_the_headline_word_for_word():
    change = {"foo": {"p95": compare.Change("p95", -0.2, -0.3, -0.1, compare.FASTER, 1.0, 1.25)}}
    assert compare.headline(change) == "faster: foo p95 -20% (-30%..-10%)"
    same = {"foo": {"p95": compare.Change("p95", 0.01, -0.1, 0.1, compare.SAME, 1.0, 1.0)}}
    assert compare.headline(same) == compare.SAME
    worse = {"foo": {"p95": compare.Change("p95", 0.2, 0.1, 0.3, compare.SLOWER, 1.2, 1.0),
                     "p50": compare.Change("p50", 0.4, 0.2, 0.6, compare.SLOWER, 1.4, 1.0, 0.25)}}
    assert compare.headline(worse) == "foo p95 +20% (+10%..+30%); foo p50 +40% (+20%..+60%), over the 25% limit"
    too_few = compare.Change("p99", None, None, None, compare.TOO_FEW, None, None)
    assert compare.headline({"foo": {"p95": same["foo"]["p95"], "p99": too_few}, "bar": {"p99": too_few}}) == (
        "no significant change (not judged, too few requests: foo p99, bar p99)")


def test_numbers_are_rounded_to_four_places_and_non_finite_ones_dropped():
    change = compare.Change("p95", 0.123456, float("-inf"), float("nan"), compare.SAME, 1.000049, None, None, 0.5)
    assert change.as_dict() == {"change": 0.1235, "low": None, "high": None, "verdict": compare.SAME, "limit": None,
                                 "beyond_limit": False, "candidate": 1.0, "baseline": None, "p_value": 0.5}
    assert compare.Change("failure_ratio", 0.1, 0.05, 0.15, compare.SLOWER, 0.1, 0.0).text() == "+10.00 pp (+5.00..+15.00)"
    assert not compare.Change("p95", 0.1, -0.05, 0.15, compare.SAME, 1.0, 1.0).interval_excludes_zero
    assert compare.Change("p95", -0.1, -0.15, -0.05, compare.SAME, 1.0, 1.0).interval_excludes_zero


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
    entry = {"requests": 1000, "failures": 1, "rps": 40.0, "p50_ms": 2.0, "p95_ms": 300.0, "p99_ms": 400.0,
             "throughput_ratio": 0.4}
    checks = {c.name: c for c in check_service("foo", slo.default, entry)}
    assert not checks["failure ratio"].held  # one failure among a thousand fails a limit of 0
    assert checks["p50"].held and not checks["p95"].held and checks["p99"].held
    assert checks["throughput ratio"].measured == 0.4 and not checks["throughput ratio"].held
    assert Check("foo", "p95", None, 10.0, "max").held is False  # nothing measured is not a pass
    assert checks["p95"].unit == "ms" and checks["failure ratio"].unit == ""
    # The throughput ratio is the entry's own (one figure, one value); without one there is nothing to check.
    unknown = {c.name: c for c in check_service("foo", slo.default, {**entry, "throughput_ratio": None})}
    assert unknown["throughput ratio"].measured is None and not unknown["throughput ratio"].held


@pytest.mark.parametrize(("text", "message"), [
    (None, "slo='{path}': no such file"),
    ("default: [\n", "slo='{path}': not valid YAML: "),
    ("- p95\n", "slo='{path}': expected a mapping with 'default' and 'services'"),
    ("defaults: {}\n", "slo.defaults={{}}: unknown key; known: default, services"),
    ("services: [foo]\n", "services=['foo']: expected a mapping of service name to limits"),
    ("default: {regression: 0.1}\n", "default.regression=0.1: expected a mapping such as {{p95: 0.1}}"),
    ("default: {regression: {p97: 0.1}}\n", "default.regression.p97=0.1: unknown metric; known: p50, p95, p99, failure_ratio"),
    ("default: {regression: {throughput: 0.1}}\n", "default.regression.throughput=0.1: the comparison no longer judges throughput"),
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


def test_slo_regression_limits_may_exceed_one_and_checks_read_their_numbers(tmp_path):
    path = tmp_path / "slo.yaml"
    path.write_text("default: {max_failure_ratio: 0.01, regression: {p99: 2.5}}\n")
    slo = load_slo(path)
    assert slo.default.regression == {"p99": 2.5}
    (check,) = check_service("foo", slo.default, {"requests": 200, "failures": 2, "rps": 1.0})
    assert (check.measured, check.held) == (0.01, True) and check.as_dict()["held"] is True
    (empty,) = check_service("foo", slo.default, {"requests": 0, "failures": 0, "rps": 0.0})
    assert empty.measured is None and empty.held is False


def test_the_interval_and_p_value_of_a_change_by_value():
    from scipy import stats

    # 18 blocks, a change of 0.1 (in logs) whose resamples spread by 0.04: widened by sqrt(18/17), Student's t(17).
    se = 0.04 * (18 / 17) ** 0.5
    low, high, p = compare._t_interval(0.1, 0.04, 18)
    half = stats.t.ppf(0.975, 17) * se
    assert (low, high) == (pytest.approx(0.1 - half), pytest.approx(0.1 + half))
    assert p == pytest.approx(2 * stats.t.sf(0.1 / se, 17))
    # Resamples that never vary: the change is exact; certain when it is not zero, nothing when it is.
    assert compare._t_interval(0.2, 0.0, 18) == (0.2, 0.2, 0.0)
    assert compare._t_interval(0.0, 0.0, 18) == (0.0, 0.0, 1.0)
    assert compare._t_interval(0.2, float("nan"), 18) == (0.2, 0.2, 0.0)


def test_the_direction_of_a_verdict():
    assert compare.verdict("p95", 0.1) == compare.SLOWER and compare.verdict("p95", -0.1) == compare.FASTER
    assert compare.verdict("failure_ratio", 0.01) == compare.SLOWER
    assert compare.holm({"a": 0.05}) == {"a"} and compare.holm({"a": 0.0501}) == set()
    assert compare.holm({"a": 0.02, "b": 0.02}, alpha=0.04) == {"a", "b"}
