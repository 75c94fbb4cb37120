"""The server side: Traefik's metrics parsed, the sampler's sources read through a fake API server, the analysis.

Metric text here is shaped like Traefik's (names and labels as Traefik's Prometheus exporter
writes them); the API answers come from tests/support/fake_kube.py. None of it claims a
cluster ran.
"""

import json
import math
import re
import threading
import time

import numpy as np
import pytest
import yaml
from kubernetes import config as kube_config

from conftest import ROOT
from runbook.load import prometheus_text
from runbook.load.cluster_sources import (KubeGet, KubeletSummary, TraefikMetrics, Workloads, chart_route, cluster_sampling, quantity,
                                traefik_service_label)
from runbook.analysis.results import LoadTestResults, Requests
from runbook.core.errors import SampleFailed
from runbook.load.sampler import Reading, Sampler
from runbook.core.services import Service
from runbook.analysis.server_side import analyse
from support.fake_kube import FakeKube, autoscaler, deployment, ingress_route, kubelet_summary, node, pod

# How Traefik v3 names the service of the echo chart's IngressRoute "foo" in namespace runbook (match Host(`foo.localhost`)).
FOO = "runbook-foo-93bb6bf6cc150901188c@kubernetescrd"
BASELINE_FOO = "runbook-baseline-foo-baseline-025f42fd68436adf1bab@kubernetescrd"


def traefik_text(requests: dict[str, int], buckets: dict[float, int], seconds: float, service: str = FOO) -> str:
    """A Traefik metrics page: entry point, router and service series, as Traefik labels them."""
    lines = ["# HELP traefik_entrypoint_requests_total How many HTTP requests processed on an entrypoint, partitioned by status code, protocol, and method.",
             "# TYPE traefik_entrypoint_requests_total counter",
             'traefik_entrypoint_requests_total{code="200",entrypoint="web",method="GET",protocol="http"} 99999',
             "# TYPE traefik_router_requests_total counter",
             *[f'traefik_router_requests_total{{code="{code}",method="GET",protocol="http",router="runbook-foo-x@kubernetescrd",service="{service}"}} {n}'
               for code, n in requests.items()],
             "# HELP traefik_service_requests_total How many HTTP requests processed on a service, partitioned by status code, protocol, and method.",
             "# TYPE traefik_service_requests_total counter",
             *[f'traefik_service_requests_total{{code="{code}",method="GET",protocol="http",service="{service}"}} {n}'
               for code, n in requests.items()],
             "# HELP traefik_service_request_duration_seconds How long it took to process the request on a service, partitioned by status code, protocol, and method.",
             "# TYPE traefik_service_request_duration_seconds histogram"]
    for le, n in sorted(buckets.items()):
        bound = "+Inf" if math.isinf(le) else f"{le:g}"
        lines.append(f'traefik_service_request_duration_seconds_bucket{{code="200",method="GET",protocol="http",service="{service}",le="{bound}"}} {n}')
    total = max(buckets.values())
    lines += [f'traefik_service_request_duration_seconds_sum{{code="200",method="GET",protocol="http",service="{service}"}} {seconds}',
              f'traefik_service_request_duration_seconds_count{{code="200",method="GET",protocol="http",service="{service}"}} {total}',
              "# TYPE traefik_open_connections gauge", 'traefik_open_connections{entrypoint="web",protocol="TCP"} 7']
    return "\n".join(lines) + "\n"


def test_traefiks_buckets_are_the_stand_ins_and_resolve_milliseconds():
    values = yaml.safe_load((ROOT / "k8s" / "traefik" / "values.yaml").read_text())
    buckets = tuple(float(b) for b in values["metrics"]["prometheus"]["buckets"].split(","))
    assert buckets == prometheus_text.BUCKETS_S
    assert buckets == tuple(sorted(buckets)) and buckets[0] <= 0.0005 and buckets[-1] >= 10
    assert sum(b <= 0.005 for b in buckets) >= 6  # six or more bounds within the first 5 ms


