"""The run folder: where every stage reads and writes, and run.json.

    <run>/run.json                 config (no secrets), target, per-stage status and wall time
    <run>/notebooks/NN_stage.ipynb executed notebooks
    <run>/target/                  what the target needs to find its resources again
    <run>/load_test/               locust CSVs, HTML report, the request log
    <run>/report/                  charts, summary.md, result.json
    <run>/diagnostics/             on failure: what the target could collect
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

from runbook.core.config import project_root


class RunFolder:
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def notebooks(self) -> Path:
        return self.path / "notebooks"

    @property
    def target(self) -> Path:
        return self.path / "target"

    @property
    def load_test(self) -> Path:
        return self.path / "load_test"

    @property
    def report(self) -> Path:
        return self.path / "report"

    @property
    def diagnostics(self) -> Path:
        return self.path / "diagnostics"

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    def create(self) -> RunFolder:
        for folder in (self.path, self.notebooks, self.target, self.load_test, self.report):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    def read_run(self) -> dict[str, Any]:
        if not self.run_json.is_file():
            return {}
        return json.loads(self.run_json.read_text())

    def write_run(self, record: dict[str, Any]) -> None:
        write_json(self.run_json, record)

    def link_latest(self) -> Path | None:
        """Point outputs/latest at this run when the run lives in outputs/."""
        outputs = project_root() / "outputs"
        if self.path.resolve().parent != outputs.resolve():
            return None
        link = outputs / "latest"
        tmp = outputs / f".latest-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(self.path.name)
        os.replace(tmp, link)
        return link


def new_run_id(now: datetime | None = None) -> str:
    moment = now or datetime.now(UTC)
    return moment.strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}"


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2, sort_keys=False)
        out.write("\n")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
