"""The services under test, read from their values files, and what counts as a right answer."""

import pytest

from runbook.errors import ConfigError
from runbook.services import Reply, Service, answers, get, load_service, load_services


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