def test_parse_sums_pods_codes_and_ignores_router_and_entry_point_series():
    one = traefik_text({"200": 90, "502": 10}, {0.001: 50, 0.002: 80, math.inf: 90}, 0.12)
    two = traefik_text({"200": 10}, {0.001: 5, 0.002: 10, math.inf: 10}, 0.02)
    counters = prometheus_text.parse([one, two])[FOO]
    assert counters.by_code == {"200": 100.0, "502": 10.0} and counters.requests == 110
    assert counters.buckets == {0.001: 55.0, 0.002: 90.0, math.inf: 100.0}
    assert counters.observed == 100 and counters.seconds == pytest.approx(0.14)
    assert prometheus_text.ServiceCounters.from_dict(json.loads(json.dumps(counters.as_dict()))) == counters


def test_quantiles_interpolate_within_their_bucket_like_histogram_quantile():
    counters = prometheus_text.ServiceCounters(buckets={0.001: 50.0, 0.002: 90.0, 0.005: 100.0, math.inf: 100.0})
    p50, p95 = prometheus_text.quantile(0.5, counters), prometheus_text.quantile(0.95, counters)
    assert (p50.value_s, p50.low_s, p50.high_s) == (pytest.approx(0.001), 0.0, 0.001)
    assert (p95.value_s, p95.low_s, p95.high_s) == (pytest.approx(0.0035), 0.002, 0.005)
    assert prometheus_text.quantile(0.6, counters).value_s == pytest.approx(0.00125)
    beyond = prometheus_text.ServiceCounters(buckets={0.001: 1.0, math.inf: 10.0})
    assert prometheus_text.quantile(0.95, beyond) == prometheus_text.Quantile(0.001, 0.001, math.inf)
    assert prometheus_text.quantile(0.5, prometheus_text.ServiceCounters()) is None


def test_differences_between_scrapes_and_a_restart_in_between():
    before = prometheus_text.ServiceCounters({"200": 100.0}, {0.001: 80.0, math.inf: 100.0}, 0.05, 100.0)
    after = prometheus_text.ServiceCounters({"200": 160.0, "404": 2.0}, {0.001: 90.0, math.inf: 162.0}, 0.15, 162.0)
    window = prometheus_text.difference(after, before)
    assert window.by_code == {"200": 60.0, "404": 2.0} and window.buckets == {0.001: 10.0, math.inf: 62.0}
    assert window.observed == 62 and window.seconds == pytest.approx(0.10)
    restarted = prometheus_text.ServiceCounters({"200": 5.0}, {0.001: 5.0, math.inf: 5.0}, 0.001, 5.0)
    assert prometheus_text.difference(restarted, before) == restarted  # counted since the restart
    assert prometheus_text.difference(after, None) == after


def test_quantities_and_labels():
    assert [quantity(q) for q in ("500m", "1", "64Mi", "1Gi", "2k", None, "lots")] == [0.5, 1.0, 64 * 2**20, 2**30, 2000.0, None, None]
    # Traefik's own test of a single-service IngressRoute (kubernetes_test.go): namespace default, IngressRoute
    # test-route, match Host(`foo.com`) && PathPrefix(`/bar`).
    assert traefik_service_label("default", "test-route", "Host(`foo.com`) && PathPrefix(`/bar`)") == (
        "default-test-route-6b204d94623b3df4370c@kubernetescrd")
    assert traefik_service_label("runbook", "foo", "Host(`foo.localhost`)") == FOO
    # Characters other than letters and digits become one '-', as Traefik normalises names.
    assert traefik_service_label("team.a", "web..v2", "Host(`x`)").startswith("team-a-web-v2-")
    values = str(ROOT / "k8s" / "deployment" / "foo" / "values.yaml")
    assert chart_route("foo", values, "foo.localhost") == ("foo", "Host(`foo.localhost`)")
    assert traefik_service_label("runbook-baseline", *chart_route("foo-baseline", "", "foo.baseline.localhost")) == BASELINE_FOO


