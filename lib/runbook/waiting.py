"""A wait is a condition plus a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from runbook.errors import WaitTimeout

T = TypeVar("T")


def wait_for(
    what: str,
    probe: Callable[[], tuple[bool, str, T | None]],
    *,
    timeout: float,
    interval: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T | None:
    """Call probe until it reports done or timeout seconds pass.

    probe returns (done, what it saw, value); on success the value is returned,
    on timeout WaitTimeout says what was awaited and what was seen last.
    Exceptions from the probe count as "not yet" and are shown as the last sight.
    """
    deadline = clock() + timeout
    last = "nothing yet"
    while True:
        try:
            done, seen, value = probe()
            last = seen
            if done:
                return value
        except Exception as exc:  # a probe failing is an observation, not the end of the wait
            last = f"{type(exc).__name__}: {exc}"
        remaining = deadline - clock()
        if remaining <= 0:
            raise WaitTimeout(what, timeout, last)
        sleep(min(interval, remaining))
