import http.client
import socket
import subprocess
import sys

from runbook.targets.standin import EXIT_PORT_IN_USE


def ask(port, host, path="/"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path, headers={"Host": host})
    response = conn.getresponse()
    return response.status, response.read().decode()


def test_routes_by_host(ingress):
    assert ask(ingress, "foo.localhost") == (200, "foo\n")
    assert ask(ingress, "bar.localhost") == (200, "bar\n")
    assert ask(ingress, "BAR.localhost:8080") == (200, "bar\n")
    assert ask(ingress, "baz.localhost")[0] == 404
    assert ask(ingress, "127.0.0.1")[0] == 404


def test_keeps_connections_alive(ingress):
    conn = http.client.HTTPConnection("127.0.0.1", ingress, timeout=5)
    for host in ["foo.localhost", "bar.localhost", "foo.localhost"]:
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        assert response.status == 200 and response.read().decode().strip() == host.split(".")[0]
    conn.close()


def test_port_in_use_is_a_clear_error(port):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = subprocess.run([sys.executable, "-m", "runbook.targets.standin", f"--listen=127.0.0.1:{port}"],
                              capture_output=True, text=True, timeout=30)
    assert done.returncode == EXIT_PORT_IN_USE
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_refuses_a_non_loopback_address():
    done = subprocess.run([sys.executable, "-m", "runbook.targets.standin", "--listen=0.0.0.0:8080"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "loopback" in done.stderr


def test_a_bind_error_other_than_in_use_is_not_called_in_use(monkeypatch, capsys):
    import errno

    from runbook.targets import standin

    def refuse(*_args, **_kwargs):
        raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")

    monkeypatch.setattr(standin, "_Server", refuse)
    assert standin.main(["--listen=127.0.0.1:9"]) == standin.EXIT_CANNOT_LISTEN
    assert "Cannot assign requested address" in capsys.readouterr().err


def test_a_short_delay_is_waited_out_exactly_and_a_long_one_slept(monkeypatch):
    import time

    from runbook.targets import standin

    slept = []
    monkeypatch.setattr(standin.time, "sleep", slept.append)
    started = time.perf_counter()
    standin.wait(0.0003)  # a sleep this short would last about 0.2 ms longer than asked
    assert time.perf_counter() - started >= 0.0003 and slept == []
    standin.wait(standin.SPIN_BELOW_S)
    assert slept == [standin.SPIN_BELOW_S]


def test_the_stand_in_starts_as_a_module_without_importing_itself_twice():
    """`python -m runbook.targets.standin` imports its package first; the package must not import the stand-in."""
    import subprocess
    import sys

    from conftest import ROOT

    done = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "runbook.targets.standin", "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "found in sys.modules" not in done.stderr, done.stderr
