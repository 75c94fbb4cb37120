"""Run folders whose numbers are known exactly: a load test's files as the load_test stage leaves them."""

import csv
import json


def write_load_test(folder, rows, run_time=10, users=((0, 0), (5, 10), (10, 10))):
    folder.mkdir(parents=True, exist_ok=True)
    profile = {
        "users": 10, "spawn_rate": 2.0, "run_time_s": run_time, "wait_min_s": 0.0, "wait_max_s": 1.0,
        "request_timeout_s": 5.0, "endpoint": "http://127.0.0.1:8080",
        "services": [{"name": "foo", "host": "foo.localhost", "expect": "foo"},
                     {"name": "bar", "host": "bar.localhost", "expect": "bar"}],
        "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:00:10+00:00",
    }
    (folder / "profile.json").write_text(json.dumps(profile))
    with (folder / "requests.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "service", "response_ms", "ok", "error"])
        writer.writerows(rows)
    with (folder / "locust_stats_history.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Timestamp", "User Count", "Type", "Name"])
        for t, count in users:
            writer.writerow([1000 + t, count, "", "Aggregated"])


def write_server_samples(folder, foo_counted=100, locust_cpu=(40.0, 95.0, 96.0), bar_counted=55):
    """What the sampler leaves for the mixed run: "Traefik" counted foo_counted of foo's 100 requests."""
    import math

    from runbook.load import prometheus_text

    def counters(n):
        return prometheus_text.ServiceCounters({"200": float(n)}, {0.001: n * 0.5, 0.002: float(n), math.inf: float(n)}, n * 0.0012, float(n)).as_dict()

    lines = []
    for seq, (moment, t, n) in enumerate([("before", 999.5, 0), ("during", 1004.0, foo_counted // 2), ("during", 1008.0, foo_counted),
                                          ("after", 1010.5, foo_counted)]):
        lines.append({"seq": seq, "moment": moment, "time": t, "source": "traefik", "ok": True, "error": None,
                      "values": {"services": {"foo.localhost@local": counters(n), "bar.localhost@local": counters(bar_counted)}}})
        cpu = locust_cpu[seq - 1] if 0 < seq <= len(locust_cpu) else 0.0
        lines.append({"seq": seq, "moment": moment, "time": t, "source": "processes", "ok": True, "error": None,
                      "values": {"locust": {"pid": 2, "cpu_percent": cpu, "rss_bytes": 60 * 2**20},
                                 "stand-in": {"pid": 1, "cpu_percent": 12.5 * seq, "rss_bytes": 30 * 2**20}, "cpu_count": 2}})
    meta = {"interval_s": 2.0, "labels": {"foo.localhost@local": {"service": "foo", "side": "candidate"},
                                          "bar.localhost@local": {"service": "bar", "side": "candidate"}},
            "workloads": {}, "notes": ["a note"], "processes": ["locust", "stand-in"]}
    server = folder / "server"
    server.mkdir(parents=True, exist_ok=True)
    (server / "meta.json").write_text(json.dumps(meta))
    (server / "samples.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def write_compared(folder, run_time=40):
    """A comparison's request log: five warm-up requests (round 0), then both sides interleaved; baseline 2 ms, candidate 3 ms."""
    folder.mkdir(parents=True, exist_ok=True)
    profile = {
        "users": 10, "spawn_rate": 10.0, "run_time_s": run_time, "wait_min_s": 0.0, "wait_max_s": 1.0,
        "request_timeout_s": 5.0, "endpoint": "http://127.0.0.1:8080",
        "services": [{"name": "foo", "host": "foo.localhost", "expect": "foo"}],
        "baseline_services": [{"name": "foo", "host": "foo.baseline.localhost", "expect": "foo"}],
        "schedule": {"design": "interleaved", "warmup_requests": 1, "measured_s": run_time},
        "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:03:00+00:00",
    }
    (folder / "profile.json").write_text(json.dumps(profile))
    with (folder / "requests.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "service", "side", "round", "response_ms", "ok", "error"])
        writer.writerows([(1000 + i * 0.5, "foo", "candidate", 0, 50, 1, "") for i in range(5)])
        for i in range(run_time):
            writer.writerow((1003 + i, "foo", "candidate", 1, 3, 1, ""))
            writer.writerow((1003.5 + i, "foo", "baseline", 1, 2, 1, ""))
        writer.writerow([1004.2, "foo", "candidate", 1, 9, 0, "ConnectionError: line one\r\nline two"])