@pytest.fixture
def cluster(tmp_path):
    with FakeKube() as fake:
        fake.node_states = [[node("runbook-control-plane"), node("runbook-worker")]]
        fake.pods["traefik"] = [pod("traefik-5d9c-abcde", "traefik", {"app.kubernetes.io/name": "traefik"}),
                                pod("traefik-5d9c-old", "traefik", {"app.kubernetes.io/name": "traefik"}, phase="Succeeded"),
                                pod("other-1-2", "traefik", {"app.kubernetes.io/name": "other"})]
        fake.pods["runbook"] = [pod("foo-6f7b9-x1", "runbook", limits={"cpu": "500m", "memory": "64Mi"}),
                                pod("foo-6f7b9-x2", "runbook", limits={"cpu": "500m", "memory": "64Mi"})]
        fake.pod_metrics[("traefik", "traefik-5d9c-abcde")] = traefik_text({"200": 40}, {0.001: 30, math.inf: 40}, 0.03)
        fake.node_summaries = {
            "runbook-control-plane": kubelet_summary("runbook-control-plane", {("kube-system", "etcd-x"): (90_000_000, 2**26)}),
            "runbook-worker": kubelet_summary("runbook-worker", {("runbook", "foo-6f7b9-x1"): (250_000_000, 12 * 2**20),
                                                                 ("runbook", "foo-6f7b9-x2"): (50_000_000, 11 * 2**20),
                                                                 ("traefik", "traefik-5d9c-abcde"): (30_000_000, 40 * 2**20)}),
        }
        fake.deployments[("runbook", "foo")] = [deployment("foo", "runbook", replicas=None, total=3, available=3)]
        fake.autoscalers["runbook"] = [autoscaler("foo", "runbook", current=3, desired=4, cpu_percent=180)]
        path = fake.write_kubeconfig(tmp_path / "kubeconfig")
        yield fake, kube_config.new_client_from_config(config_file=str(path), persist_config=False)


def test_traefiks_metrics_through_the_pod_proxy_of_each_running_pod(cluster):
    fake, api = cluster
    reading = TraefikMetrics(KubeGet(api), "traefik").read()
    assert "/api/v1/namespaces/traefik/pods?labelSelector=app.kubernetes.io%2Fname%3Dtraefik" in fake.requests
    assert "/api/v1/namespaces/traefik/pods/traefik-5d9c-abcde:9100/proxy/metrics" in fake.requests
    assert not [r for r in fake.requests if "traefik-5d9c-old" in r]  # not running: not asked
    assert reading.values["pods"] == ["traefik-5d9c-abcde"] and list(reading.raw) == ["traefik-5d9c-abcde.prom"]
    assert reading.values["services"][FOO]["by_code"] == {"200": 40.0}


def test_pods_cpu_and_memory_from_the_kubelets_of_the_runs_nodes_only(cluster):
    fake, api = cluster
    reading = KubeletSummary(KubeGet(api), ["runbook", "traefik"]).read()
    # Only the node that holds the run's pods is asked (not the control plane), and only for CPU and memory.
    summaries = [r for r in fake.requests if "/proxy/stats/summary" in r]
    assert summaries == ["/api/v1/nodes/runbook-worker/proxy/stats/summary?only_cpu_and_memory=true"]
    assert reading.values["nodes"] == ["runbook-worker"]
    assert reading.values["pods"] == {
        "runbook/foo-6f7b9-x1": {"node": "runbook-worker", "cpu_cores": 0.25, "memory_bytes": 12 * 2**20},
        "runbook/foo-6f7b9-x2": {"node": "runbook-worker", "cpu_cores": 0.05, "memory_bytes": 11 * 2**20},
        "traefik/traefik-5d9c-abcde": {"node": "runbook-worker", "cpu_cores": 0.03, "memory_bytes": 40 * 2**20},
    }  # kube-system is not the run's


def test_deployments_autoscalers_and_limits(cluster):
    _fake, api = cluster
    values = Workloads(KubeGet(api), ["runbook"]).read().values
    # The HPA owns spec.replicas (defaulted to 1 by the API server): what counts is ready, and the HPA's desire.
    assert values["deployments"] == {"runbook/foo": {"desired": 1, "ready": 3}}
    assert values["autoscalers"]["runbook/foo"] == {"deployment": "runbook/foo", "current": 3, "desired": 4, "min": 2, "max": 5,
                                                    "cpu_percent": 180, "able_to_scale": "True: ValidMetricFound"}
    assert values["limits"]["runbook/foo-6f7b9-x1"] == {"deployment": "runbook/foo", "cpu_cores": 0.5, "memory_bytes": 64 * 2**20}


