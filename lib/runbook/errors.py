"""The runbook's error types: one base, a few specific kinds."""

from __future__ import annotations


class RunbookError(Exception):
    """Base of every error the runbook raises on purpose."""


class ConfigError(RunbookError):
    """A parameter, values file or environment variable is wrong; names the bad value."""

    def __init__(self, name: str, value: object, reason: str) -> None:
        self.name = name
        self.value = value
        self.reason = reason
        super().__init__(f"{name}={value!r}: {reason}")


class CommandError(RunbookError):
    """An external command failed or timed out."""

    def __init__(
        self,
        argv: list[str],
        returncode: int | None,
        stderr: str,
        timeout: float | None = None,
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr_tail = tail(stderr)
        self.timeout = timeout
        shown = " ".join(self.argv)
        if returncode is None:
            head = f"command timed out after {timeout:g}s: {shown}"
        else:
            head = f"command failed with exit code {returncode}: {shown}"
        super().__init__(head + (f"\n{self.stderr_tail}" if self.stderr_tail else ""))


class WaitTimeout(RunbookError):
    """A wait ran out of time; says what it waited for and what it saw last."""

    def __init__(self, what: str, timeout: float, last: str) -> None:
        self.what = what
        self.timeout = timeout
        self.last = last
        super().__init__(f"gave up after {timeout:g}s waiting for {what}; last seen: {last}")


class GiveUp(RunbookError):
    """A probe's word that what it waits for will not come (a process exited, a rollout hit its deadline)."""


class TargetUnreachable(RunbookError):
    """The ingress endpoint does not answer."""


class TargetNotReady(RunbookError):
    """The ingress endpoint answers, but not as the service should."""


class StageFailed(RunbookError):
    """A stage notebook raised; carries the stage and the error from the kernel."""

    def __init__(self, stage: str, error: str) -> None:
        self.stage = stage
        self.error = error
        super().__init__(f"stage {stage} failed: {error}")


class PublishError(RunbookError):
    """Publishing failed; the message says what to change."""


class NotPublished(RunbookError):
    """There was nothing to publish to (no token, no pull request): not an error unless required."""


def tail(text: str, lines: int = 20) -> str:
    """The last lines of a command's output, for an error message."""
    return "\n".join(text.strip().splitlines()[-lines:])
