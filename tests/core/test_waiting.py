import pytest

from runbook.core.errors import WaitTimeout
from runbook.core.waiting import wait_for


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_returns_the_value_once_done():
    seen = iter([(False, "starting", None), (False, "warming", None), (True, "ready", 42)])
    clock = FakeClock()
    assert wait_for("x", lambda: next(seen), timeout=10, clock=clock, sleep=clock.sleep) == 42


def test_gives_up_saying_what_and_what_it_saw_last():
    clock = FakeClock()
    calls = []

    def probe():
        calls.append(clock.now)
        if len(calls) == 2:
            raise ConnectionRefusedError("refused")
        return False, f"HTTP 503 at {clock.now:g}", None

    with pytest.raises(WaitTimeout) as caught:
        wait_for("the ingress to answer", probe, timeout=3, interval=1, clock=clock, sleep=clock.sleep)
    message = str(caught.value)
    assert "gave up after 3s waiting for the ingress to answer" in message
    assert "last seen: HTTP 503 at 3" in message
    assert calls == [0, 1, 2, 3]


def test_a_probe_that_gives_up_ends_the_wait_at_once():
    from runbook.core.errors import GiveUp

    clock = FakeClock()
    calls = []

    def probe():
        calls.append(clock.now)
        if len(calls) == 3:
            raise GiveUp("the process exited with code 2")
        return False, "starting", None

    with pytest.raises(GiveUp, match="exited with code 2"):
        wait_for("x", probe, timeout=100, interval=1, clock=clock, sleep=clock.sleep)
    assert calls == [0, 1, 2]


def test_a_bug_in_a_probe_is_not_a_timeout():
    clock = FakeClock()
    with pytest.raises(TypeError):
        wait_for("x", lambda: None + 1, timeout=100, clock=clock, sleep=clock.sleep)
    assert clock.now == 0
    seen = iter([(False, "a", None), (True, "b", 7)])

    def probe():
        value = next(seen)
        if value[1] == "a":
            raise KeyError("retried because the caller said so")
        return value

    assert wait_for("x", probe, timeout=10, retry_on=(KeyError,), clock=clock, sleep=clock.sleep) == 7


def test_the_default_interval_is_half_a_second():
    clock = FakeClock()
    calls = []

    def probe():
        calls.append(clock.now)
        return False, "not yet", None

    with pytest.raises(WaitTimeout):
        wait_for("x", probe, timeout=1.5, clock=clock, sleep=clock.sleep)
    assert calls == [0, 0.5, 1.0, 1.5]