def test_an_answer_missing_or_slow_is_a_missing_sample_and_sampling_goes_on(cluster, tmp_path):
    fake, api = cluster
    del fake.node_summaries["runbook-worker"]
    with pytest.raises(SampleFailed, match=r"GET /api/v1/nodes/runbook-worker/proxy/stats/summary\?only_cpu_and_memory=true: HTTP 404"):
        KubeletSummary(KubeGet(api), ["runbook"]).read()
    fake.slow[r"/api/v1/namespaces/traefik/pods/.*/proxy/metrics"] = 1.5
    sampler = Sampler([TraefikMetrics(KubeGet(api, timeout=0.3), "traefik"), Workloads(KubeGet(api), ["runbook"])],
                      tmp_path / "server", interval=0.5)
    started = time.monotonic()
    sampler.start()
    time.sleep(1.2)
    sampler.stop()
    lines = [json.loads(line) for line in (tmp_path / "server" / "samples.jsonl").read_text().splitlines()]
    traefik = [line for line in lines if line["source"] == "traefik"]
    assert traefik and all(not line["ok"] and line["values"] is None and "timed out" in line["error"].lower() for line in traefik)
    assert all(line["took_s"] < 1.0 for line in traefik)  # the reading gave up at its timeout
    workloads = [line for line in lines if line["source"] == "workloads"]
    assert len(workloads) >= 3 and all(line["ok"] for line in workloads)  # the other source was read on every tick
    assert [line["moment"] for line in workloads][0] == "before" and workloads[-1]["moment"] == "after"
    assert time.monotonic() - started < 5


def test_the_cluster_plan_names_each_sides_labels_and_workloads(cluster):
    fake, api = cluster
    foo = Service("foo", "foo.localhost", "foo", values_file=str(ROOT / "k8s" / "deployment" / "foo" / "values.yaml"))
    # The candidate's IngressRoute is read from the API server; the baseline's namespace cannot be listed.
    fake.ingress_routes["runbook"] = [ingress_route("foo", "runbook", "foo.localhost"),
                                      ingress_route("other", "runbook", "other.localhost", release="other")]
    plan = cluster_sampling(api, "traefik", ["traefik", "runbook", "runbook-baseline"],
                            [("runbook", "foo", foo, "candidate"), ("runbook-baseline", "foo-baseline", foo, "baseline")], notes=["n"])
    assert plan.labels == {FOO: {"service": "foo", "side": "candidate"},
                           # not readable: as the chart renders it, with the host the release was installed with
                           traefik_service_label("runbook-baseline", "foo-baseline", "Host(`foo.localhost`)"):
                               {"service": "foo", "side": "baseline"}}
    assert any("/apis/traefik.io/v1alpha1/namespaces/runbook/ingressroutes?labelSelector=" in r for r in fake.requests)
    assert plan.workloads == {"runbook/foo": {"service": "foo", "side": "candidate"},
                              "runbook-baseline/foo-baseline": {"service": "foo", "side": "baseline"}}
    assert [s.name for s in plan.sources] == ["traefik", "pods", "workloads"] and plan.notes[0] == "n"
    assert plan.notes[1].startswith("the IngressRoute of runbook-baseline/foo-baseline could not be read (GET /apis/")


class Scripted:
    """A source that answers from a list, raising for an Exception in it."""

    def __init__(self, name, answers):
        self.name, self.answers, self.lock = name, list(answers), threading.Lock()

    def read(self):
        with self.lock:
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_a_failed_reading_is_recorded_missing_with_its_error_and_raw_answers_are_kept(tmp_path):
    source = Scripted("traefik", [Reading({"x": 1}, {"metrics.prom": b"a 1\n"}), ConnectionRefusedError(111, "Connection refused")])
    sampler = Sampler([source], tmp_path, interval=10)
    sampler.take("before")
    sampler.take("after")
    first, second = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert first["ok"] and first["values"] == {"x": 1} and first["files"] == ["traefik/0000-metrics.prom"]
    assert (tmp_path / "traefik" / "0000-metrics.prom").read_bytes() == b"a 1\n"
    assert second == {"seq": 1, "moment": "after", "time": second["time"], "source": "traefik", "ok": False,
                      "error": "ConnectionRefusedError: [Errno 111] Connection refused", "values": None, "took_s": second["took_s"]}


