"""Load profile for the echo services behind the ingress.

Each simulated user sends GET requests through the ingress endpoint, going
round the services in turn with each service's Host header, and waits a random
0-1 s (by default) after each response. Requests are grouped per service
(`name=`), and a response counts as a success only if it is a 200 whose body
contains the service's text.

With a baseline (the pull request's base deployed beside the change under its own
hosts), a service's requests go to the candidate and the baseline in pairs in random
order, for the whole run: both sides share every second of the machine, so a slow
second slows both alike. Each user's first request (it opens the connection) is a
warm-up that the comparison leaves out. Every request is recorded with its side and
phase.

The runbook runs this file with the locust CLI and sets the options below through
the environment; it also works on its own:

    locust -f load_test/locustfile.py --headless -u 100 -r 10 -t 30s --host http://127.0.0.1:8080

Its options (`locust -f load_test/locustfile.py --help` lists them) can be given as
flags or as the environment variables named there.
"""

from __future__ import annotations

import csv
import json
import os
import random
import socket
import time

from locust import FastHttpUser, events, task

DEFAULT_SERVICES = [
    {"name": "foo", "host": "foo.localhost", "expect": "foo", "path": "/"},
    {"name": "bar", "host": "bar.localhost", "expect": "bar", "path": "/"},
]
CANDIDATE, BASELINE = "candidate", "baseline"


@events.init_command_line_parser.add_listener
def _options(parser, **_kwargs) -> None:
    group = parser.add_argument_group("runbook load profile")
    group.add_argument("--services-json", env_var="LOAD_TEST_SERVICES", default="",
                       help='services as JSON: [{"name", "host", "expect", "path"}] (default: foo and bar)')
    group.add_argument("--wait-min", env_var="LOAD_TEST_WAIT_MIN", type=float, default=0.0,
                       help="seconds a user waits after a response, at least (default: 0); env LOAD_TEST_WAIT_MIN")
    group.add_argument("--wait-max", env_var="LOAD_TEST_WAIT_MAX", type=float, default=1.0,
                       help="... and at most (default: 1); env LOAD_TEST_WAIT_MAX")
    group.add_argument("--request-timeout", env_var="LOAD_TEST_TIMEOUT", type=float, default=5.0,
                       help="connect and read timeout of each request in seconds (default: 5); env LOAD_TEST_TIMEOUT")
    group.add_argument("--request-log", env_var="LOAD_TEST_REQUEST_LOG", default="",
                       help="CSV file to record every request in (time, service, side, round, ms, ok, error); "
                       "round is 0 for a warm-up request, 1 otherwise; with --processes or --worker, each worker writes "
                       "its own part beside it (requests.worker-HOST-PID.csv); env LOAD_TEST_REQUEST_LOG")
    group.add_argument("--baseline-json", env_var="LOAD_TEST_BASELINE", default="",
                       help="the baseline's services as JSON, same shape as --services-json: a service's requests then "
                       "go to the two sides in pairs in random order; env LOAD_TEST_BASELINE")
    group.add_argument("--warmup-requests", env_var="LOAD_TEST_WARMUP_REQUESTS", type=int, default=0,
                       help="each user's first requests that are marked as warm-up (round 0): the first opens the "
                       "user's connection (default: 0); env LOAD_TEST_WARMUP_REQUESTS")


class Profile:
    """The parsed options, checked once when the test starts."""

    def __init__(self, options) -> None:
        self.services = json.loads(options.services_json) if options.services_json else DEFAULT_SERVICES
        self.baseline = {s["name"]: s for s in json.loads(options.baseline_json)} if options.baseline_json else {}
        if options.wait_min < 0 or options.wait_max < options.wait_min:
            raise ValueError(f"--wait-min {options.wait_min} / --wait-max {options.wait_max}: need 0 <= min <= max")
        if options.request_timeout <= 0:
            raise ValueError(f"--request-timeout {options.request_timeout}: must be positive")
        if not self.services or any(not {"name", "host", "expect"} <= set(s) for s in self.services):
            raise ValueError("--services-json: each service needs name, host and expect")
        if options.warmup_requests < 0:
            raise ValueError(f"--warmup-requests {options.warmup_requests}: must not be negative")
        self.wait_min, self.wait_max, self.timeout = options.wait_min, options.wait_max, options.request_timeout
        self.warmup_requests = options.warmup_requests
        self.pending: dict[tuple[str, int], str] = {}  # (service, phase) -> the side the next request goes to

    def side_and_round(self, service: str, sent: int) -> tuple[str, int]:
        """Which side the next request goes to, and its phase (0: the warm-up, 1: measured).

        sent: how many requests this user has sent before. Its first ones are warm-up whenever
        they come (users keep starting through the ramp-up): the first opens the user's
        connection, which costs a few milliseconds more than the others.

        With a baseline, a service's requests go to the sides in pairs, in the order this
        process sends them (all its users together): of two in a row, one goes to each side,
        which one first drawn at random. So in any second the sides get the same number of
        requests give or take one (one per worker with --processes), and a slow second weighs
        on both alike; a coin for every request would give one side a few more of some seconds
        than the other, which widens the comparison's interval. Pairs within each user would
        balance the user, not the seconds: a user sends a service about one request a second.
        """
        phase = 0 if sent < self.warmup_requests else 1
        if service not in self.baseline:
            return CANDIDATE, phase
        side = self.pending.pop((service, phase), None)
        if side is None:
            side = random.choice((CANDIDATE, BASELINE))
            self.pending[(service, phase)] = BASELINE if side == CANDIDATE else CANDIDATE
        return side, phase


