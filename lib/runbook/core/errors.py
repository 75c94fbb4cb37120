"""The runbook's error types (one base, a few specific kinds) and the one map from an error to an exit code.

Every exception the runbook raises on purpose is defined here. The command line turns
them into exit codes and one-line messages through exit_code(), and nowhere else.
"""

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


class SampleFailed(RunbookError):
    """A server-side source could not be read this time: that sample is missing (never a failed run by itself)."""


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


class InvalidResult(RunbookError):
    """result.json does not have the shape analysis.result_document defines (a field missing, a number that is not one)."""


class ToolError(RunbookError):
    """A tool (kind, helm, kubectl) is missing, too old, or could not be installed."""


class PortForwardDied(RunbookError):
    """kubectl port-forward exited while a stage depended on it."""


class LoadTestError(RunbookError):
    """Locust could not run the profile (an exception in the locustfile, a crash)."""


class PortInUse(RunbookError):
    """The ingress port is taken by another process."""


class StartFailed(RunbookError):
    """A process the target starts (the local stand-in) exited instead of serving."""


class OutOfOrder(RunbookError):
    """A stage ran before the stage it needs (deploy before ingress)."""


class Required(RunbookError):
    """Something the run was told to require (--require-baseline, --require-publish) did not happen."""


EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def exit_code(exc: BaseException, bad_input: tuple[type[BaseException], ...] = (ConfigError,)) -> int:
    """The exit code for an error that ends a command: bad input 2, an interrupt 130, any other runbook error 1.

    What counts as bad input depends on when it happens: a missing tool before a run starts is
    bad input, the same tool failing to install is a failure. Anything that is not a runbook
    error is a bug and is raised again.
    """
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, bad_input):
        return EXIT_BAD_INPUT
    if isinstance(exc, RunbookError):
        return EXIT_FAILED
    raise exc


def tail(text: str, lines: int = 20) -> str:
    """The last lines of a command's output, for an error message."""
    return "\n".join(text.strip().splitlines()[-lines:])