def results_with(requests: dict[tuple[str, str], int], t0: float = 1000.0) -> LoadTestResults:
    logged = {key: Requests(np.full(n, t0), np.full(n, 2.0), np.ones(n, dtype=bool), np.ones(n, dtype=bool))
              for key, n in requests.items()}
    return LoadTestResults({}, {}, np.array([]), np.array([]), 1.0, requests=logged, t0=t0)


def write_samples(folder, lines, meta):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "samples.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def traefik_line(seq, moment, t, requests, ok=True):
    counters = prometheus_text.ServiceCounters({"200": float(requests)}, {0.001: requests * 0.9, 0.01: float(requests), math.inf: float(requests)},
                                        requests * 0.001, float(requests))
    return {"seq": seq, "moment": moment, "time": t, "source": "traefik", "ok": ok, "error": None if ok else "URLError: refused",
            "values": {"services": {"foo.localhost@local": counters.as_dict()}} if ok else None}


def locust_line(seq, moment, t, cpu):
    return {"seq": seq, "moment": moment, "time": t, "source": "processes", "ok": True, "error": None,
            "values": {"locust": {"pid": 1, "cpu_percent": cpu, "rss_bytes": 50 * 2**20}, "cpu_count": 2}}


META = {"interval_s": 2.0, "labels": {"foo.localhost@local": {"service": "foo", "side": "candidate"}}, "workloads": {},
        "notes": [], "processes": ["locust"]}


@pytest.mark.parametrize(("counted", "reconciled"), [(1005, True), (1010, True), (1011, False), (900, False)])
def test_traefiks_count_against_locusts_within_one_percent(tmp_path, counted, reconciled):
    lines = [traefik_line(0, "before", 1000.0, 7), traefik_line(1, "during", 1002.0, 500), traefik_line(2, "after", 1004.0, 7 + counted)]
    write_samples(tmp_path, lines, META)
    foo = analyse(tmp_path, results_with({("foo", "candidate"): 1000})).services[("foo", "candidate")]
    assert foo.traefik_requests == counted and foo.locust_requests == 1000 and foo.complete
    assert foo.reconciled is reconciled and foo.as_dict()["gap"] == pytest.approx((counted - 1000) / 1000)
    assert foo.p95.low_s == 0.001 and foo.p95.high_s == 0.01


def test_a_missing_reading_at_the_end_leaves_the_count_incomplete_not_flagged(tmp_path):
    lines = [traefik_line(0, "before", 1000.0, 0), traefik_line(1, "during", 1002.0, 400),
             traefik_line(2, "during", 1004.0, 0, ok=False), traefik_line(3, "after", 1006.0, 0, ok=False)]
    write_samples(tmp_path, lines, META)
    server = analyse(tmp_path, results_with({("foo", "candidate"): 1000}))
    foo = server.services[("foo", "candidate")]
    assert foo.traefik_requests == 400 and not foo.complete and foo.reconciled is None
    assert server.sampled["traefik"] == {"taken": 4, "missing": 2, "first_error": "URLError: refused"}
    assert server.missing_at["traefik"] == [4.0, 6.0]
    assert np.isnan(foo.p95_series.values[1:]).all() and not np.isnan(foo.p95_series.values[0])


@pytest.mark.parametrize(("cpus", "saturated"), [([95, 97, 40, 30, 20], True), ([95, 40, 30, 20, 20, 20], False)])
def test_the_generator_is_called_saturated_from_a_fifth_of_its_samples_near_a_full_core(tmp_path, cpus, saturated):
    lines = [locust_line(0, "before", 1000.0, 100.0)]  # the reading before the load measures nothing
    lines += [locust_line(i, "during", 1000.0 + 2 * i, cpu) for i, cpu in enumerate(cpus, 1)]
    write_samples(tmp_path, lines, META)
    server = analyse(tmp_path, results_with({("foo", "candidate"): 10}))
    assert server.generator_saturated is saturated
    assert server.processes["locust"].as_dict()["samples"] == len(cpus)