PROFILE: Profile | None = None


@events.test_start.add_listener
def _start(environment, **_kwargs) -> None:
    global PROFILE
    PROFILE = Profile(environment.parsed_options)
    # FastHttpUser's timeouts are per user class; every user is made after this event.
    EchoUser.network_timeout = EchoUser.connection_timeout = PROFILE.timeout
    options = environment.parsed_options
    # Requests are recorded where they are made: by the process itself, or by each worker in its own part.
    # The master of a distributed run makes none, and writes nothing.
    if getattr(options, "worker", False):
        request_log.open(worker_part(options.request_log))
    elif not getattr(options, "master", False):
        request_log.open(options.request_log)


def worker_part(path: str) -> str:
    """Where a worker writes its requests: beside the log, named by host and process (unique across pods)."""
    if not path:
        return ""
    stem, dot, suffix = path.rpartition(".")
    stem, suffix = (stem, "." + suffix) if dot else (path, "")
    return f"{stem}.worker-{socket.gethostname()}-{os.getpid()}{suffix}"


class EchoUser(FastHttpUser):
    host = "http://127.0.0.1:8080"

    def wait_time(self) -> float:
        return random.uniform(PROFILE.wait_min, PROFILE.wait_max)

    def on_start(self) -> None:
        # Start each user at a random service so that both get traffic from the first second.
        self.turn = random.randrange(len(PROFILE.services))
        self.sent = 0

    @task
    def echo(self) -> None:
        service = PROFILE.services[self.turn % len(PROFILE.services)]
        self.turn += 1
        # A service the base does not have has nothing to be compared with: it is all candidate.
        side, round_number = PROFILE.side_and_round(service["name"], self.sent)
        self.sent += 1
        if side == BASELINE:
            service = PROFILE.baseline[service["name"]]
        name = service["name"] if side == CANDIDATE else f"{service['name']} (baseline)"
        with self.client.get(
            service.get("path", "/"),
            headers={"Host": service["host"]},
            name=name,
            catch_response=True,
            context={"service": service["name"], "side": side, "round": round_number},
        ) as response:
            if response.status_code == 0:
                response.failure(response.error or "no response")
            elif response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
            elif service["expect"] not in response.text:
                response.failure(f"body does not contain {service['expect']!r}")
            else:
                response.success()


class RequestLog:
    """Every request with its side, round and outcome, so latency can be computed from successes alone."""

    def __init__(self) -> None:
        self.file = None
        self.writer = None
        self.flushed = 0.0

    def open(self, path: str) -> None:
        if path and self.file is None:
            self.file = open(path, "w", newline="", buffering=1 << 16)  # noqa: SIM115 (closed on quit)
            self.writer = csv.writer(self.file)
            self.writer.writerow(["time", "service", "side", "round", "response_ms", "ok", "error"])

    def record(self, name: str, response_time: float, exception: BaseException | None = None,
               context: dict | None = None, **_kw: object) -> None:
        if self.writer is not None:
            context = context or {}
            if exception is None:  # the common case, written directly: at thousands per second the csv module costs
                self.file.write(f"{time.time():.4f},{context.get('service', name)},{context.get('side', CANDIDATE)},"
                                f"{context.get('round', 1)},{response_time:.3f},1,\n")
            else:  # an error's text may hold commas and quotes: the csv module quotes it
                self.writer.writerow([f"{time.time():.4f}", context.get("service", name), context.get("side", CANDIDATE),
                                      context.get("round", 1), f"{response_time:.3f}", 0,
                                      f"{type(exception).__name__}: {exception}"])
            # Written through a buffer, but flushed twice a second, so that progress reads a log that keeps up.
            if time.monotonic() - self.flushed > 0.5:
                self.file.flush()
                self.flushed = time.monotonic()

    def close(self, **_kwargs: object) -> None:
        if self.file is not None:
            self.file.close()
            self.file = self.writer = None


request_log = RequestLog()
events.request.add_listener(request_log.record)
# quit, not quitting: a worker's users stop (and record their last requests) after quitting has fired.
events.quit.add_listener(request_log.close)


ENVIRONMENT = None


@events.init.add_listener
def _init(environment, **_kwargs) -> None:
    global ENVIRONMENT
    ENVIRONMENT = environment


@events.quit.add_listener
def _final_csvs(**_kwargs) -> None:
    """Make --csv's stats, failures and exceptions files hold the final numbers.

    Locust writes them once a second while the test runs, so the last second's requests are
    missing from them (locust issues 1806, 2299). Its own files are closed only after this
    event, so the final rows are written at interpreter exit, once they have been.
    """
    environment = ENVIRONMENT
    prefix = getattr(getattr(environment, "parsed_options", None), "csv_prefix", None)
    if not prefix:
        return
    import atexit

    from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

    writer = StatsCSV(environment, PERCENTILES_TO_REPORT)

    def rewrite() -> None:
        for suffix, write in (("_stats.csv", writer.requests_csv), ("_failures.csv", writer.failures_csv),
                              ("_exceptions.csv", writer.exceptions_csv)):
            with open(prefix + suffix, "w", newline="") as handle:
                write(csv.writer(handle))

    atexit.register(rewrite)


if __name__ == "__main__":
    from locust import run_single_user

    run_single_user(EchoUser)
