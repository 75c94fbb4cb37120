"""The one way the runbook runs an external command.

Every call has an argument list (never a shell string), a timeout, captured
output, and fails with a CommandError that names the command and shows the
tail of its stderr.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runbook.errors import CommandError

log = logging.getLogger(__name__)


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
    """Run argv to completion within timeout seconds; env is added to os.environ."""
    args = [str(part) for part in argv]
    log.debug("running %s (timeout %ss)", " ".join(args), timeout)
    try:
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
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
