import pytest

from runbook.errors import WaitTimeout
from runbook.waiting import wait_for


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
