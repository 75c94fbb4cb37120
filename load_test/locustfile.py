"""Load profile for the echo services behind the ingress.

Each simulated user sends GET requests through the ingress endpoint, going
round the services in turn with each service's Host header, and waits a random
0-1 s (by default) after each response. Requests are grouped per service
(`name=`), and a response counts as a success only if it is a 200 whose body
contains the service's text.

The runbook runs this file with the locust CLI and sets the environment below;
it also works on its own:

    locust -f load_test/locustfile.py --headless -u 100 -r 10 -t 30s --host http://127.0.0.1:8080

Environment (all optional):
    LOAD_TEST_SERVICES     JSON list of {"name", "host", "expect", "path"}; default foo and bar
    LOAD_TEST_WAIT_MIN     seconds a user waits after a response, at least (default 0)
    LOAD_TEST_WAIT_MAX     ... at most (default 1)
    LOAD_TEST_TIMEOUT      connect and read timeout of each request in seconds (default 5)
    LOAD_TEST_REQUEST_LOG  CSV file to record every request in (time, service, ms, ok, error)
"""

from __future__ import annotations

import csv
import json
import os
import random
import time

from locust import HttpUser, between, events, task

DEFAULT_SERVICES = [
    {"name": "foo", "host": "foo.localhost", "expect": "foo", "path": "/"},
    {"name": "bar", "host": "bar.localhost", "expect": "bar", "path": "/"},
]

SERVICES = json.loads(os.environ.get("LOAD_TEST_SERVICES") or "null") or DEFAULT_SERVICES
WAIT_MIN = float(os.environ.get("LOAD_TEST_WAIT_MIN", "0"))
WAIT_MAX = float(os.environ.get("LOAD_TEST_WAIT_MAX", "1"))
TIMEOUT = float(os.environ.get("LOAD_TEST_TIMEOUT", "5"))


class EchoUser(HttpUser):
    host = "http://127.0.0.1:8080"
    wait_time = between(WAIT_MIN, WAIT_MAX)
    # Without these a target that accepts connections and never answers
    # records no requests at all, and locust would exit 0.
    connection_timeout = TIMEOUT
    network_timeout = TIMEOUT

    def on_start(self) -> None:
        # Start each user at a random service so that both get traffic from the first second.
        self.turn = random.randrange(len(SERVICES))

    @task
    def echo(self) -> None:
        service = SERVICES[self.turn % len(SERVICES)]
        self.turn += 1
        with self.client.get(
            service.get("path", "/"),
            headers={"Host": service["host"]},
            name=service["name"],
            catch_response=True,
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
    """Every request with its outcome, so latency can be computed from successes alone."""

    def __init__(self) -> None:
        self.file = None
        self.writer = None

    def open(self, **_kwargs: object) -> None:
        path = os.environ.get("LOAD_TEST_REQUEST_LOG")
        if path and self.file is None:
            self.file = open(path, "w", newline="", buffering=1 << 16)  # noqa: SIM115 (closed on quit)
            self.writer = csv.writer(self.file)
            self.writer.writerow(["time", "service", "response_ms", "ok", "error"])

    def record(self, name: str, response_time: float, exception: BaseException | None = None, **_kw: object) -> None:
        if self.writer is not None:
            error = "" if exception is None else f"{type(exception).__name__}: {exception}"
            self.writer.writerow([f"{time.time():.4f}", name, f"{response_time:.3f}", 0 if exception else 1, error])

    def close(self, **_kwargs: object) -> None:
        if self.file is not None:
            self.file.close()
            self.file = self.writer = None


request_log = RequestLog()
events.test_start.add_listener(request_log.open)
events.request.add_listener(request_log.record)
events.quitting.add_listener(request_log.close)


if __name__ == "__main__":
    from locust import run_single_user

    run_single_user(EchoUser)
