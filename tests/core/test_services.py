"""The services under test, read from their values files, and what counts as a right answer."""

import pytest

from runbook.core.errors import ConfigError
from runbook.core.services import Reply, Service, answers, get, load_service, load_services


def values(root, name, text):
    folder = root / "k8s" / "deployment" / name
    folder.mkdir(parents=True)
    (folder / "values.yaml").write_text(text)


def test_a_service_is_its_host_text_and_probe_path(tmp_path):
    values(tmp_path, "api", "echo: {text: hello}\ningressRoute: {host: api.localhost}\nverify: {path: /healthz}\n")
    service = load_service("api", tmp_path)
    assert service == Service("api", "api.localhost", "hello", "/healthz", str(tmp_path / "k8s/deployment/api/values.yaml"))
    values(tmp_path, "web", "echo: {text: hi}\ningressRoute: {host: web.localhost}\n")
    assert load_service("web", tmp_path).path == "/"


@pytest.mark.parametrize(("text", "name", "reason"), [
    ("echo: {text: hello}\n", "ingressRoute.host", "must set it to a non-empty string"),
    ("echo: {text: '  '}\ningressRoute: {host: a.localhost}\n", "echo.text", "non-empty"),
    ("echo: {text: 5}\ningressRoute: {host: a.localhost}\n", "echo.text", "non-empty string"),
    ("echo: [\n", "services", "not valid YAML"),
])
def test_a_bad_values_file_names_the_key(tmp_path, text, name, reason):
    values(tmp_path, "api", text)
    with pytest.raises(ConfigError, match=reason) as caught:
        load_service("api", tmp_path)
    assert caught.value.name == name


def test_a_missing_service_and_a_shared_host_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="no values file at"):
        load_service("nope", tmp_path)
    values(tmp_path, "a", "echo: {text: a}\ningressRoute: {host: same.localhost}\n")
    values(tmp_path, "b", "echo: {text: b}\ningressRoute: {host: same.localhost}\n")
    with pytest.raises(ConfigError, match="host same.localhost is routed to more than one service") as caught:
        load_services(("a", "b"), tmp_path)
    assert caught.value.value == "a"


def test_a_right_answer_is_a_200_that_contains_the_text():
    foo = Service("foo", "foo.localhost", "foo")
    assert answers(Reply(200, "foo\n"), foo)
    assert not answers(Reply(201, "foo\n"), foo)
    assert not answers(Reply(200, "bar\n"), foo)


def test_get_sends_the_host_header_and_path(ingress):
    foo = Service("foo", "foo.localhost", "foo", "/anything")
    assert get("127.0.0.1", ingress, foo, timeout=5) == Reply(200, "foo\n")
    assert get("127.0.0.1", ingress, Service("x", "x.localhost", "x"), timeout=5).status == 404


def test_the_errors_name_the_parameter_and_the_value(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_service("nope", tmp_path)
    assert (caught.value.name, caught.value.value) == ("services", "nope")
    values(tmp_path, "api", "echo: [\n")
    with pytest.raises(ConfigError) as caught:
        load_service("api", tmp_path)
    assert (caught.value.name, caught.value.value) == ("services", "api")
    values(tmp_path, "web", "echo: {text: hi}\ningressRoute: {host: 7}\n")
    with pytest.raises(ConfigError) as caught:
        load_service("web", tmp_path)
    assert (caught.value.name, caught.value.value) == ("ingressRoute.host", 7)
    assert f"{tmp_path / 'k8s/deployment/web/values.yaml'} must set it to a non-empty string" in str(caught.value)
    values(tmp_path, "txt", "echo: {}\ningressRoute: {host: txt.localhost}\n")
    with pytest.raises(ConfigError, match=f"echo.text=None: {tmp_path / 'k8s/deployment/txt/values.yaml'} must set it"):
        load_service("txt", tmp_path)
    values(tmp_path, "a", "echo: {text: a}\ningressRoute: {host: a.localhost}\n")
    values(tmp_path, "b", "echo: {text: b}\ningressRoute: {host: b.localhost}\n")
    assert [s.host for s in load_services(("a", "b"), tmp_path)] == ["a.localhost", "b.localhost"]  # one each is fine
    with pytest.raises(ConfigError) as caught:
        load_services(("a", "b", "a"), tmp_path)
    assert caught.value.name == "services"


@pytest.mark.parametrize(("verify", "path"), [("verify: {path: /ready}", "/ready"), ("verify: {}", "/"), ("verify: yes", "/"), ("", "/")])
def test_the_probe_path_comes_from_verify_path_or_is_the_root(tmp_path, verify, path):
    values(tmp_path, "api", f"echo: {{text: hi}}\ningressRoute: {{host: api.localhost}}\n{verify}\n")
    assert load_service("api", tmp_path).path == path


@pytest.fixture
def recorder():
    """A server on a free loopback port that records each request's path and Host, and answers a set body."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen, answer = [], {"body": b"ok\n"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append((self.path, self.headers.get("Host")))
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer["body"])))
            self.end_headers()
            self.wfile.write(answer["body"])

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], seen, answer
    server.shutdown()
    server.server_close()


def test_get_asks_for_the_services_path_and_reads_at_most_64_kib(recorder):
    port, seen, answer = recorder
    assert get("127.0.0.1", port, Service("api", "api.localhost", "ok", "/ready?x=1"), timeout=5) == Reply(200, "ok\n")
    assert seen == [("/ready?x=1", "api.localhost")]
    answer["body"] = b"a" * 100_000
    assert len(get("127.0.0.1", port, Service("api", "api.localhost", "a"), timeout=5).body) == 64 * 1024
    answer["body"] = b"caf\xe9\n"  # not UTF-8: replaced, not an error
    assert get("127.0.0.1", port, Service("api", "api.localhost", "caf"), timeout=5).body == "caf\ufffd\n"


def test_get_gives_up_at_its_timeout_on_a_target_that_never_answers():
    import socket
    import time

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        with pytest.raises(OSError):  # socket.timeout is an OSError
            get("127.0.0.1", silent.getsockname()[1], Service("api", "api.localhost", "x"), timeout=0.3)
        assert time.monotonic() - started < 3
