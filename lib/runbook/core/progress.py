"""Progress a person can follow while a long stage runs.

A stage runs in its own kernel, so it cannot print to the terminal of the CLI that
started it. It appends progress lines to the run folder's progress.log instead, and the
pipeline shows each new line as it appears: on a terminal as one line that updates in
place, in a log file (CI) as plain lines, never carriage-return spinners.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

FILE = "progress.log"


def say(run_dir: Path, line: str) -> None:
    """Append one progress line for the pipeline to show (and log it)."""
    log.info(line)
    with open(run_dir / FILE, "a") as handle:
        handle.write(line.rstrip("\n") + "\n")


class Follower:
    """Shows the lines stages append to progress.log while the pipeline waits on them."""

    def __init__(self, path: Path, show: Callable[[str], None], interval: float = 0.5) -> None:
        self.path = path
        self.show = show
        self.interval = interval
        self.offset = path.stat().st_size if path.is_file() else 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def __enter__(self) -> Follower:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._read()  # the last lines

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._read()

    def _read(self) -> None:
        if not self.path.is_file():
            return
        with self.path.open() as handle:
            handle.seek(self.offset)
            text = handle.read()
        complete = text[: text.rfind("\n") + 1]
        self.offset += len(complete.encode())
        for line in complete.splitlines():
            self.show(line)