def test_a_stand_in_killed_halfway_leaves_missing_samples_and_a_report_that_fails(tmp_path, port):
    import os
    import signal

    from conftest import run_cli

    run = tmp_path / "run"
    state = run / "target" / "local.json"

    def kill_the_stand_in_halfway():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (run / "load_test" / "server" / "samples.jsonl").is_file():
            time.sleep(0.05)
        time.sleep(3)  # into the 6 s load test
        os.kill(json.loads(state.read_text())["pid"], signal.SIGKILL)

    killer = threading.Thread(target=kill_the_stand_in_halfway, daemon=True)
    killer.start()
    done = run_cli("run", "--target", "local", "--run-time", "6s", "--users", "20", "--ingress-port", str(port),
                   "--stages", "provision,verify,load_test,report,teardown", "--output-dir", str(run))
    assert done.returncode == 1, done.stdout + done.stderr  # the failed requests fail the run, as they always do
    lines = [json.loads(line) for line in (run / "load_test" / "server" / "samples.jsonl").read_text().splitlines()]
    traefik = [line for line in lines if line["source"] == "traefik"]
    assert traefik[0]["ok"] and traefik[-1]["moment"] == "after" and not traefik[-1]["ok"]
    missing = [line for line in traefik if not line["ok"]]
    assert missing and all(line["values"] is None and line["error"] for line in missing)
    stand_in = [(line["values"] or {}).get("stand-in") for line in lines if line["source"] == "processes"]
    assert stand_in[0] is not None and stand_in[-1] is None  # gone: missing, not zero
    result = json.loads((run / "report" / "result.json").read_text())
    assert result["status"] == "failed" and result["services"]["foo"]["failures"] > 0
    server = result["server"]
    assert server["samples"]["traefik"]["missing"] == len(missing)
    foo = server["services"]["foo"]
    assert foo["complete"] is False and foo["reconciled"] is None and 0 < foo["traefik_requests"] < foo["locust_requests"]
    assert server["processes"]["locust"]["samples"] >= 2
    summary = (run / "report" / "summary.md").read_text()
    assert re.search(r"Samples missing \(gaps in the charts, never filled in\): .*traefik \d+ of \d+ \(` ConnectionRefusedError", summary)
    assert "(incomplete)" in summary
    for chart in ("server-latency.png", "resources.png"):
        assert (run / "report" / chart).stat().st_size > 10_000


def test_pods_limits_replicas_and_the_autoscaler_reach_the_report_row(cluster, tmp_path):
    from runbook.report.summary import render_server
    from runbook.report.server_charts import draw_all

    _fake, api = cluster
    get = KubeGet(api)
    sampler = Sampler([TraefikMetrics(get, "traefik"), KubeletSummary(get, ["runbook", "traefik"]), Workloads(get, ["runbook"])],
                      tmp_path / "server", interval=10)
    sampler.write_meta({"labels": {FOO: {"service": "foo", "side": "candidate"}},
                        "workloads": {"runbook/foo": {"service": "foo", "side": "candidate"}}, "notes": [], "processes": []})
    for moment in ("before", "during", "after"):
        sampler.take(moment)
    results = results_with({("foo", "candidate"): 40}, t0=time.time() - 5)
    server = analyse(tmp_path / "server", results)
    foo = server.services[("foo", "candidate")].as_dict()
    assert (foo["peak_cpu_cores"], foo["cpu_limit_cores"]) == (0.25, 0.5)  # the busier of foo's two pods
    assert (foo["peak_memory_bytes"], foo["memory_limit_bytes"]) == (12 * 2**20, 64 * 2**20)
    assert foo["replicas"] == {"start": 3, "peak": 3, "end": 3}
    assert foo["autoscaler"] == {"desired_peak": 4, "cpu_percent_peak": 180, "scaling": "True: ValidMetricFound"}
    assert foo["traefik_requests"] == 0 and foo["reconciled"] is False  # the fake's counter never moved
    assert set(server.pods) == {"runbook/foo-6f7b9-x1", "runbook/foo-6f7b9-x2", "traefik/traefik-5d9c-abcde"}
    text = render_server(server.as_dict())
    assert "| service | Traefik counted / Locust sent (gap) | p50: Traefik / Locust | p95: Traefik / Locust |" in text
    assert "| service | peak CPU | peak memory | replicas (start → peak → end) |" in text
    rows = [line for line in text.splitlines() if line.startswith("| `foo`")]
    assert rows[1] == ("| `foo` | 0.25 cores of 0.50 cores (50%) | 12.0 MiB of 64.0 MiB (19%) | 3 → 3 → 3; autoscaler wanted "
                       "up to 4 at 180% CPU of request |")
    paths = draw_all(server, results, tmp_path, "test")
    assert set(paths) == {"server_latency", "resources", "replicas"}


