"""A wait is a condition plus a deadline.

A probe looks once and says (done, what it saw, value). Errors it raises that are
in `retry_on` are observations ("not yet": a refused connection, a 503); GiveUp
means "stop, this will not get better" (the process it waits on has exited, the
rollout's deadline has passed) and ends the wait at once; anything else is a bug in
the probe and propagates, rather than turning into a timeout.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from typing import TypeVar

from runbook.core.errors import GiveUp, WaitTimeout

T = TypeVar("T")

#: What a network probe meets while a thing starts: refused or reset connections, timeouts, bad answers.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, http.client.HTTPException)


def wait_for(
    what: str,
    probe: Callable[[], tuple[bool, str, T]],
    *,
    timeout: float,
    interval: float = 0.5,
    retry_on: tuple[type[BaseException], ...] = NETWORK_ERRORS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call probe until it reports done (its value is returned), gives up, or timeout seconds pass.

    On timeout WaitTimeout says what was awaited and what was seen last; GiveUp from
    the probe propagates at once with its own message.
    """
    deadline = clock() + timeout
    last = "nothing yet"
    while True:
        try:
            done, seen, value = probe()
            last = seen
            if done:
                return value
        except GiveUp:
            raise
        except retry_on as exc:  # a probe failing this way is an observation, not the end of the wait
            last = f"{type(exc).__name__}: {exc}"
        remaining = deadline - clock()
        if remaining <= 0:
            raise WaitTimeout(what, timeout, last)
        sleep(min(interval, remaining))
