"""The local target's ingress: echo services on 127.0.0.1 behind host routing.

It answers like the cluster does: `Host: foo.localhost` gets foo's text,
`Host: bar.localhost` gets bar's, any other host 404. Started by the provision
stage as its own process (so it outlives the stage's kernel), stopped by teardown.

    python -m runbook.targets.standin --listen 127.0.0.1:8080 --route foo.localhost=foo

Like Traefik, it counts every routed request in Prometheus metrics of Traefik's names
and labels (prometheus_client), served on METRICS_PATH, so that the load test's
server-side sampler reads the same numbers here as on a cluster. A service is labelled
`<host>@local`, or what --label gives.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest

from runbook.load.prometheus_text import BUCKETS_S, DURATION, REQUESTS

HEALTH_PATH = "/__runbook/health"
METRICS_PATH = "/__runbook/metrics"
_LABELS = ("code", "method", "protocol", "service")
EXIT_PORT_IN_USE = 3
EXIT_CANNOT_LISTEN = 4  # any other bind error (no such address, no permission)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    routes: dict[str, bytes] = {}
    delays: dict[str, float] = {}  # host -> seconds added before the answer (--inject-delay)
    labels: dict[str, str] = {}  # host -> the service label in the metrics

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.registry = CollectorRegistry()  # each server counts its own requests only
        self.requests = Counter(REQUESTS.removesuffix("_total"), "Requests per service, as Traefik counts them",
                                _LABELS, registry=self.registry)
        self.duration = Histogram(DURATION, "Time from request to complete answer, per service", _LABELS,
                                  buckets=BUCKETS_S, registry=self.registry)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the load generator expects
    # Headers and body go out in one write with Nagle off: otherwise the client's
    # delayed ACK adds 40 ms to some answers and the stand-in becomes the bottleneck.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == HEALTH_PATH:
            self._reply(200, b"ok\n")
            return
        if self.path == METRICS_PATH:
            self._reply(200, generate_latest(self.server.registry), "text/plain; version=0.0.4; charset=utf-8")
            return
        started = time.perf_counter()
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        body = self.server.routes.get(host)
        if body is None:
            self._reply(404, b"404 page not found\n")  # no route, no service: Traefik counts it under none either
            return
        delay = self.server.delays.get(host)
        if delay:
            wait(delay)
        self._reply(200, body)
        labels = ("200", self.command, "http", self.server.labels.get(host) or f"{host}@local")
        self.server.requests.labels(*labels).inc()
        self.server.duration.labels(*labels).observe(time.perf_counter() - started)

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response_only(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Date", self.date_time_string())
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(body)
        self.wfile.write(b"".join(self._headers_buffer))
        self._headers_buffer = []

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # one line per request would cost more than the request


def parse_route(text: str) -> tuple[str, bytes]:
    host, sep, reply = text.partition("=")
    if not sep or not host or not reply:
        raise argparse.ArgumentTypeError(f"route {text!r} must be HOST=TEXT")
    return host.lower(), (reply + "\n").encode()


def parse_label(text: str) -> tuple[str, str]:
    host, sep, label = text.partition("=")
    if not sep or not host or not label:
        raise argparse.ArgumentTypeError(f"label {text!r} must be HOST=SERVICE-LABEL")
    return host.lower(), label


#: Below this, a delay is waited out by spinning: a sleep of a fraction of a millisecond sleeps longer than asked
#: (about 0.2 ms more here), so --inject-delay could not ask for the small changes the comparison must catch.
SPIN_BELOW_S = 0.002


def wait(seconds: float) -> None:
    """Wait that long, as exactly as this process can: spinning for short waits, sleeping for long ones."""
    if seconds >= SPIN_BELOW_S:
        time.sleep(seconds)
        return
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def parse_delay(text: str) -> tuple[str, float]:
    host, sep, ms = text.partition("=")
    try:
        if not sep or not host or float(ms) <= 0:
            raise ValueError
        return host.lower(), float(ms) / 1000
    except ValueError:
        raise argparse.ArgumentTypeError(f"delay {text!r} must be HOST=MS with MS > 0") from None


def parse_listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError
        return host, int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"listen address {text!r} must be a loopback HOST:PORT") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runbook.targets.standin", description=__doc__)
    parser.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 8080))
    parser.add_argument("--route", type=parse_route, action="append", default=[])
    parser.add_argument("--delay", type=parse_delay, action="append", default=[],
                        help="HOST=MS: answer that host MS milliseconds later (the comparison's sensitivity check)")
    parser.add_argument("--label", type=parse_label, action="append", default=[],
                        help="HOST=NAME: the service label of that host's requests in the metrics (default HOST@local)")
    args = parser.parse_args(argv)
    disable_created_metrics()  # Traefik exports no *_created series
    try:
        server = _Server(args.listen, _Handler)
    except OSError as exc:
        host, port = args.listen
        print(f"cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr, flush=True)
        return EXIT_PORT_IN_USE if exc.errno == errno.EADDRINUSE else EXIT_CANNOT_LISTEN
    server.routes = dict(args.route)
    server.delays = dict(args.delay)
    server.labels = dict(args.label)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    host, port = server.server_address[:2]
    print(f"listening on {host}:{port} routes={sorted(server.routes)}", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