def test_counters_round_trip_through_json_and_default_to_nothing():
    counters = prometheus_text.ServiceCounters({"200": 3.0}, {0.001: 1.0, math.inf: 3.0}, 0.004, 3.0)
    assert counters.as_dict() == {"by_code": {"200": 3.0}, "buckets": [[0.001, 1.0], ["+Inf", 3.0]], "seconds": 0.004, "observed": 3.0}
    assert prometheus_text.ServiceCounters.from_dict(json.loads(json.dumps(counters.as_dict()))) == counters
    assert prometheus_text.ServiceCounters.from_dict({}) == prometheus_text.ServiceCounters()


def test_samples_without_a_service_or_a_code_label():
    text = ("# TYPE traefik_service_requests_total counter\n"
            'traefik_service_requests_total{code="200",method="GET",protocol="http"} 9\n'  # no service: not one of ours
            'traefik_service_requests_total{method="GET",protocol="http",service="s"} 4\n')
    assert {k: v.by_code for k, v in prometheus_text.parse([text]).items()} == {"s": {"": 4.0}}


def test_a_restart_seen_in_the_request_count_alone_and_series_new_since_the_last_scrape():
    before = prometheus_text.ServiceCounters({"200": 100.0})
    restarted = prometheus_text.ServiceCounters({"200": 5.0})  # no histogram: only the count says it restarted
    assert prometheus_text.difference(restarted, before) == restarted
    first = prometheus_text.ServiceCounters({"200": 2.0}, {0.001: 2.0, math.inf: 2.0}, 0.001, 2.0)
    assert prometheus_text.difference(first, prometheus_text.ServiceCounters()) == first  # nothing counted before: all of it is new


def test_quantiles_of_one_observation_and_of_a_first_bucket():
    one = prometheus_text.ServiceCounters(buckets={0.001: 1.0, math.inf: 1.0})
    assert prometheus_text.quantile(0.5, one) == prometheus_text.Quantile(pytest.approx(0.0005), 0.0, 0.001)
    skewed = prometheus_text.ServiceCounters(buckets={0.001: 0.0, 0.002: 4.0, 0.004: 4.0, math.inf: 4.0})
    assert prometheus_text.quantile(0.25, skewed) == prometheus_text.Quantile(pytest.approx(0.00125), 0.001, 0.002)
    assert prometheus_text.quantile(1.0, skewed) == prometheus_text.Quantile(pytest.approx(0.002), 0.001, 0.002)


def test_counters_of_two_labels_add_up_code_by_code_and_bucket_by_bucket():
    import math

    from runbook.load.prometheus_text import ServiceCounters

    one = ServiceCounters({"200": 2.0}, {0.1: 1.0, math.inf: 2.0}, 0.5, 2.0)
    one.add(ServiceCounters({"200": 3.0, "500": 1.0}, {0.1: 2.0, 0.5: 3.0, math.inf: 4.0}, 1.5, 4.0))
    assert one.by_code == {"200": 5.0, "500": 1.0}
    assert one.buckets == {0.1: 3.0, 0.5: 3.0, math.inf: 6.0}
    assert (one.seconds, one.observed) == (2.0, 6.0)


def test_traefik_unreachable_through_the_pod_proxy_is_named_as_the_reason(tmp_path):
    refused = "GET /api/v1/namespaces/traefik/pods/traefik-5d9c-abcde:9100/proxy/metrics: HTTP 503 no endpoints"
    lines = [{**traefik_line(seq, moment, 1000.0 + 2 * seq, 0, ok=False), "error": refused}
             for seq, moment in enumerate(["before", "during", "after"])]
    write_samples(tmp_path, lines, META)
    server = analyse(tmp_path, results_with({("foo", "candidate"): 10}))
    assert server.notes[-1].startswith("Traefik's numbers are missing because the API server could not proxy to its "
                                       "metrics port")
    # A reading that failed otherwise (a refused connection to the stand-in) is no such case.
    write_samples(tmp_path, [traefik_line(seq, moment, 1000.0 + 2 * seq, 0, ok=False)
                             for seq, moment in enumerate(["before", "after"])], META)
    assert analyse(tmp_path, results_with({("foo", "candidate"): 10})).notes == []
