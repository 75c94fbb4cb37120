"""The one way the runbook runs an external command.

Every call has an argument list (never a shell string), a timeout, captured
output, and fails with a CommandError that names the command and shows the
tail of its stderr. No command the runbook starts sees the secret variables
(config.SECRET_VARIABLES): they are stripped here, whatever environment the
caller passes, so that a token can reach only the publish stage's kernel.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runbook.core.config import environment_without_secrets
from runbook.core.errors import CommandError

log = logging.getLogger(__name__)


def child_environment(base: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """base plus extra, without the secret variables (even if extra names one)."""
    return environment_without_secrets({**base, **(extra or {})})


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    check: bool = True,
    input_text: str | None = None,
) -> Result:
    """Run argv to completion within timeout seconds; env is added to os.environ, secrets removed."""
    args = [str(part) for part in argv]
    log.debug("running %s (timeout %ss)", " ".join(args), timeout)
    try:
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=child_environment(os.environ, env),
            cwd=cwd,
            input=input_text,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise CommandError(args, None, stderr, timeout=timeout) from None
    except FileNotFoundError:
        raise CommandError(args, 127, f"{args[0]}: not found on PATH") from None
    if check and done.returncode != 0:
        raise CommandError(args, done.returncode, done.stderr or done.stdout)
    return Result(args, done.returncode, done.stdout, done.stderr)


class Background:
    """A long-running command (a port-forward) with its output in a log file."""

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        base_env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> None:
        self.argv = [str(part) for part in argv]
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log.debug("starting %s", " ".join(self.argv))
        with open(log_path, "ab") as out:
            try:
                self.process = subprocess.Popen(
                    self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=child_environment(os.environ if base_env is None else base_env, env),
                    cwd=cwd,
                    start_new_session=True,  # its own session: it outlives a kernel and ignores its signals
                )
            except FileNotFoundError:
                raise CommandError(self.argv, 127, f"{self.argv[0]}: not found on PATH") from None

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate it, then anything it started (Locust's workers) that outlived it; kill what will not go."""
        import psutil

        try:
            children = psutil.Process(self.process.pid).children(recursive=True)  # before they lose their parent
        except psutil.Error:
            children = []
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        alive = [child for child in children if _running(child)]
        for child in alive:
            with contextlib.suppress(psutil.Error):
                child.terminate()
        _, alive = psutil.wait_procs(alive, timeout=timeout)
        for child in alive:
            with contextlib.suppress(psutil.Error):
                child.kill()


def _running(process: object) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE  # type: ignore[attr-defined]
    except psutil.Error:
        return False


def start(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    base_env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> Background:
    """Start argv in the background with its output in log_path; the caller stops it (Background.stop).

    env is added to base_env (os.environ unless given).
    """
    return Background(argv, log_path, env, base_env, cwd)
