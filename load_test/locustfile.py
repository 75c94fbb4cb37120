"""Load profile for the echo services behind the ingress.

Each simulated user sends GET requests through the ingress endpoint, going
round the services in turn with each service's Host header, and waits a random
0-1 s (by default) after each response. Requests are grouped per service
(`name=`), and a response counts as a success only if it is a 200 whose body
contains the service's text.

With a baseline (the pull request's base deployed beside the change under its own
hosts), the run is one continuous Locust run in rounds: after a warm-up (the
ramp-up, sent to both sides and left out of the comparison), every user sends to
one side for a round, then to the other, in a balanced order (B A A B B A ...), so
that drift on the machine falls on both sides alike. Every request is recorded with
its side and round.

The runbook runs this file with the locust CLI and sets the options below through
the environment; it also works on its own:

    locust -f load_test/locustfile.py --headless -u 100 -r 10 -t 30s --host http://127.0.0.1:8080

Its options (`locust -f load_test/locustfile.py --help` lists them) can be given as
flags or as the environment variables named there.
"""

from __future__ import annotations

import csv
import json
import random
import time

from locust import HttpUser, events, task

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
                       help="seconds a user waits after a response, at least (default: 0); env LOAD_TEST_SERVICES")
    group.add_argument("--wait-max", env_var="LOAD_TEST_WAIT_MAX", type=float, default=1.0,
                       help="... and at most (default: 1); env LOAD_TEST_WAIT_MAX")
    group.add_argument("--request-timeout", env_var="LOAD_TEST_TIMEOUT", type=float, default=5.0,
                       help="connect and read timeout of each request in seconds (default: 5); env LOAD_TEST_TIMEOUT")
    group.add_argument("--request-log", env_var="LOAD_TEST_REQUEST_LOG", default="",
                       help="CSV file to record every request in (time, service, side, round, ms, ok, error); env LOAD_TEST_REQUEST_LOG")
    group.add_argument("--baseline-json", env_var="LOAD_TEST_BASELINE", default="",
                       help="the baseline's services as JSON, same shape as --services-json: enables rounds; env LOAD_TEST_BASELINE")
    group.add_argument("--schedule-json", env_var="LOAD_TEST_SCHEDULE", default="",
                       help='rounds as JSON: {"warmup_s": W, "round_s": R, "order": ["baseline", "candidate", ...]}')


class Profile:
    """The parsed options, checked once when the test starts."""

    def __init__(self, options) -> None:
        self.services = json.loads(options.services_json) if options.services_json else DEFAULT_SERVICES
        self.baseline = {s["name"]: s for s in json.loads(options.baseline_json)} if options.baseline_json else {}
        self.schedule = json.loads(options.schedule_json) if options.schedule_json else None
        if options.wait_min < 0 or options.wait_max < options.wait_min:
            raise ValueError(f"--wait-min {options.wait_min} / --wait-max {options.wait_max}: need 0 <= min <= max")
        if options.request_timeout <= 0:
            raise ValueError(f"--request-timeout {options.request_timeout}: must be positive")
        if not self.services or any(not {"name", "host", "expect"} <= set(s) for s in self.services):
            raise ValueError("--services-json: each service needs name, host and expect")
        if self.baseline and not self.schedule:
            raise ValueError("--baseline-json needs --schedule-json")
        self.wait_min, self.wait_max, self.timeout = options.wait_min, options.wait_max, options.request_timeout
        self.started = time.time()

    def side_and_round(self, turn: int) -> tuple[str, int]:
        """Which side a request goes to now, and the round it belongs to (0: warm-up or after the last)."""
        if not self.schedule:
            return CANDIDATE, 1
        elapsed = time.time() - self.started
        warmup, length, order = self.schedule["warmup_s"], self.schedule["round_s"], self.schedule["order"]
        index = int((elapsed - warmup) // length) if elapsed >= warmup else -1
        if 0 <= index < len(order):
            return order[index], index + 1
        return (CANDIDATE if turn % 2 else BASELINE), 0


PROFILE: Profile | None = None


@events.test_start.add_listener
def _start(environment, **_kwargs) -> None:
    global PROFILE
    PROFILE = Profile(environment.parsed_options)
    request_log.open(environment.parsed_options.request_log)


class EchoUser(HttpUser):
    host = "http://127.0.0.1:8080"

    def wait_time(self) -> float:
        return random.uniform(PROFILE.wait_min, PROFILE.wait_max)

    def on_start(self) -> None:
        # Start each user at a random service so that both get traffic from the first second.
        self.turn = random.randrange(len(PROFILE.services) * 2)

    @task
    def echo(self) -> None:
        side, round_number = PROFILE.side_and_round(self.turn // len(PROFILE.services))
        service = PROFILE.services[self.turn % len(PROFILE.services)]
        self.turn += 1
        if side == BASELINE:
            if service["name"] not in PROFILE.baseline:
                return  # a service the base does not have: nothing to compare it with
            service = PROFILE.baseline[service["name"]]
        name = service["name"] if side == CANDIDATE else f"{service['name']} (baseline)"
        with self.client.get(
            service.get("path", "/"),
            headers={"Host": service["host"]},
            name=name,
            catch_response=True,
            # Without a timeout a target that accepts connections and never answers
            # records no requests at all, and locust would exit 0.
            timeout=PROFILE.timeout,
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

    def open(self, path: str) -> None:
        if path and self.file is None:
            self.file = open(path, "w", newline="", buffering=1 << 13)  # noqa: SIM115 (closed on quit; small: progress reads it)
            self.writer = csv.writer(self.file)
            self.writer.writerow(["time", "service", "side", "round", "response_ms", "ok", "error"])

    def record(self, name: str, response_time: float, exception: BaseException | None = None,
               context: dict | None = None, **_kw: object) -> None:
        if self.writer is not None:
            context = context or {}
            error = "" if exception is None else f"{type(exception).__name__}: {exception}"
            self.writer.writerow([f"{time.time():.4f}", context.get("service", name), context.get("side", CANDIDATE),
                                  context.get("round", 1), f"{response_time:.3f}", 0 if exception else 1, error])

    def close(self, **_kwargs: object) -> None:
        if self.file is not None:
            self.file.close()
            self.file = self.writer = None


request_log = RequestLog()
events.request.add_listener(request_log.record)
events.quitting.add_listener(request_log.close)


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
