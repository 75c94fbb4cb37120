import os
import socket

import pytest

from runbook.core.config import RunConfig
from runbook.core.errors import RunbookError
from runbook.core.rundir import RunFolder, read_json
from runbook.core.services import get, load_services
from runbook.targets.local import LocalTarget, is_our_process


def make(tmp_path, port, **extra):
    config = RunConfig.from_parameters(target="local", run_dir=str(tmp_path / "run"), ingress_port=port, **extra)
    folder = RunFolder(config.run_path).create()
    return LocalTarget(config, folder, load_services(config.services))


def test_provision_outlives_the_call_and_teardown_stops_it(tmp_path, port):
    target = make(tmp_path, port)
    outcome = target.provision()
    assert outcome.applies and f"127.0.0.1:{port}" in outcome.summary
    state = read_json(target.state_path)
    assert is_our_process(state["pid"])
    foo, bar = target.services
    assert get("127.0.0.1", port, foo, timeout=5).body == "foo\n"
    assert get("127.0.0.1", port, bar, timeout=5).body == "bar\n"
    # A second provision in the same run folder reuses the process.
    assert "reusing" in make(tmp_path, port).provision().summary
    assert "stopped" in target.teardown().summary
    assert not is_our_process(state["pid"])
    with pytest.raises(OSError):
        get("127.0.0.1", port, foo, timeout=2)
    assert "already stopped" in target.teardown().summary


def test_port_already_taken_is_a_clear_error(tmp_path, port):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(RunbookError, match=f"127.0.0.1:{port} is already in use.*--ingress-port"):
            make(tmp_path, port).provision()


def test_keep_cluster_leaves_it_up_and_a_later_teardown_stops_it(tmp_path, port):
    kept = make(tmp_path, port, keep_cluster=True)
    kept.provision()
    pid = read_json(kept.state_path)["pid"]
    outcome = kept.teardown()
    assert not outcome.applies and "--stages teardown" in outcome.summary
    assert is_our_process(pid)
    assert "stopped" in make(tmp_path, port).teardown().summary
    assert not is_our_process(pid)


def test_teardown_without_provision(tmp_path, port):
    assert "nothing to stop" in make(tmp_path, port).teardown().summary


def test_a_reused_pid_is_not_killed(tmp_path, port):
    target = make(tmp_path, port)
    target.state_path.parent.mkdir(parents=True, exist_ok=True)
    target.state_path.write_text(f'{{"pid": {os.getpid()}, "host": "127.0.0.1", "port": {port}}}')
    assert not is_our_process(os.getpid())
    assert "had already exited" in target.teardown().summary


def test_secrets_do_not_reach_the_process(tmp_path, port, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secretvalue")
    target = make(tmp_path, port)
    target.provision()
    try:
        pid = read_json(target.state_path)["pid"]
        environ = open(f"/proc/{pid}/environ", "rb").read()
        assert b"ghp_secretvalue" not in environ
    finally:
        target.teardown()


def test_a_stand_in_that_exits_at_once_fails_provision_within_2s(tmp_path, port, monkeypatch):
    import time

    from runbook.targets import local

    # A module that does not exist: the interpreter exits with code 1 straight away.
    monkeypatch.setattr(local, "STAND_IN_MODULE", "runbook.no_such_stand_in")
    started = time.monotonic()
    with pytest.raises(RunbookError, match=r"did not start \(exit code 1\).*No module named runbook.no_such_stand_in"):
        make(tmp_path, port).provision()
    assert time.monotonic() - started < 2


def test_the_baseline_and_a_delay_are_served_by_the_stand_in(tmp_path, port):
    import time

    from runbook.targets import baseline

    target = make(tmp_path, port, baseline="HEAD", inject_delay="foo=200")
    baseline.prepare(target.config, target.folder)
    outcome = target.provision()
    try:
        foo, bar = target.services
        base_foo = target.baseline_services[0]
        assert base_foo.host == "foo.baseline.localhost"
        started = time.monotonic()
        assert get("127.0.0.1", port, foo, timeout=5).body == "foo\n"
        assert time.monotonic() - started >= 0.2  # the candidate side of foo answers 200 ms later
        started = time.monotonic()
        assert get("127.0.0.1", port, base_foo, timeout=5).body == "foo\n"
        assert get("127.0.0.1", port, bar, timeout=5).body == "bar\n"
        assert time.monotonic() - started < 0.2  # the baseline and bar do not
        assert "foo.baseline.localhost -> foo of the baseline" in "\n".join(outcome.details)
    finally:
        target.teardown()
